/**
 * Fuzzes the ext reader: 10,000 mutated 1 MiB images (superblock, group descriptors, inode
 * tables, directory, extent and indirect blocks, inline data). Every outcome must be data,
 * data with a warning (a checksum read through, a damaged subtree skipped by a tolerant walk)
 * or a typed `fs.*` error, in bounded time; no stat ever presents an inode that was not read
 * (a zero-filled inode, or one without a file type). The regression corpus in test/fixtures/fs/
 * holds one image per fault the reader guards against (made by make-corpus.py there), each
 * with the exact typed error it must give. Faults the fuzz loop finds are added to it.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openFilesystem, type FileStat, type Filesystem } from '../../src/guestfs/fs/index.js';
import { walkTree } from '../../src/guestfs/walk.js';
import { isVirtkitError } from '../../src/util/errors.js';
import {
  PatchedMemoryDevice, buildExtImage, pseudoRandomBytes, removeDir, run, tempDir, type ExtVariant,
} from './guestfs-fixtures.js';

/** 10,000 in CI; VIRTKIT_FUZZ_ITERATIONS runs a longer campaign locally. */
const ITERATIONS = Number(process.env.VIRTKIT_FUZZ_ITERATIONS ?? 10_000);
const CORPUS = join(import.meta.dirname, '../fixtures/fs');
/** Set to a directory to keep every image whose outcome was not data or a typed error. */
const SAVE_DIR = process.env.VIRTKIT_FUZZ_SAVE;

const variants: ExtVariant[] = [
  { name: 'fuzz-ext2', type: 'ext2', blockSize: 1024, inodeSize: 128 },
  { name: 'fuzz-ext4', type: 'ext4', blockSize: 1024 },
  { name: 'fuzz-inline', type: 'ext4', blockSize: 1024, features: 'inline_data' },
];

/** Damage a tolerant walk went past, and checksums read through, in the current iteration. */
let noticed = 0;
/** The current iteration reads under the strict policy (--strict): damage is an error, never a warning. */
let strict = false;

/** Walks the whole tree and reads everything, with small limits; damaged subtrees are skipped and counted. */
async function exercise(fs: Filesystem, dev?: PatchedMemoryDevice): Promise<void> {
  let seen = 0;
  for await (const item of walkTree(fs, '/', { maxDepth: 32, strict, onSkip: () => { noticed++; } })) {
    if (++seen > 200) break;
    if (dev !== undefined) dev.phase = 'walk';
    await exercisePath(fs, item.path, () => { if (dev !== undefined) dev.phase = 'file'; });
  }
}

/** What a user can ask of one path: stat it, then list it, read it or follow it. */
async function exercisePath(fs: Filesystem, path: string, beforeRead: () => void = () => {}): Promise<void> {
  const st = await fs.lstat(path);
  assertRead(st, path);
  if (st.type === 'symlink') {
    await fs.readlink(path);
    await fs.realpath(path).catch(ignoreFsError);
  } else if (st.type === 'file') {
    beforeRead();
    await fs.readFile(path, { maxBytes: 1 << 20 });
  } else if (st.type === 'directory') {
    await fs.readdir(path);
  }
}

/** What a reader never presents: a node without a file type, or an inode of nothing but zeros. */
function assertRead(st: FileStat, path: string): void {
  const zeroFilled = st.mode === 0 && st.uid === 0 && st.gid === 0 && st.size === 0 && st.nlink === 0
    && st.mtime.getTime() === 0 && st.ctime.getTime() === 0 && st.atime.getTime() === 0;
  if (st.type === 'unknown' || zeroFilled) {
    throw new Error(`${path}: an inode that was not read is presented as ${st.type} (mode ${st.mode}, inode ${st.ino})`);
  }
}

function ignoreFsError(err: unknown): void {
  if (!isTypedFsError(err)) throw err;
}

function isTypedFsError(err: unknown): boolean {
  return isVirtkitError(err) && (err.code.startsWith('fs.') || err.code === 'argument.invalid');
}

/** xorshift32: reproducible mutations from the iteration's seed. */
function prng(seed: number): () => number {
  // Spread small consecutive seeds over the state space, then warm up the generator.
  let x = Math.imul(seed, 0x9e3779b9) >>> 0 || 0x9e3779b9;
  const step = (): number => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  for (let i = 0; i < 8; i++) step();
  return step;
}

const INTERESTING_U32 = [0, 1, 2, 0x7f, 0xff, 0x100, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 11, 12, 0xf30a];

let work: string;
interface FuzzImage {
  readonly name: string;
  readonly base: Buffer;
  readonly metadata: { walk: number[]; file: number[] };
  /** Every path of the clean image: most iterations exercise one of them, which keeps 10,000 runs fast. */
  readonly paths: string[];
}
const images: FuzzImage[] = [];

