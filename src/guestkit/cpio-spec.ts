/**
 * Parser for the Linux kernel's gen_init_cpio description format (usr/gen_init_cpio.c), one
 * entry per line, fields separated by blanks, `#` starting a comment line:
 *
 *   file  <name> <location> <mode> <uid> <gid>
 *   dir   <name> <mode> <uid> <gid>
 *   nod   <name> <mode> <uid> <gid> <c|b> <major> <minor>
 *   slink <name> <target> <mode> <uid> <gid>
 *   pipe  <name> <mode> <uid> <gid>
 *   sock  <name> <mode> <uid> <gid>
 *
 * `mode` is octal, the other numbers decimal. gen_init_cpio's optional hard-link list after a
 * `file` line is refused: archives built here never contain hard links. Errors are
 * `cpio.invalid` with the 1-based line number in the message and in `data.line`.
 */
import { isAbsolute, resolve } from 'node:path';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { normalizeEntryName, type CpioEntry } from './cpio.js';

export interface ParseSpecOptions {
  /** Directory that relative `file` locations are resolved against (default: the process cwd). */
  baseDir?: string;
}

/** Specs describe a handful of files; anything this large is not a spec. */
const MAX_SPEC_BYTES = 4 * 1024 * 1024;
const MAX_ID = 0xffff_ffff;

class LineError extends Error {}

function octalMode(field: string, text: string): number {
  if (!/^[0-7]{1,6}$/.test(text)) throw new LineError(`${field} must be an octal number, got ${JSON.stringify(text)}`);
  const value = parseInt(text, 8);
  if (value > 0o7777) throw new LineError(`${field} must be at most 07777, got ${text}`);
  return value;
}

function decimal(field: string, text: string): number {
  if (!/^[0-9]{1,10}$/.test(text)) throw new LineError(`${field} must be a decimal number, got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value > MAX_ID) throw new LineError(`${field} must be at most ${MAX_ID}, got ${text}`);
  return value;
}

const ARITY = { file: 6, dir: 5, nod: 8, slink: 6, pipe: 5, sock: 5 } as const;
type Keyword = keyof typeof ARITY;
const isKeyword = (word: string): word is Keyword => Object.hasOwn(ARITY, word);

function parseLine(fields: string[], baseDir: string): CpioEntry {
  const [keyword = '', ...rest] = fields;
  if (!isKeyword(keyword)) {
    throw new LineError(`unknown entry type ${JSON.stringify(keyword)} (expected file, dir, nod, slink, pipe or sock)`);
  }
  const arity = ARITY[keyword];
  if (keyword === 'file' && fields.length > arity) throw new LineError('file: hard links are not supported');
  if (fields.length !== arity) throw new LineError(`${keyword}: expected ${arity - 1} fields, got ${rest.length}`);
  const at = (i: number): string => rest[i] ?? '';
  switch (keyword) {
    case 'file':
      return {
        kind: 'file',
        name: at(0),
        content: { hostPath: isAbsolute(at(1)) ? at(1) : resolve(baseDir, at(1)) },
        mode: octalMode('mode', at(2)),
        uid: decimal('uid', at(3)),
        gid: decimal('gid', at(4)),
      };
    case 'dir':
    case 'pipe':
    case 'sock':
      return {
        kind: keyword === 'dir' ? 'dir' : keyword === 'pipe' ? 'fifo' : 'socket',
        name: at(0),
        mode: octalMode('mode', at(1)),
        uid: decimal('uid', at(2)),
        gid: decimal('gid', at(3)),
      };
    case 'nod': {
      const type = at(4);
      if (type !== 'c' && type !== 'b') throw new LineError(`nod: device type must be "c" or "b", got ${JSON.stringify(type)}`);
      return {
        kind: 'device',
        name: at(0),
        mode: octalMode('mode', at(1)),
        uid: decimal('uid', at(2)),
        gid: decimal('gid', at(3)),
        device: type === 'c' ? 'char' : 'block',
        major: decimal('major', at(5)),
        minor: decimal('minor', at(6)),
      };
    }
    case 'slink':
      return {
        kind: 'symlink',
        name: at(0),
        target: at(1),
        mode: octalMode('mode', at(2)),
        uid: decimal('uid', at(3)),
        gid: decimal('gid', at(4)),
      };
  }
}

/** Parses a whole spec; every entry is checked (name, numbers, duplicates) before any is returned. */
export function parseCpioSpec(text: string, options: ParseSpecOptions = {}): CpioEntry[] {
  if (text.length > MAX_SPEC_BYTES) {
    throw new VirtkitError('cpio.invalid', `spec is larger than ${MAX_SPEC_BYTES} bytes`, { line: 0 });
  }
  const baseDir = options.baseDir ?? process.cwd();
  const entries: CpioEntry[] = [];
  const lineOfName = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    if (raw.trimStart().startsWith('#')) continue;
    const fields = raw.split(/[ \t]+/).filter((f) => f !== '');
    if (fields.length === 0) continue;
    try {
      const entry = parseLine(fields, baseDir);
      const name = normalizeEntryName(entry.name);
      const earlier = lineOfName.get(name);
      if (earlier !== undefined) throw new LineError(`${name}: already defined on line ${earlier}`);
      if (entry.kind === 'symlink' && entry.target.includes('\0')) throw new LineError('slink: target contains a NUL byte');
      lineOfName.set(name, line);
      entries.push(entry);
    } catch (err) {
      if (err instanceof LineError || isVirtkitError(err, 'cpio.invalid')) {
        throw new VirtkitError('cpio.invalid', `line ${line}: ${err.message}`, { line });
      }
      throw err;
    }
  }
  return entries;
}

/** Renders entries back into spec text (host files only: in-memory content has no location). */
export function formatCpioSpec(entries: readonly CpioEntry[]): string {
  const mode = (m: number): string => m.toString(8).padStart(4, '0');
  return entries
    .map((e) => {
      const ids = `${mode(e.mode)} ${e.uid} ${e.gid}`;
      switch (e.kind) {
        case 'file':
          if (e.content instanceof Uint8Array) {
            throw new VirtkitError('cpio.invalid', `${e.name}: in-memory content has no location to write in a spec`, { name: e.name });
          }
          return `file ${e.name} ${e.content.hostPath} ${ids}`;
        case 'dir':
          return `dir ${e.name} ${ids}`;
        case 'device':
          return `nod ${e.name} ${ids} ${e.device === 'char' ? 'c' : 'b'} ${e.major} ${e.minor}`;
        case 'symlink':
          return `slink ${e.name} ${e.target} ${ids}`;
        case 'fifo':
          return `pipe ${e.name} ${ids}`;
        case 'socket':
          return `sock ${e.name} ${ids}`;
      }
    })
    .map((line) => line + '\n')
    .join('');
}
