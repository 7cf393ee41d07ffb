/**
 * Start-up timeline marks, for the boot bench (bench/boot.bench.ts, docs/performance.md): where
 * the time goes between a command and QEMU's first instruction, and between the guest's ready
 * marker and virtkit seeing it. With VIRTKIT_TIMELINE=FILE in the environment, each mark appends
 * one JSON line to FILE:
 *
 *   {"at":1733380000123.456,"pid":4242,"mark":"qemu: spawned"}
 *
 * `at` is wall-clock milliseconds with sub-millisecond precision (the process's time origin plus
 * its monotonic clock), so marks of the CLI, the daemon and the bench line up on one axis.
 * Without the variable a mark costs one property read; nothing is ever written.
 */
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const file = process.env['VIRTKIT_TIMELINE'] || undefined;

/** Whether marks are being written (so a caller can skip work only a mark needs). */
export const timelineEnabled = file !== undefined;

/** Now, as a mark's `at`: wall-clock milliseconds, sub-millisecond precision. */
export function timelineNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Records that `mark` happened now (or at `at`, a timelineNow() taken earlier). */
export function mark(name: string, at?: number): void {
  if (file === undefined) return;
  const line = `${JSON.stringify({ at: Math.round((at ?? timelineNow()) * 1000) / 1000, pid: process.pid, mark: name })}\n`;
  try {
    appendFileSync(file, line);
  } catch {
    /* a timeline that cannot be written only loses its marks */
  }
}

/**
 * The marks of this process's own start, taken retroactively from Node's clock: the process
 * began (Node's time origin) and Node finished bootstrapping, before any of our modules loaded.
 */
export function markProcessStart(): void {
  if (file === undefined) return;
  mark('node: process start', performance.timeOrigin);
  mark('node: bootstrap complete', performance.timeOrigin + performance.nodeTiming.bootstrapComplete);
}
