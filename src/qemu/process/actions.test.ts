import { describe, expect, it } from 'vitest';
import { parseDefinition } from '../../conf/index.js';
import { buildCommand, lifecycleActions } from '../command/index.js';
import { DEFAULT_RUN_ACTIONS, runActionsOf } from './actions.js';

describe('runActionsOf', () => {
  it('gives QEMU\'s defaults for a command line without actions', () => {
    expect(runActionsOf(['qemu-system-x86_64', '-m', '64'])).toEqual(DEFAULT_RUN_ACTIONS);
  });

  it('reads -action, -no-reboot and -no-shutdown in order, the last word winning', () => {
    expect(runActionsOf(['-action', 'reboot=shutdown,shutdown=pause,panic=exit-failure'])).toEqual({ reboot: 'shutdown', shutdown: 'pause', panic: 'exit-failure' });
    expect(runActionsOf(['-no-reboot', '-no-shutdown'])).toEqual({ ...DEFAULT_RUN_ACTIONS, reboot: 'shutdown', shutdown: 'pause' });
    expect(runActionsOf(['-action', 'shutdown=pause', '-action', 'shutdown=poweroff,panic=none'])).toEqual({ ...DEFAULT_RUN_ACTIONS, panic: 'none' });
  });

  it('ignores keys and values it does not track, and a dangling -action', () => {
    expect(runActionsOf(['-action', 'watchdog=pause,reboot=bogus,=x,shutdown', '-action'])).toEqual(DEFAULT_RUN_ACTIONS);
  });

  it('agrees with the command builder for every lifecycle combination', () => {
    const actions = ['destroy', 'restart', 'preserve'] as const;
    for (const on_poweroff of actions) for (const on_reboot of actions) for (const on_crash of actions) {
      const def = parseDefinition(`name: a\nmemory: 64MiB\non_poweroff: ${on_poweroff}\non_reboot: ${on_reboot}\non_crash: ${on_crash}\n`);
      const { argv } = buildCommand(def, { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: '/run/a' });
      expect(runActionsOf(argv)).toEqual(lifecycleActions(def));
    }
  });
});
