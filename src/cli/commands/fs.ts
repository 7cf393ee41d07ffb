/**
 * `virtkit fs ls|cat|get|stat|find TARGET PATH`: read files out of a guest disk image
 * without mounting it. TARGET is an image file (its format from --format, else from its name;
 * never from the content: docs/images.md), `FILE:N` for partition N, or a defined guest's name.
 */
import { createWriteStream } from 'node:fs';
import { stat as hostStat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { FileStat, FileType, Filesystem } from '../../guestfs/fs/index.js';
import { compileGlob } from '../../guestfs/index.js';
import { openTargetFilesystem } from '../../guestfs/index.js';
import { addGuestTargetOptions, guestTargetOptions, type GuestTargetOptions } from './guest-disk.js';
import { walkTree } from '../../guestfs/index.js';
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal, terminalEscaper } from '../../util/terminal-text.js';

const TARGET_HELP = 'image file, or FILE:N for partition N';

type CommonOptions = GuestTargetOptions;
const targetOptions = guestTargetOptions;

async function withFilesystem<T>(target: string, opts: CommonOptions, fn: (fs: Filesystem) => Promise<T>): Promise<T> {
  const opened = await openTargetFilesystem(target, targetOptions(opts));
  try {
    for (const w of opened.fs.info.warnings) process.stderr.write(`virtkit: warning: ${w}\n`);
    return await fn(opened.fs);
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

function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

interface LsOptions extends CommonOptions { long?: boolean; recursive?: boolean; json?: boolean }

async function list(fs: Filesystem, path: string, opts: LsOptions): Promise<void> {
  const rows: { path: string; name: string }[] = [];
  if (opts.recursive === true) {
    const prefix = path.endsWith('/') ? path : `${path}/`;
    for await (const item of walkTree(fs, path)) rows.push({ path: item.path, name: item.path.startsWith(prefix) ? item.path.slice(prefix.length) : item.path });
  } else {
    const st = await fs.stat(path);
    if (st.type !== 'directory') {
      rows.push({ path, name: path });
    } else {
      const names = (await fs.readdir(path)).map((e) => e.name).sort();
      for (const name of names) rows.push({ path: childPath(path, name), name });
    }
  }
  const out: string[] = [];
  const json: unknown[] = [];
  for (const row of rows) {
    if (opts.long !== true && opts.json !== true) {
      out.push(row.name);
      continue;
    }
    const st = await fs.lstat(row.path);
    const link = st.type === 'symlink' ? await fs.readlink(row.path) : undefined;
    if (opts.json === true) json.push({ name: row.name, ...statJson(st), ...(link === undefined ? {} : { target: link }) });
    else out.push(longLine(st, row.name, link));
  }
  // Names come from the guest: one per line, their control characters shown, never obeyed.
  process.stdout.write(opts.json === true ? `${JSON.stringify(json, null, 2)}\n` : out.map((l) => `${escapeForTerminal(l)}\n`).join(''));
}

/** Reads `-name GLOB` / `-type f|d|l|...` find-style expressions. */
function parseFindExpression(words: readonly string[]): { name?: RegExp; type?: FileType } {
  const types: Record<string, FileType> = { f: 'file', d: 'directory', l: 'symlink', c: 'chardev', b: 'blockdev', p: 'fifo', s: 'socket' };
  const out: { name?: RegExp; type?: FileType } = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const value = words[i + 1];
    if ((w === '-name' || w === '--name') && value !== undefined) {
      out.name = compileGlob(value);
      i++;
    } else if ((w === '-type' || w === '--type') && value !== undefined && types[value] !== undefined) {
      out.type = types[value];
      i++;
    } else {
      throw new VirtkitError('argument.invalid', `fs find: unknown expression '${w}' (use -name GLOB, -type f|d|l|c|b|p|s)`, { word: w });
    }
  }
  return out;
}

const addCommon = addGuestTargetOptions;

export function register(program: Command): void {
  const fs = program.command('fs').description('read files from a guest disk image without mounting it (ext2/3/4, ISO 9660, FAT)');

  addCommon(fs.command('ls').argument('<target>', TARGET_HELP).argument('[path]', 'directory inside the guest', '/')
    .option('-l, --long', 'mode, links, owner, size, mtime')
    .option('-R, --recursive', 'the whole tree below PATH, as paths relative to it')
    .option('--json', 'print JSON')
    .description('list a directory'))
    .action(async (target: string, path: string, opts: LsOptions) => {
      await withFilesystem(target, opts, (f) => list(f, path, opts));
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
        await copied.catch((err: unknown) => {
          // A reader that stops early (`| head`) is not an error.
          if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
        });
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
          process.stdout.write(`${JSON.stringify({ path, ...statJson(st), ...(link === undefined ? {} : { target: link }) }, null, 2)}\n`);
          return;
        }
        const lines = [
          `  Path: ${escapeForTerminal(path)}${link === undefined ? '' : ` -> ${escapeForTerminal(link)}`}`,
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
    .argument('[expression...]', '-name GLOB (on the entry name) and/or -type f|d|l|c|b|p|s')
    .allowUnknownOption()
    .description('list paths below PATH whose name matches a glob'))
    .action(async (target: string, path: string, expression: string[], opts: CommonOptions) => {
      const expr = parseFindExpression(expression);
      await withFilesystem(target, opts, async (f) => {
        const out: string[] = [];
        for await (const item of walkTree(f, path)) {
          const name = item.path.slice(item.path.lastIndexOf('/') + 1);
          if (expr.name !== undefined && !expr.name.test(name)) continue;
          if (expr.type !== undefined && item.entry.type !== expr.type) continue;
          out.push(item.path);
        }
        process.stdout.write(out.map((l) => `${escapeForTerminal(l)}\n`).join(''));
      });
    });
}
