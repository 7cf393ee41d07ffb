/**
 * QEMU's shutdown requests as written to its log, for when QMP did not tell us: the monitor
 * connection was lost while the guest powered off (QMP events are not replayed to a new client).
 * QEMU is started with `-trace qemu_system_shutdown_request` (QemuDomainDriver.prepare), whose
 * log backend writes one line per request to stderr, i.e. the run dir's qemu.log:
 *
 *   qemu_system_shutdown_request reason=6
 *
 * (a `PID@TIME:` prefix with `-msg timestamp=on`). The number is QEMU's ShutdownCause
 * (qapi/run-state.json). A signal ends QEMU without a request; QEMU logs that instead:
 * `terminating on signal 15 from pid 1234`.
 */
import { statSync } from 'node:fs';

export const ShutdownTraceArgs = ['-trace', 'qemu_system_shutdown_request'] as const;

/** ShutdownCause in declaration order (QEMU 7.2's qapi/run-state.json). */
const ShutdownCauses = [
  'none', 'host-error', 'host-qmp-quit', 'host-qmp-system-reset', 'host-signal', 'host-ui',
  'guest-shutdown', 'guest-reset', 'guest-panic', 'subsystem-reset', 'snapshot-load',
] as const;

/** What QEMU's SHUTDOWN event would have said, from the log lines QEMU wrote. */
export interface LoggedShutdown {
  guest: boolean;
  reason: string;
}

/**
 * The shutdown the log text reports, as the SHUTDOWN event would have: the guest's own request
 * wins over a host's that follows it (a `quit` after a kept power-off), as in QemuProcess.
 */
export function shutdownFromLog(text: string): LoggedShutdown | undefined {
  let found: LoggedShutdown | undefined;
  for (const line of text.split('\n')) {
    const request = /qemu_system_shutdown_request reason=(\d+)/.exec(line);
    const signal = /terminating on signal \d+/.test(line);
    if (!request && !signal) continue;
    const reason = request ? ShutdownCauses[Number(request[1])] ?? `cause-${request[1]}` : 'host-signal';
    const guest = reason.startsWith('guest-');
    if (!found?.guest) found = { guest, reason };
  }
  return found;
}

/** The size of a log now (0 when it does not exist): where lines not seen yet start. */
export function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
