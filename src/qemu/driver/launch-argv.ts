/**
 * The command line a launch runs, from the prepared one (buildCommand's, plus the shutdown
 * trace). Two things are decided at launch, because they depend on how the guest starts:
 *
 * - `-S` (the CPUs wait for QMP's `cont`) only when something must happen before the guest's
 *   first instruction: a paused start, a restore (QEMU loads the saved state first), resource
 *   limits (QEMU is moved into its cgroup first, so no guest code runs unconfined). Otherwise
 *   QEMU starts the CPUs by itself as soon as the machine is created, as bare QEMU does: no round
 *   trip over QMP stands between the spawn and the first instruction (docs/performance.md).
 * - With `consoleFirst` (`virtkit run`, whose console is the terminal), the console socket waits
 *   for its first client (`wait=on`): QEMU blocks before creating the machine until the caller
 *   has connected, so not one byte the guest prints is lost, and nothing else waits.
 */

/** Where the builder's console chardev is on a command line: `-chardev socket,id=console,...` (build.ts). */
const ConsoleChardev = /^socket,id=console,/;

export interface LaunchArgvOptions {
  /** Start with the CPUs held (-S). */
  holdCpus: boolean;
  /** Make the console socket wait for its first client. */
  consoleFirst: boolean;
}

/**
 * The prepared argv with -S added when `holdCpus` (once: a passthrough -S stays where it is) and
 * the console chardev switched to `wait=on` when `consoleFirst`. `consoleHeld` says whether the
 * command line has that console (a definition with `serial: false` has none).
 */
export function launchArgv(prepared: readonly string[], opts: LaunchArgvOptions): { argv: string[]; consoleHeld: boolean } {
  const argv = [...(opts.holdCpus && !prepared.includes('-S') ? ['-S'] : []), ...prepared];
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
