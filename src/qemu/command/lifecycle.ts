/**
 * What QEMU itself does when the guest powers off, reboots or panics (-action), chosen so the
 * manager can carry out on_poweroff / on_reboot / on_crash (docs/argv-fixtures.md):
 * - QEMU exits by itself only when that is the whole answer (destroy);
 * - otherwise QEMU keeps the guest, stopped, and the manager acts on the QMP event it sees
 *   (SHUTDOWN with reason guest-shutdown or guest-reset, GUEST_PANICKED with action pause):
 *   restart = system_reset + cont, preserve = leave it stopped, destroy = quit.
 */
import type { DomainDefinition } from '../../conf/index.js';

export interface QemuActions {
  reboot: 'reset' | 'shutdown';
  shutdown: 'poweroff' | 'pause';
  panic: 'exit-failure' | 'pause';
}

export function lifecycleActions(def: Pick<DomainDefinition, 'on_poweroff' | 'on_reboot' | 'on_crash'>): QemuActions {
  return {
    // A guest reboot that must not simply reset turns into a shutdown request (reason guest-reset).
    reboot: def.on_reboot === 'restart' ? 'reset' : 'shutdown',
    // QEMU may exit on power-off only if no reboot turned into a shutdown needs preserving.
    shutdown: def.on_poweroff === 'destroy' && def.on_reboot !== 'preserve' ? 'poweroff' : 'pause',
    // exit-failure reports GUEST_PANICKED and SHUTDOWN(guest-panic) on QMP, then exits.
    panic: def.on_crash === 'destroy' ? 'exit-failure' : 'pause',
  };
}

export function actionOption(actions: QemuActions): string {
  return `reboot=${actions.reboot},shutdown=${actions.shutdown},panic=${actions.panic}`;
}
