/**
 * `virtkit/client/browser`: the typed client for browsers (and any runtime with fetch and a
 * WHATWG WebSocket). The same methods, method table, error decoding and event stream as the
 * Node entry; requests go through `fetch`, events and the console through `WebSocket`. No
 * `node:` imports and no Buffer: bytes are `Uint8Array`.
 *
 *   const c = new BrowserClient({ baseUrl: 'http://127.0.0.1:8006', token });
 *   const { domains } = await c.list({ all: true });
 *   for await (const ev of c.events({ since: 0 })) render(ev);
 *   const con = await c.openConsole('demo');
 *   for await (const bytes of con.output) term.write(bytes);
 *
 * The token of the daemon's web listener (`virtkit daemon --http`, docs/web.md) goes in
 * `Authorization: Bearer` on requests and, since a browser cannot set headers on a WebSocket,
 * as the subprotocol `virtkit-token.TOKEN` beside `virtkit` on every WebSocket.
 *
 * `fetch` and `WebSocket` default to the globals; pass others (Node 20 has no global
 * WebSocket: `ws`'s fits) as options.
 */
import type { MethodName } from '../api/index.js';
import type { DomainEvent, SnoopRecord } from '../api/index.js';
import type { VolumeInfo } from '../api/index.js';
import { VolumeContentPath, routePath } from '../api/wire/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { ApiClient } from './api-client.js';
import { followEventStream, type EventsOptions, type OpenedSocket } from './events.js';
import { consolePath, decodeReply, errorFromBody, requestFor, type ConsoleMode, type MethodInput, type MethodResult } from './protocol.js';
import { closeSocket, readMessages, whenOpen, type CloseInfo, type WebSocketFactory } from './websocket.js';

export { VirtkitError, isVirtkitError };
export type * from '../api/index.js';
export type * from '../api/index.js';
export type { EventsOptions } from './events.js';
export type { ConsoleMode, MethodInput, MethodResult } from './protocol.js';
export type { CloseInfo, WebSocketFactory, WebSocketLike } from './websocket.js';

/** What the client needs of `fetch` (the global one fits). */
export type FetchLike = (url: string, init: {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}) => Promise<{ status: number; text(): Promise<string> }>;

export interface BrowserClientOptions {
  /** The daemon's address, e.g. `http://127.0.0.1:8006`; default: the page's origin. */
  baseUrl?: string;
  /** The web listener's token: `Authorization: Bearer TOKEN` on requests, a subprotocol on WebSockets. */
  token?: string;
  fetch?: FetchLike;
  WebSocket?: WebSocketFactory;
}

/** A console attached over a WebSocket. */
export interface ConsoleConnection {
  /** The guest's output as it arrives; ends when the console closes. */
  readonly output: AsyncIterable<Uint8Array>;
  /** Resolves with the close code and reason once the console closed. */
  readonly closed: Promise<CloseInfo>;
  /** Types on the console (write mode; a read-only console ignores it). Text is sent as UTF-8. */
  send(data: Uint8Array | string): void;
  close(): void;
}

const UpgradeRequired = 426;

/** The subprotocol that carries the token; the daemon never echoes it back. */
export const TokenProtocolPrefix = 'virtkit-token.';

/** A WebSocket endpoint with what opening it takes (noVNC opens its own socket). */
export interface SocketAddress {
  url: string;
  protocols: string[];
}

/** One operation the daemon serves, from its OpenAPI document. */
export interface Operation {
  /** The method's name in the table, e.g. `domain.start`. */
  id: string;
  http: string;
  /** With `{name}`-style parameters. */
  path: string;
  summary: string;
  /** It takes a JSON body. */
  body: boolean;
}

