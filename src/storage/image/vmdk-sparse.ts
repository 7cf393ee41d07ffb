/**
 * A VMDK sparse extent (the hosted "VMDK4" layout: monolithicSparse, twoGbMaxExtentSparse,
 * streamOptimized): a header, a grain directory of grain tables, grains of data that may be
 * deflate-compressed (streamOptimized). Read-only; parent (linked clone) disks are refused by
 * the caller.
 */
import { inflateSync } from 'node:zlib';
import { VirtkitError } from '../../util/errors.js';
import type { ByteSource } from './byte-source.js';
import { LruCache } from './lru-cache.js';

export const VMDK_SPARSE_MAGIC = 0x564d444b; // "KDMV" read little-endian
const SECTOR = 512;
const FLAG_ZERO_GRAIN = 1 << 2;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;
/** Grains above 16 MiB would make one compressed grain cost that much memory; VMware uses 64 KiB. */
const MAX_GRAIN_SECTORS = 32768;
/** QEMU's limit too. */
const MAX_GTES_PER_GT = 512;
const MAX_GD_BYTES = 32 * 1024 * 1024;
const GT_CACHE_TABLES = 256;

export interface VmdkSparseHeader {
  readonly version: number;
  readonly capacitySectors: number;
  readonly grainSectors: number;
  readonly descriptorOffset: number;
  readonly descriptorSize: number;
  readonly gtesPerGt: number;
  /** Sector of the grain directory; null when it is recorded in the footer (streamOptimized). */
  readonly gdOffset: number | null;
  readonly compressed: boolean;
  readonly markers: boolean;
  readonly zeroGrain: boolean;
}

function fail(code: 'image.corrupt' | 'image.unsupported', path: string, field: string, offset: number, message: string): never {
  throw new VirtkitError(code, `vmdk extent '${path}': ${field} (offset ${offset}): ${message}`, { path, field, offset });
}

/** Parse a sparse extent header from its 512 bytes (at `base` in the file, for error offsets). */
export function parseVmdkSparseHeader(bytes: Uint8Array, path: string, base = 0): VmdkSparseHeader {
  if (bytes.length < SECTOR) fail('image.corrupt', path, 'header', base, `truncated: ${bytes.length} bytes of 512`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, SECTOR);
  const u64 = (off: number, field: string): number | null => {
    const lo = v.getUint32(off, true);
    const hi = v.getUint32(off + 4, true);
    if (hi === 0xffffffff && lo === 0xffffffff) return null;
    if (hi > 0x1fffff) fail('image.corrupt', path, field, base + off, 'value out of range');
    return hi * 0x1_0000_0000 + lo;
  };
  const need = (off: number, field: string): number => {
    const n = u64(off, field);
    if (n === null) fail('image.corrupt', path, field, base + off, 'value out of range');
    return n;
  };
  if (v.getUint32(0, true) !== VMDK_SPARSE_MAGIC) fail('image.corrupt', path, 'magic', base, 'not a VMDK sparse extent');
  const version = v.getUint32(4, true);
  if (version < 1 || version > 3) fail('image.unsupported', path, 'version', base + 4, `version ${version} is not supported (1 to 3 are)`);
  const flags = v.getUint32(8, true);
  const capacitySectors = need(12, 'capacity');
  const grainSectors = need(20, 'grainSize');
  const descriptorOffset = need(28, 'descriptorOffset');
  const descriptorSize = need(36, 'descriptorSize');
  const gtesPerGt = v.getUint32(44, true);
  const gdOffset = u64(56, 'gdOffset');
  const compressAlgorithm = v.getUint16(77, true);
  if (!Number.isSafeInteger(capacitySectors * SECTOR)) fail('image.corrupt', path, 'capacity', base + 12, `${capacitySectors} sectors is out of range`);
  if (grainSectors < 1 || grainSectors > MAX_GRAIN_SECTORS) {
    fail('image.unsupported', path, 'grainSize', base + 20, `${grainSectors} sectors is outside 1..${MAX_GRAIN_SECTORS}`);
  }
  if (gtesPerGt < 1 || gtesPerGt > MAX_GTES_PER_GT) fail('image.unsupported', path, 'numGTEsPerGT', base + 44, `${gtesPerGt} is outside 1..${MAX_GTES_PER_GT}`);
  const compressed = (flags & FLAG_COMPRESSED) !== 0;
  if (compressed && compressAlgorithm !== COMPRESSION_DEFLATE) {
    fail('image.unsupported', path, 'compressAlgorithm', base + 77, `compression algorithm ${compressAlgorithm} is not supported (1, deflate, is)`);
  }
  return {
    version, capacitySectors, grainSectors, descriptorOffset, descriptorSize, gtesPerGt, gdOffset, compressed,
    markers: (flags & FLAG_MARKERS) !== 0,
    zeroGrain: (flags & FLAG_ZERO_GRAIN) !== 0,
  };
}

