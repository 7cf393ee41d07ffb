/**
 * What a running QEMU does by itself when its guest reboots, powers off or panics, read from
 * its command line (`-action`, `-no-reboot`, `-no-shutdown`). The driver needs this for a QEMU
 * it only attached to as much as for one it launched: a `system_reset` under `reboot=shutdown`
 * turns into a shutdown, and a guest kept after power-off or panic must be ended by the driver.
 */

export interface RunActions {
  reboot: 'reset' | 'shutdown';
  shutdown: 'poweroff' | 'pause';
  panic: 'pause' | 'shutdown' | 'exit-failure' | 'none';
}

/** QEMU 7.2's defaults when the command line says nothing. */
export const DEFAULT_RUN_ACTIONS: Readonly<RunActions> = { reboot: 'reset', shutdown: 'poweroff', panic: 'shutdown' };

const allowed: { [K in keyof RunActions]: readonly RunActions[K][] } = {
  reboot: ['reset', 'shutdown'],
  shutdown: ['poweroff', 'pause'],
  panic: ['pause', 'shutdown', 'exit-failure', 'none'],
};

function isKey(k: string): k is keyof RunActions {
  return k === 'reboot' || k === 'shutdown' || k === 'panic';
}

/**
 * The actions a QEMU command line sets up. Options apply in order, as QEMU applies them;
 * keys and values this driver does not track (watchdog=..., typos QEMU would refuse) are ignored.
 * Accepts argv with or without the program name in front.
 */
export function runActionsOf(argv: readonly string[]): RunActions {
  const actions: RunActions = { ...DEFAULT_RUN_ACTIONS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-no-reboot' || arg === '--no-reboot') actions.reboot = 'shutdown';
    else if (arg === '-no-shutdown' || arg === '--no-shutdown') actions.shutdown = 'pause';
    else if ((arg === '-action' || arg === '--action') && i + 1 < argv.length) {
      for (const pair of argv[++i]!.split(',')) {
        const eq = pair.indexOf('=');
        const key = pair.slice(0, eq);
        const value = pair.slice(eq + 1);
        if (eq > 0 && isKey(key) && (allowed[key] as readonly string[]).includes(value)) {
          (actions as unknown as Record<string, string>)[key] = value;
        }
      }
    }
  }
  return actions;
}
