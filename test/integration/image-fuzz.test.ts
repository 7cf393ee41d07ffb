/**
 * Fuzzing the qcow2, VMDK and VDI readers: real images made by qemu-img, their headers and tables mutated,
 * opened and read from memory. Every outcome must be a successful bounded read or a typed
 * `image.*` error. Inputs that break this are saved under test/fixtures/images/regressions/
 * and replayed by the corpus test below forever after.
 * VIRTKIT_FUZZ_ITERATIONS and VIRTKIT_FUZZ_SEED run it longer or differently by hand.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySource, openImageSource, type BackingOpener } from '../../src/storage/image/index.js';
import { VirtkitError } from '../../src/util/errors.js';
import { qemuImg, qemuIo, qemuRaw, tempDir } from './image-qemu.js';

const ITERATIONS = Number(process.env['VIRTKIT_FUZZ_ITERATIONS'] ?? 10_000);
const SEED = Number(process.env['VIRTKIT_FUZZ_SEED'] ?? 0x5eed);
const REGRESSIONS = join(import.meta.dirname, '../fixtures/images/regressions');

interface Base {
  name: string;
  format: 'qcow2' | 'vmdk' | 'vdi';
  bytes: Buffer;
  expected: Buffer;
  /** Where metadata lives: mutations aim at [0, region) and at [tables, tables + region). */
  region: number;
  tables: number;
}
const { dir, cleanup } = tempDir('image-fuzz');
const bases: Base[] = [];
const backingFiles = new Map<string, Buffer>();

/** Backing files come from memory too; names the mutations invent are simply not found. */
const openBacking: BackingOpener = async (path) => {
  const bytes = backingFiles.get(path);
  if (bytes === undefined) throw new VirtkitError('image.not-found', `no backing file ${path}`, { path });
  return new MemorySource(bytes, path);
};

function make(name: string, options: string, size: string, writes: string[], backing?: string): void {
  const f = join(dir, name);
  qemuImg('create', '-f', 'qcow2', '-o', options, ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), f, size);
  if (writes.length > 0) qemuIo(f, 'qcow2', ...writes);
  addQcow2(f);
}

function addQcow2(f: string): void {
  const bytes = readFileSync(f);
  const clusterSize = 2 ** bytes.readUInt32BE(20);
  bases.push({ name: f, format: 'qcow2', bytes, expected: qemuRaw(f, 'qcow2', dir), region: Math.min(bytes.length, 8 * clusterSize),
    tables: Number(bytes.readBigUInt64BE(40) & 0xffffffffn) });
  backingFiles.set(f, bytes);
}

/** A VMDK from raw data; extent files (twoGbMaxExtent*) are served from memory like backing files. */
function addVmdk(name: string, subformat: string): void {
  const src = join(dir, `${name}.src`);
  writeFileSync(src, Buffer.concat([Buffer.alloc(70_000, 0x61), Buffer.alloc(200_000), Buffer.from('virtkit vmdk fuzz '.repeat(3000))]));
  const f = join(dir, name);
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, src, f);
  const bytes = readFileSync(f);
  const sparse = bytes.readUInt32LE(0) === 0x564d444b;
  if (!sparse) {
    const extent = join(dir, name.replace('.vmdk', '-s001.vmdk'));
    backingFiles.set(extent, readFileSync(extent));
  }
  bases.push({ name: f, format: 'vmdk', bytes, expected: qemuRaw(f, 'vmdk', dir), region: Math.min(bytes.length, 16384),
    tables: sparse ? bytes.readUInt32LE(56) * 512 : 0 });
}

beforeAll(() => {
  make('v3-512.qcow2', 'compat=1.1,cluster_size=512', '192k', ['write -P 0x11 0 20k', 'write -z 20k 8k', 'write -P 0x22 100k 3k']);
  make('v2-4k.qcow2', 'compat=0.10,cluster_size=4k', '256k', ['write -P 0x33 4k 40k', 'write -P 0x34 200k 1k']);
  make('v3-el2.qcow2', 'compat=1.1,cluster_size=16k,extended_l2=on', '256k', ['write -P 0x44 1k 1k', 'write -z 2k 3k', 'write -P 0x45 40k 20k']);
  make('v3-top.qcow2', 'compat=1.1,cluster_size=1k', '192k', ['write -P 0x55 5k 7k', 'write -z 0 1k'], join(dir, 'v3-512.qcow2'));
  const raw = join(dir, 'comp.raw');
  writeFileSync(raw, Buffer.from('compressible virtkit text '.repeat(8000)));
  const comp = join(dir, 'comp.qcow2');
  qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4k', raw, comp);
  addQcow2(comp);
  addVmdk('sparse.vmdk', 'monolithicSparse');
  addVmdk('stream.vmdk', 'streamOptimized');
  addVmdk('split.vmdk', 'twoGbMaxExtentSparse');
  const vdi = join(dir, 'fuzz.vdi');
  qemuImg('create', '-f', 'vdi', vdi, '4M');
  qemuIo(vdi, 'vdi', 'write -P 0x91 2M 5k', 'write -P 0x92 0 1k');
  bases.push({ name: vdi, format: 'vdi', bytes: readFileSync(vdi), expected: qemuRaw(vdi, 'vdi', dir), region: 1024, tables: 512 });
});
afterAll(cleanup);

