/**
 * The ext2/3/4 reader against debugfs over whole trees: every name, type, inode, mode,
 * owner, size, link count and mtime, and the contents of every file (debugfs rdump).
 */
import { readFile as hostReadFile, readlink as hostReadlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openFilesystem, type Filesystem } from '../../src/guestfs/fs/index.js';
import { walkTree, type WalkItem } from '../../src/guestfs/walk.js';
import { RawImage } from '../../src/storage/image/raw.js';
import { isVirtkitError } from '../../src/util/errors.js';
import {
  buildExtImage, buildSourceTree, debugfsBatch, removeDir, run, tempDir, type ExtVariant,
} from './guestfs-fixtures.js';

/**
 * `big`: the tree with ~3000 files in one (htree) directory. The others use the smaller tree,
 * which adds a 70 MiB sparse file reaching triple-indirect blocks on 1 KiB-block variants.
 */
const variants: (ExtVariant & { tree: 'big' | 'small' | 'plain' })[] = [
  { name: 'ext2-1k', type: 'ext2', blockSize: 1024, inodeSize: 128, tree: 'small' },
  // Without the filetype feature, entry types come from the inodes.
  { name: 'ext2-nofiletype', type: 'ext2', blockSize: 4096, features: '^filetype', tree: 'plain' },
  { name: 'ext3-1k', type: 'ext3', blockSize: 1024, tree: 'small' },
  { name: 'ext4-4k', type: 'ext4', blockSize: 4096, tree: 'big' },
  { name: 'ext4-1k-noextent', type: 'ext4', blockSize: 1024, features: '^extent,^64bit', tree: 'small' },
  // mke2fs -d with inline_data truncates the size of a sparse file of 70 MiB (debugfs agrees
  // with the image), so the inline variant is built from a tree without it.
  { name: 'ext4-inline', type: 'ext4', blockSize: 4096, features: 'inline_data', tree: 'plain' },
  { name: 'ext4-64bit-meta', type: 'ext4', blockSize: 1024, features: '64bit,meta_bg,^resize_inode', tree: 'small' },
  { name: 'ext4-nocsum', type: 'ext4', blockSize: 4096, features: '^metadata_csum,uninit_bg,^flex_bg', tree: 'small' },
  // 64 KiB blocks: directory rec_len values of 65536 are stored specially.
  { name: 'ext4-64k', type: 'ext4', blockSize: 65536, tree: 'plain' },
];
const MANY = { big: 3000, small: 300, plain: 300 } as const;

const MODE_TYPES: Record<number, string> = {
  0o010000: 'fifo', 0o020000: 'chardev', 0o040000: 'directory', 0o060000: 'blockdev', 0o100000: 'file', 0o120000: 'symlink', 0o140000: 'socket',
};

const DEBUGFS_TYPES: Record<string, string> = {
  1: 'file', 2: 'directory', 3: 'chardev', 4: 'blockdev', 5: 'fifo', 6: 'socket', 7: 'symlink',
};

let work: string;
const sources = { big: '', small: '', plain: '' };

beforeAll(async () => {
  work = await tempDir('guestfs-ext');
  sources.big = join(work, 'src-big');
  sources.small = join(work, 'src-small');
  await buildSourceTree(sources.big, { manyFiles: MANY.big, tripleIndirect: false });
  await buildSourceTree(sources.small, { manyFiles: MANY.small, tripleIndirect: true });
  sources.plain = join(work, 'src-plain');
  await buildSourceTree(sources.plain, { manyFiles: MANY.plain, tripleIndirect: false });
});

afterAll(async () => {
  await removeDir(work);
});

interface RefEntry { inode: number; mode: number; type: string; uid: number; gid: number; size: number }

/** Parses `ls -l` lines: inode, octal mode, (dirent type), uid, gid, size, date, time, name. */
function parseLs(text: string): Map<string, RefEntry> {
  const out = new Map<string, RefEntry>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+\((\d+)\)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s(.*)$/.exec(line);
    if (m === null) continue;
    const name = m[7]!;
    if (name === '.' || name === '..') continue;
    const mode = parseInt(m[2]!, 8);
    out.set(name, {
      inode: Number(m[1]), mode, type: DEBUGFS_TYPES[m[3]!] ?? MODE_TYPES[mode & 0o170000] ?? 'unknown',
      uid: Number(m[4]), gid: Number(m[5]), size: Number(m[6]),
    });
  }
  return out;
}

