/**
 * Definition documents: YAML or JSON text in, normalized DomainDefinition out, and back.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import YAML, { LineCounter } from 'yaml';
import { errorMessage, VirtkitError } from '../util/errors.js';
import { definitionError } from './errors.js';
import { DomainDefinitionSchema, type DomainDefinition } from './schema.js';
import { parsePlainYaml } from './plain-yaml.js';
import { formatSize } from './size.js';
import { validateDefinition, type ValidateOptions } from './validate.js';

export type DefinitionFormat = 'yaml' | 'json';

export interface ParseOptions extends ValidateOptions {
  /** Default `yaml`, which also reads JSON (YAML 1.2 is a superset), with YAML's messages. */
  format?: DefinitionFormat;
}

/** Definitions are small; anything larger is a mistake or an attack. */
export const MaxDefinitionBytes = 1024 * 1024;

/** A 1-based line and column in the document, as editors count them. */
export interface TextPosition {
  line: number;
  column: number;
}

/**
 * `line 3, column 5: invalid YAML: ...` when the parser said where, `definition: invalid
 * YAML: ...` when it did not; the position is also in the data, for editors and the web UI.
 */
function syntaxError(format: DefinitionFormat, detail: string, at: TextPosition | undefined): VirtkitError {
  const firstLine = detail.split('\n')[0] ?? detail;
  const where = at === undefined ? 'definition' : `line ${at.line}, column ${at.column}`;
  return new VirtkitError('definition.invalid', `${where}: invalid ${format.toUpperCase()}: ${firstLine}`, {
    path: 'definition', rule: 'syntax', ...at,
  });
}

/** The line and column of a character offset. */
function positionOf(text: string, offset: number): TextPosition {
  const clamped = Math.max(0, Math.min(offset, text.length));
  const before = text.slice(0, clamped);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: clamped - lineStart + 1 };
}

/** V8 names the offset ("... in JSON at position 12"); newer versions add "(line 2 column 3)". */
function jsonErrorPosition(text: string, message: string): TextPosition | undefined {
  const lineColumn = /\(line (\d+) column (\d+)\)/.exec(message);
  if (lineColumn) return { line: Number(lineColumn[1]), column: Number(lineColumn[2]) };
  const offset = /at position (\d+)/.exec(message);
  if (offset) return positionOf(text, Number(offset[1]));
  // Unexpected end of input: the error is where the text stops.
  if (/end of (JSON )?input/i.test(message)) return positionOf(text, text.length);
  return undefined;
}

function parseText(text: string, format: DefinitionFormat): unknown {
  if (format === 'json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      const message = errorMessage(err);
      throw syntaxError('json', message, jsonErrorPosition(text, message));
    }
  }
  // Definitions as people write them (block mappings and lists of plain values) take the fast
  // reader, which reads them exactly as the full parser does; anything else, errors included,
  // goes to the full parser.
  const plain = parsePlainYaml(text);
  if (plain !== undefined) return plain;
  // Aliases are capped so a "billion laughs" document cannot blow up memory.
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  const problem = doc.errors[0];
  if (problem !== undefined) {
    const at = lineCounter.linePos(problem.pos[0]);
    throw syntaxError('yaml', problem.message, { line: at.line, column: at.col });
  }
  try {
    return doc.toJS({ maxAliasCount: 64 }) as unknown;
  } catch (err) {
    throw syntaxError('yaml', errorMessage(err), undefined);
  }
}

/**
 * Parse and validate a definition document.
 * @throws VirtkitError('definition.invalid') for syntax errors and invalid fields.
 */
export function parseDefinition(text: string, options: ParseOptions = {}): DomainDefinition {
  return validateDefinition(parseDefinitionDocument(text, options.format ?? 'yaml'), options);
}

/**
 * A YAML or JSON definition document as data, not yet validated (the formats layer reads
 * these beside libvirt XML and xm, and validates all alike).
 * @throws VirtkitError('definition.invalid') for syntax errors and oversized documents.
 */
export function parseDefinitionDocument(text: string, format: DefinitionFormat = 'yaml'): unknown {
  if (text.length > MaxDefinitionBytes) {
    throw definitionError([], 'size', `must be at most ${formatSize(MaxDefinitionBytes)}`, `${text.length} characters`);
  }
  return parseText(text, format);
}

/** The format a file name implies: `.json` is JSON, anything else YAML. */
export function formatOfPath(path: string): DefinitionFormat {
  return extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
}

/** A definition file's text, the format its name implies, and the directory its paths are relative to. */
export interface DefinitionFile {
  text: string;
  format: DefinitionFormat;
  baseDir: string;
}

/**
 * Read a definition file without parsing it (`define` sends the text to the manager).
 * Every command that reads a definition file reads it here, so all fail alike.
 * @throws VirtkitError('definition.not-found') when the file cannot be read,
 *         VirtkitError('definition.invalid') when it is too large to be a definition.
 */
export async function readDefinitionFile(path: string): Promise<DefinitionFile> {
  const absolute = resolve(path);
  let text: string;
  try {
    const info = await stat(absolute);
    if (!info.isFile()) throw new Error('not a regular file');
    if (info.size > MaxDefinitionBytes) {
      throw definitionError([], 'size', `must be at most ${formatSize(MaxDefinitionBytes)}`, `${info.size} bytes`);
    }
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    if (err instanceof VirtkitError) throw err;
    throw new VirtkitError('definition.not-found', `cannot read definition ${path}: ${errorMessage(err)}`, { path });
  }
  return { text, format: formatOfPath(absolute), baseDir: dirname(absolute) };
}

/**
 * Read a definition file; relative host paths in it are resolved against its directory.
 * @throws VirtkitError('definition.not-found') when the file cannot be read,
 *         VirtkitError('definition.invalid') when it is not a valid definition.
 */
export async function loadDefinition(path: string): Promise<DomainDefinition> {
  const file = await readDefinitionFile(path);
  return parseDefinition(file.text, { format: file.format, baseDir: file.baseDir });
}

/** The document form of a normalized definition: schema key order, memory as a size string. */
export function definitionDocument(def: DomainDefinition): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (const key of Object.keys(DomainDefinitionSchema.properties)) {
    const value = (def as Record<string, unknown>)[key];
    if (value !== undefined) doc[key] = key === 'memory' ? formatSize(def.memory) : value;
  }
  return doc;
}

/** Serialize a normalized definition; parsing the result gives an equal definition. */
export function formatDefinition(def: DomainDefinition, format: DefinitionFormat): string {
  const doc = definitionDocument(def);
  return format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : YAML.stringify(doc, { lineWidth: 0 });
}
