/**
 * The qcow2 driver, read-only: versions 2 and 3, L1/L2 lookup with an LRU of L2 tables, zero
 * clusters, deflate-compressed clusters, extended L2 entries (subclusters) and a backing image
 * for whatever this layer leaves unallocated. Reads are planned first (guest range -> runs of
 * host data, zeros, backing, compressed) so that contiguous host clusters become one pread.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { VirtkitError } from '../../util/errors.js';
import { checkRange, readInto, type BlockExtent } from '../block/index.js';
import { pushMapExtent, toBlockExtents } from './extents.js';
import type { ByteSource } from './byte-source.js';
import { LruCache } from './lru-cache.js';
import { headerBytesWanted, parseQcow2Header, type Qcow2Header } from './qcow2-header.js';
import type { Image, ImageInfo, MapExtent, Qcow2Specific } from './types.js';

/** Memory the L2 cache may hold. 32 MiB maps 256 GiB of guest with 64 KiB clusters. */
const L2_CACHE_BYTES = 32 * 1024 * 1024;
const DECOMPRESSED_CACHE_ENTRIES = 8;
const SUBCLUSTERS = 32;
const TWO_POW_32 = 0x1_0000_0000;
/** Largest single pread: bigger data runs are split so the pieces are copied in parallel. */
const PREAD_PIECE = 512 * 1024;

/** A run of the guest range and where its bytes come from. */
type Run =
  | { readonly kind: 'data'; readonly guest: number; length: number; readonly host: number }
  | { readonly kind: 'zero'; readonly guest: number; length: number }
  | { readonly kind: 'backing'; readonly guest: number; length: number }
  | { readonly kind: 'compressed'; readonly guest: number; length: number; readonly entry: bigint; readonly within: number };

/** Extend the last run when `kind` continues it (for data: at the next host byte too), else start a new one. */
function pushRun(runs: Run[], kind: 'data' | 'zero' | 'backing', guest: number, length: number, host = 0): void {
  const last = runs[runs.length - 1];
  if (last !== undefined && last.kind === kind && last.guest + last.length === guest
    && (kind !== 'data' || (last.kind === 'data' && last.host + last.length === host))) {
    last.length += length;
    return;
  }
  runs.push(kind === 'data' ? { kind, guest, length, host } : { kind, guest, length });
}

export interface Qcow2OpenOptions {
  /** Opens the backing image named by the header (path already resolved, format known); null when none. */
  readonly openBacking: (header: Qcow2Header) => Promise<Image | null>;
}

export class Qcow2Image implements Image {
  readonly format = 'qcow2';
  readonly size: number;
  readonly path: string;
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly l2EntryBytes: number;
  private readonly l2Cache: LruCache<number, Buffer>;
  private readonly inflated = new LruCache<string, Buffer>(DECOMPRESSED_CACHE_ENTRIES);

  private constructor(
    private readonly file: ByteSource,
    readonly header: Qcow2Header,
    private readonly l1: Buffer,
    readonly backing: Image | null,
  ) {
    this.size = header.size;
    this.path = file.path;
    this.clusterSize = header.clusterSize;
    this.l2EntryBytes = header.extendedL2 ? 16 : 8;
    this.l2Entries = header.clusterSize / this.l2EntryBytes;
    this.l2Cache = new LruCache(Math.max(4, Math.floor(L2_CACHE_BYTES / header.clusterSize)));
  }

  /** Read the header of `file` without opening anything else (for `img info` of a broken chain, and tests). */
  static async readHeader(file: ByteSource): Promise<Qcow2Header> {
    const prefix = await file.readMetadata(0, Math.min(file.size, 104), 'header');
    const wanted = headerBytesWanted(prefix, file.size);
    const first = wanted > prefix.length ? await file.readMetadata(0, wanted, 'header') : prefix;
    return parseQcow2Header(first, file.size);
  }

  /** Open a qcow2 layer on `file` (which the image then owns, with its backing image). */
  static async open(file: ByteSource, options: Qcow2OpenOptions): Promise<Qcow2Image> {
    const header = await Qcow2Image.readHeader(file);
    // Only the L1 entries that map the virtual size are ever consulted; the rest are never read.
    const l2Entries = header.clusterSize / (header.extendedL2 ? 16 : 8);
    const l1Used = Math.min(header.l1Size, Math.ceil(header.size / (header.clusterSize * l2Entries)));
    const l1 = l1Used === 0 ? Buffer.alloc(0) : await file.readMetadata(header.l1TableOffset, l1Used * 8, 'l1_table');
    const backing = await options.openBacking(header);
    return new Qcow2Image(file, header, l1, backing);
  }

