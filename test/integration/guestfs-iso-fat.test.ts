/**
 * The ISO 9660 and FAT readers against the reference tools over whole trees, on images
 * built at test time without root: xorriso and genisoimage (Rock Ridge + Joliet, Joliet
 * only, plain) checked with isoinfo and osirrox; mkfs.vfat -F 12|16|32 filled by mcopy,
 * checked with mdir and mtype. Also qcow2-wrapped images through openImage, a FAT
 * partition inside an MBR table, and `virtkit fs ls|cat` on both.
 */
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli as cli } from '../helpers/run-cli.js';
import { openFilesystem, type FileType, type Filesystem } from '../../src/guestfs/fs/index.js';
import { openTargetFilesystem } from '../../src/guestfs/target.js';
import { walkTree } from '../../src/guestfs/walk.js';
import { openImage } from '../../src/storage/image/index.js';
import { RawImage } from '../../src/storage/image/raw.js';
import { pseudoRandomBytes, removeDir, run, tempDir } from './guestfs-fixtures.js';

/** The reference tools print names in the locale's charset; UTC makes FAT's local times comparable. */
const TOOL_ENV = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const BIG = 1 << 30;

let work: string;
let isoSrc: string;
let fatSrc: string;

async function tool(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { env: TOOL_ENV, maxBuffer: BIG });
  return stdout;
}

async function toolBytes(cmd: string, args: string[]): Promise<Buffer> {
  const { stdout } = await run(cmd, args, { env: TOOL_ENV, maxBuffer: BIG, encoding: 'buffer' });
  return stdout;
}

const LONG_NAME = 'A file name that is well over sixty-four characters long, to test Rock Ridge NM.txt';
const UNICODE_NAME = 'ünïcødé-名前.txt';

async function buildIsoTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'dir/sub/nested'), { recursive: true });
  await writeFile(join(dir, 'hello.txt'), 'hello, iso\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'big.bin'), pseudoRandomBytes(200_000, 11));
  await writeFile(join(dir, 'dir/sub/nested/file.txt'), 'nested\n');
  await writeFile(join(dir, 'dir', LONG_NAME), 'long\n');
  await writeFile(join(dir, UNICODE_NAME), 'unicode\n');
  await writeFile(join(dir, 'private'), 'secret\n', { mode: 0o600 });
  await writeFile(join(dir, 'script.sh'), '#!/bin/sh\n', { mode: 0o755 });
  await chmod(join(dir, 'dir/sub'), 0o750);
  await symlink('hello.txt', join(dir, 'link-rel'));
  await symlink('/dir/sub/nested/file.txt', join(dir, 'link-abs'));
  await symlink('../../hello.txt', join(dir, 'dir/sub/up'));
  await symlink('dir/sub', join(dir, 'link-dir'));
  await symlink('does-not-exist', join(dir, 'link-dangling'));
  // Deeper than 8 levels: genisoimage relocates the tail (Rock Ridge CL/RE), xorriso does not.
  let deep = join(dir, 'deep');
  for (let i = 1; i <= 10; i++) deep = join(deep, `d${i}`);
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'bottom.txt'), 'at the bottom\n');
  // Enough entries that the directory spans several 2048-byte sectors.
  await mkdir(join(dir, 'many'));
  for (let i = 0; i < 120; i++) await writeFile(join(dir, 'many', `entry-${String(i).padStart(3, '0')}-with-a-long-name`), `${i}\n`);
}

