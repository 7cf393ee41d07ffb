/**
 * Bounds-checked little-endian field access for on-disk structures read from untrusted
 * images. Every out-of-range access becomes a typed `fs.corrupt` naming the structure and
 * the absolute device offset, so parsers never read garbage past a buffer's end.
 */
import { VirtkitError } from '../util/errors.js';

export function corrupt(structure: string, offset: number, message: string, extra: Record<string, unknown> = {}): VirtkitError {
  return new VirtkitError('fs.corrupt', `${structure} at offset ${offset}: ${message}`, { structure, offset, ...extra });
}

export class ByteView {
  constructor(
    readonly bytes: Uint8Array,
    /** Names the structure in errors: `ext4 superblock`, `gpt header`, ... */
    readonly structure: string,
    /** Device offset of bytes[0], reported in errors. */
    readonly baseOffset: number,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  private check(off: number, len: number): void {
    if (!Number.isInteger(off) || off < 0 || off + len > this.bytes.length) {
      throw corrupt(this.structure, this.baseOffset + Math.max(0, off), `field of ${len} bytes at +${off} is past the end (${this.bytes.length} bytes)`);
    }
  }

  // Fields are assembled from the bytes: a view is made per directory block and per inode in
  // a tree walk, and a DataView for each would be most of its cost.
  u8(off: number): number {
    this.check(off, 1);
    return this.bytes[off]!;
  }

  u16(off: number): number {
    this.check(off, 2);
    const b = this.bytes;
    return b[off]! | (b[off + 1]! << 8);
  }

  u32(off: number): number {
    this.check(off, 4);
    const b = this.bytes;
    return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
  }

  /** A 64-bit field as a number; values beyond 2^53 are corrupt for any disk we can read. */
  u64(off: number): number {
    this.check(off, 8);
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw corrupt(this.structure, this.baseOffset + off, `64-bit field ${v} is out of range`);
    }
    return Number(v);
  }

  /** Combines a low 32-bit and a high 16/32-bit half, as ext4 splits its wide fields. */
  static join(lo: number, hi: number): number {
    return hi * 0x1_0000_0000 + lo;
  }

  slice(off: number, len: number): Uint8Array {
    this.check(off, len);
    return this.bytes.subarray(off, off + len);
  }

  view(off: number, len: number, structure = this.structure): ByteView {
    return new ByteView(this.slice(off, len), structure, this.baseOffset + off);
  }
}

/** Formats 16 bytes as a UUID in the big-endian byte order ext and most filesystems store. */
export function formatUuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A GUID in the mixed-endian layout of GPT and Microsoft (first three fields little-endian). */
export function formatGuid(b: Uint8Array): string {
  const hex = (xs: Iterable<number>): string => Buffer.from([...xs]).toString('hex');
  return [
    hex([b[3]!, b[2]!, b[1]!, b[0]!]), hex([b[5]!, b[4]!]), hex([b[7]!, b[6]!]),
    hex(b.subarray(8, 10)), hex(b.subarray(10, 16)),
  ].join('-').toUpperCase();
}

/** A NUL-terminated (or full-width) string field, decoded as UTF-8. */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(end < 0 ? b : b.subarray(0, end)).toString('utf8');
}
