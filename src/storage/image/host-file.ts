/**
 * The image file on the host, opened read-only. Drivers read their metadata through
 * `readMetadata` (a range past the end of the file is corruption) and guest data through
 * `readInto` (a short read at the end of the file reads as zeros, as QEMU's file driver does).
 */
import { constants, readSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { VirtkitError } from '../../util/errors.js';
import { metadataInRange, metadataPastEnd, type ByteSource } from './byte-source.js';

export interface HostFileOptions {
  /** Accept a block device as well as a regular file (top-level images only, never backing files). */
  readonly allowBlockDevice?: boolean;
  /**
   * Read on the calling thread (readSync) instead of a thread-pool round trip per read: for a
   * command that does nothing else while it reads (`virtkit fs`: a tree walk makes about a
   * thousand large reads, and under load each hop to the pool and back cost more than the
   * copy itself). Never for the daemon, whose event loop serves others meanwhile.
   */
  readonly blockingReads?: boolean;
}

export class HostFile implements ByteSource {
  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    /** Size in bytes when opened (images are read-only here, so it does not change under us). */
    readonly size: number,
    /** Bytes the file occupies on the host filesystem (st_blocks * 512). */
    readonly allocatedSize: number,
    /** `dev:ino`, to recognise the same file reached by two paths. */
    readonly identity: string,
    private readonly blocking = false,
  ) {}

  static async open(path: string, options: HostFileOptions = {}): Promise<HostFile> {
    // stat before open: opening a FIFO or a character device could block or have side effects.
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      throw openError(path, err);
    }
    checkKind(path, st, options);
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw openError(path, err);
    }
    try {
      const fst = await fh.stat();
      checkKind(path, fst, options);
      if (fst.dev !== st.dev || fst.ino !== st.ino) {
        throw new VirtkitError('image.io', `'${path}' changed while it was being opened`, { path });
      }
      const size = fst.isBlockDevice() ? await blockDeviceSize(fh) : fst.size;
      return new HostFile(fh, path, size, fst.blocks * 512, `${fst.dev}:${fst.ino}`, options.blockingReads === true);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /**
   * Read metadata (headers, tables) at `offset`. The whole range must lie inside the file:
   * otherwise the image is corrupt, and the error names `field` and the offset.
   */
  async readMetadata(offset: number, length: number, field: string): Promise<Buffer> {
    if (!metadataInRange(this, offset, length)) throw metadataPastEnd(this, offset, length, field);
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, 0, length, offset);
    return buf;
  }

  /** Fill buf[pos, pos + length) from the file at `offset`; bytes past the end of the file read as zeros. */
  async readInto(buf: Uint8Array, pos: number, length: number, offset: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const bytesRead = this.blocking
        ? readSync(this.fh.fd, buf, pos + done, length - done, offset + done)
        : (await this.fh.read(buf, pos + done, length - done, offset + done)).bytesRead;
      if (bytesRead === 0) {
        buf.fill(0, pos + done, pos + length);
        return;
      }
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function checkKind(path: string, st: { isFile(): boolean; isBlockDevice(): boolean }, options: HostFileOptions): void {
  if (st.isFile()) return;
  if (st.isBlockDevice() && options.allowBlockDevice) return;
  throw new VirtkitError('image.unsupported',
    `'${path}' is not a regular file${options.allowBlockDevice ? ' or block device' : ''}`, { path, field: 'path' });
}

function openError(path: string, err: unknown): VirtkitError {
  const code = (err as NodeJS.ErrnoException).code;
  return new VirtkitError(code === 'ENOENT' ? 'image.not-found' : 'image.io',
    `cannot open '${path}': ${(err as Error).message}`, { path }, { cause: err });
}

/** A block device's size: fstat reports 0, so find the end by probing reads (binary search on readability). */
async function blockDeviceSize(fh: FileHandle): Promise<number> {
  const one = Buffer.allocUnsafe(1);
  const readable = async (pos: number): Promise<boolean> => (await fh.read(one, 0, 1, pos)).bytesRead === 1;
  if (!(await readable(0))) return 0;
  let lo = 0;
  let hi = 1;
  while (await readable(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > Number.MAX_SAFE_INTEGER / 2) break;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await readable(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}