beforeAll(async () => {
  work = await tempDir('guestfs-fuzz');
  const src = join(work, 'src');
  await run('mkdir', ['-p', join(src, 'dir/sub'), join(src, 'many')]);
  await writeFile(join(src, 'small'), 'small file\n');
  await writeFile(join(src, 'dir/sub/file'), pseudoRandomBytes(20_000, 7));
  await writeFile(join(src, 'blocks'), pseudoRandomBytes(40_000, 8));
  // Reaches double-indirect blocks (1 KiB blocks) with holes in between.
  await writeFile(join(src, 'dind'), 'start');
  await run('truncate', ['-s', '300K', join(src, 'dind')]);
  await run('dd', ['if=/dev/urandom', `of=${join(src, 'dind')}`, 'bs=1K', 'count=2', 'seek=290', 'conv=notrunc', 'status=none']);
  await run('ln', ['-s', 'small', join(src, 'link')]);
  await run('ln', ['-s', `/${'x'.repeat(90)}`, join(src, 'longlink')]);
  for (let i = 0; i < 30; i++) await writeFile(join(src, 'many', `entry-number-${i}`), `${i}`);
  // Data islands in a sparse file: many extents, so the extent tree gets a second level.
  await writeFile(join(src, 'islands'), '');
  await run('truncate', ['-s', '60K', join(src, 'islands')]);
  for (let i = 0; i < 20; i++) {
    await run('dd', ['if=/dev/urandom', `of=${join(src, 'islands')}`, 'bs=1', 'count=1', `seek=${i * 3072}`, 'conv=notrunc', 'status=none']);
  }
  for (const v of variants) {
    const path = join(work, `${v.name}.img`);
    await buildExtImage(path, src, v, 1);
    const base = await readFile(path);
    const paths: string[] = ['/'];
    for await (const item of walkTree(await openFilesystem(new PatchedMemoryDevice(base)), '/')) paths.push(item.path);
    images.push({ name: v.name, base, metadata: await metadataOffsets(base), paths });
  }
});

afterAll(async () => {
  await removeDir(work);
});

/**
 * Byte offsets of metadata the reader touches in a clean walk: where mutations bite. Reads
 * while walking are metadata (superblock, descriptors, inodes, directories); while reading
 * files only whole aligned 1 KiB blocks count (extent nodes, indirect blocks), not file data.
 */
async function metadataOffsets(base: Buffer): Promise<{ walk: number[]; file: number[] }> {
  const dev = new PatchedMemoryDevice(base);
  dev.trace = [];
  const fs = await openFilesystem(dev);
  await exercise(fs, dev);
  const walk = new Set<number>();
  const file = new Set<number>();
  for (const r of dev.trace) {
    const isMetaBlock = r.length === 1024 && r.offset % 1024 === 0;
    if (r.phase === 'file' && !isMetaBlock) continue;
    for (let o = r.offset; o < r.offset + r.length; o++) (r.phase === 'file' ? file : walk).add(o);
  }
  return { walk: [...walk], file: [...file] };
}

function mutate(dev: PatchedMemoryDevice, metadata: { walk: number[]; file: number[] }, next: () => number): void {
  const count = 1 + (next() % 4);
  for (let m = 0; m < count; m++) {
    const pool = metadata.file.length > 0 && next() % 4 === 0 ? metadata.file : metadata.walk;
    const at = pool[next() % pool.length]!;
    const kind = next() % 4;
    if (kind === 0) {
      dev.patches.set(at, next() & 0xff);
    } else if (kind === 1) {
      dev.patches.set(at, (dev.patches.get(at) ?? 0) ^ (1 << (next() % 8)));
    } else {
      const value = kind === 2 ? INTERESTING_U32[next() % INTERESTING_U32.length]! : next();
      const aligned = at & ~3;
      for (let b = 0; b < 4; b++) dev.patches.set(aligned + b, (value >>> (8 * b)) & 0xff);
    }
  }
}