function describeDifference(ours: Uint8Array, ref: Buffer): string {
  if (ref.equals(ours)) return 'same';
  const head = (b: Uint8Array): string => Buffer.from(b.subarray(0, 32)).toString('hex');
  return `ours ${ours.length} bytes ${head(ours)}..., reference ${ref.length} bytes ${head(ref)}...`;
}

async function collect(fs: Filesystem): Promise<WalkItem[]> {
  const items: WalkItem[] = [];
  for await (const item of walkTree(fs, '/')) items.push(item);
  return items;
}

describe.each(variants)('$name', (variant) => {
  let image: string;
  let src: string;
  let fs: Filesystem;
  let items: WalkItem[];

  beforeAll(async () => {
    image = join(work, `${variant.name}.img`);
    src = sources[variant.tree];
    await buildExtImage(image, src, variant, 48);
    fs = await openFilesystem(await RawImage.open(image));
    items = await collect(fs);
  });

  afterAll(async () => {
    await fs.close();
  });

  test('reports type, label and UUID', () => {
    expect(fs.info.type).toBe(variant.type);
    expect(fs.info.label).toBe(variant.name.slice(0, 16));
    expect(fs.info.uuid).toBe('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0');
    expect(fs.info.size).toBe(48 * 1024 * 1024);
    expect(fs.info.warnings).toEqual([]);
  });

  test('every directory listing matches debugfs ls -l', async () => {
    const dirs = ['/', ...items.filter((i) => i.entry.type === 'directory').map((i) => i.path)];
    const outputs = await debugfsBatch(image, dirs.map((d) => `ls -l "${d}"`));
    expect(outputs).toHaveLength(dirs.length);
    let compared = 0;
    for (const [i, dir] of dirs.entries()) {
      const ref = parseLs(outputs[i]!);
      const ours = await fs.readdir(dir);
      expect(ours.map((e) => e.name).sort(), dir).toEqual([...ref.keys()].sort());
      for (const e of ours) {
        const r = ref.get(e.name)!;
        const path = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
        const st = await fs.lstat(path);
        expect({ path, type: e.type, inode: e.inode, ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size })
          .toEqual({ path, type: r.type, inode: r.inode, ino: r.inode, mode: r.mode & 0o7777, uid: r.uid, gid: r.gid, size: r.size });
        expect(st.type).toBe(r.type);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(MANY[variant.tree] + 50);
  });

  test('link counts and mtimes match debugfs stat', async () => {
    const sample = items.filter((i) => !i.path.startsWith('/many/') || i.path.endsWith('00007-with-a-longer-name'));
    const outputs = await debugfsBatch(image, sample.map((i) => `stat "${i.path}"`));
    for (const [k, item] of sample.entries()) {
      const text = outputs[k]!;
      const links = Number(/Links: (\d+)/.exec(text)![1]);
      const mtime = parseInt(/mtime: 0x([0-9a-f]+)/.exec(text)![1]!, 16);
      const st = await fs.lstat(item.path);
      expect({ path: item.path, nlink: st.nlink, mtime: Math.floor(st.mtime.getTime() / 1000) })
        .toEqual({ path: item.path, nlink: links, mtime });
    }
  });

  // debugfs rdump writes inline-data files padded to their 60-byte inline area, so its
  // output is compared up to the file size, and the source tree gives the exact bytes.
  test('every file and symlink matches the source tree and debugfs rdump', async () => {
    const dump = join(work, `${variant.name}-dump`);
    await run('mkdir', ['-p', dump]);
    // debugfs needs seconds to rdump thousands of files: /many of the big tree is checked
    // against the source tree only.
    const top = (await fs.readdir('/')).map((e) => `"/${e.name}"`).filter((n) => variant.tree !== 'big' || n !== '"/many"');
    await debugfsBatch(image, [`rdump ${top.join(' ')} ${dump}`]);
    let files = 0;
    for (const item of items) {
      const host = join(dump, item.path);
      if (item.entry.type === 'file') {
        const ours = await fs.readFile(item.path);
        if (variant.tree !== 'big' || !item.path.startsWith('/many/')) {
          const ref = await hostReadFile(host);
          expect(describeDifference(ours, ref.subarray(0, ours.length)), item.path).toBe('same');
        }
        expect(describeDifference(ours, await hostReadFile(join(src, item.path))), item.path).toBe('same');
        files++;
      } else if (item.entry.type === 'symlink') {
        expect(await fs.readlink(item.path), item.path).toBe(await hostReadlink(host));
      }
    }
    expect(files).toBeGreaterThan(MANY[variant.tree]);
  });

  test('holes read as zeros and data beyond the hole is found', async () => {
    const sparse = await fs.readFile('/sparse.bin');
    expect(sparse.length).toBe(10 * 1024 * 1024);
    expect(Buffer.from(sparse.subarray(5 * 1024 * 1024 + 100, 5 * 1024 * 1024 + 118)).toString()).toBe('middle of the hole');
    expect(sparse.subarray(0, 5 * 1024 * 1024).every((b) => b === 0)).toBe(true);
  });

  test('symlinks: fast, slow, absolute, relative through directories, loops', async () => {
    expect(await fs.readlink('/link-long')).toBe(`/${'long-directory-name/'.repeat(5)}target-file`);
    expect(Buffer.from(await fs.readFile('/link-abs')).toString()).toContain('ID=testlinux');
    expect(await fs.realpath('/link-dir/d3/../d3')).toBe('/deep/d1/d2/d3');
    expect(await fs.realpath('/link-short')).toBe('/small.txt');
    expect((await fs.stat('/link-short')).type).toBe('file');
    expect((await fs.lstat('/link-short')).type).toBe('symlink');
    await expect(fs.stat('/loop-a')).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.symlink-loop'));
    await expect(fs.stat('/link-dangling')).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.not-found'));
    await expect(fs.readdir('/small.txt')).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.not-a-directory'));
    await expect(fs.readFile('/deep')).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.is-a-directory'));
    await expect(fs.readFile('/large.bin', { maxBytes: 1000 })).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.too-large'));
  });

  test('hard links share an inode; ownership keeps its high bits', async () => {
    const a = await fs.stat('/small.txt');
    const b = await fs.stat('/hardlink.txt');
    expect(b.ino).toBe(a.ino);
    expect(a.nlink).toBe(2);
    const owned = await fs.stat('/owned');
    expect([owned.uid, owned.gid]).toEqual([70000, 70001]);
    expect((await fs.stat('/setuid')).mode).toBe(0o4755);
  });

  test('createReadStream yields the same bytes as readFile', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of fs.createReadStream('/large.bin')) chunks.push(chunk as Buffer);
    expect(Buffer.compare(Buffer.concat(chunks), Buffer.from(await fs.readFile('/large.bin')))).toBe(0);
  });
});

