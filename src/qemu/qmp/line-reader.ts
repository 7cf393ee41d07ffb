import { VirtkitError } from '../../util/errors.js';

/**
 * Splits a byte stream into newline-terminated lines, as QMP frames its JSON messages.
 * A line longer than `maxLineBytes` is a protocol error: it bounds the memory a broken or
 * hostile peer can make us hold (query-qmp-schema, the largest reply QEMU sends, is ~200 KiB).
 */
export class LineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes = 16 * 1024 * 1024) {}

  /** Feeds a chunk and returns the complete lines it finished (without the newline). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      this.checkLength(this.pendingBytes + piece.length);
      const line = this.pendingBytes === 0 ? piece : Buffer.concat([...this.pending, piece]);
      this.pending = [];
      this.pendingBytes = 0;
      lines.push(line.toString('utf8').replace(/\r$/, ''));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.checkLength(this.pendingBytes + rest.length);
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  private checkLength(n: number): void {
    if (n > this.maxLineBytes) {
      throw new VirtkitError('qmp.protocol', `QMP message longer than ${this.maxLineBytes} bytes`, { limit: this.maxLineBytes });
    }
  }
}
