/**
 * HTTP over the daemon's unix socket: JSON requests with keep-alive, typed errors decoded from
 * the `{ error: { code, message, data } }` body, and raw upgrades for the console.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { codeForStatus } from '../api/http-status.js';
import { ErrorCodes, VirtkitError, type ErrorCode } from '../util/errors.js';

export interface RequestOptions {
  method: string;
  path: string;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export class Transport {
  readonly agent: http.Agent;

  constructor(readonly socketPath: string, opts: { maxSockets?: number } = {}) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 4 });
  }

  /** One JSON request; resolves the decoded body of a 2xx reply, throws VirtkitError otherwise. */
  async json(opts: RequestOptions): Promise<unknown> {
    const { status, body } = await this.raw(opts);
    const text = body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      throw new VirtkitError('internal', `daemon sent a reply that is not JSON (HTTP ${status})`, { status });
    }
    if (status >= 200 && status < 300) return parsed;
    throw errorFromBody(status, parsed);
  }

  raw(opts: RequestOptions): Promise<{ status: number; body: Buffer }> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath,
        agent: this.agent,
        method: opts.method,
        path: opts.path,
        signal: opts.signal,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...opts.headers,
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(connectionError(this.socketPath, err)));
      });
      req.on('error', (err) => reject(connectionError(this.socketPath, err)));
      req.end(payload);
    });
  }

  /** A streaming GET: resolves with the response once headers arrive (status checked). */
  stream(path: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      // Streams get their own connection: a long-lived response must not block the pool.
      const req = http.request({ socketPath: this.socketPath, method: 'GET', path, signal, agent: false,
        headers: { accept: 'text/event-stream' } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) { resolve(res); return; }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try { parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { parsed = undefined; }
          reject(errorFromBody(status, parsed));
        });
      });
      req.on('error', (err) => reject(connectionError(this.socketPath, err)));
      req.end();
    });
  }

  /** An HTTP upgrade to a raw byte stream (the console). */
  upgrade(path: string, protocol: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, method: 'GET', path, agent: false,
        headers: { connection: 'Upgrade', upgrade: protocol } });
      req.on('upgrade', (_res, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try { parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { parsed = undefined; }
          reject(errorFromBody(res.statusCode ?? 0, parsed));
        });
      });
      req.on('error', (err) => reject(connectionError(this.socketPath, err)));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (ErrorCodes as readonly string[]).includes(code);
}

export function errorFromBody(status: number, body: unknown): VirtkitError {
  const err = (body as { error?: { code?: unknown; message?: unknown; data?: unknown } } | undefined)?.error;
  const code = isErrorCode(err?.code) ? err.code : codeForStatus(status);
  const message = typeof err?.message === 'string' ? err.message : `daemon replied HTTP ${status}`;
  const data = err?.data && typeof err.data === 'object' ? (err.data as Record<string, unknown>) : {};
  return new VirtkitError(code, message, { ...data, status });
}

function connectionError(socketPath: string, err: Error): Error {
  if (err.name === 'AbortError') return err;
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno === 'ENOENT' || errno === 'ECONNREFUSED' || errno === 'EACCES' || errno === 'ECONNRESET' || errno === 'EPIPE') {
    return new VirtkitError('connection.failed',
      `cannot reach the daemon at ${socketPath} (${errno}); start it with "virtkit daemon" or set -c/VIRTKIT_CONNECT`,
      { socketPath, errno }, { cause: err });
  }
  return new VirtkitError('connection.failed', `daemon connection failed: ${err.message}`, { socketPath, errno }, { cause: err });
}
