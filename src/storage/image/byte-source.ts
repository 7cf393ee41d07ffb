/**
 * Where an image driver reads its file's bytes from: a host file (HostFile) or memory
 * (MemorySource, for tests and fuzzing). Metadata reads must lie inside the source; data reads
 * past its end read as zeros, as QEMU's file driver pads short reads.
 */
import { VirtkitError } from '../../util/errors.js';

export interface ByteSource {
  readonly path: string;
  readonly size: number;
  /** Bytes the source occupies on the host (st_blocks * 512 for a file). */
  readonly allocatedSize: number;
  /** Stable identity (`dev:ino` for a file), to recognise one file reached by two paths. */
  readonly identity: string;
  /** Read `length` bytes at `offset`, all inside the source, or throw `image.corrupt` naming `field`. */
  readMetadata(offset: number, length: number, field: string): Promise<Buffer>;
  /** Fill buf[pos, pos + length) from `offset`; bytes past the end read as zeros. */
  readInto(buf: Uint8Array, pos: number, length: number, offset: number): Promise<void>;
  close(): Promise<void>;
}

export function metadataPastEnd(source: { path: string; size: number }, offset: number, length: number, field: string): VirtkitError {
  return new VirtkitError('image.corrupt',
    `${field} at offset ${offset} (${length} bytes) lies past the end of '${source.path}' (${source.size} bytes)`,
    { path: source.path, field, offset, length });
}

export function metadataInRange(source: { size: number }, offset: number, length: number): boolean {
  return Number.isSafeInteger(offset) && offset >= 0 && length >= 0 && offset + length <= source.size;
}

/** An image held in memory. */
export class MemorySource implements ByteSource {
  readonly size: number;
  readonly allocatedSize: number;
  readonly identity: string;
  constructor(private readonly bytes: Uint8Array, readonly path = 'memory') {
    this.size = bytes.length;
    this.allocatedSize = bytes.length;
    this.identity = `memory:${path}`;
  }

  async readMetadata(offset: number, length: number, field: string): Promise<Buffer> {
    if (!metadataInRange(this, offset, length)) throw metadataPastEnd(this, offset, length, field);
    return Buffer.from(this.bytes.subarray(offset, offset + length));
  }

  async readInto(buf: Uint8Array, pos: number, length: number, offset: number): Promise<void> {
    const avail = Math.max(0, Math.min(length, this.size - offset));
    if (avail > 0) buf.set(this.bytes.subarray(offset, offset + avail), pos);
    buf.fill(0, pos + avail, pos + length);
  }

  async close(): Promise<void> {}
}
