/**
 * What the manager records for a driver's lifecycle event. The driver already did the work
 * (it turned QMP events into typed ones and carried out on_poweroff / on_reboot / on_crash);
 * this table only says which domain event and state change each one becomes in the store.
 *
 *   policy restart            -> rebooted, reason `<what>-restart` (the guest runs again)
 *   policy preserve           -> suspended, reason `<what>-preserve`, state paused
 *   paused by policy          -> the same (whichever comes first records it)
 *   paused by monitor         -> suspended, reason `monitor`, state paused
 *   resumed by monitor        -> resumed, reason `monitor`, state running
 *   reset by guest            -> rebooted, reason `guest`
 *
 * `monitor-lost` / `monitor-restored` record nothing either: they set and clear the domain's
 * in-memory `degraded` flag (manager.ts), since the guest's state did not change.
 *
 * Everything else records nothing here: the host's own pause/resume/reset/reboot are recorded
 * by the manager method that asked for them (in the caller's transaction), a policy `destroy`
 * and every other end of QEMU arrive as `exited` (recorded as `stopped`), `started` is
 * recorded by start().
 */
import type { EventType } from '../api/index.js';
import type { LifecycleEvent } from '../qemu/index.js';

export interface RecordedChange {
  event: EventType;
  reason: string;
  /** The state the domain is in afterwards. */
  state?: 'running' | 'paused';
  /** Record only when the state actually changes (a second report of the same pause is not news). */
  onlyOnChange: boolean;
}

export function recordedChangeOf(ev: LifecycleEvent): RecordedChange | undefined {
  switch (ev.type) {
    case 'policy':
      if (ev.action === 'restart') return { event: 'rebooted', reason: `${ev.what}-restart`, state: 'running', onlyOnChange: false };
      if (ev.action === 'preserve') return { event: 'suspended', reason: `${ev.what}-preserve`, state: 'paused', onlyOnChange: true };
      return undefined;
    case 'paused':
      if (ev.by === 'host') return undefined;
      return { event: 'suspended', reason: ev.by === 'monitor' ? 'monitor' : (ev.reason ?? 'policy'), state: 'paused', onlyOnChange: true };
    case 'resumed':
      return ev.by === 'monitor' ? { event: 'resumed', reason: 'monitor', state: 'running', onlyOnChange: true } : undefined;
    case 'reset':
      return ev.by === 'guest' ? { event: 'rebooted', reason: 'guest', onlyOnChange: false } : undefined;
    default:
      return undefined;
  }
}