async function buildFatTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'Dir/Sub/deeper'), { recursive: true });
  await writeFile(join(dir, 'hello.txt'), 'hello, fat\n');
  await writeFile(join(dir, 'UPPER.TXT'), 'upper\n');
  await writeFile(join(dir, 'lower.txt'), 'lower: an 8.3 name with the NT lowercase flags\n');
  await writeFile(join(dir, 'MiXeD.Txt'), 'mixed\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'multi.bin'), pseudoRandomBytes(70_000, 12));
  await writeFile(join(dir, 'Dir', 'A very long file name with spaces and more.txt'), 'long\n');
  await writeFile(join(dir, UNICODE_NAME), 'unicode\n');
  await writeFile(join(dir, 'Dir/Sub/deeper/f'), 'deep\n');
  await mkdir(join(dir, 'many'));
  for (let i = 0; i < 100; i++) await writeFile(join(dir, 'many', `Entry number ${i} with a long name`), `${i}\n`);
}

interface Entry {
  readonly type: FileType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly link?: string;
}

async function ourTree(fs: Filesystem): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  for await (const item of walkTree(fs, '/')) {
    const st = await fs.lstat(item.path);
    expect(st.type).toBe(item.entry.type);
    out.set(item.path, {
      type: st.type, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size,
      ...(st.type === 'symlink' ? { link: await fs.readlink(item.path) } : {}),
    });
  }
  return out;
}

const LS_TYPES: Record<string, FileType> = { '-': 'file', d: 'directory', l: 'symlink', c: 'chardev', b: 'blockdev', p: 'fifo', s: 'socket' };

/** Permission bits of an `ls -l` mode string. */
function modeBits(s: string): number {
  let m = 0;
  for (let i = 0; i < 9; i++) if (s[i + 1] !== '-') m |= 1 << (8 - i);
  return m;
}

/** `isoinfo -l` output: path -> type, mode, uid, gid, size, link target. */
function parseIsoinfo(text: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  let dir = '/';
  for (const line of text.split('\n')) {
    const header = /^Directory listing of (.*)$/.exec(line);
    if (header !== null) {
      dir = header[1]!;
      continue;
    }
    const m = /^(\S)(\S{9})\s+\d+\s+(\d+)\s+(\d+)\s+(\d+) \w{3} [ \d]\d \d{4} \[\s*\d+ \d+\] {2}(.*)$/.exec(line);
    if (m === null) continue;
    let name = m[6]!;
    let link: string | undefined;
    const arrow = name.indexOf(' -> ');
    if (m[1] === 'l' && arrow >= 0) {
      link = name.slice(arrow + 4);
      name = name.slice(0, arrow);
    } else {
      name = name.replace(/ $/, '');
    }
    if (name === '.' || name === '..') continue;
    out.set(dir + name, {
      type: LS_TYPES[m[1]!] ?? 'unknown', mode: modeBits(m[1]! + m[2]!), uid: Number(m[3]), gid: Number(m[4]), size: Number(m[5]),
      ...(link === undefined ? {} : { link }),
    });
  }
  return out;
}

/** A host tree (an osirrox extraction) as entries, sizes of directories left out. */
async function hostTree(root: string, rel = ''): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  for (const name of await readdir(join(root, rel))) {
    const path = `${rel}/${name}`;
    const st = await lstat(join(root, path));
    const type: FileType = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file';
    out.set(path, {
      type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : -1,
      ...(type === 'symlink' ? { link: await readlink(join(root, path)) } : {}),
    });
    if (type === 'directory') for (const [p, e] of await hostTree(root, path)) out.set(p, e);
  }
  return out;
}

function project(tree: Map<string, Entry>, keys: readonly (keyof Entry)[]): Record<string, Partial<Entry>> {
  const out: Record<string, Partial<Entry>> = {};
  for (const [path, e] of [...tree].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const p: Record<string, unknown> = {};
    for (const k of keys) if (e[k] !== undefined) p[k] = e[k];
    out[path] = p as Partial<Entry>;
  }
  return out;
}

/**
 * Filesystems opened by the tests stay reachable here and are closed after the file: a
 * FileHandle left to the garbage collector prints a warning, which would land in the
 * in-process CLI tests' captured stderr.
 */
const openedFilesystems: Filesystem[] = [];

async function open(path: string): Promise<Filesystem> {
  const fs = await openFilesystem(await RawImage.open(path));
  openedFilesystems.push(fs);
  return fs;
}

