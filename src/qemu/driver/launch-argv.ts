/**
 * The command line a launch runs, from the prepared one (buildCommand's, plus the shutdown
 * trace):
 *
 * - `-S`, always: QEMU creates the machine and waits for QMP. When nothing must come before the
 *   guest's first instruction (no paused start, no restore, no cgroup limits), the launcher
 *   writes `cont` together with `qmp_capabilities` as soon as the QMP socket connects, before
 *   QEMU greets (QmpConnectOptions.pipelined): QEMU reads them once its main loop runs and
 *   starts the CPUs then, without a round trip through virtkit, and the negotiation is over
 *   before the guest competes with QEMU's main loop for the big lock (docs/qemu-driver.md).
 * - With `consoleFirst` (`virtkit run`, whose console is the terminal), the console socket waits
 *   for its first client (`wait=on`): QEMU blocks before creating the machine until the caller
 *   has connected, so not one byte the guest prints is lost.
 */

/** Where the builder's console chardev is on a command line: `-chardev socket,id=console,...` (build.ts). */
const ConsoleChardev = /^socket,id=console,/;

export interface LaunchArgvOptions {
  /** Make the console socket wait for its first client. */
  consoleFirst: boolean;
}

/**
 * The prepared argv with -S added (once: a passthrough -S stays where it is) and the console
 * chardev switched to `wait=on` when `consoleFirst`. `consoleHeld` says whether the command
 * line has that console (a definition with `serial: false` has none).
 */
export function launchArgv(prepared: readonly string[], opts: LaunchArgvOptions): { argv: string[]; consoleHeld: boolean } {
  const argv = [...(prepared.includes('-S') ? [] : ['-S']), ...prepared];
  if (!opts.consoleFirst) return { argv, consoleHeld: false };
  const at = argv.findIndex((a, i) => i > 0 && argv[i - 1] === '-chardev' && ConsoleChardev.test(a));
  if (at < 0) return { argv, consoleHeld: false };
  const parts = optionParts(argv[at]!);
  const wait = parts.findIndex((p) => p === 'wait=off' || p === 'wait=on');
  if (wait < 0) parts.push('wait=on');
  else parts[wait] = 'wait=on';
  argv[at] = parts.join(',');
  return { argv, consoleHeld: true };
}

/** A QEMU option's `key=value` parts as written: split at single commas (`,,` is a comma inside a value). */
function optionParts(option: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < option.length; i++) {
    if (option[i] !== ',') cur += option[i];
    else if (option[i + 1] === ',') {
      cur += ',,';
      i++;
    } else {
      parts.push(cur);
      cur = '';
    }
  }
  parts.push(cur);
  return parts;
}