  private corrupt(field: string, offset: number, message: string): VirtkitError {
    return new VirtkitError('image.corrupt', `qcow2 image '${this.path}': ${message}`, { path: this.path, field, offset });
  }

  /** The L2 table for L1 entry `l1Index`, or null when that whole range is unallocated. */
  private l2Table(l1Index: number): Promise<Buffer | null> {
    const at = l1Index * 8;
    const hi = this.l1.readUInt32BE(at);
    const lo = this.l1.readUInt32BE(at + 4);
    const offset = (hi & 0x00ffffff) * TWO_POW_32 + (lo & 0xfffffe00);
    if (offset === 0) return Promise.resolve(null);
    const entryOffset = this.header.l1TableOffset + at;
    if (offset % this.clusterSize !== 0) {
      return Promise.reject(this.corrupt('l1_table', entryOffset, `L2 table offset ${offset} (L1 entry ${l1Index}) is not cluster aligned`));
    }
    const l1Start = this.header.l1TableOffset;
    if (offset < l1Start + this.header.l1Size * 8 && offset + this.clusterSize > l1Start) {
      return Promise.reject(this.corrupt('l1_table', entryOffset, `L2 table offset ${offset} (L1 entry ${l1Index}) overlaps the L1 table`));
    }
    return this.l2Cache.get(offset, () => this.file.readMetadata(offset, this.clusterSize, 'l2_table'));
  }