afterAll(async () => {
  for (const fs of openedFilesystems.splice(0)) await fs.close();
});

beforeAll(async () => {
  work = await tempDir('guestfs-iso-fat');
  isoSrc = join(work, 'iso-src');
  fatSrc = join(work, 'fat-src');
  await buildIsoTree(isoSrc);
  await buildFatTree(fatSrc);
});

afterAll(async () => {
  await removeDir(work);
});

interface IsoVariant {
  readonly name: string;
  readonly tool: 'xorriso' | 'genisoimage';
  readonly args: readonly string[];
  readonly naming: 'rock-ridge' | 'joliet' | 'plain';
}

const isoVariants: IsoVariant[] = [
  { name: 'xorriso-rr-joliet', tool: 'xorriso', args: ['-R', '-J'], naming: 'rock-ridge' },
  { name: 'genisoimage-rr-joliet', tool: 'genisoimage', args: ['-R', '-J', '-uid', '1234', '-gid', '5678'], naming: 'rock-ridge' },
  { name: 'xorriso-joliet', tool: 'xorriso', args: ['--norock', '-J'], naming: 'joliet' },
  { name: 'genisoimage-joliet', tool: 'genisoimage', args: ['-J'], naming: 'joliet' },
  { name: 'genisoimage-plain', tool: 'genisoimage', args: [], naming: 'plain' },
];

async function buildIso(v: IsoVariant): Promise<string> {
  const path = join(work, `${v.name}.iso`);
  const args = [...v.args, '-quiet', '-V', 'Test Volume', '-o', path, isoSrc];
  if (v.tool === 'xorriso') await tool('xorriso', ['-as', 'mkisofs', ...args]);
  // genisoimage without Rock Ridge warns about the deep tree and leaves the tail out.
  else await run('genisoimage', args, { env: TOOL_ENV });
  return path;
}

/** What isoinfo prints for a Joliet name: Latin-1, characters beyond it as `_`. */
function isoinfoJolietName(path: string): string {
  return Buffer.from(path.replace(/[^\u0000-\u00ff]/g, '_'), 'latin1').toString('latin1');
}

