import type { Duplex } from 'node:stream';
import { VirtkitError } from '../../util/errors.js';

/** The peer closed the stream exactly between two messages: a normal end, not a protocol error. */
export class EndOfStream extends Error {
  override readonly name = 'EndOfStream';
}

interface Waiter {
  readonly length: number;
  readonly midMessage: boolean;
  resolve(buf: Buffer): void;
  reject(err: unknown): void;
}

/**
 * Reads exact-length messages from a stream. At most `highWater` bytes (or the one pending
 * read, if larger) are buffered: beyond that the stream is paused, so a peer that sends
 * faster than we serve it is held back by TCP instead of growing our memory.
 */
export class ByteReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: Waiter | undefined;
  private ended = false;
  private failure: unknown;

  constructor(private readonly stream: Duplex, private readonly highWater = 4 << 20) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd(undefined));
    stream.on('close', () => this.onEnd(undefined));
    stream.on('error', (err) => this.onEnd(err));
  }

  /**
   * Resolves with exactly `length` bytes. When the stream ends first: rejects with EndOfStream
   * if nothing of a new message had arrived, otherwise (or when `midMessage`) with `nbd.protocol`.
   */
  read(length: number, midMessage = false): Promise<Buffer> {
    if (this.waiter) throw new Error('ByteReader: concurrent reads');
    if (this.buffered >= length) return Promise.resolve(this.take(length));
    if (this.ended) return Promise.reject(this.endError(midMessage));
    return new Promise((resolve, reject) => {
      this.waiter = { length, midMessage, resolve, reject };
      this.stream.resume();
    });
  }

  /** Discards `length` bytes (an unwanted payload) without ever holding more than a chunk of it. */
  async skip(length: number): Promise<void> {
    let left = length;
    while (left > 0) {
      if (this.buffered === 0) await this.read(1, true).then(() => left--);
      const n = Math.min(left, this.buffered);
      this.take(n);
      left -= n;
    }
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const w = this.waiter;
    if (w && this.buffered >= w.length) {
      this.waiter = undefined;
      w.resolve(this.take(w.length));
    }
    if (this.buffered >= this.highWater && !this.waiter) this.stream.pause();
  }

  private onEnd(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.reject(this.endError(w.midMessage));
    }
  }

  private endError(midMessage: boolean): Error {
    if (this.failure !== undefined) {
      return new VirtkitError('nbd.protocol', `connection failed: ${(this.failure as Error).message}`, {},
        { cause: this.failure });
    }
    return this.buffered === 0 && !midMessage ? new EndOfStream('peer closed the connection')
      : new VirtkitError('nbd.protocol', 'peer closed the connection in the middle of a message',
        { buffered: this.buffered });
  }

  private take(length: number): Buffer {
    this.buffered -= length;
    const first = this.chunks[0];
    let out: Buffer;
    if (first !== undefined && first.length >= length) {
      // The common case: the message lies inside one chunk, so no copy is made.
      out = first.subarray(0, length);
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
    } else {
      out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const c = this.chunks[0]!;
        const n = Math.min(c.length, length - done);
        c.copy(out, done, 0, n);
        done += n;
        if (n === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(n);
      }
    }
    if (this.buffered < this.highWater && !this.ended) this.stream.resume();
    return out;
  }
}