test('the htree directory is really indexed, and the inline variant really inlines', async () => {
  const image = join(work, 'ext4-4k.img');
  const [many] = await debugfsBatch(image, ['stat /many']);
  expect(parseInt(/Flags: 0x([0-9a-f]+)/.exec(many!)![1]!, 16) & 0x1000).toBe(0x1000);
  const inline = join(work, 'ext4-inline.img');
  const [small, etc] = await debugfsBatch(inline, ['stat /small.txt', 'stat /etc']);
  expect(parseInt(/Flags: 0x([0-9a-f]+)/.exec(small!)![1]!, 16) & 0x10000000).toBe(0x10000000);
  expect(parseInt(/Flags: 0x([0-9a-f]+)/.exec(etc!)![1]!, 16) & 0x10000000).toBe(0x10000000);
});

test('a superblock checksum mismatch (metadata_csum) is a warning', async () => {
  const image = join(work, 'csum.img');
  await buildExtImage(image, join(sources.small, 'etc'), { name: 'csum', type: 'ext4', blockSize: 4096 }, 8);
  const bytes = await hostReadFile(image);
  bytes.writeUInt8(bytes.readUInt8(1024 + 0x3a0) ^ 0xff, 1024 + 0x3a0); // s_reserved: harmless except to the checksum
  await writeFile(image, bytes);
  const fs = await openFilesystem(await RawImage.open(image));
  try {
    expect(fs.info.warnings).toEqual(['superblock checksum mismatch (read through; --strict refuses it)']);
    expect(Buffer.from(await fs.readFile('/hostname')).toString()).toBe('testhost\n');
  } finally {
    await fs.close();
  }
});

test('a journal that needs recovery is a warning, not replayed', async () => {
  const image = join(work, 'recover.img');
  await buildExtImage(image, join(sources.small, 'etc'), { name: 'recover', type: 'ext4', blockSize: 4096 }, 8);
  await run('debugfs', ['-w', '-R', 'feature needs_recovery', image]);
  const fs = await openFilesystem(await RawImage.open(image));
  try {
    expect(fs.info.warnings.join('\n')).toMatch(/journal needs recovery/);
    expect(Buffer.from(await fs.readFile('/hostname')).toString()).toBe('testhost\n');
  } finally {
    await fs.close();
  }
});
