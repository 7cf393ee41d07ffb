/**
 * Reuses read buffers between requests. Clients read in a few fixed sizes (qemu-img: 2 MiB),
 * and a fresh multi-megabyte buffer per request costs page faults and garbage collection that
 * dominate the server's CPU time. Buffers go back to the pool once the socket has sent them.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  constructor(private readonly maxFreeBytes = 64 * 1024 * 1024, private readonly minPooled = 64 * 1024) {}

  acquire(length: number): Buffer {
    const list = this.free.get(length);
    const buf = list?.pop();
    if (buf) {
      this.freeBytes -= length;
      return buf;
    }
    return Buffer.allocUnsafe(length);
  }

  /** Hands a buffer back; the caller must not touch it afterwards. Small ones are left to the GC. */
  release(buf: Buffer): void {
    if (buf.length < this.minPooled || this.freeBytes + buf.length > this.maxFreeBytes) return;
    const list = this.free.get(buf.length);
    if (list) list.push(buf);
    else this.free.set(buf.length, [buf]);
    this.freeBytes += buf.length;
  }
}
