/**
 * Fuzzes the ISO 9660 and FAT readers: 10,000 mutated images each (volume descriptors,
 * directory records, Rock Ridge areas, zisofs headers; boot sectors, FATs, directory entries), built small
 * at test time. Every outcome must be data or a typed error, in bounded time. The regression
 * corpora in test/fixtures/fs/{iso9660,fat}/ (made by make-corpus.py there) hold one image
 * per fault the readers guard against, each with the exact typed error it must give.
 */
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openFilesystem, type Filesystem } from '../../src/guestfs/fs/index.js';
import { walkTree } from '../../src/guestfs/walk.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { PatchedMemoryDevice, pseudoRandomBytes, removeDir, run, tempDir } from './guestfs-fixtures.js';

/** 10,000 in CI; VIRTKIT_FUZZ_ITERATIONS runs a longer campaign locally. */
const ITERATIONS = Number(process.env.VIRTKIT_FUZZ_ITERATIONS ?? 10_000);
const FIXTURES = join(import.meta.dirname, '../fixtures/fs');
/** Set to a directory to keep every image whose outcome was not data or a typed error. */
const SAVE_DIR = process.env.VIRTKIT_FUZZ_SAVE;

async function exercise(fs: Filesystem): Promise<void> {
  let seen = 0;
  for await (const item of walkTree(fs, '/', { maxDepth: 32 })) {
    if (++seen > 200) break;
    await exercisePath(fs, item.path);
  }
}

async function exercisePath(fs: Filesystem, path: string): Promise<void> {
  const st = await fs.lstat(path);
  if (st.type === 'symlink') {
    await fs.readlink(path);
    await fs.realpath(path).catch(ignoreTypedError);
  } else if (st.type === 'file') {
    await fs.readFile(path, { maxBytes: 1 << 20 });
  } else if (st.type === 'directory') {
    await fs.readdir(path);
  }
}

function isTypedError(err: unknown): boolean {
  return isVirtkitError(err) && (err.code.startsWith('fs.') || err.code === 'argument.invalid');
}

function ignoreTypedError(err: unknown): void {
  if (!isTypedError(err)) throw err;
}

/** xorshift32 seeded per iteration, so a failure names a reproducible seed. */
function prng(seed: number): () => number {
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

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x800, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x0ffffff7, 0x0ffffff8];

interface FuzzImage {
  readonly name: string;
  readonly base: Buffer;
  /** Device offsets the reader reads as metadata on a clean walk: where mutations bite. */
  readonly metadata: number[];
  readonly paths: string[];
}

/** Records read ranges: everything but whole-file data reads counts as metadata. */
class TracingDevice extends PatchedMemoryDevice {
  readonly ranges: { offset: number; length: number }[] = [];
  override async read(offset: number, length: number): Promise<Uint8Array> {
    this.ranges.push({ offset, length });
    return super.read(offset, length);
  }
}

async function prepare(name: string, path: string, keep: (offset: number, length: number) => number, readFiles = false): Promise<FuzzImage> {
  const base = await readFile(path);
  const fs = await openFilesystem(new PatchedMemoryDevice(base));
  const paths = ['/'];
  const files = new Set<string>();
  for await (const item of walkTree(fs, '/')) {
    paths.push(item.path);
    if (item.entry.type === 'file') files.add(item.path);
  }
  // Trace a walk that lists and stats everything but reads no file data.
  const dev = new TracingDevice(base);
  const traced = await openFilesystem(dev);
  for (const p of paths) {
    const st = await traced.lstat(p);
    if (st.type === 'directory') await traced.readdir(p);
    if (st.type === 'symlink') await traced.readlink(p);
    // Compressed files keep metadata in their data (zisofs headers and block tables).
    if (readFiles && st.type === 'file') await traced.readFile(p);
  }
  const metadata = new Set<number>();
  for (const r of dev.ranges) {
    const n = keep(r.offset, r.length);
    for (let o = r.offset; o < r.offset + n; o++) metadata.add(o);
  }
  return { name, base, metadata: [...metadata], paths };
}

function mutate(dev: PatchedMemoryDevice, image: FuzzImage, next: () => number): void {
  const count = 1 + (next() % 4);
  for (let m = 0; m < count; m++) {
    const at = image.metadata[next() % image.metadata.length]!;
    const kind = next() % 4;
    if (kind === 0) {
      dev.patches.set(at, next() & 0xff);
    } else if (kind === 1) {
      dev.patches.set(at, (dev.patches.get(at) ?? image.base[at]!) ^ (1 << (next() % 8)));
    } else {
      const value = kind === 2 ? INTERESTING[next() % INTERESTING.length]! : next();
      const width = next() % 2 === 0 ? 2 : 4;
      for (let b = 0; b < width; b++) dev.patches.set(at + b, (value >>> (8 * b)) & 0xff);
    }
  }
}

