/**
 * CRC32C (Castagnoli), the checksum of ext4's metadata_csum feature. A tree walk checks every
 * directory block it reads (4 KiB each, tens of thousands of them), so the update runs
 * slicing-by-8 (eight bytes per step), and the zeros that fill the rest of most directory
 * blocks are not fed byte by byte: the CRC register after n zero bytes is a linear function of
 * the register before, applied as a few precomputed 32x32 bit matrices (zlib's crc32_combine
 * trick).
 */
const TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (t[prev & 0xff]! ^ (prev >>> 8)) >>> 0;
    }
  }
  return t;
})();

/** ZERO_OPS[k]: the register map of 2^k zero bytes, as its 32 columns (the image of each bit). */
const ZERO_OPS = (() => {
  const ops: Uint32Array[] = [];
  const one = new Uint32Array(32);
  for (let bit = 0; bit < 32; bit++) {
    const c = (1 << bit) >>> 0;
    one[bit] = (TABLES[c & 0xff]! ^ (c >>> 8)) >>> 0;
  }
  ops.push(one);
  for (let k = 1; k < 32; k++) {
    const prev = ops[k - 1]!;
    const next = new Uint32Array(32);
    for (let bit = 0; bit < 32; bit++) next[bit] = applyOp(prev, prev[bit]!);
    ops.push(next);
  }
  return ops;
})();

function applyOp(op: Uint32Array, c: number): number {
  let r = 0;
  for (let bit = 0; c !== 0; bit++, c >>>= 1) if ((c & 1) !== 0) r ^= op[bit]!;
  return r >>> 0;
}

/** ZERO_OPS[k] as four byte-indexed tables (built on first use), so applying it is four lookups. */
const ZERO_BYTE_TABLES: (Uint32Array | undefined)[] = [];

function zeroTable(k: number): Uint32Array {
  let t = ZERO_BYTE_TABLES[k];
  if (t === undefined) {
    const op = ZERO_OPS[k]!;
    t = new Uint32Array(4 * 256);
    for (let b = 0; b < 4; b++) for (let v = 0; v < 256; v++) t[b * 256 + v] = applyOp(op, (v << (8 * b)) >>> 0);
    ZERO_BYTE_TABLES[k] = t;
  }
  return t;
}

/** The register after `n` zero bytes. */
function crc32cZeros(crc: number, n: number): number {
  let c = crc >>> 0;
  for (let k = 0; n > 0; k++, n = Math.floor(n / 2)) {
    if (n % 2 === 1) {
      const t = zeroTable(k);
      c = (t[c & 0xff]! ^ t[256 + ((c >>> 8) & 0xff)]! ^ t[512 + ((c >>> 16) & 0xff)]! ^ t[768 + (c >>> 24)]!) >>> 0;
    }
  }
  return c;
}

/** Below this many trailing zero bytes, feeding them through the tables is as fast. */
const ZERO_RUN_MIN = 64;

/**
 * The raw CRC register update over `data[start, end)`, without the customary final inversion
 * (ext4 stores it so). The range spares callers a subarray per field.
 */
export function crc32cUpdate(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  const last = end - trailingZeros(data, start, end);
  const zeros = end - last;
  if (zeros < ZERO_RUN_MIN) return crc32cTables(crc, data, start, end);
  return crc32cZeros(crc32cTables(crc, data, start, last), zeros);
}

/** A float64 view of the last buffer scanned: a walk checks one read buffer block after block. */
let wordsOf: ArrayBufferLike | undefined;
let words: Float64Array<ArrayBufferLike> = new Float64Array(0);

/**
 * How many zero bytes `data[start, end)` ends with, eight at a time where the bytes are
 * aligned for it: a float64 word is eight zero bytes when it equals 0 and is not -0 (sign bit).
 */
function trailingZeros(data: Uint8Array, start: number, end: number): number {
  let e = end;
  const at = data.byteOffset;
  while (e > start && (at + e) % 8 !== 0) {
    if (data[e - 1] !== 0) return end - e;
    e--;
  }
  if (e - start >= ZERO_RUN_MIN) {
    if (wordsOf !== data.buffer) {
      wordsOf = data.buffer;
      words = new Float64Array(data.buffer, 0, Math.floor(data.buffer.byteLength / 8));
    }
    const low = Math.ceil((at + start) / 8);
    let w = (at + e) / 8;
    while (w > low) {
      const x = words[w - 1]!;
      if (x !== 0 || 1 / x < 0) break;
      w--;
    }
    e = w * 8 - at;
  }
  while (e > start && data[e - 1] === 0) e--;
  return end - e;
}

function crc32cTables(crc: number, data: Uint8Array, start: number, end: number): number {
  const t = TABLES;
  let c = crc >>> 0;
  let i = start;
  const end8 = end - ((end - start) % 8);
  while (i < end8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]!
      ^ t[768 + (hi & 0xff)]! ^ t[512 + ((hi >>> 8) & 0xff)]! ^ t[256 + ((hi >>> 16) & 0xff)]! ^ t[(hi >>> 24) & 0xff]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}
