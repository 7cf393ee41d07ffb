import { describe, expect, it } from 'vitest';
import { decodeName, decodeNameAt, hasInvalidBytes, nameBytes } from './name-bytes.js';

/** xorshift32, so a failure reproduces. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

describe('guest names as bytes', () => {
  it('decodes UTF-8 as text and keeps invalid bytes distinct and recoverable', () => {
    expect(decodeName(Buffer.from('café'))).toBe('café');
    const a = decodeName(Uint8Array.of(0x63, 0xff));
    const b = decodeName(Uint8Array.of(0x63, 0xfe));
    expect(a).not.toBe(b);
    expect(nameBytes(a)).toEqual(Buffer.from([0x63, 0xff]));
    expect(hasInvalidBytes(a)).toBe(true);
    expect(hasInvalidBytes('café')).toBe(false);
    // An encoded surrogate (ED A0 80) and an overlong form (C0 AF) are not UTF-8: bytes kept.
    for (const bytes of [[0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      expect(nameBytes(decodeName(Uint8Array.from(bytes)))).toEqual(Buffer.from(bytes));
    }
  });

  it('round-trips 5,000 random byte strings exactly, and different bytes give different names', () => {
    const next = prng(16);
    const seen = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const len = 1 + (next() % 24);
      // Mostly high bytes and UTF-8 lead/continuation bytes: where decoders go wrong.
      const bytes = Uint8Array.from({ length: len }, () => (next() % 3 === 0 ? next() % 0x80 : 0x80 + (next() % 0x80)));
      const name = decodeName(bytes);
      expect(nameBytes(name)).toEqual(Buffer.from(bytes));
      const hex = Buffer.from(bytes).toString('hex');
      const before = seen.get(name);
      if (before !== undefined) expect(before).toBe(hex);
      seen.set(name, hex);
    }
  });
});

describe('decodeNameAt', () => {
  it('decodes a range exactly as decodeName decodes its bytes, for 5,000 random byte strings', () => {
    const next = prng(7);
    const bytes = new Uint8Array(80);
    for (let i = 0; i < 5000; i++) {
      for (let k = 0; k < bytes.length; k++) bytes[k] = next() % 3 === 0 ? next() & 0xff : 0x61 + (next() % 26);
      const start = next() % 20;
      const end = start + (next() % 60);
      expect(decodeNameAt(bytes, start, end)).toBe(decodeName(bytes.slice(start, end)));
    }
  });
});
