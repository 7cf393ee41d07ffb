/**
 * HTTP over the daemon's unix socket: JSON requests with keep-alive, typed errors decoded from
 * the `{ error: { code, message, data } }` body, streamed responses (snoop), and the stream
 * WebSockets (events, console) with `ws` over the same socket.
 */
import * as http from 'node:http';
import { connect as netConnect } from 'node:net';
// ws is loaded by the first stream that needs it: a plain call (`virtkit list`) never does.
import type { WebSocket } from 'ws';
import { VirtkitError } from '../util/errors.js';
import type { OpenedSocket } from './events.js';
import { decodeReply, errorFromBody } from './protocol.js';
import { readMessages, whenOpen } from './websocket.js';

export { errorFromBody };

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
    return decodeReply(status, body.toString('utf8'));
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

  /**
   * A WebSocket to `path` (path and query), resolved once open; rejects with the daemon's typed
   * error when it refuses the upgrade, `connection.failed` when it cannot be reached.
   * `listen` gets the socket before it opens, so a reader attached there misses nothing the
   * daemon sends right after the handshake.
   */
  async websocket(path: string, listen?: (ws: WebSocket) => void): Promise<WebSocket> {
    const socketPath = this.socketPath;
    // Each stream its own connection, as for `stream`; the host name is only for the Host header.
    const { WebSocket: WebSocketClass } = await import('ws');
    const ws = new WebSocketClass(`ws://localhost${path}`, { createConnection: () => netConnect(socketPath) });
    listen?.(ws);
    const refused = new Promise<never>((_resolve, reject) => {
      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try { parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { parsed = undefined; }
          reject(errorFromBody(res.statusCode ?? 0, parsed));
          ws.terminate();
        });
      });
      ws.on('error', (err) => reject(connectionError(socketPath, err)));
    });
    // Once settled, a late error (the refused socket torn down) has nowhere to go.
    refused.catch(() => undefined);
    await Promise.race([whenOpen(ws, path), refused]);
    return ws;
  }

  /** The event stream's opener: its messages are read from before the socket opens. */
  async messageSocket(path: string): Promise<OpenedSocket> {
    let messages: OpenedSocket['messages'] | undefined;
    const ws = await this.websocket(path, (s) => { messages = readMessages(s); });
    return { ws, messages: messages! };
  }

  close(): void {
    this.agent.destroy();
  }
}

export function connectionError(socketPath: string, err: Error): Error {
  if (err.name === 'AbortError') return err;
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno === 'ENOENT' || errno === 'ECONNREFUSED' || errno === 'EACCES' || errno === 'ECONNRESET' || errno === 'EPIPE') {
    return new VirtkitError('connection.failed',
      `cannot reach the daemon at ${socketPath} (${errno}); start it with "virtkit daemon" or set -c/VIRTKIT_CONNECT`,
      { socketPath, errno }, { cause: err });
  }
  return new VirtkitError('connection.failed', `daemon connection failed: ${err.message}`, { socketPath, errno }, { cause: err });
}
