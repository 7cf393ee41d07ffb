/** `virtkit define FILE [--format F] [--lenient]` and `virtkit undefine NAME [--force]`. */
import type { Command } from 'commander';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';
import { FormatOptionHelp, printImportWarnings, readDefinitionInput } from './definition-input.js';

export function register(program: Command): void {
  withConnect(program.command('define')
    .description('define a domain from a definition file: YAML, JSON, libvirt domain XML or a Xen xm/xl config ("-" reads stdin)')
    .argument('<file>', 'definition file')
    .option('--format <format>', FormatOptionHelp)
    .option('--lenient', 'libvirt XML and xm: define even though some elements cannot be honoured; they are listed in the definition\'s notes')
    .option('--json', 'print the new domain\'s info as JSON'))
    .action(async (file: string, o: ConnectOpts & { format?: string; lenient?: boolean; json?: boolean }) => {
      const input = await readDefinitionInput(file, o);
      // libvirt XML and xm were converted here: the manager receives the definition as JSON.
      const sent = input.kind === 'text'
        ? { text: input.text, format: input.format }
        : { text: JSON.stringify(input.definition), format: 'json' as const };
      if (input.kind === 'definition') printImportWarnings(input.warnings);
      const info = await withClient(o, (c) => c.define(sent.text, { format: sent.format, baseDir: input.baseDir }));
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