/** A small deterministic PRNG (xorshift32), so a failing seed reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

type Outcome = { ok: true; data: Buffer } | { ok: false; error: unknown };

/** Open and read as a user would: the first 64 KiB, the allocation map, and a piece further in. */
async function exercise(bytes: Buffer, path: string, format: string, probe: number): Promise<Outcome> {
  try {
    const img = await openImageSource(new MemorySource(bytes, path), { format }, openBacking);
    try {
      const data = Buffer.from(await img.read(0, Math.min(img.size, 65536)));
      await img.blockStatus(0, Math.min(img.size, 256 * 1024));
      if (img.size > 16384) await img.read(probe % (img.size - 16384), 16384);
      return { ok: true, data };
    } finally {
      await img.close();
    }
  } catch (error) {
    return { ok: false, error };
  }
}

function isTypedImageError(err: unknown): boolean {
  return err instanceof VirtkitError && (err.code.startsWith('image.'));
}

function saveRegression(bytes: Buffer, format: string, err: unknown): string {
  mkdirSync(REGRESSIONS, { recursive: true });
  const file = join(REGRESSIONS, `crash-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${format}`);
  writeFileSync(file, bytes);
  return `${file}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}

const INTERESTING = [0, 1, 0x1ff, 0x200, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffe00];

describe('qcow2, vmdk and vdi fuzz', () => {
  it('unmutated bases read exactly as qemu-img reads them', async () => {
    for (const b of bases) {
      const out = await exercise(b.bytes, b.name, b.format, 0);
      expect(out.ok).toBe(true);
      if (out.ok) expect(out.data.equals(b.expected.subarray(0, out.data.length))).toBe(true);
    }
  });

  it(`${ITERATIONS} mutations give correct data or a typed error`, async () => {
    const next = rng(SEED);
    const failures: string[] = [];
    const outcomes = { ok: 0, typed: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const base = bases[next() % bases.length]!;
      const bytes = base.bytes;
      // Mutate in place, remember the originals, restore afterwards: no copy per iteration.
      const saved: [number, number][] = [];
      const poke = (at: number, value: number): void => {
        if (at < bytes.length) { saved.push([at, bytes[at]!]); bytes[at] = value & 0xff; }
      };
      const region = base.region;
      const edits = 1 + (next() % 4);
      for (let e = 0; e < edits; e++) {
        const kind = next() % 5;
        if (kind === 0) poke(next() % 112, next()); // header fields
        else if (kind === 1) poke(next() % region, next()); // any early metadata byte
        else if (kind === 2) poke(next() % region, bytes[next() % region]! ^ (1 << (next() % 8))); // a bit flip
        else {
          // An aligned 32-bit word in the header or the L1/L2 area set to an interesting value.
          const area = kind === 3 ? next() % 112 : base.tables + (next() % region);
          const at = area & ~3;
          const v = next() % 3 === 0 ? next() : INTERESTING[next() % INTERESTING.length]!;
          for (let k = 0; k < 4; k++) poke(at + k, v >>> (24 - 8 * k));
        }
      }
      const mutated = saved.some(([at, old]) => bytes[at] !== old);
      const out = await exercise(bytes, base.name, base.format, next());
      if (out.ok) {
        outcomes.ok++;
        if (!mutated && !out.data.equals(base.expected.subarray(0, out.data.length))) {
          failures.push(saveRegression(Buffer.from(bytes), base.format, new Error('unmutated image read wrong data')));
        }
      } else if (isTypedImageError(out.error)) {
        outcomes.typed++;
      } else {
        failures.push(saveRegression(Buffer.from(bytes), base.format, out.error));
      }
      for (let k = saved.length - 1; k >= 0; k--) bytes[saved[k]![0]] = saved[k]![1];
    }
    expect(failures).toEqual([]);
    // Both outcomes occur: the mutations reach code past the header checks.
    expect(outcomes.ok).toBeGreaterThan(ITERATIONS / 20);
    expect(outcomes.typed).toBeGreaterThan(ITERATIONS / 20);
  });

  it('the regression corpus reads or fails with a typed error', async () => {
    const files = readdirSync(REGRESSIONS).filter((f) => /\.(qcow2|vmdk|vdi)$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const out = await exercise(readFileSync(join(REGRESSIONS, f)), join(REGRESSIONS, f), f.slice(f.lastIndexOf('.') + 1), 12345);
      if (!out.ok && !isTypedImageError(out.error)) throw new Error(`${f}: ${String(out.error)}`);
      // Hand-damaged images (not crash-*) are all broken on purpose: each must be refused.
      if (!f.startsWith('crash-')) expect(out.ok, `${f} should be refused`).toBe(false);
    }
  });
});
