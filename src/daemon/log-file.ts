/**
 * The daemon's log file as a stream that never stops the daemon. pino's own file destination
 * re-emits a failed write (ENOSPC on a full disk) as an unhandled 'error', and its exit hook
 * then retries the unwritten buffer forever: a full disk under the state dir would kill the
 * daemon or hang it. Here each line is one write(2) on an O_APPEND descriptor; a line that
 * cannot be written is dropped and counted, and the first line written afterwards says how many
 * were lost. A log is worth less than the daemon that writes it.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';

export class LogFile extends Writable {
  private fd: number | undefined;
  /** Lines lost since the last line that was written. */
  private dropped = 0;
  private droppedBecause = '';

  /** Opens (creating, mode 0600) `path` for appending. Throws when it cannot be opened at all. */
  constructor(readonly path: string) {
    super({ decodeStrings: false });
    this.fd = openSync(path, 'a', 0o600);
  }

  /** Lines dropped since the last one written (tests). */
  get droppedLines(): number {
    return this.dropped;
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.append(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    callback(error);
  }

  private append(line: string): void {
    if (this.fd === undefined) return;
    try {
      if (this.dropped > 0) {
        writeSync(this.fd, `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, msg: `${this.dropped} log lines were lost (${this.droppedBecause})` })}\n`);
        this.dropped = 0;
      }
      writeSync(this.fd, line);
    } catch (err) {
      this.dropped++;
      this.droppedBecause = (err as { code?: string }).code ?? String(err);
    }
  }
}
