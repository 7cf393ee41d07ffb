/**
 * Output of the `fs` listings (`ls -R`, `find`), written as it is produced: a walk of a large
 * tree prints its first lines at once and holds no more than one buffer of them, instead of
 * collecting every line and writing at the end. Lines are gathered into writes of about
 * 64 KiB; when stdout cannot take more (a slow pipe), the walk waits for it to drain.
 */
import { once } from 'node:events';

const FLUSH_BYTES = 64 << 10;

export class StreamedOutput {
  private text = '';
  private chunks: Buffer[] = [];
  private chunkBytes = 0;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  /** Queues text; true when a flush is due (the caller awaits `flush()` at a convenient point). */
  write(text: string): boolean {
    this.text += text;
    return this.text.length >= FLUSH_BYTES;
  }

  /** Queues exact bytes (`-0` output). */
  writeBytes(bytes: Buffer): boolean {
    this.chunks.push(bytes);
    this.chunkBytes += bytes.length;
    return this.chunkBytes >= FLUSH_BYTES;
  }

  /** Writes what is queued; waits for stdout to drain when it says it is full. */
  async flush(): Promise<void> {
    let ok = true;
    if (this.text.length > 0) {
      ok = this.out.write(this.text);
      this.text = '';
    }
    if (this.chunks.length > 0) {
      ok = this.out.write(this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.chunkBytes)) && ok;
      this.chunks = [];
      this.chunkBytes = 0;
    }
    if (!ok) await once(this.out, 'drain');
  }
}
