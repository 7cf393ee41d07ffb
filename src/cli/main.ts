#!/usr/bin/env node
/**
 * The `virtkit` command. Each verb lives in its own file under commands/ and registers itself
 * on the program; this file only wires them and turns typed errors into messages and exit codes.
 */
import { Command, CommanderError } from 'commander';
import { isVirtkitError } from '../util/errors.js';
import { exitCodeFor } from './exit-codes.js';
// command registrations (one line each, keep sorted)
import { register as registerArgv } from './commands/argv.js';
import { register as registerBootinfo } from './commands/bootinfo.js';
import { register as registerCapabilities } from './commands/capabilities.js';
import { register as registerCompletion } from './commands/completion.js';
import { register as registerFs } from './commands/fs.js';
import { register as registerGuestkit } from './commands/guestkit.js';
import { register as registerImg } from './commands/img.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerManagerVerbs } from './commands/manager-verbs.js';
import { register as registerNbd } from './commands/nbd.js';
import { register as registerPool } from './commands/pool.js';
import { register as registerRun } from './commands/run.js';
import { register as registerVol } from './commands/vol.js';

export function buildProgram(): Command {
  const program = new Command('virtkit')
    .description('virtkit: define, run and inspect QEMU virtual machines, their disks and filesystems')
    .version('0.1.0')
    .showHelpAfterError();
  // register commands (one line each, keep sorted)
  registerArgv(program);
  registerBootinfo(program);
  registerCapabilities(program);
  registerCompletion(program);
  registerFs(program);
  registerGuestkit(program);
  registerImg(program);
  registerInspect(program);
  registerManagerVerbs(program);
  registerNbd(program);
  registerPool(program);
  registerRun(program);
  registerVol(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (isVirtkitError(err)) {
      process.stderr.write(`virtkit: error: ${err.describe()}\n`);
      return exitCodeFor(err.code);
    }
    process.stderr.write(`virtkit: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 70;
  }
}
