/**
 * The VDI driver (VirtualBox), read-only: version 1.1 dynamic and fixed images, a block map of
 * 32-bit entries (unallocated and discarded blocks read as zeros). Differencing images (a
 * parent UUID) and block "extra" data are refused, as QEMU refuses them.
 */
import { VirtkitError } from '../../util/errors.js';
import { checkRange, type BlockExtent } from '../block/index.js';
import type { ByteSource } from './byte-source.js';
import { pushMapExtent, toBlockExtents } from './extents.js';
import type { Image, ImageInfo, MapExtent } from './types.js';

export const VDI_SIGNATURE = 0xbeda107f;
const VERSION_1_1 = 0x00010001;
const HEADER_BYTES = 512;
const UNALLOCATED = 0xffffffff;
const DISCARDED = 0xfffffffe;
const MIN_BLOCK = 512;
const MAX_BLOCK = 32 * 1024 * 1024;
/** 32 MiB of block map: 8 Mi blocks, 8 TiB with the usual 1 MiB blocks. */
const MAX_BLOCK_MAP_BYTES = 32 * 1024 * 1024;

export interface VdiHeader {
  readonly imageType: 'dynamic' | 'fixed';
  readonly blockMapOffset: number;
  readonly dataOffset: number;
  readonly diskSize: number;
  readonly blockSize: number;
  readonly blocks: number;
  readonly blocksAllocated: number;
}

function fail(code: 'image.corrupt' | 'image.unsupported', path: string, field: string, offset: number, message: string): never {
  throw new VirtkitError(code, `vdi image '${path}': ${field} (offset ${offset}): ${message}`, { path, field, offset });
}

