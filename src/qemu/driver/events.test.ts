import { describe, expect, it } from 'vitest';
import type { LifecycleAction } from '../../conf/index.js';
import { lifecycleActions } from '../command/index.js';
import type { QmpEvent } from '../qmp/events.js';
import type { RunActions } from '../process/actions.js';
import { LifecycleTracker, RESET_QUIET_MS, policyStep, type LifecyclePolicy } from './events.js';
import type { LifecycleEvent } from './types.js';

const qmp = (event: string, data: Record<string, unknown> = {}): QmpEvent => ({ event, data, timestamp: { seconds: 0, microseconds: 0 } });
const SHUTDOWN = (reason: string, guest = true): QmpEvent => qmp('SHUTDOWN', { guest, reason });
const RESET = (guest: boolean): QmpEvent => qmp('RESET', { guest, reason: guest ? 'guest-reset' : 'host-qmp-system-reset' });
const STOP = qmp('STOP');
const RESUME = qmp('RESUME');
const PANIC = (action: string): QmpEvent => qmp('GUEST_PANICKED', { action });

/** A tracker over a scripted QEMU: controls are recorded, and a restart plays the events QEMU sends for it. */
function rig(policy: Partial<LifecyclePolicy> = {}, actions?: RunActions) {
  const full: LifecyclePolicy = { on_poweroff: 'destroy', on_reboot: 'restart', on_crash: 'destroy', ...policy };
  const events: LifecycleEvent[] = [];
  const calls: string[] = [];
  let clock = 0;
  const tracker: LifecycleTracker = new LifecycleTracker({
    policy: full,
    actions: actions ?? lifecycleActions(full),
    emit: (ev) => events.push(ev),
    now: () => clock,
    controls: {
      restartGuest: () => {
        calls.push('restartGuest');
        // system_reset + cont, as QEMU reports them
        tracker.handle(RESET(false));
        tracker.handle(RESUME);
        return Promise.resolve();
      },
      endKeptGuest: () => {
        calls.push('endKeptGuest');
        return Promise.resolve();
      },
    },
  });
  return {
    tracker, events, calls,
    feed: (...evs: QmpEvent[]) => { for (const ev of evs) tracker.handle(ev); },
    at: (ms: number) => { clock = ms; },
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('policyStep', () => {
  it('leaves it to QEMU when QEMU does not keep the guest stopped', () => {
    for (const a of ['destroy', 'restart', 'preserve'] as const) expect(policyStep(a, false)).toBe('qemu');
  });

  it('restarts, preserves or ends a guest QEMU keeps stopped', () => {
    expect(policyStep('restart', true)).toBe('restart');
    expect(policyStep('preserve', true)).toBe('preserve');
    expect(policyStep('destroy', true)).toBe('end');
  });
});

describe('LifecycleTracker: the guest powers off (on_poweroff)', () => {
  it('destroy: QEMU exits by itself (shutdown=poweroff); the driver does nothing', async () => {
    const r = rig({ on_poweroff: 'destroy' });
    r.feed(SHUTDOWN('guest-shutdown'));
    await settle();
    expect(r.events).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'destroy' },
    ]);
    expect(r.calls).toEqual([]);
  });

  it('destroy while QEMU keeps the guest (on_reboot: preserve makes shutdown=pause): the driver ends QEMU, the STOP is no news', async () => {
    const r = rig({ on_poweroff: 'destroy', on_reboot: 'preserve' });
    r.feed(SHUTDOWN('guest-shutdown'), STOP);
    await settle();
    expect(r.events).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'destroy' },
    ]);
    expect(r.calls).toEqual(['endKeptGuest']);
  });

  it('restart: reset and resume, reported as a host reset; neither the kept STOP nor the RESUME is a monitor change', async () => {
    const r = rig({ on_poweroff: 'restart' });
    r.feed(SHUTDOWN('guest-shutdown'), STOP);
    await settle();
    expect(r.calls).toEqual(['restartGuest']);
    expect(r.events).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'restart' },
      { type: 'reset', by: 'host' },
    ]);
  });

  it('preserve: left stopped, paused by the policy with the reason', async () => {
    const r = rig({ on_poweroff: 'preserve' });
    r.feed(SHUTDOWN('guest-shutdown'), STOP);
    await settle();
    expect(r.calls).toEqual([]);
    expect(r.events).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'preserve' },
      { type: 'paused', by: 'policy', reason: 'poweroff-preserve' },
    ]);
    // a later monitor stop/cont is news again
    r.feed(RESUME, STOP);
    expect(r.events.slice(3)).toEqual([{ type: 'resumed', by: 'monitor' }, { type: 'paused', by: 'monitor' }]);
  });
});

