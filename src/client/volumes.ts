/**
 * Volume contents over the daemon's socket, streamed both ways: nothing is buffered whole, so
 * a volume of any size moves in constant memory. Progress is reported in bytes as they pass.
 */
import * as http from 'node:http';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { VolumeInfo } from '../api/index.js';
import { VolumeContentPath, VolumeInUseHeader, routePath } from '../api/wire/index.js';
import { VirtkitError } from '../util/errors.js';
import { errorFromBody } from './protocol.js';

export type ProgressCallback = (done: number, total: number) => void;

function counter(total: number, onProgress?: ProgressCallback): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      onProgress?.(done, total);
      cb(null, chunk);
    },
  });
}

async function readBody(res: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function connectionError(socketPath: string, err: Error): VirtkitError {
  return err instanceof VirtkitError ? err
    : new VirtkitError('connection.failed', `daemon connection failed: ${err.message}`, { socketPath, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
}

/** Replaces a volume's bytes with `size` bytes from `source`; resolves with the volume's new info. */
export function uploadVolume(socketPath: string, pool: string, volume: string, source: Readable, size: number,
  onProgress?: ProgressCallback): Promise<VolumeInfo> {
  // A kept-alive connection: when the daemon refuses an upload before reading its body (a bad
  // name, a volume in use), Node's server then reads and drops the rest of the body instead of
  // closing the socket under our writes, so the refusal reaches us rather than an EPIPE.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise<VolumeInfo>((resolve, reject) => {
    const req = http.request({
      socketPath, agent, method: 'PUT', path: routePath(VolumeContentPath, { pool, volume }),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), accept: 'application/json' },
    }, (res) => {
      readBody(res).then((body) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(body as VolumeInfo);
        else {
          reject(errorFromBody(status, body));
          source.destroy(); // the answer is in: no point sending the rest
        }
      }, (err: Error) => reject(connectionError(socketPath, err)));
    });
    req.on('error', (err) => reject(connectionError(socketPath, err)));
    pipeline(source, counter(size, onProgress), req).catch(() => undefined);
  }).finally(() => agent.destroy());
}

/** A guest that may write a volume being downloaded with `allowRunning`. */
export interface VolumeWriter {
  domain: string;
  disk?: string;
}

export interface DownloadOptions {
  /**
   * Download even while a running guest may write the volume (the copy may be inconsistent);
   * without it the daemon refuses with `volume.in-use`.
   */
  allowRunning?: boolean;
  /** Called, before any byte, with the guests that may write the volume meanwhile (allowRunning only). */
  onInUse?: (writers: VolumeWriter[]) => void;
}

function writersOf(header: string | string[] | undefined): VolumeWriter[] {
  if (typeof header !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(header);
    return Array.isArray(parsed) ? parsed.filter((w): w is VolumeWriter => typeof (w as VolumeWriter | null)?.domain === 'string') : [];
  } catch {
    return [{ domain: '(unknown)' }];
  }
}

/** Writes a volume's bytes into `sink`; resolves with the number of bytes once all arrived. */
export function downloadVolume(socketPath: string, pool: string, volume: string, sink: Writable,
  onProgress?: ProgressCallback, opts: DownloadOptions = {}): Promise<number> {
  const path = `${routePath(VolumeContentPath, { pool, volume })}${opts.allowRunning === true ? '?allowRunning=true' : ''}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, agent: false, method: 'GET', path }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        readBody(res).then((body) => reject(errorFromBody(status, body)), (err: Error) => reject(connectionError(socketPath, err)));
        return;
      }
      const writers = writersOf(res.headers[VolumeInUseHeader]);
      if (writers.length > 0) opts.onInUse?.(writers);
      const total = Number(res.headers['content-length'] ?? NaN);
      let done = 0;
      const count = counter(total, (d, t) => { done = d; onProgress?.(d, t); });
      pipeline(res, count, sink).then(() => {
        if (Number.isFinite(total) && done !== total) {
          reject(new VirtkitError('connection.failed', `download of ${pool}/${volume} ended after ${done} of ${total} bytes`, { done, total }));
        } else resolve(done);
      }, (err: Error) => reject(connectionError(socketPath, err)));
    });
    req.on('error', (err) => reject(connectionError(socketPath, err)));
    req.end();
  });
}
