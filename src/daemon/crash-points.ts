/**
 * Named points where the daemon can be made to die by SIGKILL, for crash-recovery tests:
 * `VIRTKIT_CRASH_AT=start.spawned virtkit daemon ...` kills the daemon right after QEMU
 * started but before the store records it running. Unset (always, outside tests), a no-op.
 *
 *   define.in-transaction    inside the define transaction, before it commits
 *   start.recorded           run dir and "starting" committed, QEMU not spawned yet
 *   start.spawned            QEMU running, store still says "starting"
 *   shutdown.requested       ACPI power button sent, guest not yet gone
 */
export const CrashPoints = ['define.in-transaction', 'start.recorded', 'start.spawned', 'shutdown.requested'] as const;
export type CrashPoint = (typeof CrashPoints)[number];

export function crashPoint(point: CrashPoint): void {
  if (process.env.VIRTKIT_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}

/** Like crashPoint, after `ms`: for points inside an operation that is awaited elsewhere. */
export function crashPointSoon(point: CrashPoint, ms: number): void {
  if (process.env.VIRTKIT_CRASH_AT === point) setTimeout(() => process.kill(process.pid, 'SIGKILL'), ms);
}
