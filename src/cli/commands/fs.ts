/**
 * `virtkit fs ls|cat|get|stat|find TARGET PATH`: read files out of a guest disk image
 * without mounting it. TARGET is an image file (its format from --format, else from its name;
 * never from the content: docs/images.md), `FILE:N` for partition N, or a defined guest's name.
 */
import { createWriteStream } from 'node:fs';
import { stat as hostStat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import type { DirEntry, FileStat, FileType, Filesystem } from '../../guestfs/fs/index.js';
import { childLocator, compileGlob, hasInvalidBytes, nameBytes, openTargetFilesystem, splitPath, walkTreeBatches } from '../../guestfs/index.js';
import { VirtkitError, isVirtkitError } from '../../util/errors.js';
import { escapeForTerminal, terminalEscaper } from '../../util/terminal-text.js';
import { ExitCodes } from '../exit-codes.js';
import { StreamedOutput } from './fs-output.js';
import { addGuestTargetOptions, guestTargetOptions, type GuestTargetOptions } from './guest-disk.js';
import { quotePath } from './guest-names.js';

const TARGET_HELP = 'image file, FILE:N for partition N, or a guest name; PATH may start at an inode: #N or #N/sub';

interface CommonOptions extends GuestTargetOptions { strict?: boolean }

/** The fs verbs own their process: the image is read on the main thread (docs/guestfs.md, "Tree walks"). */
function targetOptions(opts: CommonOptions): ReturnType<typeof guestTargetOptions> & { blockingReads: boolean } {
  return { ...guestTargetOptions(opts), strict: opts.strict === true, blockingReads: true };
}

/**
 * Damaged parts of the image that a listing went past: each is reported on stderr with its
 * path and typed error, and the command exits 13 (docs/guestfs.md, "Damaged images").
 */
class Skips {
  count = 0;
  constructor(private readonly strict: boolean) {}

  /** Reports `err` for `shownPath` and goes on; under --strict (or for an untyped error) throws it. */
  report(shownPath: string, err: unknown): void {
    if (this.strict || !isVirtkitError(err)) throw err;
    this.count++;
    process.stderr.write(`virtkit: ${shownPath}: ${escapeForTerminal(err.describe())}\n`);
  }

  finish(): void {
    if (this.count > 0) process.exitCode = ExitCodes.partial;
  }
}

async function withFilesystem<T>(target: string, opts: CommonOptions, fn: (fs: Filesystem, skips: Skips) => Promise<T>): Promise<T> {
  const opened = await openTargetFilesystem(target, targetOptions(opts));
  try {
    for (const w of opened.fs.info.warnings) process.stderr.write(`virtkit: warning: ${escapeForTerminal(w)}\n`);
    const skips = new Skips(opts.strict === true);
    const result = await fn(opened.fs, skips);
    skips.finish();
    return result;
  } finally {
    await opened.close();
  }
}

const TYPE_CHARS: Record<FileType, string> = {
  file: '-', directory: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's', unknown: '?',
};

/** `drwxr-xr-x`, with setuid/setgid/sticky letters as ls prints them. */
export function modeString(type: FileType, mode: number): string {
  const rwx = (bits: number, special: boolean, letter: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? letter : letter.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return TYPE_CHARS[type] + rwx(mode >> 6, (mode & 0o4000) !== 0, 's') + rwx(mode >> 3, (mode & 0o2000) !== 0, 's')
    + rwx(mode, (mode & 0o1000) !== 0, 't');
}

function longLine(st: FileStat, name: string, link: string | undefined): string {
  const time = st.mtime.toISOString().slice(0, 16).replace('T', ' ');
  return `${modeString(st.type, st.mode)} ${String(st.nlink).padStart(3)} ${String(st.uid).padStart(5)} ${String(st.gid).padStart(5)} `
    + `${String(st.size).padStart(10)} ${time} ${name}${link === undefined ? '' : ` -> ${link}`}`;
}

function statJson(st: FileStat): Record<string, unknown> {
  return { ...st, mode: `0${st.mode.toString(8).padStart(3, '0')}`, atime: st.atime.toISOString(), mtime: st.mtime.toISOString(), ctime: st.ctime.toISOString() };
}

interface LsOptions extends CommonOptions { long?: boolean; recursive?: boolean; json?: boolean; null?: boolean }

/** One listed entry: its path components as shown (relative to the listed directory), and a path that reaches it. */
interface Row {
  readonly names: readonly string[];
  readonly locator: string;
}

/** For --json: the name as text, plus its exact bytes in hex when they are not UTF-8. */
function jsonName(key: string, name: string): Record<string, string> {
  return hasInvalidBytes(name) ? { [key]: name, [`${key}Hex`]: nameBytes(name).toString('hex') } : { [key]: name };
}

/**
 * A tree walk allocates a stream of short-lived objects (entries, names, paths, lines). Left
 * to its defaults, V8 answers that rate by growing its young generation towards 32 MiB and
 * lets the old generation double before collecting it, which together took the walk of the
 * bench's 130,000-entry tree past its 100 MB target (docs/guestfs.md, "Tree walks"), although
 * what the walk keeps is a few MiB. The young generation stays at its initial size and the old
 * one grows by 10% steps; the collections stay cheap because almost nothing survives. Called
 * before a walk starts (the command owns the process; both flags are read as the heap grows).
 */
function keepHeapSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString('--heap-growing-percent=10');
}

/** The rows of `fs ls` without -R: PATH's entries (or PATH itself when it is not a directory). */
async function listRows(fs: Filesystem, path: string, skips: Skips): Promise<Row[]> {
  const st = await fs.stat(path);
  if (st.type !== 'directory') return [{ names: [path], locator: path }];
  const scan = await fs.scandir(path);
  for (const err of scan.damaged) skips.report(quotePath(path.split('/'), false), err);
  const entries = [...scan.entries].sort((a: DirEntry, b: DirEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return entries.map((e) => ({ names: [e.name], locator: childLocator(path, e) }));
}

/**
 * The rows of `fs ls`, a batch at a time: with -R the walk's batches as it goes (relative to
 * PATH), so the first lines are out before the walk reaches the rest of the tree.
 */
async function* rowBatches(fs: Filesystem, path: string, opts: LsOptions, skips: Skips): AsyncGenerator<Row[]> {
  if (opts.recursive !== true) {
    yield await listRows(fs, path, skips);
    return;
  }
  keepHeapSmall();
  const base = splitPath(path).length;
  const walk = walkTreeBatches(fs, path, { strict: opts.strict === true, onSkip: (p, err) => skips.report(quotePath(splitPath(p), true), err) });
  // A walk item is a row as it is (names and locator) when the walk starts at the root.
  for await (const items of walk) yield base === 0 ? items : items.map((item) => ({ names: item.names.slice(base), locator: item.locator }));
}

/** A row's path from the root (from `#N` for such a path), as the -R walk reports damage: `/b`. */
function damagePath(path: string, row: Row): string {
  const names = row.names.length === 1 && row.names[0] === row.locator ? splitPath(row.locator) : [...splitPath(path), ...row.names];
  return quotePath(names, !path.startsWith('#'));
}

/** The object of one row in `--json` output. */
async function jsonRow(fs: Filesystem, path: string, row: Row, skips: Skips): Promise<Record<string, unknown> | undefined> {
  const stat = await statRow(fs, path, row, skips);
  if (stat === undefined) return undefined;
  const { st, link } = stat;
  return { ...jsonName('name', row.names.join('/')), ...statJson(st), ...(link === undefined ? {} : jsonName('target', link)) };
}

/** lstat (and readlink) of a row; a failure is reported as damage and gives undefined. */
async function statRow(fs: Filesystem, path: string, row: Row, skips: Skips): Promise<{ st: FileStat; link: string | undefined } | undefined> {
  try {
    const st = await fs.lstat(row.locator);
    return { st, link: st.type === 'symlink' ? await fs.readlink(row.locator) : undefined };
  } catch (err) {
    skips.report(damagePath(path, row), err);
    return undefined;
  }
}

/**
 * Writes the listing as it is produced. `--json` is one array, written element by element in
 * the layout `JSON.stringify(array, null, 2)` gives.
 */
async function list(fs: Filesystem, path: string, opts: LsOptions, skips: Skips): Promise<void> {
  const out = new StreamedOutput();
  let jsonCount = 0;
  for await (const rows of rowBatches(fs, path, opts, skips)) {
    for (const row of rows) {
      if (opts.null === true) {
        // Exact bytes, NUL-terminated: for xargs -0, whatever the names hold.
        out.writeBytes(nameBytes(row.names.join('/')));
        if (out.writeBytes(NUL)) await out.flush();
        continue;
      }
      // Names come from the guest: one per line, quoted when they hold what a terminal would obey.
      const shown = row.names.length === 1 && row.names[0] === row.locator ? quotePath(row.locator.split('/'), false) : quotePath(row.names, false);
      let full = false;
      if (opts.json === true) {
        const obj = await jsonRow(fs, path, row, skips);
        if (obj !== undefined) full = out.write(`${jsonCount++ === 0 ? '[\n  ' : ',\n  '}${JSON.stringify(obj, null, 2).replace(/\n/g, '\n  ')}`);
      } else if (opts.long === true) {
        const stat = await statRow(fs, path, row, skips);
        if (stat !== undefined) full = out.write(`${longLine(stat.st, shown, stat.link === undefined ? undefined : quotePath(stat.link.split('/'), false))}\n`);
      } else {
        full = out.write(`${shown}\n`);
      }
      if (full) await out.flush();
    }
  }
  if (opts.json === true && opts.null !== true) out.write(jsonCount === 0 ? '[]\n' : '\n]\n');
  await out.flush();
}

const NUL = Buffer.from([0]);

/** Reads `-name GLOB` / `-type f|d|l|...` find-style expressions. */
function parseFindExpression(words: readonly string[]): { name?: RegExp; type?: FileType; print0?: boolean } {
  const types: Record<string, FileType> = { f: 'file', d: 'directory', l: 'symlink', c: 'chardev', b: 'blockdev', p: 'fifo', s: 'socket' };
  const out: { name?: RegExp; type?: FileType; print0?: boolean } = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const value = words[i + 1];
    if (w === '-print0') {
      out.print0 = true;
    } else if ((w === '-name' || w === '--name') && value !== undefined) {
      out.name = compileGlob(value);
      i++;
    } else if ((w === '-type' || w === '--type') && value !== undefined && types[value] !== undefined) {
      out.type = types[value];
      i++;
    } else {
      throw new VirtkitError('argument.invalid', `fs find: unknown expression '${w}' (use -name GLOB, -type f|d|l|c|b|p|s, -print0)`, { word: w });
    }
  }
  return out;
}

function addCommon(cmd: Command): Command {
  return addGuestTargetOptions(cmd)
    .option('--strict', 'stop at the first damaged structure or checksum mismatch (default: report it on stderr, go on, exit 13)');
}

export function register(program: Command): void {
  const fs = program.command('fs').description('read files from a guest disk image without mounting it (ext2/3/4, ISO 9660, FAT)');

  addCommon(fs.command('ls').argument('<target>', TARGET_HELP).argument('[path]', 'directory inside the guest', '/')
    .option('-l, --long', 'mode, links, owner, size, mtime')
    .option('-R, --recursive', 'the whole tree below PATH, as paths relative to it')
    .option('--json', 'print JSON (a name that is not UTF-8 also as nameHex, its exact bytes)')
    .option('-0, --null', 'names only, as their exact bytes, each ended by a NUL (for xargs -0)')
    .description('list a directory'))
    .action(async (target: string, path: string, opts: LsOptions) => {
      await withFilesystem(target, opts, (f, skips) => list(f, path, opts, skips));
    });

  addCommon(fs.command('cat').argument('<target>', TARGET_HELP).argument('<path>', 'file inside the guest')
    .option('--raw', 'on a terminal too, write the bytes as they are (escape sequences included)')
    .description('write a file to stdout (on a terminal, control characters shown as escapes)'))
    .action(async (target: string, path: string, opts: CommonOptions & { raw?: boolean }) => {
      await withFilesystem(target, opts, async (f) => {
        // The file is the guest's: to a terminal it is shown, not obeyed; to a pipe it goes as it is.
        const shown = process.stdout.isTTY === true && opts.raw !== true;
        const copied = shown
          ? pipeline(f.createReadStream(path), terminalEscaper(), process.stdout, { end: false })
          : pipeline(f.createReadStream(path), process.stdout, { end: false });
        // A reader that stops early (`| head`) ends the command quietly, with ls's status (closed-pipe.ts).
        await copied;
      });
    });

  addCommon(fs.command('get').argument('<target>', TARGET_HELP).argument('<path>', 'file inside the guest')
    .argument('<dest>', 'host file (or directory to put it in)')
    .description('copy a file out of the guest'))
    .action(async (target: string, path: string, dest: string, opts: CommonOptions) => {
      await withFilesystem(target, opts, async (f) => {
        const isDir = await hostStat(dest).then((s) => s.isDirectory(), () => false);
        const out = isDir ? join(dest, basename(path)) : dest;
        // Fail before creating DEST: a missing path or a directory leaves nothing behind.
        if ((await f.stat(path)).type === 'directory') {
          throw new VirtkitError('fs.is-a-directory', `${path} is a directory (fs get copies files)`, { path });
        }
        await pipeline(f.createReadStream(path), createWriteStream(out));
      });
    });

  addCommon(fs.command('stat').argument('<target>', TARGET_HELP).argument('<path>', 'path inside the guest')
    .option('-L, --dereference', 'follow a final symlink')
    .option('--json', 'print JSON')
    .description('type, mode, owner, size, times, links and inode of a path'))
    .action(async (target: string, path: string, opts: CommonOptions & { dereference?: boolean; json?: boolean }) => {
      await withFilesystem(target, opts, async (f) => {
        const st = opts.dereference === true ? await f.stat(path) : await f.lstat(path);
        const link = st.type === 'symlink' ? await f.readlink(path) : undefined;
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify({ path, ...statJson(st), ...(link === undefined ? {} : jsonName('target', link)) }, null, 2)}\n`);
          return;
        }
        const lines = [
          `  Path: ${quotePath(path.split('/'), false)}${link === undefined ? '' : ` -> ${quotePath(link.split('/'), false)}`}`,
          `  Type: ${st.type}`,
          `  Mode: 0${st.mode.toString(8).padStart(3, '0')} (${modeString(st.type, st.mode)})`,
          `   Uid: ${st.uid}  Gid: ${st.gid}`,
          `  Size: ${st.size}`,
          ` Links: ${st.nlink}  Inode: ${st.ino}`,
          `Access: ${st.atime.toISOString()}`,
          `Modify: ${st.mtime.toISOString()}`,
          `Change: ${st.ctime.toISOString()}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });

  addCommon(fs.command('find').argument('<target>', TARGET_HELP).argument('<path>', 'directory to search below')
    .argument('[expression...]', '-name GLOB (on the entry name), -type f|d|l|c|b|p|s, -print0')
    .option('-0, --null', 'print each path as its exact bytes ended by a NUL (as -print0)')
    .allowUnknownOption()
    .description('list paths below PATH whose name matches a glob'))
    .action(async (target: string, path: string, expression: string[], opts: CommonOptions & { null?: boolean }) => {
      const expr = parseFindExpression(expression);
      await withFilesystem(target, opts, async (f, skips) => {
        const out = new StreamedOutput();
        const print0 = opts.null === true || expr.print0 === true;
        keepHeapSmall();
        const walk = walkTreeBatches(f, path, { strict: opts.strict === true, onSkip: (p, err) => skips.report(quotePath(splitPath(p), true), err) });
        for await (const items of walk) {
          for (const item of items) {
            if (expr.name !== undefined && !expr.name.test(item.entry.name)) continue;
            if (expr.type !== undefined && item.entry.type !== expr.type) continue;
            if (print0) out.writeBytes(nameBytes(item.path));
            if (print0 ? out.writeBytes(NUL) : out.write(`${quotePath(item.names, true)}\n`)) await out.flush();
          }
        }
        await out.flush();
      });
    });
}
