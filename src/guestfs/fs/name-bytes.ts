/**
 * Guest file names are bytes, not text. A name that is valid UTF-8 is decoded as such; a name
 * that is not keeps every byte anyway: each byte that is not part of a valid sequence becomes
 * the lone surrogate U+DC80..U+DCFF (Python's "surrogateescape"), so two different names never
 * decode to the same string (lookups stay exact) and `nameBytes` gives the original bytes back
 * (for `-0` output and `--json`'s `nameHex`).
 */
const strict = new TextDecoder('utf-8', { fatal: true });
const ESCAPE_BASE = 0xdc00;

/** Decodes a name; invalid bytes become U+DC80..U+DCFF. */
export function decodeName(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    return decodeSlow(bytes);
  }
}

/** Names up to this long that are plain ASCII are built without a decoder (and without a view on the bytes). */
const SHORT_NAME = 32;

/** `decodeName` of `bytes[start, end)`: a tree walk decodes every name of every directory. */
export function decodeNameAt(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= SHORT_NAME) {
    let name = '';
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return decodeName(bytes.subarray(start, end));
      name += String.fromCharCode(b);
    }
    return name;
  }
  return decodeName(bytes.subarray(start, end));
}

function sequenceLength(bytes: Uint8Array, i: number): number {
  const b = bytes[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < bytes.length && bytes[i + k]! >= lo && bytes[i + k]! <= hi;
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (b === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b >= 0xe1 && b <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

function decodeSlow(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n === 0) {
      out += String.fromCharCode(ESCAPE_BASE + bytes[i]!);
      i += 1;
    } else {
      out += strict.decode(bytes.subarray(i, i + n));
      i += n;
    }
  }
  return out;
}

/** Whether `name` holds bytes that were not valid UTF-8. */
export function hasInvalidBytes(name: string): boolean {
  return /[\udc80-\udcff]/.test(name) && nameBytes(name).toString('utf8') !== name;
}

/** The bytes of a name (or path) decoded by `decodeName`. */
export function nameBytes(name: string): Buffer {
  if (!/[\udc80-\udcff]/.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    // A low surrogate after a high one is half of a real character, not an escaped byte.
    if (c >= 0xdc80 && c <= 0xdcff && !(prev >= 0xd800 && prev <= 0xdbff)) {
      parts.push(Buffer.from(run, 'utf8'), Buffer.from([c - ESCAPE_BASE]));
      run = '';
    } else {
      run += name[i];
    }
  }
  parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}
