/**
 * zisofs: files that mkzftree or xorriso compressed block by block with zlib, marked by a
 * Rock Ridge `ZF` entry (algorithm `pz`). The stored data starts with a 16-byte header and a
 * table of block pointers; each block inflates to the block size (the last to the rest), an
 * empty block is zeros. Only the blocks a read needs are inflated, each bounded by the block
 * size, so a hostile file cannot make one read allocate more than it asked for.
 */
import { inflateSync } from 'node:zlib';
import { corrupt } from '../../bytes.js';

const MAGIC = Buffer.from([0x37, 0xe4, 0x53, 0x96, 0xc9, 0xdb, 0xd6, 0x07]);
const HEADER_BYTES = 16;
/** Block sizes zisofs allows: 32, 64 and 128 KiB. */
const MIN_LOG2 = 15;
const MAX_LOG2 = 17;

export interface Zisofs {
  /** The uncompressed size, from the ZF entry. */
  readonly realSize: number;
}

/** Reads `length` bytes of the stored (compressed) data from `offset`; checked by the caller. */
export type StoredReader = (offset: number, length: number) => Promise<Uint8Array>;

/**
 * Up to `length` uncompressed bytes from `offset` of a zisofs file of `storedSize` stored
 * bytes. `at` (the directory record's offset) and `structure` name the file in errors.
 */
export async function readZisofs(z: Zisofs, storedSize: number, readStored: StoredReader, offset: number, length: number, at: number): Promise<Uint8Array> {
  const bad = (message: string): Error => corrupt('iso9660 zisofs data', at, message);
  const end = Math.min(z.realSize, offset + length);
  if (offset >= end) return new Uint8Array(0);
  if (storedSize < HEADER_BYTES) throw bad(`${storedSize} stored bytes cannot hold the zisofs header`);
  const header = Buffer.from(await readStored(0, HEADER_BYTES));
  if (!header.subarray(0, 8).equals(MAGIC)) throw bad('the zisofs magic number is missing');
  const headerSize = header[12]! * 4;
  const log2 = header[13]!;
  if (log2 < MIN_LOG2 || log2 > MAX_LOG2 || headerSize < HEADER_BYTES) throw bad(`block size 2^${log2} or header size ${headerSize} is invalid`);
  if (header.readUInt32LE(8) !== z.realSize) throw bad(`the header's size ${header.readUInt32LE(8)} differs from the ZF entry's ${z.realSize}`);
  const blockSize = 2 ** log2;
  const first = Math.floor(offset / blockSize);
  const last = Math.floor((end - 1) / blockSize);
  const tableAt = headerSize + first * 4;
  const tableBytes = (last - first + 2) * 4;
  if (tableAt + tableBytes > storedSize) throw bad('the block pointer table runs past the stored data');
  const table = Buffer.from(await readStored(tableAt, tableBytes));
  const out = Buffer.alloc(end - offset);
  for (let b = first; b <= last; b++) {
    const start = table.readUInt32LE((b - first) * 4);
    const stop = table.readUInt32LE((b - first + 1) * 4);
    const expected = Math.min(blockSize, z.realSize - b * blockSize);
    if (stop < start || stop > storedSize) throw bad(`block ${b} points to ${start}..${stop} outside the ${storedSize} stored bytes`);
    let plain: Uint8Array;
    if (stop === start) {
      plain = new Uint8Array(expected);
    } else {
      try {
        plain = inflateSync(await readStored(start, stop - start), { maxOutputLength: blockSize });
      } catch (err) {
        throw bad(`block ${b} does not inflate: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (plain.length !== expected) throw bad(`block ${b} inflates to ${plain.length} bytes, not ${expected}`);
    }
    const blockStart = b * blockSize;
    const from = Math.max(offset, blockStart);
    const to = Math.min(end, blockStart + expected);
    out.set(plain.subarray(from - blockStart, to - blockStart), from - offset);
  }
  return out;
}
