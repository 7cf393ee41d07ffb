/**
 * formats/: definitions people already have, read into the definition schema and written
 * back out. One rule chooses the reader for every command (`define`, `convert`):
 * `--format yaml|json|libvirt|xm`, or by content when absent (docs/formats.md#which-reader).
 */
import { parseDefinitionDocument, validateDefinition, type DomainDefinition, type ValidateOptions } from '../conf/index.js';
import { VirtkitError } from '../util/errors.js';
import { importLibvirtXml } from './libvirt/index.js';

export { exportLibvirtXml, importLibvirtNetworkXml, importLibvirtXml, LibvirtMapping, renderMappingTable, type LibvirtImport, type MappingRow } from './libvirt/index.js';

export const InputFormats = ['auto', 'yaml', 'json', 'libvirt', 'xm'] as const;
export type InputFormat = (typeof InputFormats)[number];
export type ConcreteFormat = Exclude<InputFormat, 'auto'>;

export interface ReadOptions {
  /** Default `auto`: chosen by content (see `detectFormat`). */
  format?: InputFormat;
  /** Import even though some elements or keys cannot be honoured; they are listed in `notes`. */
  lenient?: boolean;
  /** The file name, for messages. */
  sourceName?: string;
}

/** Something the import changed or could not keep, by the place in the source it came from. */
export interface ImportWarning {
  /** An XPath for XML (`/domain/devices/interface[1]`), a key or `line N` for xm. */
  path: string;
  message: string;
}

export interface DefinitionText {
  /** The definition as input for the schema: not yet validated, defaults not applied. */
  definition: unknown;
  warnings: ImportWarning[];
  format: ConcreteFormat;
  /** Definition field path -> where in the source it came from, to name the source in validation errors. */
  sources?: ReadonlyMap<string, string>;
}


/**
 * An xm config is Python assignments: its first statement is `word = ...`. YAML would read
 * `name = "x"` as one string, so this is asked before falling back to YAML.
 */
function looksLikeXm(text: string): boolean {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    return /^[A-Za-z_][A-Za-z0-9_]*\s*=(?!=)/.test(line);
  }
  return false;
}

/**
 * The format of a document by its content: `<` first (after blanks and a byte order mark) is
 * libvirt XML, `{` is JSON, Python-style assignments are xm, anything else YAML.
 */
export function detectFormat(text: string): ConcreteFormat {
  const start = text.replace(/^\uFEFF/, '').trimStart();
  if (start.startsWith('<')) return 'libvirt';
  if (start.startsWith('{')) return 'json';
  if (looksLikeXm(start)) return 'xm';
  return 'yaml';
}

/**
 * Read a definition document in any format into schema input.
 * @throws VirtkitError('definition.invalid') for syntax errors,
 *         VirtkitError('definition.xml-refused') for XML that is refused unread,
 *         VirtkitError('definition.unsupported') for what cannot be honoured (without `lenient`).
 */
export async function readDefinitionText(text: string, options: ReadOptions = {}): Promise<DefinitionText> {
  const format = options.format === undefined || options.format === 'auto' ? detectFormat(text) : options.format;
  switch (format) {
    case 'libvirt': {
      const imported = importLibvirtXml(text, { lenient: options.lenient === true });
      return { definition: imported.definition, warnings: imported.warnings, format, sources: imported.sources };
    }
    case 'xm': {
      // Loaded on first use: a YAML or XML define never pays for the xm reader.
      const reader = await import('./xm/index.js');
      const { definition, warnings } = reader.readXmConfig(text, { lenient: options.lenient === true, sourceName: options.sourceName });
      return { definition, warnings, format };
    }
    case 'yaml':
    case 'json':
      return { definition: parseDefinitionDocument(text, format), warnings: [], format };
  }
}

/**
 * Validate what `readDefinitionText` read; a failing field of an imported document also
 * names where it came from (`memory: must be at least 16MiB (from /domain/memory)`).
 */
export function validateImported(read: DefinitionText, options: ValidateOptions = {}): DomainDefinition {
  try {
    return validateDefinition(read.definition, options);
  } catch (err) {
    if (!(err instanceof VirtkitError) || read.sources === undefined) throw err;
    const field = typeof err.data?.['path'] === 'string' ? err.data['path'] : undefined;
    const source = field === undefined ? undefined : sourceOf(read.sources, field);
    if (source === undefined) throw err;
    throw new VirtkitError(err.code, `${err.message} (from ${source})`, { ...err.data, xpath: source });
  }
}

/** The source of a field, or of the nearest enclosing field that has one (`disks[1]` for `disks[1].format`). */
function sourceOf(sources: ReadonlyMap<string, string>, field: string): string | undefined {
  for (let path = field; path !== ''; path = path.replace(/(\.[^.[]*|\[[^\]]*\])$/, '')) {
    const found = sources.get(path);
    if (found !== undefined) return found;
    if (!/[.[]/.test(path)) break;
  }
  return undefined;
}