describe('ext reader fuzz', () => {
  test(`${ITERATIONS} mutated images give data or a typed error`, async () => {
    const outcomes = { data: 0, warning: 0, typed: 0 };
    const failures: string[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      // Let the test runner's own I/O through: the loop otherwise runs on microtasks only.
      if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
      const image = images[i % images.length]!;
      const dev = new PatchedMemoryDevice(image.base);
      const next = prng(i + 1);
      mutate(dev, image.metadata, next);
      noticed = 0;
      // One iteration in five reads as --strict does.
      strict = i % 5 === 4;
      try {
        const fs = await openFilesystem(dev, { strict, warn: () => { noticed++; } });
        // One iteration in ten walks everything; the others exercise one path of the tree.
        if (i % 10 === 0) await exercise(fs);
        else await exercisePath(fs, image.paths[next() % image.paths.length]!);
        if (strict && noticed > 0) failures.push(`seed ${i + 1} (${image.name}): a warning under the strict policy`);
        if (noticed > 0) outcomes.warning++;
        else outcomes.data++;
      } catch (err) {
        if (isTypedFsError(err)) {
          const data = (err as { data: Record<string, unknown> }).data;
          if ((err as { code: string }).code === 'fs.corrupt' && (typeof data.structure !== 'string' || typeof data.offset !== 'number')) {
            failures.push(`seed ${i + 1} (${image.name}): fs.corrupt without structure/offset: ${String(err)}`);
          }
          outcomes.typed++;
          if (process.env.VIRTKIT_FUZZ_DEBUG !== undefined) console.log((err as Error).message);
        } else {
          failures.push(`seed ${i + 1} (${image.name}): ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
          if (SAVE_DIR !== undefined) await writeFile(join(SAVE_DIR, `${image.name}-seed${i + 1}.img.gz`), gzipSync(dev.materialize()));
        }
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(outcomes.data + outcomes.warning + outcomes.typed).toBe(ITERATIONS);
    // Every outcome occurs: the mutations reach real metadata and do not all fail at once.
    expect(outcomes.data).toBeGreaterThan(ITERATIONS / 20);
    expect(outcomes.warning).toBeGreaterThan(ITERATIONS / 100);
    expect(outcomes.typed).toBeGreaterThan(ITERATIONS / 100);
    console.log(`ext fuzz outcomes: ${JSON.stringify(outcomes)}`);
  }, Math.max(120_000, ITERATIONS * 10));
});

/** Each corpus image (made by test/fixtures/fs/make-corpus.py) and what reading it must give. */
const corpusCases: { image: string; op: (fs: Filesystem) => Promise<unknown>; code: string; structure?: string }[] = [
  { image: 'ext-extent-cycle', op: (fs) => fs.readFile('/islands'), code: 'fs.corrupt', structure: 'ext extent index' },
  { image: 'ext-extent-too-deep', op: (fs) => fs.readFile('/islands'), code: 'fs.corrupt', structure: 'ext extent header' },
  { image: 'ext-extent-self-reference', op: (fs) => fs.readFile('/islands'), code: 'fs.corrupt', structure: 'ext extent header' },
  { image: 'ext-extent-beyond-device', op: (fs) => fs.readFile('/file'), code: 'fs.corrupt', structure: 'ext extent' },
  { image: 'ext-dirent-reclen-zero', op: (fs) => fs.readdir('/'), code: 'fs.corrupt', structure: 'ext directory entry' },
  { image: 'ext-dirent-reclen-overlong', op: (fs) => fs.readdir('/'), code: 'fs.corrupt', structure: 'ext directory entry' },
  { image: 'ext-dirent-inode-out-of-range', op: (fs) => fs.readdir('/'), code: 'fs.corrupt', structure: 'ext directory entry' },
  { image: 'ext-size-beyond-limit', op: (fs) => fs.stat('/file'), code: 'fs.corrupt', structure: 'ext inode' },
  { image: 'ext-symlink-loop', op: (fs) => fs.stat('/loop-a'), code: 'fs.symlink-loop' },
  { image: 'ext-directory-cycle', op: (fs) => exercise(fs), code: 'data' },
];

async function openCorpusImage(name: string): Promise<Filesystem> {
  return openFilesystem(new PatchedMemoryDevice(gunzipSync(await readFile(join(CORPUS, `${name}.img.gz`)))));
}

describe('regression corpus', () => {
  test.each(corpusCases)('$image gives $code', async ({ image, op, code, structure }) => {
    const fs = await openCorpusImage(image);
    const outcome = await op(fs).then(() => ({ code: 'data' }), (err: unknown) => {
      if (!isVirtkitError(err)) throw err;
      return { code: err.code, structure: err.data.structure, offset: err.data.offset };
    });
    expect(outcome.code).toBe(code);
    if (structure !== undefined) {
      expect(outcome).toEqual({ code, structure, offset: expect.any(Number) });
    }
  });

  test('every ext image in test/fixtures/fs is covered and gives data or a typed error on a whole walk', async () => {
    const names = (await readdir(CORPUS)).filter((n) => n.startsWith('ext-') && n.endsWith('.img.gz')).map((n) => n.replace(/\.img\.gz$/, '')).sort();
    expect(names).toEqual(corpusCases.map((c) => c.image).sort());
    for (const name of names) {
      const outcome = await openCorpusImage(name).then(exercise).then(() => 'data', (err: unknown) => {
        if (isTypedFsError(err)) return 'typed';
        return `untyped: ${String(err)}`;
      });
      expect([name, outcome]).toEqual([name, expect.stringMatching(/^(data|typed)$/)]);
    }
  });
});
