import { describe, expect, test } from 'vitest';
import { crc32cUpdate } from './crc32c.js';

/** The textbook byte-at-a-time CRC32C, as the reference the sliced update must equal. */
function reference(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

describe('crc32cUpdate', () => {
  test('gives the standard check value for "123456789"', () => {
    expect((crc32cUpdate(0xffffffff, Buffer.from('123456789')) ^ 0xffffffff) >>> 0).toBe(0xe3069283);
  });

  test('equals the byte-at-a-time CRC for every length and alignment', () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff);
    for (let start = 0; start < 9; start++) {
      for (let len = 0; len < 120; len++) {
        const part = bytes.subarray(start, start + len);
        const seed = (start * 2654435761 + len) >>> 0;
        expect(crc32cUpdate(seed, part)).toBe(reference(seed, part));
      }
    }
  });
});

describe('crc32cZeros', () => {
  test('runs of zeros (the rest of a directory block) give the byte-at-a-time CRC', () => {
    for (const n of [0, 1, 63, 64, 65, 1000, 4084, 65524]) {
      const block = new Uint8Array(n + 20);
      block.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      expect(crc32cUpdate(0x12345678, block)).toBe(reference(0x12345678, block));
      expect(crc32cUpdate(0xffffffff, new Uint8Array(n))).toBe(reference(0xffffffff, new Uint8Array(n)));
    }
  });
});

describe('crc32cUpdate over a range', () => {
  test('equals the CRC of the subarray, at every alignment of the underlying buffer', () => {
    const buffer = new Uint8Array(600);
    buffer.set([9, 8, 7, 6, 5, 4, 3, 2, 1], 100);
    buffer.set([1, 2, 3], 300);
    for (const offset of [0, 1, 3, 8]) {
      const bytes = buffer.subarray(offset);
      for (const [start, end] of [[0, 590], [5, 400], [100, 109], [101, 500], [310, 590], [0, 0]] as const) {
        expect(crc32cUpdate(0xabcdef01, bytes, start, end)).toBe(reference(0xabcdef01, bytes.subarray(start, end)));
      }
    }
  });
});