/** Where a run of an extent's range comes from. */
export type SparseRun =
  | { readonly kind: 'data'; readonly start: number; length: number; readonly host: number }
  | { readonly kind: 'zero'; readonly start: number; length: number; readonly present: boolean }
  | { readonly kind: 'compressed'; readonly start: number; length: number; readonly grainHost: number; readonly grainIndex: number; readonly within: number };

export class VmdkSparseExtent {
  readonly grainBytes: number;
  readonly size: number;
  private readonly gtCache = new LruCache<number, Buffer>(GT_CACHE_TABLES);
  private readonly inflated = new LruCache<number, Buffer>(8);

  private constructor(readonly source: ByteSource, readonly header: VmdkSparseHeader, private readonly gd: Buffer, private readonly gdOffset: number) {
    this.grainBytes = header.grainSectors * SECTOR;
    this.size = header.capacitySectors * SECTOR;
  }

  static async open(source: ByteSource): Promise<VmdkSparseExtent> {
    let header = parseVmdkSparseHeader(await source.readMetadata(0, SECTOR, 'header'), source.path);
    if (header.gdOffset === null) {
      // streamOptimized written in one pass: the real header is a footer, 1 KiB before the end.
      if (source.size < 3 * SECTOR) fail('image.corrupt', source.path, 'gdOffset', 56, 'grain directory at the end, but no footer');
      const at = source.size - 2 * SECTOR;
      header = parseVmdkSparseHeader(await source.readMetadata(at, SECTOR, 'footer'), source.path, at);
      if (header.gdOffset === null) fail('image.corrupt', source.path, 'gdOffset', at + 56, 'the footer does not locate the grain directory either');
    }
    const gdOffset = header.gdOffset!;
    const grainsPerGt = header.grainSectors * header.gtesPerGt;
    const gdEntries = Math.ceil(header.capacitySectors / grainsPerGt);
    if (gdEntries * 4 > MAX_GD_BYTES) fail('image.unsupported', source.path, 'capacity', 12, `grain directory of ${gdEntries} entries is too large`);
    const gd = gdEntries === 0 ? Buffer.alloc(0) : await source.readMetadata(gdOffset * SECTOR, gdEntries * 4, 'grain_directory');
    return new VmdkSparseExtent(source, header, gd, gdOffset);
  }

  private grainTable(index: number): Promise<Buffer | null> {
    const sector = this.gd.readUInt32LE(index * 4);
    if (sector === 0) return Promise.resolve(null);
    return this.gtCache.get(sector, () => this.source.readMetadata(sector * SECTOR, this.header.gtesPerGt * 4, 'grain_table'));
  }

