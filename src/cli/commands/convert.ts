/**
 * `virtkit convert [--from F] FILE [--to yaml|json|libvirt] [--lenient]`: a definition in one
 * format printed in another, nothing defined; and `virtkit dumpxml NAME [--live]`: a domain's
 * definition as libvirt domain XML (docs/formats.md).
 */
import type { Command } from 'commander';
import { formatDefinition, parseDefinition, type DomainDefinition } from '../../conf/index.js';
import { exportLibvirtXml } from '../../formats/index.js';
import { VirtkitError } from '../../util/errors.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';
import { FormatOptionHelp, printImportWarnings, readDefinitionInput } from './definition-input.js';

const OutputFormats = ['yaml', 'json', 'libvirt'] as const;
type OutputFormat = (typeof OutputFormats)[number];

function outputFormat(value: string): OutputFormat {
  if ((OutputFormats as readonly string[]).includes(value)) return value as OutputFormat;
  throw new VirtkitError('argument.invalid', `--to must be one of ${OutputFormats.join(', ')}, got ${value}`, { option: '--to', value });
}

function render(def: DomainDefinition, to: OutputFormat): string {
  return to === 'libvirt' ? exportLibvirtXml(def) : formatDefinition(def, to);
}

export function register(program: Command): void {
  program.command('convert')
    .description('print a definition converted to another format: libvirt XML or xm to YAML, YAML to libvirt XML... (nothing is defined)')
    .argument('<file>', 'definition file ("-" reads stdin)')
    .option('--from <format>', FormatOptionHelp)
    .option('--to <format>', 'yaml, json or libvirt (domain XML)', 'yaml')
    .option('--lenient', 'libvirt XML and xm: convert even though some elements cannot be honoured; they are listed in notes')
    .action(async (file: string, o: { from?: string; to: string; lenient?: boolean }) => {
      const to = outputFormat(o.to);
      const input = await readDefinitionInput(file, { format: o.from, lenient: o.lenient });
      let def: DomainDefinition;
      if (input.kind === 'text') {
        def = parseDefinition(input.text, { format: input.format, baseDir: input.baseDir });
      } else {
        printImportWarnings(input.warnings);
        def = input.definition;
      }
      process.stdout.write(render(def, to));
    });

  withConnect(program.command('dumpxml')
    .description('print a domain\'s saved definition as libvirt domain XML (--live: the one it runs with)')
    .argument('<name>', 'domain name')
    .option('--live', 'the definition the running guest was started with, instead of the saved one (what the next start uses)'))
    .action(async (name: string, o: ConnectOpts & { live?: boolean }) => {
      const { text } = await withClient(o, (c) => (o.live
        ? c.call('domain.getDefinition', { params: { name }, query: { format: 'json', live: true } })
        : c.getDefinition(name, 'json')));
      process.stdout.write(exportLibvirtXml(parseDefinition(text, { format: 'json' })));
    });
}