describe('LifecycleTracker: the guest reboots (on_reboot)', () => {
  it('restart: QEMU resets by itself (reboot=reset): one guest reset, the firmware\'s follow-up resets folded', () => {
    const r = rig({ on_reboot: 'restart' });
    r.at(1000);
    r.feed(RESET(true));
    r.at(1010);
    r.feed(RESET(true));
    r.at(1400);
    r.feed(RESET(true));
    expect(r.events).toEqual([{ type: 'reset', by: 'guest' }]);
    expect(r.calls).toEqual([]);
  });

  const rebootCases: [LifecycleAction, LifecycleEvent[], string[]][] = [
    ['destroy', [{ type: 'policy', what: 'reboot', action: 'destroy' }], ['endKeptGuest']],
    ['preserve', [{ type: 'policy', what: 'reboot', action: 'preserve' }, { type: 'paused', by: 'policy', reason: 'reboot-preserve' }], []],
  ];
  for (const [on_reboot, then, calls] of rebootCases) {
    it(`${on_reboot}: a reboot turned into a shutdown (reboot=shutdown)`, async () => {
      // on_poweroff: restart keeps QEMU up (shutdown=pause) for every on_reboot
      const r = rig({ on_reboot, on_poweroff: 'restart' });
      r.feed(SHUTDOWN('guest-reset'), STOP);
      await settle();
      expect(r.events).toEqual([{ type: 'shutdown', by: 'guest', reason: 'guest-reset' }, ...then]);
      expect(r.calls).toEqual(calls);
    });
  }

  it('destroy with shutdown=poweroff: QEMU exits by itself', async () => {
    const r = rig({ on_reboot: 'destroy', on_poweroff: 'destroy' });
    r.feed(SHUTDOWN('guest-reset'));
    await settle();
    expect(r.events).toEqual([{ type: 'shutdown', by: 'guest', reason: 'guest-reset' }, { type: 'policy', what: 'reboot', action: 'destroy' }]);
    expect(r.calls).toEqual([]);
  });
});

describe('LifecycleTracker: the guest panics (on_crash)', () => {
  it('destroy under panic=exit-failure, shutdown=poweroff: QEMU exits by itself', async () => {
    const r = rig({ on_crash: 'destroy' });
    r.feed(PANIC('poweroff'), STOP, SHUTDOWN('guest-panic'));
    await settle();
    expect(r.events).toEqual([{ type: 'crashed', action: 'destroy' }, { type: 'policy', what: 'crash', action: 'destroy' }]);
    expect(r.calls).toEqual([]);
  });

  it('destroy under panic=exit-failure while shutdown=pause keeps QEMU: the driver ends it once the SHUTDOWN guest-panic came', async () => {
    const r = rig({ on_crash: 'destroy', on_poweroff: 'preserve' });
    r.feed(PANIC('poweroff'), STOP);
    await settle();
    expect(r.calls).toEqual([]);
    r.feed(SHUTDOWN('guest-panic'));
    await settle();
    expect(r.calls).toEqual(['endKeptGuest']);
    expect(r.events).toEqual([{ type: 'crashed', action: 'destroy' }, { type: 'policy', what: 'crash', action: 'destroy' }]);
  });

  it('restart under panic=pause: reset and resume', async () => {
    const r = rig({ on_crash: 'restart' });
    r.feed(PANIC('pause'), STOP);
    await settle();
    expect(r.calls).toEqual(['restartGuest']);
    expect(r.events).toEqual([{ type: 'crashed', action: 'restart' }, { type: 'policy', what: 'crash', action: 'restart' }, { type: 'reset', by: 'host' }]);
  });

  it('preserve under panic=pause: kept, paused by the policy', async () => {
    const r = rig({ on_crash: 'preserve' });
    r.feed(PANIC('pause'), STOP);
    await settle();
    expect(r.calls).toEqual([]);
    expect(r.events).toEqual([
      { type: 'crashed', action: 'preserve' }, { type: 'policy', what: 'crash', action: 'preserve' },
      { type: 'paused', by: 'policy', reason: 'crash-preserve' },
    ]);
  });

  it('panic=none: the guest goes on; only the crash is reported', async () => {
    const r = rig({ on_crash: 'restart' }, { reboot: 'reset', shutdown: 'poweroff', panic: 'none' });
    r.feed(PANIC('run'));
    await settle();
    expect(r.events).toEqual([{ type: 'crashed', action: 'restart' }]);
    expect(r.calls).toEqual([]);
  });
});