  /** Plan [offset, offset + length) as runs. Awaits only to load L2 tables, once per table. */
  private async plan(offset: number, length: number): Promise<Run[]> {
    const runs: Run[] = [];
    const cs = this.clusterSize;
    const tableSpan = cs * this.l2Entries;
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const l1Index = Math.floor(pos / tableSpan);
      const tableEnd = Math.min(end, (l1Index + 1) * tableSpan);
      const table = await this.l2Table(l1Index);
      if (table === null) {
        pushRun(runs, 'backing', pos, tableEnd - pos);
        pos = tableEnd;
        continue;
      }
      while (pos < tableEnd) {
        const clusterStart = Math.floor(pos / cs) * cs;
        const clusterEnd = Math.min(clusterStart + cs, tableEnd);
        const index = (clusterStart / cs) % this.l2Entries;
        this.planCluster(runs, table, index, l1Index, clusterStart, pos, clusterEnd);
        pos = clusterEnd;
      }
    }
    return runs;
  }

  /** Classify [pos, clusterEnd) of the cluster at `clusterStart` from its L2 entry. */
  private planCluster(runs: Run[], table: Buffer, index: number, l1Index: number, clusterStart: number, pos: number, clusterEnd: number): void {
    const at = index * this.l2EntryBytes;
    const hi = table.readUInt32BE(at);
    const lo = table.readUInt32BE(at + 4);
    const length = clusterEnd - pos;
    const field = 'l2_entry';
    if (hi & 0x40000000) {
      const entry = (BigInt(hi) << 32n) | BigInt(lo);
      runs.push({ kind: 'compressed', guest: pos, length, entry, within: pos - clusterStart });
      return;
    }
    const host = (hi & 0x00ffffff) * TWO_POW_32 + (lo & 0xfffffe00);
    if (host % this.clusterSize !== 0) {
      throw this.corrupt(field, this.l1EntryTarget(l1Index) + at, `cluster offset ${host} for guest offset ${clusterStart} is not cluster aligned`);
    }
    if (!this.header.extendedL2) {
      if (lo & 1) {
        if (this.header.version < 3) throw this.corrupt(field, this.l1EntryTarget(l1Index) + at, `zero cluster entry for guest offset ${clusterStart} in a version 2 image`);
        pushRun(runs, 'zero', pos, length);
      } else if (host === 0) {
        pushRun(runs, 'backing', pos, length);
      } else {
        pushRun(runs, 'data', pos, length, host + (pos - clusterStart));
      }
      return;
    }
    // Extended L2: 32 subclusters, an allocation bitmap (low word) and a reads-as-zero bitmap (high word).
    const zeroBits = table.readUInt32BE(at + 8);
    const allocBits = table.readUInt32BE(at + 12);
    if ((zeroBits & allocBits) !== 0) {
      throw this.corrupt(field, this.l1EntryTarget(l1Index) + at, `subclusters of guest offset ${clusterStart} are both allocated and zero`);
    }
    if (allocBits !== 0 && host === 0) {
      throw this.corrupt(field, this.l1EntryTarget(l1Index) + at, `allocated subclusters of guest offset ${clusterStart} have no host cluster`);
    }
    const sub = this.clusterSize / SUBCLUSTERS;
    let p = pos;
    while (p < clusterEnd) {
      const s = Math.floor((p - clusterStart) / sub);
      const subEnd = Math.min(clusterEnd, clusterStart + (s + 1) * sub);
      const bit = (1 << s) >>> 0;
      const len = subEnd - p;
      if ((allocBits & bit) !== 0) pushRun(runs, 'data', p, len, host + (p - clusterStart));
      else if ((zeroBits & bit) !== 0) pushRun(runs, 'zero', p, len);
      else pushRun(runs, 'backing', p, len);
      p = subEnd;
    }
  }

  private l1EntryTarget(l1Index: number): number {
    const hi = this.l1.readUInt32BE(l1Index * 8);
    const lo = this.l1.readUInt32BE(l1Index * 8 + 4);
    return (hi & 0x00ffffff) * TWO_POW_32 + (lo & 0xfffffe00);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const runs = await this.plan(offset, length);
    if (runs.every((r) => r.kind === 'zero' || (r.kind === 'backing' && this.backing === null))) {
      return Buffer.alloc(length);
    }
    const out = Buffer.allocUnsafe(length);
    await this.fill(out, offset, runs);
    return out;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.length);
    await this.fill(target, offset, await this.plan(offset, target.length));
  }

  /** Carry out a plan into `out` (which holds the guest range starting at `offset`). */
  private async fill(out: Uint8Array, offset: number, runs: readonly Run[]): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const run of runs) {
      const pos = run.guest - offset;
      switch (run.kind) {
        case 'data':
          // Large runs go out as several preads at once: the thread pool copies them in parallel.
          for (let done = 0; done < run.length; done += PREAD_PIECE) {
            const n = Math.min(PREAD_PIECE, run.length - done);
            pending.push(this.file.readInto(out, pos + done, n, run.host + done));
          }
          break;
        case 'zero':
          out.fill(0, pos, pos + run.length);
          break;
        case 'backing':
          pending.push(this.readBacking(out, pos, run.guest, run.length));
          break;
        case 'compressed':
          pending.push(this.readCompressed(run.entry, run.guest).then((cluster) => {
            out.set(cluster.subarray(run.within, run.within + run.length), pos);
          }));
          break;
      }
    }
    await Promise.all(pending);
  }

  /** Bytes this layer leaves unallocated come from the backing image; past its end (or without one) they are zeros. */
  private async readBacking(out: Uint8Array, pos: number, guest: number, length: number): Promise<void> {
    const covered = this.backing === null ? 0 : Math.max(0, Math.min(length, this.backing.size - guest));
    if (covered > 0 && this.backing !== null) {
      await readInto(this.backing, guest, out.subarray(pos, pos + covered));
    }
    out.fill(0, pos + covered, pos + length);
  }

  /** Decompress the cluster an entry describes (raw deflate, QEMU's zlib type), caching the last few. */
  private readCompressed(entry: bigint, guest: number): Promise<Buffer> {
    const bits = this.header.clusterBits;
    const x = BigInt(62 - (bits - 8));
    const host = entry & ((1n << x) - 1n);
    const extraSectors = Number((entry >> x) & ((1n << BigInt(bits - 8)) - 1n));
    const where = { path: this.path, field: 'l2_entry', offset: guest };
    if (this.header.compressionType !== 'zlib') {
      return Promise.reject(new VirtkitError('image.unsupported',
        `qcow2 image '${this.path}' uses ${this.header.compressionType} compression, which is not supported (zlib is)`,
        { path: this.path, field: 'compression_type', offset: 104 }));
    }
    if (host >= BigInt(this.file.size)) {
      return Promise.reject(new VirtkitError('image.corrupt',
        `qcow2 image '${this.path}': compressed cluster for guest offset ${guest} starts at ${host}, past the end of the file`, where));
    }
    const start = Number(host);
    const length = Math.min((extraSectors + 1) * 512 - (start % 512), this.file.size - start);
    return this.inflated.get(`${start}:${length}`, async () => {
      const packed = await this.file.readMetadata(start, length, 'compressed_cluster');
      let cluster: Buffer;
      try {
        // A compressed stream may end mid-way through its last sector, and QEMU stops once a cluster is out.
        cluster = inflateRawSync(packed, { maxOutputLength: this.clusterSize, finishFlush: zlibConstants.Z_SYNC_FLUSH });
      } catch (err) {
        throw new VirtkitError('image.corrupt',
          `qcow2 image '${this.path}': compressed cluster for guest offset ${guest} at ${start} does not inflate: ${(err as Error).message}`,
          { ...where, offset: start }, { cause: err });
      }
      if (cluster.length !== this.clusterSize) {
        throw new VirtkitError('image.corrupt',
          `qcow2 image '${this.path}': compressed cluster for guest offset ${guest} at ${start} inflates to ${cluster.length} bytes, not ${this.clusterSize}`,
          { ...where, offset: start });
      }
      return cluster;
    });
  }

  async mapExtents(offset: number, length: number): Promise<MapExtent[]> {
    checkRange(this, offset, length);
    const out: MapExtent[] = [];
    for (const run of await this.plan(offset, length)) {
      const base = { offset: run.guest, length: run.length, file: this.path };
      switch (run.kind) {
        case 'data':
          pushMapExtent(out, { ...base, depth: 0, present: true, zero: false, data: true, hostOffset: run.host });
          break;
        case 'compressed':
          pushMapExtent(out, { ...base, depth: 0, present: true, zero: false, data: true, compressed: true });
          break;
        case 'zero':
          pushMapExtent(out, { ...base, depth: 0, present: true, zero: true, data: false });
          break;
        case 'backing':
          await this.mapBacking(out, run.guest, run.length);
          break;
      }
    }
    return out;
  }

  private async mapBacking(out: MapExtent[], guest: number, length: number): Promise<void> {
    const backing = this.backing;
    if (backing === null) {
      pushMapExtent(out, { offset: guest, length, file: this.path, depth: 0, present: false, zero: true, data: false });
      return;
    }
    const covered = Math.max(0, Math.min(length, backing.size - guest));
    if (covered > 0) {
      for (const e of await backing.mapExtents(guest, covered)) pushMapExtent(out, { ...e, depth: e.depth + 1 });
    }
    pushMapExtent(out, { offset: guest + covered, length: length - covered, file: backing.path, depth: 1, present: false, zero: true, data: false });
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    return toBlockExtents(await this.mapExtents(offset, length));
  }

  info(): ImageInfo {
    const h = this.header;
    const backing: Partial<Record<'backing-filename' | 'full-backing-filename' | 'backing-filename-format', string>> = {};
    if (h.backingFile !== null) {
      backing['backing-filename'] = h.backingFile;
      backing['full-backing-filename'] = this.backing?.path ?? resolveBackingPath(this.path, h.backingFile);
      const fmt = h.backingFormat ?? this.backing?.format;
      if (fmt !== undefined) backing['backing-filename-format'] = fmt;
    }
    return {
      filename: this.path,
      format: 'qcow2',
      'virtual-size': h.size,
      'actual-size': this.file.allocatedSize,
      'cluster-size': h.clusterSize,
      'dirty-flag': h.dirty,
      ...backing,
      'format-specific': { type: 'qcow2', data: qcow2Specific(h) },
    };
  }

  async close(): Promise<void> {
    await this.file.close();
    await this.backing?.close();
  }
}

/** A backing file name as QEMU resolves it: absolute, or relative to the directory of the image naming it. */
export function resolveBackingPath(imagePath: string, backingFile: string): string {
  const name = backingFile.startsWith('file:') ? backingFile.slice(5) : backingFile;
  return isAbsolute(name) ? name : join(dirname(imagePath), name);
}

/** The qcow2 section of `img info`, with the keys `qemu-img info` uses (version 3 fields only on version 3). */
export function qcow2Specific(h: Qcow2Header): Qcow2Specific['data'] {
  const common = { 'refcount-bits': h.refcountBits, 'l1-size': h.l1Size, 'snapshot-count': h.nbSnapshots };
  if (h.version === 2) return { compat: '0.10', 'compression-type': h.compressionType, ...common };
  return {
    compat: '1.1',
    'compression-type': h.compressionType,
    'lazy-refcounts': h.lazyRefcounts,
    ...common,
    corrupt: h.corrupt,
    'extended-l2': h.extendedL2,
  };
}
