/**
 * The one rule for reading a definition document on the command line, shared by `define`
 * and `convert` (docs/formats.md#which-reader): `--format yaml|json|libvirt|xm`, else by
 * content (`<` first: libvirt XML; Python-style assignments: xm; else YAML, or JSON for a
 * `.json` file). YAML and JSON go to the manager as text, as before; libvirt XML and xm are
 * converted here and sent as a JSON definition, so the daemon reads one kind of document.
 */
import { parseDefinition, readDefinitionFile, type DomainDefinition } from '../../conf/index.js';
import { detectFormat, InputFormats, readDefinitionText, validateImported, type ImportWarning, type InputFormat } from '../../formats/index.js';
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';

export const FormatOptionHelp = 'yaml, json, libvirt (domain XML) or xm (Xen xm/xl config); default: by content';

export function parseFormatOption(value: string | undefined): InputFormat {
  if (value === undefined) return 'auto';
  if ((InputFormats as readonly string[]).includes(value)) return value as InputFormat;
  throw new VirtkitError('argument.invalid', `--format must be one of ${InputFormats.filter((f) => f !== 'auto').join(', ')}, got ${value}`, { option: '--format', value });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

export type DefinitionInput =
  | { kind: 'text'; text: string; format: 'yaml' | 'json'; baseDir: string }
  | { kind: 'definition'; definition: DomainDefinition; baseDir: string; warnings: ImportWarning[]; format: 'libvirt' | 'xm' };

/**
 * Read FILE ("-": stdin) in the format the option or its content says. libvirt XML and xm are
 * converted and validated here (errors name the XPath or line); YAML and JSON stay text.
 */
export async function readDefinitionInput(file: string, opts: { format?: string; lenient?: boolean }): Promise<DefinitionInput> {
  const chosen = parseFormatOption(opts.format);
  const read = file === '-'
    ? { text: await readStdin(), format: 'yaml' as const, baseDir: process.cwd() }
    : await readDefinitionFile(file);
  const detected = chosen === 'auto' ? detectFormat(read.text) : chosen;
  // A .json file that does not start with "{" is still JSON to its name; content decides only between the families.
  const format = chosen === 'auto' && detected === 'yaml' ? read.format : detected;
  if (format === 'yaml' || format === 'json') {
    if (opts.lenient === true) throw new VirtkitError('argument.invalid', '--lenient applies to libvirt XML and xm imports only', { option: '--lenient' });
    return { kind: 'text', text: read.text, format, baseDir: read.baseDir };
  }
  const imported = await readDefinitionText(read.text, { format, lenient: opts.lenient === true, sourceName: file });
  const definition = validateImported(imported, { baseDir: read.baseDir });
  return { kind: 'definition', definition, baseDir: read.baseDir, warnings: imported.warnings, format };
}

/** Warnings of an import on stderr, one per line; document text is escaped before it reaches the terminal. */
export function printImportWarnings(warnings: readonly ImportWarning[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${escapeForTerminal(w.path)}: ${escapeForTerminal(w.message)}\n`);
}

/**
 * A definition file in any format, validated, for the commands that use it in-process
 * (`run`, `argv`): the same rule as `define` (by content unless `--format` says, strict about
 * what cannot be honoured unless `--lenient`); import warnings go to stderr.
 */
export async function loadDefinitionAnyFormat(path: string, opts: { format?: string; lenient?: boolean } = {}): Promise<DomainDefinition> {
  const input = await readDefinitionInput(path, opts);
  if (input.kind === 'definition') {
    printImportWarnings(input.warnings);
    return input.definition;
  }
  return parseDefinition(input.text, { format: input.format, baseDir: input.baseDir });
}
