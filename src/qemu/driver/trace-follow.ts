/**
 * Follows a guest's qemu.log from its current end, as `tail -f` does, handing over whole
 * lines: where QEMU's `log` trace backend writes trace records (QEMU's stderr, see
 * process/shutdown-trace.ts). Polls (a trace is live only while someone follows it, so the
 * poll costs nothing the rest of the time); a truncated file is read again from its start.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { MaxTraceLineBytes } from './trace-format.js';

export interface LogFollower {
  /** Stops following; lines already read are still delivered. */
  close(): void;
}

export interface FollowOptions {
  /** How often the file is looked at (ms). */
  intervalMs?: number;
  /** Most bytes read per look: a flood of records is delivered in slices, not all in memory. */
  maxReadBytes?: number;
  /**
   * While this says true, nothing more is read: the file itself holds the backlog while the
   * consumer (a slow client) catches up, instead of the consumer's buffers.
   */
  holdWhile?: () => boolean;
}

/** Calls `onLines` with the new whole lines of `path` from now on, until closed. */
export async function followLog(path: string, onLines: (lines: string[]) => void, opts: FollowOptions = {}): Promise<LogFollower> {
  const intervalMs = opts.intervalMs ?? 50;
  const maxRead = opts.maxReadBytes ?? 1 << 20;
  let offset = await stat(path).then((s) => s.size, () => 0);
  let partial = '';
  let closed = false;
  let fh: FileHandle | undefined;
  const buf = Buffer.alloc(maxRead);

  const look = async (): Promise<void> => {
    if (!fh) {
      const h = await open(path, 'r');
      if (closed) { await h.close(); return; }
      fh = h;
    }
    const { size } = await fh.stat();
    if (size < offset) { offset = 0; partial = ''; }
    while (!closed && offset < size && !(opts.holdWhile?.() ?? false)) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(maxRead, size - offset), offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      const text = partial + buf.toString('utf8', 0, bytesRead);
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      // A "line" longer than any record is not one: drop it rather than grow.
      if (partial.length > MaxTraceLineBytes) partial = '';
      if (lines.length > 0) onLines(lines);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    look().catch(() => { fh = undefined; }).finally(() => {
      if (!closed) timer = setTimeout(tick, intervalMs);
    });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      void fh?.close().catch(() => undefined);
    },
  };
}
