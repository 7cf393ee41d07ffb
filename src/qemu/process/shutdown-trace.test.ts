import { describe, expect, it } from 'vitest';
import { shutdownFromLog } from './shutdown-trace.js';

describe('shutdownFromLog', () => {
  it('reads the ShutdownCause of QEMU\'s trace line, with or without the timestamp prefix', () => {
    expect(shutdownFromLog('qemu_system_shutdown_request reason=6\n')).toEqual({ guest: true, reason: 'guest-shutdown' });
    expect(shutdownFromLog('1234@1700000000.123456:qemu_system_shutdown_request reason=8\n')).toEqual({ guest: true, reason: 'guest-panic' });
    expect(shutdownFromLog('qemu_system_shutdown_request reason=2\n')).toEqual({ guest: false, reason: 'host-qmp-quit' });
  });

  it('a signal is the host\'s; the guest\'s own power-off wins over a quit that follows it', () => {
    expect(shutdownFromLog('qemu-system-x86_64: terminating on signal 15 from pid 7 (node)\n')).toEqual({ guest: false, reason: 'host-signal' });
    expect(shutdownFromLog('qemu_system_shutdown_request reason=6\nqemu_system_shutdown_request reason=2\n'))
      .toEqual({ guest: true, reason: 'guest-shutdown' });
  });

  it('nothing logged, nothing known: an unexplained exit stays unexplained', () => {
    expect(shutdownFromLog('')).toBeUndefined();
    expect(shutdownFromLog('qemu-system-x86_64: warning: host doesn\'t support requested feature\n')).toBeUndefined();
  });
});
