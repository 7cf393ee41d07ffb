/**
 * The VMDK driver, read-only: a descriptor (a text file, or embedded in a sparse extent) and
 * its extents: SPARSE (monolithicSparse, twoGbMaxExtentSparse, streamOptimized with deflate
 * grains), FLAT (monolithicFlat, twoGbMaxExtentFlat) and ZERO. Linked clones (a parent disk),
 * VMFS extent types and the old VMDK3 ("COWD") layout are refused.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { VirtkitError } from '../../util/errors.js';
import { checkRange, type BlockExtent } from '../block/index.js';
import type { ByteSource } from './byte-source.js';
import { pushMapExtent, toBlockExtents } from './extents.js';
import type { Image, ImageInfo, MapExtent, VmdkSpecific } from './types.js';
import { MAX_DESCRIPTOR_BYTES, NO_PARENT, parseVmdkDescriptor, type VmdkDescriptor } from './vmdk-descriptor.js';
import { VMDK_SPARSE_MAGIC, VmdkSparseExtent } from './vmdk-sparse.js';

const SECTOR = 512;
const COWD_MAGIC = 0x434f5744; // "COWD" little-endian: the VMDK3 layout

type Extent =
  | { readonly kind: 'flat'; readonly start: number; readonly size: number; readonly source: ByteSource; readonly fileOffset: number }
  | { readonly kind: 'zero'; readonly start: number; readonly size: number }
  | { readonly kind: 'sparse'; readonly start: number; readonly size: number; readonly sparse: VmdkSparseExtent };

/** Opens an extent file named by a descriptor (already resolved against the descriptor's directory). */
export type ExtentOpener = (path: string) => Promise<ByteSource>;

export class VmdkImage implements Image {
  readonly format = 'vmdk';
  readonly backing = null;
  readonly path: string;
  readonly size: number;

  private constructor(private readonly descriptorSource: ByteSource, private readonly descriptor: VmdkDescriptor,
    private readonly extents: readonly Extent[]) {
    this.path = descriptorSource.path;
    this.size = extents.reduce((n, e) => n + e.size, 0);
  }

  /** Open a VMDK whose descriptor (or monolithic sparse file) is `source`; the image owns what it opens. */
  static async open(source: ByteSource, openExtent: ExtentOpener): Promise<VmdkImage> {
    const opened: ByteSource[] = [];
    try {
      const magic = source.size >= 4 ? (await source.readMetadata(0, 4, 'magic')).readUInt32LE(0) : 0;
      if (magic === COWD_MAGIC) {
        throw new VirtkitError('image.unsupported', `'${source.path}' is a VMDK3 (COWD) image, which is not supported`, { path: source.path, field: 'magic', offset: 0 });
      }
      if (magic === VMDK_SPARSE_MAGIC) {
        const sparse = await VmdkSparseExtent.open(source);
        const text = await sparse.descriptorText();
        const descriptor = text === null
          ? { createType: sparse.header.compressed ? 'streamOptimized' : 'monolithicSparse', cid: 0, parentCid: NO_PARENT, extents: [] }
          : parseVmdkDescriptor(text);
        refuseParent(source.path, descriptor);
        return new VmdkImage(source, descriptor, [{ kind: 'sparse', start: 0, size: sparse.size, sparse }]);
      }
      if (source.size > MAX_DESCRIPTOR_BYTES) {
        throw new VirtkitError('image.corrupt', `'${source.path}' is neither a VMDK sparse extent nor a descriptor`, { path: source.path, field: 'magic', offset: 0 });
      }
      const descriptor = parseVmdkDescriptor((await source.readMetadata(0, source.size, 'descriptor')).toString('latin1'));
      refuseParent(source.path, descriptor);
      const extents: Extent[] = [];
      let start = 0;
      for (const line of descriptor.extents) {
        const size = line.sectors * SECTOR;
        if (!Number.isSafeInteger(start + size)) throw new VirtkitError('image.corrupt', `'${source.path}': extents add up past 2^53 bytes`, { path: source.path, field: 'descriptor' });
        if (line.type === 'ZERO') {
          extents.push({ kind: 'zero', start, size });
        } else {
          const file = await openExtent(extentPath(source.path, line.file!));
          opened.push(file);
          if (line.type === 'FLAT') extents.push({ kind: 'flat', start, size, source: file, fileOffset: line.offsetSectors * SECTOR });
          else extents.push({ kind: 'sparse', start, size, sparse: await VmdkSparseExtent.open(file) });
        }
        start += size;
      }
      return new VmdkImage(source, descriptor, extents);
    } catch (err) {
      await Promise.all(opened.map((f) => f.close()));
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const out = Buffer.allocUnsafe(length);
    await this.fill(out, offset, length);
    return out;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.length);
    await this.fill(target, offset, target.length);
  }

  /** The extents overlapping [offset, offset + length), with the overlapping part in extent coordinates. */
  private *overlapping(offset: number, length: number): Generator<{ extent: Extent; at: number; len: number; pos: number }> {
    const end = offset + length;
    for (const extent of this.extents) {
      const lo = Math.max(offset, extent.start);
      const hi = Math.min(end, extent.start + extent.size);
      if (lo < hi) yield { extent, at: lo - extent.start, len: hi - lo, pos: lo - offset };
    }
  }

