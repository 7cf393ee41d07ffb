/**
 * One guest's serial console, multiplexed. QEMU's console.sock takes a single client: the
 * daemon holds that connection, keeps the last 256 KiB of output in memory (seeded from the
 * tail of console.log, which QEMU appends to itself, so history survives daemon restarts),
 * lets any number of readers watch and one writer type.
 */
import { open } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { VirtkitError } from '../util/errors.js';

export const ConsoleHistoryBytes = 256 * 1024;

/** A fixed-capacity byte ring: appends keep the newest `capacity` bytes. */
export class ByteRing {
  private buf: Buffer;
  private start = 0;
  private length = 0;

  constructor(readonly capacity: number) {
    // Not zero-filled: pages are only touched (and counted in RSS) as console output arrives.
    this.buf = Buffer.allocUnsafe(capacity);
  }

  append(data: Buffer): void {
    if (data.length >= this.capacity) {
      data.copy(this.buf, 0, data.length - this.capacity);
      this.start = 0;
      this.length = this.capacity;
      return;
    }
    const end = (this.start + this.length) % this.capacity;
    const first = Math.min(data.length, this.capacity - end);
    data.copy(this.buf, end, 0, first);
    if (first < data.length) data.copy(this.buf, 0, first);
    const overflow = this.length + data.length - this.capacity;
    if (overflow > 0) {
      this.start = (this.start + overflow) % this.capacity;
      this.length = this.capacity;
    } else {
      this.length += data.length;
    }
  }

  contents(): Buffer {
    const firstLen = Math.min(this.length, this.capacity - this.start);
    const first = this.buf.subarray(this.start, this.start + firstLen);
    if (firstLen === this.length) return Buffer.from(first);
    return Buffer.concat([first, this.buf.subarray(0, this.length - firstLen)]);
  }
}

/** The last `bytes` of a file, or nothing when it does not exist. */
export async function readTail(path: string, bytes: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, bytes);
    const out = Buffer.alloc(len);
    await fh.read(out, 0, len, size - len);
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * How many leading bytes of `next` are already at the end of `log`: the socket's output that
 * QEMU (or the fake) had also appended to the log before the tail was read.
 */
export function overlapOf(log: Buffer, next: Buffer): number {
  for (let k = Math.min(log.length, next.length); k > 0; k--) {
    if (log.subarray(log.length - k).equals(next.subarray(0, k))) return k;
  }
  return 0;
}

export class ConsoleMux {
  readonly history = new ByteRing(ConsoleHistoryBytes);
  private readonly readers = new Set<Duplex>();
  private writer: Duplex | undefined;
  private guest: Duplex | undefined;

  /**
   * Start from the console log's tail, then follow the live socket. The socket is connected
   * first and what it brings meanwhile is held: output the guest prints while the tail is read
   * is then in the log, on the socket, or both, and merge() keeps each byte once.
   */
  async attach(logPath: string, connect: () => Promise<Duplex>): Promise<void> {
    const guest = await connect();
    this.guest = guest;
    let early: Buffer[] | undefined = [];
    guest.on('data', (chunk: Buffer) => {
      if (early) {
        early.push(chunk);
        return;
      }
      this.history.append(chunk);
      for (const r of this.readers) r.write(chunk);
    });
    guest.on('error', () => { /* the guest went away; exit handling closes the mux */ });
    guest.on('close', () => { if (this.guest === guest) this.guest = undefined; });
    const tail = await readTail(logPath, ConsoleHistoryBytes);
    const held = Buffer.concat(early);
    early = undefined;
    this.history.append(tail);
    const fresh = held.subarray(overlapOf(tail, held));
    this.history.append(fresh);
    for (const r of this.readers) r.write(fresh);
  }

  hasWriter(): boolean {
    return this.writer !== undefined && !this.writer.destroyed;
  }

  /** Add a client; 'write' clients may type, one at a time. */
  addClient(client: Duplex, mode: 'read' | 'write'): void {
    if (mode === 'write') {
      if (this.hasWriter()) {
        throw new VirtkitError('domain.invalid-state', 'another client is typing on this console; attach with --read-only to watch');
      }
      this.writer = client;
      client.on('data', (chunk: Buffer) => { this.guest?.write(chunk); });
    } else {
      client.resume();
    }
    this.readers.add(client);
    const drop = (): void => {
      this.readers.delete(client);
      if (this.writer === client) this.writer = undefined;
    };
    client.on('close', drop);
    client.on('error', drop);
    // HTTP server sockets allow half-open connections: a client that hangs up only sends
    // 'end', so finish our side too or the writer's place would stay taken.
    client.on('end', () => { drop(); client.end(); });
  }

  close(): void {
    for (const r of this.readers) r.destroy();
    this.readers.clear();
    this.writer = undefined;
    this.guest?.destroy();
    this.guest = undefined;
  }
}
