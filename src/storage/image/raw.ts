import { checkRange, type BlockExtent } from '../block/index.js';
import { toBlockExtents } from './extents.js';
import type { ByteSource } from './byte-source.js';
import { HostFile } from './host-file.js';
import type { Image, ImageInfo, MapExtent } from './types.js';

/** A raw image (or any regular file or block device) as a BlockDevice: the guest's bytes, as they are. */
export class RawImage implements Image {
  readonly format = 'raw';
  readonly backing = null;
  readonly size: number;
  readonly path: string;
  private constructor(private readonly file: ByteSource) {
    this.size = file.size;
    this.path = file.path;
  }

  static async open(path: string): Promise<RawImage> {
    return new RawImage(await HostFile.open(path, { allowBlockDevice: true }));
  }

  /** Wrap a file the caller has already opened (and vetted); the image owns it from here on. */
  static fromFile(file: ByteSource): RawImage {
    return new RawImage(file);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const buf = Buffer.allocUnsafe(length);
    await this.file.readInto(buf, 0, length, offset);
    return buf;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.length);
    await this.file.readInto(target, 0, target.length, offset);
  }

  /** Raw files carry no allocation map: everything is data (holes are not probed). */
  async mapExtents(offset: number, length: number): Promise<MapExtent[]> {
    checkRange(this, offset, length);
    return length === 0 ? [] : [{ offset, length, depth: 0, present: true, zero: false, data: true, hostOffset: offset, file: this.path }];
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    return toBlockExtents(await this.mapExtents(offset, length));
  }

  info(): ImageInfo {
    return { filename: this.path, format: 'raw', 'virtual-size': this.size, 'actual-size': this.file.allocatedSize, 'dirty-flag': false };
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
