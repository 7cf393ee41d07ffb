/** `virtkit define FILE` and `virtkit undefine NAME [--force]`. */
import type { Command } from 'commander';
import { readDefinitionFile } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

export function register(program: Command): void {
  withConnect(program.command('define')
    .description('define a domain from a YAML or JSON definition file ("-" reads stdin)')
    .argument('<file>', 'definition file')
    .option('--format <format>', 'yaml or json (default: from the file name, else yaml)')
    .option('--json', 'print the new domain\'s info as JSON'))
    .action(async (file: string, o: ConnectOpts & { format?: string; json?: boolean }) => {
      if (o.format !== undefined && o.format !== 'yaml' && o.format !== 'json') {
        throw new VirtkitError('argument.invalid', `--format must be yaml or json, got ${o.format}`, { option: '--format', value: o.format });
      }
      const read = file === '-'
        ? { text: await readStdin(), format: 'yaml' as const, baseDir: process.cwd() }
        : await readDefinitionFile(file);
      const { text, baseDir } = read;
      const format = o.format ?? read.format;
      const info = await withClient(o, (c) => c.define(text, { format, baseDir }));
      if (o.json) printJson(info);
      else process.stdout.write(`Domain '${info.name}' defined (uuid ${info.uuid})\n`);
    });

  withConnect(program.command('undefine')
    .description('remove a domain\'s definition (refused while it runs unless --force, which destroys it first)')
    .argument('<name>', 'domain name')
    .option('--force', 'destroy the domain first if it is running'))
    .action(async (name: string, o: ConnectOpts & { force?: boolean }) => {
      await withClient(o, (c) => c.undefine(name, { force: o.force === true }));
      process.stdout.write(`Domain '${name}' has been undefined\n`);
    });
}
