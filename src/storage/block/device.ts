/**
 * The block layer's one interface. Image drivers (raw, qcow2, ...) expose a guest-visible
 * disk as a BlockDevice; the filesystem readers and the NBD server read only through it,
 * so they work on any image format alike.
 */
import { VirtkitError } from '../../util/errors.js';

/** One run of the allocation map: `length` bytes from `offset` that share a status. */
export interface BlockExtent {
  readonly offset: number;
  readonly length: number;
  /** Reads as zeros (unallocated, a zero cluster, or a hole). */
  readonly zero: boolean;
  /** Backed by data in this image or its backing chain (false for holes and unallocated). */
  readonly allocated: boolean;
}

export interface BlockDevice {
  /** Guest-visible size in bytes. */
  readonly size: number;
  /** Short format name: `raw`, `qcow2`, ... */
  readonly format: string;
  /**
   * Read `length` bytes at `offset`. Throws `image.io` for a range outside [0, size);
   * throws `image.corrupt` when the image's metadata points somewhere impossible.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: read `target.length` bytes at `offset` into the caller's buffer, same rules as
   * `read`. Throughput-bound callers (copies, exports) reuse one buffer this way instead of
   * paying for fresh memory on every read. `readInto(dev, ...)` below falls back to `read`.
   */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  /** The allocation map over [offset, offset + length), extents in order and contiguous. */
  blockStatus(offset: number, length: number): Promise<BlockExtent[]>;
  close(): Promise<void>;
}

/** A read-only window onto part of a device (a partition), itself a BlockDevice. */
export class SliceBlockDevice implements BlockDevice {
  readonly format: string;
  constructor(
    private readonly inner: BlockDevice,
    private readonly start: number,
    readonly size: number,
  ) {
    this.format = inner.format;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.inner.read(this.start + offset, length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.length);
    await readInto(this.inner, this.start + offset, target);
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    checkRange(this, offset, length);
    const extents = await this.inner.blockStatus(this.start + offset, length);
    return extents.map((e) => ({ ...e, offset: e.offset - this.start }));
  }

  /** Closing a slice leaves the underlying device open: its owner closes it. */
  async close(): Promise<void> {}
}


/** Read into `target` through the device's `readInto` when it has one, else through `read` and a copy. */
export async function readInto(dev: BlockDevice, offset: number, target: Uint8Array): Promise<void> {
  if (dev.readInto !== undefined) {
    await dev.readInto(offset, target);
    return;
  }
  target.set(await dev.read(offset, target.length));
}

export function checkRange(dev: { size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0
    || offset + length > dev.size) {
    throw new VirtkitError('image.io', `read of ${length} bytes at ${offset} is outside the device (size ${dev.size})`,
      { offset, length, size: dev.size });
  }
}