  /** Plan [offset, offset + length) of this extent as runs. */
  async plan(offset: number, length: number): Promise<SparseRun[]> {
    const runs: SparseRun[] = [];
    const gb = this.grainBytes;
    const tableSpan = gb * this.header.gtesPerGt;
    const end = offset + length;
    const push = (run: SparseRun): void => {
      const last = runs[runs.length - 1];
      if (last !== undefined && run.kind !== 'compressed' && last.kind === run.kind && last.start + last.length === run.start
        && (run.kind !== 'data' || (last.kind === 'data' && last.host + last.length === run.host))
        && (run.kind !== 'zero' || (last.kind === 'zero' && last.present === run.present))) {
        last.length += run.length;
      } else {
        runs.push(run);
      }
    };
    let pos = offset;
    while (pos < end) {
      const gtIndex = Math.floor(pos / tableSpan);
      const tableEnd = Math.min(end, (gtIndex + 1) * tableSpan);
      const table = gtIndex * 4 < this.gd.length ? await this.grainTable(gtIndex) : null;
      if (table === null) {
        push({ kind: 'zero', start: pos, length: tableEnd - pos, present: false });
        pos = tableEnd;
        continue;
      }
      while (pos < tableEnd) {
        const grainIndex = Math.floor(pos / gb);
        const grainStart = grainIndex * gb;
        const grainEnd = Math.min(grainStart + gb, tableEnd);
        const gte = table.readUInt32LE((grainIndex % this.header.gtesPerGt) * 4);
        const length = grainEnd - pos;
        if (gte === 0) push({ kind: 'zero', start: pos, length, present: false });
        else if (gte === 1 && this.header.zeroGrain) push({ kind: 'zero', start: pos, length, present: true });
        else if (this.header.compressed) push({ kind: 'compressed', start: pos, length, grainHost: gte * SECTOR, grainIndex, within: pos - grainStart });
        else push({ kind: 'data', start: pos, length, host: gte * SECTOR + (pos - grainStart) });
        pos = grainEnd;
      }
    }
    return runs;
  }

  /** Inflate one streamOptimized grain: a marker (guest sector u64, size u32) then zlib data. */
  readCompressed(run: Extract<SparseRun, { kind: 'compressed' }>): Promise<Buffer> {
    return this.inflated.get(run.grainHost, async () => {
      const path = this.source.path;
      const marker = await this.source.readMetadata(run.grainHost, 12, 'grain_marker');
      const lba = marker.readUInt32LE(0) + marker.readUInt32LE(4) * 0x1_0000_0000;
      const size = marker.readUInt32LE(8);
      if (lba !== run.grainIndex * this.header.grainSectors) {
        fail('image.corrupt', path, 'grain_marker', run.grainHost, `grain for sector ${run.grainIndex * this.header.grainSectors} is marked for sector ${lba}`);
      }
      if (size === 0 || size > this.grainBytes + 4096) fail('image.corrupt', path, 'grain_marker', run.grainHost + 8, `compressed size ${size} is out of range`);
      const packed = await this.source.readMetadata(run.grainHost + 12, size, 'compressed_grain');
      let grain: Buffer;
      try {
        grain = inflateSync(packed, { maxOutputLength: this.grainBytes });
      } catch (err) {
        throw new VirtkitError('image.corrupt', `vmdk extent '${path}': grain at ${run.grainHost} does not inflate: ${(err as Error).message}`,
          { path, field: 'compressed_grain', offset: run.grainHost }, { cause: err });
      }
      const needed = Math.min(this.grainBytes, this.size - run.grainIndex * this.grainBytes);
      if (grain.length < needed) {
        fail('image.corrupt', path, 'compressed_grain', run.grainHost, `grain inflates to ${grain.length} bytes, not ${needed}`);
      }
      return grain;
    });
  }

  /** The embedded descriptor's text, if the header places one. */
  async descriptorText(): Promise<string | null> {
    const { descriptorOffset, descriptorSize } = this.header;
    if (descriptorOffset === 0 || descriptorSize === 0) return null;
    const bytes = Math.min(descriptorSize * SECTOR, 64 * 1024);
    return (await this.source.readMetadata(descriptorOffset * SECTOR, bytes, 'descriptor')).toString('latin1');
  }

  get grainDirectoryOffset(): number {
    return this.gdOffset * SECTOR;
  }
}