  private async fill(out: Uint8Array, offset: number, length: number): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const { extent, at, len, pos } of this.overlapping(offset, length)) {
      if (extent.kind === 'zero') out.fill(0, pos, pos + len);
      else if (extent.kind === 'flat') pending.push(extent.source.readInto(out, pos, len, extent.fileOffset + at));
      else pending.push(this.fillSparse(extent.sparse, out, pos, at, len));
    }
    await Promise.all(pending);
  }

  private async fillSparse(sparse: VmdkSparseExtent, out: Uint8Array, pos: number, at: number, len: number): Promise<void> {
    // A descriptor may give a sparse extent more sectors than its header: the rest reads as zeros.
    const covered = Math.max(0, Math.min(len, sparse.size - at));
    out.fill(0, pos + covered, pos + len);
    const pending: Promise<void>[] = [];
    for (const run of await sparse.plan(at, covered)) {
      const p = pos + (run.start - at);
      if (run.kind === 'zero') out.fill(0, p, p + run.length);
      else if (run.kind === 'data') pending.push(sparse.source.readInto(out, p, run.length, run.host));
      else pending.push(sparse.readCompressed(run).then((grain) => out.set(grain.subarray(run.within, run.within + run.length), p)));
    }
    await Promise.all(pending);
  }

  async mapExtents(offset: number, length: number): Promise<MapExtent[]> {
    checkRange(this, offset, length);
    const out: MapExtent[] = [];
    for (const { extent, at, len } of this.overlapping(offset, length)) {
      const guest = extent.start + at;
      if (extent.kind === 'zero') {
        pushMapExtent(out, { offset: guest, length: len, depth: 0, present: true, zero: true, data: false, file: this.path });
      } else if (extent.kind === 'flat') {
        pushMapExtent(out, { offset: guest, length: len, depth: 0, present: true, zero: false, data: true, hostOffset: extent.fileOffset + at, file: extent.source.path });
      } else {
        const sparse = extent.sparse;
        const covered = Math.max(0, Math.min(len, sparse.size - at));
        for (const run of await sparse.plan(at, covered)) {
          const base = { offset: extent.start + run.start, length: run.length, depth: 0, file: sparse.source.path };
          if (run.kind === 'zero') pushMapExtent(out, { ...base, present: run.present, zero: true, data: false });
          else if (run.kind === 'data') pushMapExtent(out, { ...base, present: true, zero: false, data: true, hostOffset: run.host });
          else pushMapExtent(out, { ...base, present: true, zero: false, data: true, compressed: true });
        }
        pushMapExtent(out, { offset: guest + covered, length: len - covered, depth: 0, present: false, zero: true, data: false, file: sparse.source.path });
      }
    }
    return out;
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    return toBlockExtents(await this.mapExtents(offset, length));
  }

  private sources(): ByteSource[] {
    const all = [this.descriptorSource];
    for (const e of this.extents) {
      const s = e.kind === 'flat' ? e.source : e.kind === 'sparse' ? e.sparse.source : null;
      if (s !== null && !all.includes(s)) all.push(s);
    }
    return all;
  }

  info(): ImageInfo {
    const first = this.extents[0];
    const extents: VmdkSpecific['data']['extents'] = this.extents.map((e) => e.kind === 'sparse'
      ? { filename: e.sparse.source.path, format: 'SPARSE', 'virtual-size': e.size, 'cluster-size': e.sparse.grainBytes, ...(e.sparse.header.compressed ? { compressed: true } : {}) }
      : { filename: e.kind === 'flat' ? e.source.path : this.path, format: e.kind === 'flat' ? 'FLAT' : 'ZERO', 'virtual-size': e.size });
    return {
      filename: this.path,
      format: 'vmdk',
      'virtual-size': this.size,
      'actual-size': this.sources().reduce((n, s) => n + s.allocatedSize, 0),
      ...(first?.kind === 'sparse' ? { 'cluster-size': first.sparse.grainBytes } : {}),
      'dirty-flag': false,
      'format-specific': {
        type: 'vmdk',
        data: { 'create-type': this.descriptor.createType, cid: this.descriptor.cid, 'parent-cid': this.descriptor.parentCid, extents },
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.sources().map((s) => s.close()));
  }
}

function refuseParent(path: string, d: VmdkDescriptor): void {
  if (d.parentCid !== NO_PARENT) {
    throw new VirtkitError('image.unsupported', `'${path}' is a VMDK linked clone (it has a parent disk), which is not supported`,
      { path, field: 'parentCID' });
  }
}

/**
 * An extent's file, relative to the descriptor's directory. Absolute names and `..` are refused:
 * a descriptor must not reach files outside its own directory tree.
 */
export function extentPath(descriptorPath: string, name: string): string {
  if (isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
    throw new VirtkitError('image.unsupported', `extent file '${name}' of '${descriptorPath}' lies outside the descriptor's directory`,
      { path: descriptorPath, field: 'extent', extent: name });
  }
  return join(dirname(descriptorPath), name);
}
