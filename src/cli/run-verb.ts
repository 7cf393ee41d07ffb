/**
 * What every `virtkit` run shares, whichever way its verb was loaded: the top-level program
 * (name, description, version, how errors come back) and the mapping of what a run threw to a
 * message and an exit code. main.ts uses it with its command table; each per-verb bundle that
 * `npm run build` writes to dist/cli/ (scripts/build-cli.mjs) uses it with its one verb module,
 * so a bundled run and an unbundled one answer alike.
 */
import { Command, CommanderError } from 'commander';
import { isVirtkitError } from '../util/errors.js';
import { CLOSED_PIPE_EXIT, isClosedPipe } from './closed-pipe.js';
import { exitCodeFor, ExitCodes } from './exit-codes.js';
import { sourceMappedStack } from './stack-map.js';

export interface CommandModule {
  register(program: Command): void;
}

/** The program with no verb registered yet. */
export function newProgram(): Command {
  return new Command('virtkit')
    .description('virtkit: define, run and inspect QEMU virtual machines, their disks and filesystems')
    .version('0.1.0')
    .showHelpAfterError()
    // Set before the verbs are added, so they inherit it: errors come back to runCli() as exceptions.
    .exitOverride();
}

/** Builds the program with `build`, runs `argv` on it and turns what it threw into an exit code. */
export async function runCli(argv: readonly string[], build: () => Promise<Command>): Promise<number> {
  try {
    const program = await build();
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    // Commander exits 0 after --help/--version and 1 on a usage error; usage errors have their own code.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : ExitCodes.usage;
    // The reader went away (`| head`): stop quietly, as `ls | head` does (closed-pipe.ts).
    if (isClosedPipe(err)) return CLOSED_PIPE_EXIT;
    if (isVirtkitError(err)) {
      process.stderr.write(`virtkit: error: ${err.describe()}\n`);
      return exitCodeFor(err.code);
    }
    process.stderr.write(`virtkit: internal error: ${err instanceof Error ? (err.stack === undefined ? err.message : sourceMappedStack(err.stack)) : String(err)}\n`);
    return 70;
  }
}

/** The program with one verb module: what a per-verb bundle runs. */
export function runVerbModule(argv: readonly string[], module: CommandModule): Promise<number> {
  return runCli(argv, () => {
    const program = newProgram();
    module.register(program);
    return Promise.resolve(program);
  });
}
