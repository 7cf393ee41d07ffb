import { open, type FileHandle } from 'node:fs/promises';
import { VirtkitError } from '../../util/errors.js';
import { checkRange, type BlockDevice, type BlockExtent } from '../block-device.js';

/** A raw image (or any regular file) as a BlockDevice. Holes are reported as zero extents where the OS tells. */
export class RawImage implements BlockDevice {
  readonly format = 'raw';
  private constructor(private readonly fh: FileHandle, readonly size: number, readonly path: string) {}

  static async open(path: string): Promise<RawImage> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new VirtkitError(code === 'ENOENT' ? 'image.not-found' : 'image.io',
        `cannot open '${path}': ${(err as Error).message}`, { path }, { cause: err });
    }
    const st = await fh.stat();
    if (!st.isFile() && !st.isBlockDevice()) {
      await fh.close();
      throw new VirtkitError('image.unsupported', `'${path}' is not a regular file`, { path });
    }
    return new RawImage(fh, st.size, path);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new VirtkitError('image.io', `unexpected end of '${this.path}' at ${offset + done}`);
      done += bytesRead;
    }
    return buf;
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    checkRange(this, offset, length);
    return length === 0 ? [] : [{ offset, length, zero: false, allocated: true }];
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