describe('LifecycleTracker: requests through the handle', () => {
  it('once a stop was requested, a power-off is the host\'s and no policy acts', async () => {
    const r = rig({ on_poweroff: 'restart' });
    r.tracker.markStopRequested();
    r.feed(SHUTDOWN('guest-shutdown'), STOP);
    await settle();
    expect(r.events).toEqual([{ type: 'shutdown', by: 'host', reason: 'guest-shutdown' }]);
    expect(r.calls).toEqual([]);
  });

  it('once a destroy was requested, a panic is reported but not answered, and stops are no news', async () => {
    const r = rig({ on_crash: 'restart' });
    r.tracker.markDestroyRequested();
    r.feed(STOP, PANIC('pause'), STOP, SHUTDOWN('host-qmp-quit', false));
    await settle();
    expect(r.events).toEqual([{ type: 'crashed', action: 'restart' }]);
    expect(r.calls).toEqual([]);
  });

  it('reports raw monitor stop/cont, but not those of the handle\'s own operations', async () => {
    const r = rig();
    r.feed(STOP, RESUME);
    await r.tracker.own(() => {
      r.feed(STOP, RESUME);
      return Promise.resolve();
    });
    expect(r.events).toEqual([{ type: 'paused', by: 'monitor' }, { type: 'resumed', by: 'monitor' }]);
  });

  it('a clean reboot of the handle\'s (power-off kept, reset, cont) is one host reset, whatever the policy', async () => {
    const r = rig({ on_poweroff: 'destroy' });
    await r.tracker.reboot(() => {
      r.feed(SHUTDOWN('guest-shutdown'), STOP, RESET(false), RESUME);
      return Promise.resolve();
    });
    await settle();
    expect(r.events).toEqual([{ type: 'reset', by: 'host' }]);
    expect(r.calls).toEqual([]);
  });

  it('reports a failed policy action instead of throwing', async () => {
    const failures: string[] = [];
    const events: LifecycleEvent[] = [];
    const tracker = new LifecycleTracker({
      policy: { on_poweroff: 'restart', on_reboot: 'restart', on_crash: 'destroy' },
      actions: { reboot: 'reset', shutdown: 'pause', panic: 'exit-failure' },
      emit: (ev) => events.push(ev),
      controls: { restartGuest: () => Promise.reject(new Error('gone')), endKeptGuest: () => Promise.resolve() },
      onActionError: (err, what, action) => failures.push(`${what}:${action}:${(err as Error).message}`),
    });
    tracker.handle(SHUTDOWN('guest-shutdown'));
    await settle();
    expect(failures).toEqual(['poweroff:restart:gone']);
  });
});

describe('LifecycleTracker: resets', () => {
  it('folds the firmware\'s guest resets that follow a host reset, within a sliding quiet window', () => {
    const r = rig();
    r.at(0);
    r.feed(RESET(false));
    r.at(50);
    r.feed(RESET(true));
    r.at(RESET_QUIET_MS - 10);
    r.feed(RESET(true));
    // quiet for longer than the window since the last one: the guest rebooted itself
    r.at(2 * RESET_QUIET_MS);
    r.feed(RESET(true));
    expect(r.events).toEqual([{ type: 'reset', by: 'host' }, { type: 'reset', by: 'guest' }]);
  });

  it('reports every host reset, however close together', () => {
    const r = rig();
    r.at(0);
    r.feed(RESET(false));
    r.at(10);
    r.feed(RESET(false));
    expect(r.events).toEqual([{ type: 'reset', by: 'host' }, { type: 'reset', by: 'host' }]);
  });
});

describe('LifecycleTracker: the monitor connection', () => {
  it('reports QMP lost and restored, and nothing once QEMU is gone', () => {
    const r = rig();
    r.tracker.monitor('lost');
    r.tracker.monitor('restored');
    r.tracker.exited({ reason: 'destroyed', guestInitiated: false });
    r.tracker.monitor('lost');
    expect(r.events.map((e) => e.type)).toEqual(['monitor-lost', 'monitor-restored', 'exited']);
  });
});

describe('LifecycleTracker: exit', () => {
  it('emits exited once, last; nothing after it', () => {
    const r = rig();
    r.tracker.exited({ reason: 'crashed', guestInitiated: false, signal: 'SIGKILL' });
    r.feed(STOP, RESET(true));
    r.tracker.exited({ reason: 'shutdown', guestInitiated: true });
    expect(r.events).toEqual([{ type: 'exited', exit: { reason: 'crashed', guestInitiated: false, signal: 'SIGKILL' } }]);
  });
});
