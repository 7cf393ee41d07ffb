/**
 * Output of the `fs` listings (`ls -R`, `find`), written as it is produced: a walk of a large
 * tree prints its first lines at once and holds no more than one buffer of them, instead of
 * collecting every line and writing at the end. Lines are encoded straight into a 64 KiB
 * buffer (so a line's string dies young instead of surviving in a rope until the write) and
 * the buffer is written when full; when stdout cannot take more (a slow pipe), the walk waits
 * for it to drain.
 */
import { once } from 'node:events';

const BUFFER_BYTES = 64 << 10;
/** UTF-8 takes at most 3 bytes per UTF-16 code unit. */
const MAX_BYTES_PER_UNIT = 3;

export class StreamedOutput {
  private buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  /** Queues text; true when the buffer is full enough that the caller should await `flush()`. */
  write(text: string): boolean {
    if (text.length * MAX_BYTES_PER_UNIT > BUFFER_BYTES - this.used) {
      if (text.length * MAX_BYTES_PER_UNIT > BUFFER_BYTES) return this.writeBytes(Buffer.from(text, 'utf8'));
      return this.spill(text);
    }
    this.used += this.buffer.write(text, this.used, 'utf8');
    return this.used > BUFFER_BYTES / 2;
  }

  /** Queues exact bytes (`-0` output). */
  writeBytes(bytes: Uint8Array): boolean {
    if (bytes.length > BUFFER_BYTES - this.used) {
      this.handOver();
      if (bytes.length > BUFFER_BYTES) {
        this.pending.push(Buffer.from(bytes));
        return true;
      }
    }
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
    return this.used > BUFFER_BYTES / 2;
  }

  /** Buffers handed over and not yet written. */
  private pending: Buffer[] = [];

  /** The current buffer goes to the pending list (it is the stream's from then on); a fresh one takes its place. */
  private handOver(): void {
    if (this.used === 0) return;
    this.pending.push(this.buffer.subarray(0, this.used));
    this.buffer = Buffer.allocUnsafe(BUFFER_BYTES);
    this.used = 0;
  }

  private spill(text: string): boolean {
    this.handOver();
    this.used += this.buffer.write(text, this.used, 'utf8');
    return true;
  }

  /** Writes what is queued; waits for stdout to drain when it says it is full. */
  async flush(): Promise<void> {
    this.handOver();
    let ok = true;
    for (const chunk of this.pending) ok = this.out.write(chunk) && ok;
    this.pending = [];
    if (!ok) await once(this.out, 'drain');
  }
}
