import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RawImage } from '../image/raw.js';
import { SnapshotOverlay } from './snapshot-overlay.js';

let dir: string;
const SIZE = 300 * 1024 + 123; // a short last cluster

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nbd-overlay-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

it('matches a byte-array model under random writes, zeroes and trims, and leaves the base untouched', async () => {
  const base = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) base[i] = (i * 31) & 0xff;
  const path = join(dir, 'base.raw');
  await writeFile(path, base);
  const device = await RawImage.open(path);
  const overlay = await SnapshotOverlay.create(device, { dir, clusterSize: 4096 });
  const model = Buffer.from(base);
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let step = 0; step < 300; step++) {
    const offset = rand(SIZE);
    const length = Math.min(SIZE - offset, rand(3) === 0 ? rand(40_000) : rand(5000));
    const op = rand(3);
    if (op === 0) {
      const data = Buffer.alloc(length, step & 0xff);
      await overlay.write(offset, data);
      data.copy(model, offset);
    } else if (op === 1) {
      await overlay.writeZeroes(offset, length);
      model.fill(0, offset, offset + length);
    } else {
      await overlay.trim(offset, length);
      model.fill(0, offset, offset + length);
    }
    if (step % 50 === 0) expect(sha(await overlay.read(0, SIZE))).toBe(sha(model));
  }
  expect(sha(await overlay.read(0, SIZE))).toBe(sha(model));
  // Random windows, and the allocation map agrees with the model wherever it claims zeros.
  for (let i = 0; i < 50; i++) {
    const offset = rand(SIZE);
    const length = rand(SIZE - offset) + 0;
    expect(sha(await overlay.read(offset, length))).toBe(sha(model.subarray(offset, offset + length)));
  }
  const extents = await overlay.blockStatus(0, SIZE);
  expect(extents.reduce((n, e) => n + e.length, 0)).toBe(SIZE);
  for (const e of extents.filter((x) => x.zero)) {
    expect(model.subarray(e.offset, e.offset + e.length).every((b) => b === 0)).toBe(true);
  }
  // Concurrent partial writes into one cluster must not lose each other (read-modify-write is serialised).
  await Promise.all([overlay.write(8192 + 10, Buffer.from('one')), overlay.write(8192 + 2000, Buffer.from('two'))]);
  expect(Buffer.from(await overlay.read(8192 + 10, 3)).toString()).toBe('one');
  expect(Buffer.from(await overlay.read(8192 + 2000, 3)).toString()).toBe('two');

  await overlay.close();
  await device.close();
  expect(sha(await readFile(path))).toBe(sha(base));
});