describe.each(isoVariants)('ISO 9660 $name', (v) => {
  let image: string;
  let fs: Filesystem;
  let ours: Map<string, Entry>;

  beforeAll(async () => {
    image = await buildIso(v);
    fs = await open(image);
    ours = await ourTree(fs);
  });

  test('label, UUID and type agree with blkid', async () => {
    const blkid = await tool('blkid', ['-p', '-o', 'export', image]);
    const fields = parseBlkid(blkid);
    expect({ type: fs.info.type, label: fs.info.label, uuid: fs.info.uuid }).toEqual({ type: fields.TYPE, label: fields.LABEL, uuid: fields.UUID });
    expect(fs.info.uuid).toMatch(/^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\d\d$/);
  });

  if (v.naming === 'rock-ridge') {
    test('the tree, modes, sizes, symlinks and contents agree with osirrox -extract', async () => {
      const out = join(work, `${v.name}-extract`);
      await tool('osirrox', ['-indev', image, '-extract', '/', out]);
      const ref = await hostTree(out);
      const mine = new Map([...ours].map(([p, e]) => [p, { ...e, size: e.type === 'file' ? e.size : -1 }]));
      expect(project(mine, ['type', 'mode', 'size', 'link'])).toEqual(project(ref, ['type', 'mode', 'size', 'link']));
      expect(ours.get(`/dir/${LONG_NAME}`)?.type).toBe('file');
      expect(ours.get(`/${UNICODE_NAME}`)?.type).toBe('file');
      for (const [path, e] of ours) {
        if (e.type !== 'file') continue;
        expect([path, Buffer.from(await fs.readFile(path)).equals(await readFile(join(out, path)))]).toEqual([path, true]);
      }
    });

    test('owners, modes and link targets agree with xorriso over the whole tree', async () => {
      const ref = parseXorrisoLs(await tool('xorriso', ['-indev', image, '-find', '/', '-exec', 'lsdl', '--']));
      expect(project(ours, ['type', 'mode', 'uid', 'gid', 'link'])).toEqual(project(ref, ['type', 'mode', 'uid', 'gid', 'link']));
      if (v.tool === 'genisoimage') expect(ours.get('/hello.txt')).toMatchObject({ uid: 1234, gid: 5678 });
    });

    test('modes and link targets agree with isoinfo -R -l', async () => {
      const ref = parseIsoinfo(await tool('isoinfo', ['-R', '-l', '-i', image]));
      // isoinfo does not follow Rock Ridge relocation (it shows genisoimage's rr_moved tree as
      // stored) and prints owners above 255 wrongly, so only the paths both show and no owners.
      const common = [...ours.keys()].filter((p) => ref.has(p));
      expect(common.length).toBeGreaterThan(ours.size * 0.9);
      const pick = (m: Map<string, Entry>): Map<string, Entry> => new Map(common.map((p) => [p, m.get(p)!]));
      expect(project(pick(ours), ['type', 'mode', 'link'])).toEqual(project(pick(ref), ['type', 'mode', 'link']));
      if (v.tool === 'xorriso') expect([...ours.keys()].sort()).toEqual([...ref.keys()].sort());
    });

    test('paths resolve through symlinks and relocated directories', async () => {
      expect(Buffer.from(await fs.readFile('/link-dir/nested/file.txt')).toString()).toBe('nested\n');
      expect(await fs.realpath('/dir/sub/up')).toBe('/hello.txt');
      expect(await fs.realpath('/link-abs')).toBe('/dir/sub/nested/file.txt');
      const deep = `/deep/${Array.from({ length: 10 }, (_, i) => `d${i + 1}`).join('/')}/bottom.txt`;
      expect(Buffer.from(await fs.readFile(deep)).toString()).toBe('at the bottom\n');
      expect((await fs.stat('/private')).mode).toBe(0o600);
      expect((await fs.stat('/dir/sub')).mode).toBe(0o750);
      await expect(fs.stat('/link-dangling')).rejects.toMatchObject({ code: 'fs.not-found' });
    });
  } else {
    test(`names, types, sizes and contents agree with isoinfo${v.naming === 'joliet' ? ' -J' : ''}`, async () => {
      const flag = v.naming === 'joliet' ? ['-J'] : [];
      const ref = parseIsoinfo(await run('isoinfo', [...flag, '-l', '-i', image], { env: TOOL_ENV, encoding: 'latin1', maxBuffer: BIG }).then((r) => r.stdout));
      const refNames = new Map([...ref].map(([p, e]) => [v.naming === 'plain' ? p.split('/').map(stripIsoVersion).join('/') : p, e]));
      const mine = new Map([...ours].map(([p, e]) => [v.naming === 'joliet' ? isoinfoJolietName(p) : p, e]));
      expect(project(mine, ['type', 'size'])).toEqual(project(refNames, ['type', 'size']));
      for (const [path, e] of ref) {
        if (e.type !== 'file') continue;
        const ourPath = v.naming === 'plain' ? path.split('/').map(stripIsoVersion).join('/') : [...ours.keys()].find((p) => isoinfoJolietName(p) === path)!;
        // isoinfo cannot name a file whose Joliet name leaves Latin-1: compare with the source.
        const data = ourPath === path || v.naming === 'plain'
          ? await toolBytes('isoinfo', [...flag, '-i', image, '-x', path])
          : await readFile(join(isoSrc, ourPath));
        expect([path, Buffer.from(await fs.readFile(ourPath)).equals(data)]).toEqual([path, true]);
      }
      // Without Rock Ridge there are no symlinks and no POSIX attributes: read-only defaults.
      expect(ours.get(v.naming === 'plain' ? '/HELLO.TXT' : '/hello.txt')).toMatchObject({ type: 'file', mode: 0o444, uid: 0 });
      // Lookups ignore case without Rock Ridge.
      expect(Buffer.from(await fs.readFile('/Dir/SUB/nested/File.Txt')).toString()).toBe('nested\n');
    });
  }
});

