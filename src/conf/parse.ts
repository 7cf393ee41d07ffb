/**
 * Definition documents: YAML or JSON text in, normalized DomainDefinition out, and back.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import YAML from 'yaml';
import { errorMessage, VirtkitError } from '../util/errors.js';
import { definitionError } from './errors.js';
import { DomainDefinitionSchema, type DomainDefinition } from './schema.js';
import { formatSize } from './size.js';
import { validateDefinition, type ValidateOptions } from './validate.js';

export type DefinitionFormat = 'yaml' | 'json';

export interface ParseOptions extends ValidateOptions {
  /** Default `yaml`, which also reads JSON (YAML 1.2 is a superset), with YAML's messages. */
  format?: DefinitionFormat;
}

/** Definitions are small; anything larger is a mistake or an attack. */
export const MaxDefinitionBytes = 1024 * 1024;

function syntaxError(format: DefinitionFormat, detail: string): VirtkitError {
  const firstLine = detail.split('\n')[0] ?? detail;
  return new VirtkitError('definition.invalid', `definition: invalid ${format.toUpperCase()}: ${firstLine}`, {
    path: 'definition', rule: 'syntax',
  });
}

function parseText(text: string, format: DefinitionFormat): unknown {
  if (format === 'json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw syntaxError('json', errorMessage(err));
    }
  }
  // Aliases are capped so a "billion laughs" document cannot blow up memory.
  const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const problem = doc.errors[0];
  if (problem !== undefined) throw syntaxError('yaml', problem.message);
  try {
    return doc.toJS({ maxAliasCount: 64 }) as unknown;
  } catch (err) {
    throw syntaxError('yaml', errorMessage(err));
  }
}

/**
 * Parse and validate a definition document.
 * @throws VirtkitError('definition.invalid') for syntax errors and invalid fields.
 */
export function parseDefinition(text: string, options: ParseOptions = {}): DomainDefinition {
  if (text.length > MaxDefinitionBytes) {
    throw definitionError([], 'size', `must be at most ${formatSize(MaxDefinitionBytes)}`, `${text.length} characters`);
  }
  return validateDefinition(parseText(text, options.format ?? 'yaml'), options);
}

/** The format a file name implies: `.json` is JSON, anything else YAML. */
export function formatOfPath(path: string): DefinitionFormat {
  return extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
}

/**
 * Read a definition file; relative host paths in it are resolved against its directory.
 * @throws VirtkitError('definition.not-found') when the file cannot be read,
 *         VirtkitError('definition.invalid') when it is not a valid definition.
 */
export async function loadDefinition(path: string): Promise<DomainDefinition> {
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
  return parseDefinition(text, { format: formatOfPath(absolute), baseDir: dirname(absolute) });
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
