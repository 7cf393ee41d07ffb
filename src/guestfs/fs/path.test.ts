import { describe, expect, test } from 'vitest';
import { isVirtkitError, type ErrorCode } from '../../util/errors.js';
import { inodeReference, PathFilesystem } from './path.js';
import type { DirEntry, FileStat, FilesystemDriver, FsNode } from './types.js';

/** An in-memory tree: directories are objects, files strings, symlinks `{ link }`. */
type Tree = { [name: string]: Tree | string | { link: string } };
interface MemNode extends FsNode { readonly value: Tree | string | { link: string }; readonly ino: number }

function memoryDriver(tree: Tree): FilesystemDriver<MemNode> {
  let next = 1;
  const ids = new Map<object | string, number>();
  const node = (value: MemNode['value']): MemNode => {
    const key = typeof value === 'string' ? value : value;
    if (!ids.has(key)) ids.set(key, next++);
    if (typeof value === 'string') return { value, ino: ids.get(key)!, type: 'file', size: Buffer.byteLength(value) };
    if ('link' in value && typeof value.link === 'string') return { value, ino: ids.get(key)!, type: 'symlink', size: value.link.length };
    return { value, ino: ids.get(key)!, type: 'directory', size: 0 };
  };
  const epoch = new Date(0);
  return {
    info: { type: 'memory', label: '', uuid: '', size: 0, warnings: [] },
    root: async () => node(tree),
    list: async (dir) => Object.entries(dir.value as Tree).map(([name, v]): DirEntry => ({ name, type: node(v).type, inode: node(v).ino })),
    lookup: async (dir, name) => {
      const v = (dir.value as Tree)[name];
      return v === undefined ? undefined : node(v);
    },
    stat: async (n): Promise<FileStat> => ({ type: n.type, mode: 0o644, uid: 0, gid: 0, size: n.size, atime: epoch, mtime: epoch, ctime: epoch, nlink: 1, ino: n.ino }),
    readlink: async (n) => (n.value as { link: string }).link,
    read: async (n, offset, length) => Buffer.from(n.value as string).subarray(offset, offset + length),
    close: async () => {},
  };
}

const fs = new PathFilesystem(memoryDriver({
  etc: { hostname: 'host\n', 'os-release': 'ID=x\n' },
  usr: { bin: { sh: '\x7fELF' }, lib: { 'os-release': 'ID=y\n' } },
  bin: { link: 'usr/bin' },
  abs: { link: '/etc/hostname' },
  rel: { link: '../etc/./hostname' },
  loop1: { link: 'loop2' },
  loop2: { link: '/loop1' },
  dangling: { link: 'nowhere' },
  file: 'contents',
}));

async function code(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  return p.then(() => 'ok' as const, (e: unknown) => (isVirtkitError(e) ? e.code : Promise.reject(e)));
}

describe('path resolution', () => {
  test('., .. and repeated slashes; .. at the root stays at the root', async () => {
    expect(await fs.realpath('//etc/./../etc//hostname')).toBe('/etc/hostname');
    expect(await fs.realpath('/../../etc/..')).toBe('/');
  });

  test('symlinks: relative, absolute, in the middle of a path, dangling, loops', async () => {
    expect(await fs.realpath('/bin/sh')).toBe('/usr/bin/sh');
    expect(Buffer.from(await fs.readFile('/abs')).toString()).toBe('host\n');
    expect(await fs.realpath('/rel')).toBe('/etc/hostname');
    // `..` after a symlink is taken in the link's target, as the kernel does.
    expect(await fs.realpath('/bin/..')).toBe('/usr');
    expect(await fs.readlink('/rel')).toBe('../etc/./hostname');
    expect((await fs.lstat('/abs')).type).toBe('symlink');
    expect((await fs.stat('/abs')).type).toBe('file');
    expect(await code(fs.stat('/loop1'))).toBe('fs.symlink-loop');
    expect(await code(fs.lstat('/loop1'))).toBe('ok');
    expect(await code(fs.stat('/dangling'))).toBe('fs.not-found');
    expect(await code(fs.readlink('/file'))).toBe('argument.invalid');
  });

  test('typed errors for wrong types and sizes', async () => {
    expect(await code(fs.readdir('/file'))).toBe('fs.not-a-directory');
    expect(await code(fs.stat('/file/x'))).toBe('fs.not-a-directory');
    expect(await code(fs.readFile('/etc'))).toBe('fs.is-a-directory');
    expect(await code(fs.readFile('/file', { maxBytes: 3 }))).toBe('fs.too-large');
    expect(await code(fs.stat('/x'.repeat(3000)))).toBe('argument.invalid');
  });

  test('readRange and createReadStream', async () => {
    expect(Buffer.from(await fs.readRange('/file', 3, 4)).toString()).toBe('tent');
    const chunks: Buffer[] = [];
    for await (const c of fs.createReadStream('/etc/../file')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('contents');
    const missing = fs.createReadStream('/nope');
    await expect((async () => { for await (const _ of missing) { /* drain */ } })()).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.not-found'));
  });
});

describe('#N paths', () => {
  const codeAndMessage = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      if (isVirtkitError(err)) return `${err.code}: ${err.message}`;
      throw err;
    }
    return 'ok';
  };

  test('#N within 1..count starts a path at inode N; other paths are not inode references', () => {
    expect(inodeReference('#12', 100)).toBe(12);
    expect(inodeReference('#12/sub/file', 100)).toBe(12);
    expect(inodeReference('/#12', 100)).toBeUndefined();
    expect(inodeReference('etc/motd', 100)).toBeUndefined();
  });

  test('#0, #abc and a number beyond the inode count are argument.invalid naming the range', () => {
    expect(codeAndMessage(() => inodeReference('#0', 2048))).toBe('argument.invalid: #0: #N takes an inode number 1..2048');
    expect(codeAndMessage(() => inodeReference('#abc/x', 2048))).toBe('argument.invalid: #abc: #N takes an inode number 1..2048');
    expect(codeAndMessage(() => inodeReference('#99999', 2048))).toBe('argument.invalid: #99999: #N takes an inode number 1..2048');
    expect(codeAndMessage(() => inodeReference('#', 2048))).toBe('argument.invalid: #: #N takes an inode number 1..2048');
  });
});