/** Parse and check the 512-byte VDI header against the file's size. */
export function parseVdiHeader(bytes: Uint8Array, fileSize: number, path: string): VdiHeader {
  if (bytes.length < HEADER_BYTES) fail('image.corrupt', path, 'header', 0, `truncated: ${bytes.length} bytes of ${HEADER_BYTES}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const u32 = (off: number): number => v.getUint32(off, true);
  if (u32(0x40) !== VDI_SIGNATURE) fail('image.corrupt', path, 'signature', 0x40, 'not a VDI image');
  if (u32(0x44) !== VERSION_1_1) fail('image.unsupported', path, 'version', 0x44, `version 0x${u32(0x44).toString(16)} is not supported (1.1 is)`);
  const type = u32(0x4c);
  if (type !== 1 && type !== 2) fail('image.unsupported', path, 'image_type', 0x4c, `image type ${type} is not supported (1 dynamic, 2 fixed are)`);
  const blockMapOffset = u32(0x154);
  const dataOffset = u32(0x158);
  if (blockMapOffset % 512 !== 0 || blockMapOffset < HEADER_BYTES) fail('image.corrupt', path, 'offset_bmap', 0x154, `${blockMapOffset} is not a sector past the header`);
  if (dataOffset % 512 !== 0) fail('image.corrupt', path, 'offset_data', 0x158, `${dataOffset} is not sector aligned`);
  if (u32(0x168) !== 512) fail('image.unsupported', path, 'sector_size', 0x168, `sector size ${u32(0x168)} is not supported (512 is)`);
  const sizeHigh = u32(0x174);
  if (sizeHigh > 0x1fffff) fail('image.corrupt', path, 'disk_size', 0x170, 'out of range');
  const diskSize = sizeHigh * 0x1_0000_0000 + u32(0x170);
  const blockSize = u32(0x178);
  if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || blockSize % 512 !== 0) {
    fail('image.unsupported', path, 'block_size', 0x178, `block size ${blockSize} is not a multiple of 512 in ${MIN_BLOCK}..${MAX_BLOCK}`);
  }
  if (u32(0x17c) !== 0) fail('image.unsupported', path, 'block_extra', 0x17c, 'blocks with extra data are not supported');
  const blocks = u32(0x180);
  if (blocks * 4 > MAX_BLOCK_MAP_BYTES) fail('image.unsupported', path, 'blocks_in_image', 0x180, `${blocks} blocks exceed the supported block map size`);
  if (diskSize > blocks * blockSize) fail('image.corrupt', path, 'disk_size', 0x170, `${diskSize} bytes do not fit in ${blocks} blocks of ${blockSize}`);
  if (blockMapOffset + blocks * 4 > fileSize) fail('image.corrupt', path, 'offset_bmap', 0x154, 'the block map lies past the end of the file');
  const isZero = (off: number): boolean => bytes.subarray(off, off + 16).every((b) => b === 0);
  if (!isZero(0x1a8) || !isZero(0x1b8)) fail('image.unsupported', path, 'uuid_parent', 0x1b8, 'differencing images (with a parent) are not supported');
  return { imageType: type === 1 ? 'dynamic' : 'fixed', blockMapOffset, dataOffset, diskSize, blockSize, blocks, blocksAllocated: u32(0x184) };
}

type Run =
  | { readonly kind: 'data'; readonly guest: number; length: number; readonly host: number }
  | { readonly kind: 'zero'; readonly guest: number; length: number; readonly present: boolean };

export class VdiImage implements Image {
  readonly format = 'vdi';
  readonly backing = null;
  readonly path: string;
  readonly size: number;

  private constructor(private readonly file: ByteSource, readonly header: VdiHeader, private readonly blockMap: Buffer) {
    this.path = file.path;
    this.size = header.diskSize;
  }

  static async open(file: ByteSource): Promise<VdiImage> {
    const header = parseVdiHeader(await file.readMetadata(0, Math.min(HEADER_BYTES, file.size), 'header'), file.size, file.path);
    const map = header.blocks === 0 ? Buffer.alloc(0) : await file.readMetadata(header.blockMapOffset, header.blocks * 4, 'block_map');
    return new VdiImage(file, header, map);
  }

  private plan(offset: number, length: number): Run[] {
    const runs: Run[] = [];
    const bs = this.header.blockSize;
    const end = offset + length;
    for (let pos = offset; pos < end;) {
      const block = Math.floor(pos / bs);
      const blockEnd = Math.min(end, (block + 1) * bs);
      const entry = this.blockMap.readUInt32LE(block * 4);
      const len = blockEnd - pos;
      const last = runs[runs.length - 1];
      if (entry === UNALLOCATED || entry === DISCARDED) {
        const present = entry === DISCARDED;
        if (last?.kind === 'zero' && last.present === present) last.length += len;
        else runs.push({ kind: 'zero', guest: pos, length: len, present });
      } else {
        const host = this.header.dataOffset + entry * bs + (pos - block * bs);
        if (!Number.isSafeInteger(host)) fail('image.corrupt', this.path, 'block_map', this.header.blockMapOffset + block * 4, 'block offset out of range');
        if (last?.kind === 'data' && last.host + last.length === host) last.length += len;
        else runs.push({ kind: 'data', guest: pos, length: len, host });
      }
      pos = blockEnd;
    }
    return runs;
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

  private async fill(out: Uint8Array, offset: number, length: number): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const run of this.plan(offset, length)) {
      const pos = run.guest - offset;
      if (run.kind === 'zero') out.fill(0, pos, pos + run.length);
      else pending.push(this.file.readInto(out, pos, run.length, run.host));
    }
    await Promise.all(pending);
  }

  async mapExtents(offset: number, length: number): Promise<MapExtent[]> {
    checkRange(this, offset, length);
    const out: MapExtent[] = [];
    for (const run of this.plan(offset, length)) {
      const base = { offset: run.guest, length: run.length, depth: 0, file: this.path };
      if (run.kind === 'zero') pushMapExtent(out, { ...base, present: run.present, zero: true, data: false });
      else pushMapExtent(out, { ...base, present: true, zero: false, data: true, hostOffset: run.host });
    }
    return out;
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    return toBlockExtents(await this.mapExtents(offset, length));
  }

  info(): ImageInfo {
    return {
      filename: this.path,
      format: 'vdi',
      'virtual-size': this.size,
      'actual-size': this.file.allocatedSize,
      'cluster-size': this.header.blockSize,
      'dirty-flag': false,
    };
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