/** `blkid -o export` lines, with its backslash escapes undone. */
function parseBlkid(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/\\(.)/g, '$1')]));
}

/** `xorriso -find / -exec lsdl` lines: the tree as xorriso loads it (relocation undone), with owners. */
function parseXorrisoLs(text: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const line of text.split('\n')) {
    const m = /^(\S)(\S{9})\s+\d+\s+(\d+)\s+(\d+)\s+(\d+) .*? '(\/.*?)'( -> '(.*)')?$/.exec(line);
    if (m === null || m[6] === '/') continue;
    out.set(m[6]!, {
      type: LS_TYPES[m[1]!] ?? 'unknown', mode: modeBits(m[1]! + m[2]!), uid: Number(m[3]), gid: Number(m[4]), size: Number(m[5]),
      ...(m[8] === undefined ? {} : { link: m[8] }),
    });
  }
  return out;
}

describe('ISO 9660 zisofs', () => {
  test('files xorriso compressed with zisofs read back as the source', async () => {
    const src = join(work, 'zisofs-src');
    await mkdir(join(src, 'dir'), { recursive: true });
    // Text compresses; the zeros in the middle make empty zisofs blocks; random data is stored plain.
    const text = Buffer.concat([Buffer.from('compressible line of text\n'.repeat(4000)), Buffer.alloc(100_000), Buffer.from('tail\n'.repeat(3000))]);
    await writeFile(join(src, 'text'), text);
    await writeFile(join(src, 'dir/more.txt'), 'another compressible file\n'.repeat(2000));
    await writeFile(join(src, 'random.bin'), pseudoRandomBytes(50_000, 15));
    const image = join(work, 'zisofs.iso');
    await tool('xorriso', ['-outdev', image, '-map', src, '/', '-set_filter_r', '--zisofs', '/', '--', '-commit']);
    const raw = await readFile(image);
    let zf = 0;
    for (let at = raw.indexOf('ZF\x10\x01pz'); at >= 0; at = raw.indexOf('ZF\x10\x01pz', at + 1)) zf++;
    expect(zf).toBe(2);
    const fs = await open(image);
    for (const path of ['/text', '/dir/more.txt', '/random.bin']) {
      const source = await readFile(join(src, path));
      expect([path, (await fs.stat(path)).size, Buffer.from(await fs.readFile(path)).equals(source)]).toEqual([path, source.length, true]);
    }
    const range = Buffer.from(await fs.readRange('/text', 32_000, 90_000));
    expect(range.equals(text.subarray(32_000, 122_000))).toBe(true);
  });
});

function stripIsoVersion(name: string): string {
  return name.replace(/;\d+$/, '').replace(/(.)\.$/, '$1');
}

interface FatVariant {
  readonly name: string;
  readonly bits: 12 | 16 | 32;
  readonly sizeKiB: number;
  readonly extra: readonly string[];
}

const fatVariants: FatVariant[] = [
  { name: 'fat12', bits: 12, sizeKiB: 2048, extra: [] },
  { name: 'fat16', bits: 16, sizeKiB: 4096, extra: ['-s', '1'] },
  // 4096-byte logical sectors (4Kn disks).
  { name: 'fat16-4k-sectors', bits: 16, sizeKiB: 64 * 1024, extra: ['-S', '4096'] },
  // FAT32 needs 65,525 clusters: with 512-byte clusters, about 33 MiB (a sparse file here).
  { name: 'fat32', bits: 32, sizeKiB: 34 * 1024, extra: ['-s', '1'] },
];

