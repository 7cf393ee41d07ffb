/** `virtkit dumpdef NAME [--live]` and `virtkit edit NAME`: the saved definition, and the live one while the guest runs. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { VirtkitError } from '../../util/errors.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

export function register(program: Command): void {
  withConnect(program.command('dumpdef')
    .description('print a domain\'s saved definition (--live: the one it runs with)')
    .argument('<name>', 'domain name')
    .option('--format <format>', 'yaml or json', 'yaml')
    .option('--json', 'same as --format json')
    .option('--live', 'the definition the running guest was started with, instead of the saved one (what the next start uses)'))
    .action(async (name: string, o: ConnectOpts & { format: string; json?: boolean; live?: boolean }) => {
      const format = o.json ? 'json' : o.format;
      if (format !== 'yaml' && format !== 'json') throw new VirtkitError('argument.invalid', `--format must be yaml or json, got ${format}`);
      const def = await withClient(o, (c) => (o.live
        ? c.call('domain.getDefinition', { params: { name }, query: { format, live: true } })
        : c.getDefinition(name, format)));
      process.stdout.write(def.text.endsWith('\n') ? def.text : `${def.text}\n`);
    });

  withConnect(program.command('edit')
    .description('edit a domain\'s saved definition in $VISUAL/$EDITOR; while it runs, changes apply at the next start and fields that describe the machine are refused')
    .argument('<name>', 'domain name'))
    .action(async (name: string, o: ConnectOpts) => {
      await withClient(o, async (c) => {
        const { text } = await c.getDefinition(name, 'yaml');
        const dir = await mkdtemp(join(tmpdir(), 'virtkit-edit-'));
        const file = join(dir, `${name}.yaml`);
        try {
          await writeFile(file, text, { mode: 0o600 });
          const editor = process.env.VISUAL ?? process.env.EDITOR ?? 'vi';
          // The editor variable may carry arguments ("code --wait"); run it through sh like git does.
          const r = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'editor', file], { stdio: 'inherit' });
          if (r.status !== 0) throw new VirtkitError('argument.invalid', `editor exited with status ${String(r.status ?? r.signal)}; definition unchanged`);
          const edited = await readFile(file, 'utf8');
          if (edited === text) {
            process.stdout.write(`Domain '${name}' definition unchanged\n`);
            return;
          }
          await c.updateDefinition(name, edited, { format: 'yaml', baseDir: process.cwd() });
          process.stdout.write(`Domain '${name}' definition updated\n`);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    });
}
