/** Save and restore verbs: save, restore, managedsave, managedsave-remove (docs/save-restore.md). */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';
import { withJobProgress } from './job-progress.js';

type Opts = ConnectOpts & { json?: boolean };

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export function register(program: Command): void {
  withConnect(program.command('save')
    .description('stop a running or paused guest into a file (RAM and device state; the definition travels in its header)')
    .argument('<name>', 'domain name')
    .argument('<file>', 'the save file (created or replaced)')
    .option('--json', 'print the result as JSON'))
    .action(async (name: string, file: string, o: Opts) => {
      const path = resolve(file);
      const r = await withJobProgress(o, name, () => withClient(o, (c) => c.save(name, path)), o.json);
      if (o.json) printJson(r);
      else process.stdout.write(`Domain '${name}' saved to ${r.file} (${mib(r.bytes)})\n`);
    });

  withConnect(program.command('restore')
    .description('bring a saved guest back from its file, exactly where it was (defines the domain if needed)')
    .argument('<file>', 'a file written by save')
    .option('--force', 'restore even if a disk changed since the save')
    .option('--json', 'print the domain info as JSON'))
    .action(async (file: string, o: Opts & { force?: boolean }) => {
      const info = await withClient(o, (c) => c.restore(resolve(file), o.force === true ? { force: true } : {}));
      if (o.json) printJson(info);
      else process.stdout.write(`Domain '${info.name}' restored from ${resolve(file)} (${info.state})\n`);
    });

  withConnect(program.command('managedsave')
    .description('save a guest into the state dir; the next start resumes from it')
    .argument('<name>', 'domain name')
    .option('--json', 'print the result as JSON'))
    .action(async (name: string, o: Opts) => {
      const r = await withJobProgress(o, name, () => withClient(o, (c) => c.managedSave(name)), o.json);
      if (o.json) printJson(r);
      else process.stdout.write(`Domain '${name}' state saved by virtkit (${mib(r.bytes)}); the next start resumes it\n`);
    });

  withConnect(program.command('managedsave-remove')
    .description('discard the managed save of a domain (the next start boots)')
    .argument('<name>', 'domain name')
    .option('--json', 'print the result as JSON'))
    .action(async (name: string, o: Opts) => {
      const r = await withClient(o, (c) => c.managedSaveRemove(name));
      if (o.json) printJson(r);
      else process.stdout.write(r.removed ? `Removed the managed save of domain '${name}'\n` : `Domain '${name}' has no managed save; nothing removed\n`);
    });
}