async function buildFat(v: FatVariant, name = v.name): Promise<string> {
  const path = join(work, `${name}.img`);
  await tool('mkfs.vfat', ['-F', String(v.bits), ...v.extra, '-n', `VOL${v.bits}`, '-i', '1234ABCD', '-C', path, String(v.sizeKiB)]);
  const entries = await readdir(fatSrc);
  // A file copied into the gap a deleted one leaves is fragmented: its chain jumps.
  await writeFile(join(work, 'gap.bin'), pseudoRandomBytes(3000, 13));
  await tool('mcopy', ['-i', path, join(work, 'gap.bin'), '::gap.bin']);
  await tool('mcopy', ['-s', '-p', '-m', '-i', path, ...entries.map((e) => join(fatSrc, e)), '::']);
  await tool('mdel', ['-i', path, '::gap.bin']);
  await writeFile(join(work, 'fragmented.bin'), pseudoRandomBytes(9000, 14));
  await tool('mcopy', ['-i', path, join(work, 'fragmented.bin'), '::fragmented.bin']);
  await tool('mattrib', ['-i', path, '+r', '::hello.txt']);
  return path;
}

describe.each(fatVariants)('FAT $name', (v) => {
  let image: string;
  let fs: Filesystem;
  let ours: Map<string, Entry>;

  beforeAll(async () => {
    image = await buildFat(v);
    fs = await open(image);
    ours = await ourTree(fs);
  });

  test('label, UUID and type agree with blkid', async () => {
    const blkid = await tool('blkid', ['-p', '-o', 'export', image]);
    const fields = parseBlkid(blkid);
    expect({ type: fs.info.type, label: fs.info.label, uuid: fs.info.uuid }).toEqual({ type: fields.TYPE, label: fields.LABEL, uuid: fields.UUID });
    expect(fields.VERSION).toBe(`FAT${v.bits}`);
    expect(fs.info.uuid).toBe('1234-ABCD');
  });

  test('the tree agrees with mdir -/ -b and every file with mtype', async () => {
    const listing = await tool('mdir', ['-/', '-b', '-i', image, '::']);
    const ref = new Map<string, FileType>();
    for (const line of listing.split('\n')) {
      if (!line.startsWith('::/')) continue;
      const isDir = line.endsWith('/');
      ref.set(isDir ? line.slice(2, -1) : line.slice(2), isDir ? 'directory' : 'file');
    }
    expect(Object.fromEntries([...ours].map(([p, e]) => [p, e.type]).sort())).toEqual(Object.fromEntries([...ref].sort()));
    for (const [path, e] of ours) {
      if (e.type !== 'file') continue;
      const data = await toolBytes('mtype', ['-i', image, `::${path}`]);
      expect([path, e.size, Buffer.from(await fs.readFile(path)).equals(data)]).toEqual([path, data.length, true]);
    }
    expect(ours.has('/gap.bin')).toBe(false);
    expect(ours.get('/fragmented.bin')?.size).toBe(9000);
  });

  test('long names, 8.3 case flags, attributes and times', async () => {
    expect(ours.get('/lower.txt')).toMatchObject({ type: 'file', mode: 0o644 });
    expect(ours.get('/UPPER.TXT')).toBeDefined();
    expect(ours.get('/MiXeD.Txt')).toBeDefined();
    expect(ours.get(`/${UNICODE_NAME}`)).toBeDefined();
    expect(ours.get('/hello.txt')).toMatchObject({ mode: 0o444, uid: 0, gid: 0 });
    expect(ours.get('/Dir')).toMatchObject({ type: 'directory', mode: 0o755 });
    // mcopy -m keeps the host mtime, written as local time (TZ=UTC here), in 2-second steps.
    const host = await lstat(join(fatSrc, 'multi.bin'));
    const st = await fs.stat('/multi.bin');
    expect(st.mtime.getTime()).toBe(Math.floor(host.mtimeMs / 2000) * 2000);
    // Case-insensitive lookups and 8.3 aliases, as vfat does.
    expect(Buffer.from(await fs.readFile('/HELLO.TXT')).toString()).toBe('hello, fat\n');
    expect((await fs.stat('/dir/sub/DEEPER/F')).type).toBe('file');
    const alias = (await tool('mdir', ['-i', image, '::/Dir'])).split('\n').find((l) => l.includes('A very long'))!.slice(0, 12).replace(/ +/, '.').trim();
    expect(alias).toMatch(/~1\.TXT$/);
    expect((await fs.stat(`/Dir/${alias}`)).size).toBe(5);
    expect(Buffer.from(await fs.readRange('/multi.bin', 60_000, 20_000)).equals(pseudoRandomBytes(70_000, 12).subarray(60_000))).toBe(true);
  });
});