async function fuzz(images: readonly FuzzImage[]): Promise<void> {
  const outcomes = { data: 0, typed: 0 };
  const failures: string[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    // Let the runner's own I/O through: the loop otherwise runs on microtasks only.
    if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
    const image = images[i % images.length]!;
    const dev = new PatchedMemoryDevice(image.base);
    const next = prng(i + 1);
    mutate(dev, image, next);
    try {
      const fs = await openFilesystem(dev);
      // One iteration in ten walks everything; the others exercise one path.
      if (i % 10 === 0) await exercise(fs);
      else await exercisePath(fs, image.paths[next() % image.paths.length]!);
      outcomes.data++;
    } catch (err) {
      if (isTypedError(err)) {
        const data = (err as { data: Record<string, unknown> }).data;
        if ((err as { code: string }).code === 'fs.corrupt' && (typeof data.structure !== 'string' || typeof data.offset !== 'number')) {
          failures.push(`seed ${i + 1} (${image.name}): fs.corrupt without structure/offset: ${String(err)}`);
        }
        outcomes.typed++;
      } else {
        failures.push(`seed ${i + 1} (${image.name}): ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        if (SAVE_DIR !== undefined) await writeFile(join(SAVE_DIR, `${image.name}-seed${i + 1}.img.gz`), gzipSync(dev.materialize()));
      }
    }
  }
  expect(failures.slice(0, 5)).toEqual([]);
  expect(outcomes.data + outcomes.typed).toBe(ITERATIONS);
  // Both outcomes occur: mutations reach real metadata and do not all fail at once.
  expect(outcomes.data).toBeGreaterThan(ITERATIONS / 20);
  expect(outcomes.typed).toBeGreaterThan(ITERATIONS / 50);
}

let work: string;
const isoImages: FuzzImage[] = [];
const fatImages: FuzzImage[] = [];

beforeAll(async () => {
  work = await tempDir('guestfs-iso-fat-fuzz');
  const src = join(work, 'src');
  let deep = join(src, 'deep');
  for (let i = 1; i <= 9; i++) deep = join(deep, `d${i}`);
  await mkdir(deep, { recursive: true });
  await mkdir(join(src, 'dir/sub'), { recursive: true });
  await writeFile(join(src, 'small.txt'), 'small\n');
  await writeFile(join(src, 'dir/sub/data.bin'), pseudoRandomBytes(70_000, 21));
  await writeFile(join(src, `${'long-name-'.repeat(12)}.txt`), 'long\n');
  await writeFile(join(deep, 'bottom'), 'bottom\n');
  await run('ln', ['-s', 'small.txt', join(src, 'link')]);
  await run('ln', ['-s', `/${'component/'.repeat(30)}end`, join(src, 'longlink')]);
  for (let i = 0; i < 40; i++) await writeFile(join(src, 'dir', `File Number ${i} With A Long Name`), `${i}`);

  const iso = async (name: string, cmd: string, args: string[]): Promise<void> => {
    const path = join(work, `${name}.iso`);
    await run(cmd, [...args, '-quiet', '-o', path, src]);
    // Directory and Rock Ridge reads are metadata; a read of file data is a whole extent, left out.
    isoImages.push(await prepare(name, path, (_o, l) => l));
  };
  await iso('xorriso-rr', 'xorriso', ['-as', 'mkisofs', '-R', '-J']);
  await iso('genisoimage-rr-reloc', 'genisoimage', ['-R', '-J']);
  await iso('genisoimage-joliet', 'genisoimage', ['-J']);
  // zisofs: the small reads of headers and block pointer tables are mutated too.
  await writeFile(join(src, 'dir/sub/text'), 'compressible text\n'.repeat(5000));
  const zisofs = join(work, 'zisofs.iso');
  await run('xorriso', ['-outdev', zisofs, '-map', src, '/', '-set_filter_r', '--zisofs', '/', '--', '-commit']);
  isoImages.push(await prepare('xorriso-zisofs', zisofs, (_o, l) => (l <= 4096 ? l : 0), true));

  const fat = async (bits: number, sizeKiB: number, extra: string[]): Promise<void> => {
    const path = join(work, `fat${bits}.img`);
    await run('mkfs.vfat', ['-F', String(bits), ...extra, '-n', `FUZZ${bits}`, '-C', path, String(sizeKiB)]);
    await run('mcopy', ['-s', '-i', path, join(src, 'small.txt'), join(src, 'dir'), join(src, 'deep'), '::']);
    // FAT reads come in 32 KiB chunks: only their head maps the clusters this small tree uses.
    fatImages.push(await prepare(`fat${bits}`, path, (_o, l) => (l === 32 * 1024 ? 2048 : l)));
  };
  await fat(12, 1024, []);
  await fat(16, 2600, ['-s', '1']);
  await fat(32, 34 * 1024, ['-s', '1']);
});

afterAll(async () => {
  await removeDir(work);
});

describe('reader fuzz', () => {
  test(`ISO 9660: ${ITERATIONS} mutated images give data or a typed error`, async () => {
    await fuzz(isoImages);
  }, 180_000 * Math.max(1, ITERATIONS / 10_000));

  test(`FAT: ${ITERATIONS} mutated images give data or a typed error`, async () => {
    await fuzz(fatImages);
  }, 180_000 * Math.max(1, ITERATIONS / 10_000));
});

interface CorpusCase {
  readonly image: string;
  readonly op: (fs: Filesystem) => Promise<unknown>;
  readonly code: string;
  readonly structure?: string;
}

/** Each corpus image (made by make-corpus.py beside it) and what reading it must give. */
const corpus: Record<'iso9660' | 'fat', CorpusCase[]> = {
  iso9660: [
    { image: 'iso-continuation-loop', op: (fs) => fs.readdir('/'), code: 'fs.corrupt', structure: 'iso9660 continuation area' },
    { image: 'iso-continuation-too-long', op: (fs) => fs.readdir('/'), code: 'fs.corrupt', structure: 'iso9660 continuation area' },
    { image: 'iso-directory-cycle', op: exercise, code: 'data' },
    { image: 'iso-directory-huge', op: (fs) => fs.readdir('/dir'), code: 'fs.corrupt', structure: 'iso9660 directory' },
    { image: 'iso-directory-beyond-device', op: (fs) => fs.readdir('/dir'), code: 'fs.corrupt', structure: 'iso9660 directory' },
    { image: 'iso-file-beyond-device', op: (fs) => fs.readFile('/small.txt'), code: 'fs.corrupt', structure: 'iso9660 file extent' },
    { image: 'iso-record-crosses-sector', op: (fs) => fs.readdir('/'), code: 'fs.corrupt', structure: 'iso9660 directory record' },
    { image: 'iso-no-primary-descriptor', op: async () => undefined, code: 'fs.corrupt', structure: 'iso9660 volume descriptor' },
    { image: 'iso-no-terminator', op: (fs) => fs.readFile('/small.txt'), code: 'data' },
    { image: 'iso-symlink-loop', op: (fs) => fs.stat('/link'), code: 'fs.symlink-loop' },
  ],
  fat: [
    { image: 'fat-directory-chain-loop', op: (fs) => fs.readdir('/dir'), code: 'fs.corrupt', structure: 'fat table' },
    { image: 'fat-file-chain-short', op: (fs) => fs.readFile('/dir/sub/data.bin'), code: 'fs.corrupt', structure: 'fat file' },
    { image: 'fat-file-chain-bad-cluster', op: (fs) => fs.readFile('/dir/sub/data.bin'), code: 'fs.corrupt', structure: 'fat table' },
    { image: 'fat-file-chain-free-cluster', op: (fs) => fs.readFile('/dir/sub/data.bin'), code: 'fs.corrupt', structure: 'fat table' },
    { image: 'fat-size-beyond-volume', op: (fs) => fs.readRange('/small.txt', 0, 16), code: 'fs.corrupt', structure: 'fat directory entry' },
    { image: 'fat-directory-cycle', op: exercise, code: 'data' },
    { image: 'fat-truncated', op: async () => undefined, code: 'fs.corrupt', structure: 'fat boot sector' },
    { image: 'fat-long-name-bad-checksum', op: async (fs) => { expect((await fs.readdir('/dir')).map((e) => e.name)).toContain('FILENU~1'); }, code: 'data' },
    { image: 'fat-bytes-per-sector-invalid', op: async () => undefined, code: 'fs.unsupported' },
  ],
};

async function openCorpusImage(kind: string, name: string): Promise<Filesystem> {
  return openFilesystem(new PatchedMemoryDevice(gunzipSync(await readFile(join(FIXTURES, kind, `${name}.img.gz`)))));
}

describe.each(['iso9660', 'fat'] as const)('%s regression corpus', (kind) => {
  test.each(corpus[kind])('$image gives $code', async ({ image, op, code, structure }) => {
    const outcome = await openCorpusImage(kind, image).then(op).then(() => ({ code: 'data' }), (err: unknown) => {
      if (!isVirtkitError(err)) throw err;
      return { code: err.code, structure: err.data.structure, offset: err.data.offset };
    });
    expect(outcome.code).toBe(code);
    if (structure !== undefined) expect(outcome).toEqual({ code, structure, offset: expect.any(Number) });
  });

  test('every image in the corpus is covered and gives data or a typed error on a whole walk', async () => {
    const names = (await readdir(join(FIXTURES, kind))).filter((n) => n.endsWith('.img.gz')).map((n) => n.replace(/\.img\.gz$/, '')).sort();
    expect(names).toEqual(corpus[kind].map((c) => c.image).sort());
    for (const name of names) {
      const outcome = await openCorpusImage(kind, name).then(exercise).then(() => 'data', (err: unknown) => (isTypedError(err) ? 'typed' : `untyped: ${String(err)}`));
      expect([name, outcome]).toEqual([name, expect.stringMatching(/^(data|typed)$/)]);
    }
  });
});