/** What the client needs of XMLHttpRequest for an upload with progress (fetch reports none). */
interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: unknown): void;
  abort(): void;
  readonly status: number;
  readonly responseText: string;
  upload: { onprogress: ((ev: { loaded: number; total: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
}

export class BrowserClient extends ApiClient {
  readonly baseUrl: string;
  private readonly fetch: FetchLike;
  private readonly WebSocket: WebSocketFactory;
  private readonly token: string | undefined;

  constructor(opts: BrowserClientOptions = {}) {
    super();
    const base = opts.baseUrl ?? (globalThis as { location?: { origin: string } }).location?.origin;
    if (!base) throw new VirtkitError('argument.invalid', 'BrowserClient needs a baseUrl outside a page');
    this.baseUrl = base.replace(/\/+$/, '');
    const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
    const globalWebSocket = (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
    const f = opts.fetch ?? globalFetch?.bind(globalThis);
    const ws = opts.WebSocket ?? globalWebSocket;
    if (!f) throw new VirtkitError('argument.invalid', 'no fetch: pass one as the fetch option');
    if (!ws) throw new VirtkitError('argument.invalid', 'no WebSocket: pass one as the WebSocket option');
    this.fetch = f;
    this.WebSocket = ws;
    this.token = opts.token;
  }

  async call<M extends MethodName>(method: M, input: MethodInput<M> = {}): Promise<MethodResult<M>> {
    const req = requestFor(method, input);
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeader() };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.request(req.path, {
      method: req.method, headers, ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
    });
    return decodeReply(res.status, await res.text()) as MethodResult<M>;
  }

  /**
   * Domain events, replayed from `since` and then followed live; reconnects and resumes
   * after the last event it yielded when the daemon goes away.
   */
  events(opts: EventsOptions = {}): AsyncGenerator<DomainEvent> {
    return followEventStream((path) => this.openSocket(path), opts);
  }

  /** The guest's serial console; mode 'write' may type (one writer at a time). */
  async openConsole(name: string, mode: ConsoleMode = 'write', opts: { history?: boolean } = {}): Promise<ConsoleConnection> {
    const { ws, messages } = await this.openSocket(consolePath(name, mode, opts.history));
    const closed = new Promise<CloseInfo>((resolve) => {
      ws.addEventListener('close', (ev) => resolve({ code: ev.code, reason: ev.reason }));
    });
    const encoder = new TextEncoder();
    async function* output(): AsyncGenerator<Uint8Array> {
      for (;;) {
        const next = await messages.next();
        if (next.done) return;
        if (typeof next.value !== 'string') yield next.value;
      }
    }
    return {
      output: output(),
      closed,
      send: (data) => ws.send(typeof data === 'string' ? encoder.encode(data) : data),
      close: () => closeSocket(ws),
    };
  }

  /**
   * The operations this daemon serves (its OpenAPI document): a page shows a feature's
   * buttons only when the daemon it talks to has the feature, whatever this build knows.
   */
  async operations(): Promise<Operation[]> {
    const res = await this.request('/openapi.json', { method: 'GET', headers: { accept: 'application/json', ...this.authHeader() } });
    const doc = decodeReply(res.status, await res.text()) as { paths?: Record<string, Record<string, { operationId?: string; summary?: string; requestBody?: unknown }>> };
    const ops: Operation[] = [];
    for (const [path, verbs] of Object.entries(doc.paths ?? {})) {
      for (const [http, op] of Object.entries(verbs)) {
        if (op.operationId) ops.push({ id: op.operationId, http: http.toUpperCase(), path, summary: op.summary ?? '', body: op.requestBody !== undefined });
      }
    }
    return ops;
  }

  /** Calls an operation this build may not know by name (see `operations`); `params` fill its path. */
  async invoke(op: Operation, params: Record<string, string>, body?: unknown): Promise<unknown> {
    const path = op.path.replace(/\{([A-Za-z]+)\}/g, (_m, key: string) => encodeURIComponent(params[key] ?? ''));
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeader() };
    if (op.body) headers['content-type'] = 'application/json';
    const res = await this.request(path, { method: op.http, headers, ...(op.body ? { body: JSON.stringify(body ?? {}) } : {}) });
    return decodeReply(res.status, await res.text());
  }

  /** Every store operation as it happens (`/snoop`, admin), until `signal` aborts. */
  async *snoop(signal?: AbortSignal): AsyncGenerator<SnoopRecord> {
    const res = await (this.fetch as unknown as (u: string, i: object) => Promise<Response>)(this.baseUrl + '/snoop',
      { method: 'GET', headers: { accept: 'text/event-stream', ...this.authHeader() }, ...(signal ? { signal } : {}) });
    if (res.status !== 200) {
      let body: unknown;
      try { body = JSON.parse(await res.text()); } catch { body = undefined; }
      throw errorFromBody(res.status, body);
    }
    const reader = res.body?.getReader();
    if (!reader) return;
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data !== '') yield JSON.parse(data) as SnoopRecord;
        }
      }
    } finally {
      void reader.cancel().catch(() => undefined);
    }
  }

  /**
   * The WebSocket subprotocols to offer: `virtkit`, which the daemon picks, and with a token
   * `virtkit-token.TOKEN`, which authenticates and is never picked.
   */
  socketProtocols(first = 'virtkit'): string[] {
    return this.token ? [first, TokenProtocolPrefix + this.token] : [first];
  }

  /** The graphical console's WebSocket (`graphics: vnc`), for noVNC: binary RFB both ways. */
  vncSocket(name: string): SocketAddress {
    return { url: `${this.baseUrl.replace(/^http/, 'ws')}/domains/${encodeURIComponent(name)}/vnc`, protocols: this.socketProtocols('binary') };
  }

  /** Replaces a volume's bytes with `data`, reporting bytes sent (XMLHttpRequest: fetch has no upload progress). */
  uploadVolume(pool: string, volume: string, data: Blob, onProgress?: (done: number, total: number) => void): Promise<VolumeInfo> {
    const Xhr = (globalThis as { XMLHttpRequest?: new () => XhrLike }).XMLHttpRequest;
    if (!Xhr) return Promise.reject(new VirtkitError('operation.unsupported', 'uploads need XMLHttpRequest (a browser)'));
    return new Promise((resolve, reject) => {
      const xhr = new Xhr();
      xhr.open('PUT', this.baseUrl + routePath(VolumeContentPath, { pool, volume }));
      for (const [k, v] of Object.entries({ ...this.authHeader(), 'content-type': 'application/octet-stream', accept: 'application/json' })) {
        xhr.setRequestHeader(k, v);
      }
      xhr.upload.onprogress = (ev) => onProgress?.(ev.loaded, ev.total);
      xhr.onerror = () => reject(new VirtkitError('connection.failed', `the upload to ${this.baseUrl} failed`, { baseUrl: this.baseUrl }));
      xhr.onload = () => {
        try {
          resolve(decodeReply(xhr.status, xhr.responseText) as VolumeInfo);
        } catch (err) {
          reject(err);
        }
      };
      xhr.send(data);
    });
  }

  /** A volume's bytes, reporting bytes received. */
  async downloadVolume(pool: string, volume: string, onProgress?: (done: number, total: number) => void): Promise<Uint8Array[]> {
    const res = await (this.fetch as unknown as (u: string, i: object) => Promise<Response>)(
      this.baseUrl + routePath(VolumeContentPath, { pool, volume }), { method: 'GET', headers: this.authHeader() });
    if (res.status < 200 || res.status >= 300) {
      let body: unknown;
      try { body = JSON.parse(await res.text()); } catch { body = undefined; }
      throw errorFromBody(res.status, body);
    }
    const total = Number(res.headers.get('content-length') ?? 0);
    const chunks: Uint8Array[] = [];
    let done = 0;
    const reader = res.body?.getReader();
    if (!reader) return [new Uint8Array(await res.arrayBuffer())];
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      chunks.push(value);
      done += value.length;
      onProgress?.(done, total);
    }
    return chunks;
  }

  private authHeader(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  private async request(path: string, init: Parameters<FetchLike>[1]): ReturnType<FetchLike> {
    try {
      return await this.fetch(this.baseUrl + path, init);
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new VirtkitError('connection.failed', `cannot reach the daemon at ${this.baseUrl}: ${(err as Error).message}`,
        { baseUrl: this.baseUrl }, { cause: err });
    }
  }

  private async openSocket(path: string): Promise<OpenedSocket> {
    const url = this.baseUrl.replace(/^http/, 'ws') + path;
    let ws;
    try {
      ws = this.token ? new this.WebSocket(url, this.socketProtocols()) : new this.WebSocket(url);
    } catch (err) {
      throw new VirtkitError('connection.failed', `cannot open the WebSocket ${url}: ${(err as Error).message}`, { url }, { cause: err });
    }
    const messages = readMessages(ws);
    await whenOpen(ws, url, () => this.refusal(path));
    return { ws, messages };
  }

  /**
   * Why a WebSocket did not open. A browser is not shown the daemon's refusal, so ask the
   * same path again with a plain request: the daemon answers it with the same checks.
   */
  private async refusal(path: string): Promise<Error> {
    const ac = new AbortController();
    const res = await this.request(path, { method: 'GET', headers: { accept: 'application/json', ...this.authHeader() }, signal: ac.signal });
    // 2xx: an event stream that would have opened; 426: a console that would have. Either
    // way the daemon has no objection: the socket itself failed.
    if ((res.status >= 200 && res.status < 300) || res.status === UpgradeRequired) {
      ac.abort();
      return new VirtkitError('connection.failed', `the WebSocket to ${this.baseUrl}${path} closed before it opened`, { baseUrl: this.baseUrl });
    }
    let body: unknown;
    try { body = JSON.parse(await res.text()); } catch { body = undefined; }
    return errorFromBody(res.status, body);
  }
}