describe('wrapped and partitioned images', () => {
  test('a qcow2-wrapped ISO and FAT read through openImage give the same trees and data', async () => {
    const iso = await buildIso(isoVariants[0]!);
    const fat = await buildFat(fatVariants[1]!, 'fat16-for-qcow2');
    for (const raw of [iso, fat]) {
      const qcow2 = `${raw}.qcow2`;
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
      const a = await open(raw);
      const b = await openFilesystem(await openImage(qcow2, { format: 'qcow2' }));
      const treeA = await ourTree(a);
      expect(await ourTree(b)).toEqual(treeA);
      for (const [path, e] of treeA) {
        if (e.type === 'file') expect([path, Buffer.from(await b.readFile(path)).equals(Buffer.from(await a.readFile(path)))]).toEqual([path, true]);
      }
      await b.close();
    }
  });

  test('a FAT partition inside an MBR table opens as FILE:N and as the only filesystem', async () => {
    const fat = await buildFat(fatVariants[1]!, 'fat16-for-mbr');
    const disk = join(work, 'mbr-fat.img');
    await run('truncate', ['-s', '8M', disk]);
    await run('sh', ['-c', 'printf "label: dos\\nstart=2048, size=8192, type=e\\n" | sfdisk --quiet "$1"', 'sh', disk]);
    await run('dd', [`if=${fat}`, `of=${disk}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
    for (const target of [`${disk}:1`, disk]) {
      const opened = await openTargetFilesystem(target);
      expect(opened.partition?.number).toBe(1);
      expect(opened.fs.info).toMatchObject({ type: 'vfat', label: 'VOL16' });
      expect(Buffer.from(await opened.fs.readFile('/Dir/Sub/deeper/f')).toString()).toBe('deep\n');
      await opened.close();
    }
  });
});

describe('virtkit fs on ISO and FAT images', () => {
  test('fs ls and fs cat', async () => {
    const iso = await buildIso(isoVariants[0]!);
    const fat = await buildFat(fatVariants[0]!, 'fat12-for-cli');
    const isoLs = await cli(['fs', 'ls', iso, '/dir']);
    expect(isoLs).toMatchObject({ code: 0, stderr: '' });
    expect(isoLs.stdout.split('\n')).toEqual(expect.arrayContaining([LONG_NAME, 'sub']));
    expect(await cli(['fs', 'cat', iso, '/link-dir/nested/file.txt'])).toEqual({ code: 0, stdout: 'nested\n', stderr: '' });
    const fatLs = await cli(['fs', 'ls', fat, '/']);
    expect(fatLs.code).toBe(0);
    expect(fatLs.stdout.split('\n')).toEqual(expect.arrayContaining(['Dir', 'lower.txt', 'MiXeD.Txt', UNICODE_NAME]));
    expect(await cli(['fs', 'cat', fat, '/Dir/Sub/deeper/f'])).toEqual({ code: 0, stdout: 'deep\n', stderr: '' });
    const missing = await cli(['fs', 'cat', fat, '/nope']);
    expect(missing.code).not.toBe(0);
  });
});
