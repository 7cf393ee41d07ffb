import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteRing, ConsoleMux, overlapOf, readTail } from './console-mux.js';

/** A small deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
}

describe('ByteRing', () => {
  it('keeps exactly the newest bytes, whatever the sizes of the appends (10,000 random appends)', () => {
    const rand = rng(7);
    for (const capacity of [1, 7, 64, 1000]) {
      const ring = new ByteRing(capacity);
      let reference = Buffer.alloc(0);
      for (let i = 0; i < 2500; i++) {
        const len = Math.floor(rand() * capacity * 2.5);
        const chunk = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
        ring.append(chunk);
        reference = Buffer.concat([reference, chunk]);
        if (reference.length > capacity) reference = reference.subarray(reference.length - capacity);
        expect(ring.contents().equals(reference)).toBe(true);
      }
    }
  });

  it('starts empty', () => {
    expect(new ByteRing(16).contents().length).toBe(0);
  });
});

describe('readTail', () => {
  it('returns the last bytes of a file, all of a short one, nothing for a missing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vk-tail-'));
    try {
      const f = join(dir, 'console.log');
      await writeFile(f, 'abcdefghij');
      expect((await readTail(f, 4)).toString()).toBe('ghij');
      expect((await readTail(f, 100)).toString()).toBe('abcdefghij');
      expect((await readTail(join(dir, 'missing'), 4)).length).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('attaching the console', () => {
  it('overlapOf: how much of the socket\'s output the log already holds', () => {
    expect(overlapOf(Buffer.from('boot\nready\n'), Buffer.from('ready\n'))).toBe(6);
    expect(overlapOf(Buffer.from('boot\nrea'), Buffer.from('ready\nmore'))).toBe(3);
    expect(overlapOf(Buffer.from('boot\n'), Buffer.from('ready\n'))).toBe(0);
    expect(overlapOf(Buffer.alloc(0), Buffer.from('x'))).toBe(0);
  });

  it('keeps output printed while the log tail is read exactly once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vk-mux-'));
    try {
      const log = join(dir, 'console.log');
      await writeFile(log, 'old\n');
      const guest = new PassThrough();
      const mux = new ConsoleMux();
      // The guest prints as the socket connects: the line reaches the log and the socket both.
      await mux.attach(log, async () => {
        await appendFile(log, 'during\n');
        guest.write('during\n');
        return guest;
      });
      guest.write('after\n');
      await new Promise((r) => setImmediate(r));
      expect(mux.history.contents().toString()).toBe('old\nduring\nafter\n');
      mux.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('does not lose output logged while the socket was still connecting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vk-mux-'));
    try {
      const log = join(dir, 'console.log');
      await writeFile(log, 'old\n');
      const mux = new ConsoleMux();
      await mux.attach(log, async () => {
        // no client yet: QEMU writes this to the log only
        await appendFile(log, 'ready\n');
        return new PassThrough();
      });
      expect(mux.history.contents().toString()).toBe('old\nready\n');
      mux.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
