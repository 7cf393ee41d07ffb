/**
 * Fuzzes the partition table readers: 10,000 mutated MBR (with an extended chain) and GPT
 * disks. Half of the GPT mutations recompute the CRCs, so the entry parser behind the
 * checksums is reached too. Every outcome is a table or a typed `fs.corrupt`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { readPartitionTable } from '../../src/guestfs/partition/index.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { PatchedMemoryDevice, removeDir, run, tempDir } from './guestfs-fixtures.js';

const ITERATIONS = 10_000;
let work: string;
let mbr: Buffer;
let gpt: Buffer;

beforeAll(async () => {
  work = await tempDir('guestfs-part-fuzz');
  const mbrPath = join(work, 'mbr.img');
  await run('truncate', ['-s', '1M', mbrPath]);
  const layout = ['label: dos', 'start=64, size=256, type=83', 'start=400, size=1500, type=5',
    'start=440, size=256, type=83', 'start=760, size=256, type=83', 'start=1080, size=256, type=82'].join('\n');
  await run('sh', ['-c', `printf '%s\\n' "$1" | sfdisk -q "$2"`, 'sh', layout, mbrPath]);
  mbr = await readFile(mbrPath);
  const gptPath = join(work, 'gpt.img');
  await run('truncate', ['-s', '160K', gptPath]);
  await run('sgdisk', ['-o', '-a', '1', '-n', '1:34:+40K', '-c', '1:one', '-n', '2:0:+40K', '-t', '2:ef00', gptPath]);
  gpt = await readFile(gptPath);
});

afterAll(async () => {
  await removeDir(work);
});

function prng(seed: number): () => number {
  let x = Math.imul(seed, 0x9e3779b9) >>> 0 || 1;
  const step = (): number => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  for (let i = 0; i < 8; i++) step();
  return step;
}

/** Where the structures live: MBR and EBR sectors; GPT headers and entry arrays. */
function regions(disk: Buffer, kind: 'mbr' | 'gpt'): [number, number][] {
  // MBR, the first EBR, the sectors holding the later EBRs
  if (kind === 'mbr') return [[440, 512], [400 * 512 + 446, 400 * 512 + 512], [700 * 512, 1100 * 512]];
  const last = disk.length - 512;
  // protective MBR, primary header, first primary entries, backup header, first backup entries
  return [[446, 512], [512, 604], [1024, 1024 + 512], [last, last + 92], [last - 32 * 512, last - 31 * 512]];
}

/** Recomputes both GPT header CRCs and the entry CRCs, so mutations reach the entry parser. */
function fixGptCrcs(bytes: Buffer): void {
  for (const hdr of [512, bytes.length - 512]) {
    const entriesLba = Number(bytes.readBigUInt64LE(hdr + 72));
    const count = bytes.readUInt32LE(hdr + 80);
    const size = bytes.readUInt32LE(hdr + 84);
    const start = entriesLba * 512;
    if (count * size <= 1 << 20 && start + count * size <= bytes.length) {
      bytes.writeUInt32LE(crc32(bytes.subarray(start, start + count * size)), hdr + 88);
    }
    const headerSize = Math.min(bytes.readUInt32LE(hdr + 12), 512);
    bytes.writeUInt32LE(0, hdr + 16);
    bytes.writeUInt32LE(crc32(bytes.subarray(hdr, hdr + headerSize)), hdr + 16);
  }
}

test(`${ITERATIONS} mutated MBR and GPT disks give a table or a typed error`, async () => {
  const outcomes = { table: 0, typed: 0 };
  const failures: string[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    const kind = i % 2 === 0 ? 'mbr' : 'gpt';
    const base = kind === 'mbr' ? mbr : gpt;
    const next = prng(i + 1);
    const zones = regions(base, kind);
    const patches = new Map<number, number>();
    for (let m = 1 + (next() % 4); m > 0; m--) {
      const [from, to] = zones[next() % zones.length]!;
      patches.set(from + (next() % (to - from)), next() % 3 === 0 ? 0xff : next() & 0xff);
    }
    let dev: PatchedMemoryDevice;
    if (kind === 'gpt' && i % 4 === 1) {
      // CRCs are recomputed over a patched copy (the GPT disk is small).
      const bytes = Buffer.from(base);
      for (const [at, v] of patches) bytes[at] = v;
      fixGptCrcs(bytes);
      dev = new PatchedMemoryDevice(bytes);
    } else {
      dev = new PatchedMemoryDevice(base);
      for (const [at, v] of patches) dev.patches.set(at, v);
    }
    try {
      const t = await readPartitionTable(dev);
      for (const p of t.partitions) {
        if (p.start + p.size > base.length || p.start < 0) failures.push(`seed ${i + 1}: partition ${p.number} outside the disk`);
      }
      outcomes.table++;
    } catch (err) {
      if (isVirtkitError(err, 'fs.corrupt')) outcomes.typed++;
      else failures.push(`seed ${i + 1} (${kind}): ${String(err)}`);
    }
  }
  expect(failures.slice(0, 5)).toEqual([]);
  expect(outcomes.table).toBeGreaterThan(ITERATIONS / 20);
  expect(outcomes.typed).toBeGreaterThan(ITERATIONS / 50);
});
