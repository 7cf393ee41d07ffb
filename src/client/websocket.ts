/**
 * WebSockets as the client entries use them, free of any platform: what the client needs of
 * a WebSocket (the browser's and the `ws` package's both fit), waiting for one to open, and
 * its messages as an async iterator that returns the close code and reason.
 */
import { VirtkitError } from '../util/errors.js';

export interface CloseInfo {
  code: number;
  reason: string;
}

/** The part of the WebSocket interface the client uses (WHATWG's, which `ws` implements too). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
}

/** A WebSocket constructor; `protocols` carry the web listener's token (browsers cannot set headers on a WebSocket). */
export type WebSocketFactory = new (url: string, protocols?: string[]) => WebSocketLike;

const Open = 1;
const Closing = 2;

export function isOpen(ws: WebSocketLike): boolean {
  return ws.readyState === Open;
}

/** Closes unless already closing or closed. */
export function closeSocket(ws: WebSocketLike, code = 1000, reason = ''): void {
  if (ws.readyState < Closing) ws.close(code, reason);
}

/**
 * Resolves once `ws` is open. A socket that closes first rejects with `connection.failed`,
 * or with `refusal()`'s typed error when given (a browser cannot read why an upgrade was
 * refused; its entry asks the daemon again with a plain request).
 */
export function whenOpen(ws: WebSocketLike, url: string, refusal?: () => Promise<Error>): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    if (isOpen(ws)) {
      resolve(ws);
      return;
    }
    let settled = false;
    // A socket that fails says so with 'close' too; 'error' needs a listener all the same
    // (`ws`, an EventEmitter, throws an 'error' nobody listens to).
    ws.addEventListener('error', () => undefined);
    ws.addEventListener('open', () => {
      settled = true;
      resolve(ws);
    });
    ws.addEventListener('close', (ev) => {
      if (settled) return;
      settled = true;
      const failed = new VirtkitError('connection.failed', `cannot open the WebSocket ${url} (close ${ev.code})`, { url, code: ev.code });
      if (!refusal) reject(failed);
      else refusal().then(reject, () => reject(failed));
    });
  });
}

/** Bytes of a binary message, whatever form the socket delivers them in. */
export function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/**
 * The messages of a socket (text as strings, binary as bytes) until it closes; the iterator
 * then returns the close code and reason. Listens from the call on, so call it before the
 * socket opens and nothing sent right after the handshake is missed. Messages wait in a
 * queue for the consumer: a browser's WebSocket has no way to push back.
 */
export function readMessages(ws: WebSocketLike): AsyncGenerator<string | Uint8Array, CloseInfo> {
  ws.binaryType = 'arraybuffer';
  const queue: (string | Uint8Array)[] = [];
  let closed: CloseInfo | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data === 'string') queue.push(ev.data);
    else {
      const bytes = messageBytes(ev.data);
      if (bytes) queue.push(bytes);
    }
    notify();
  });
  ws.addEventListener('close', (ev) => {
    closed = { code: ev.code, reason: ev.reason };
    notify();
  });
  return (async function* messages(): AsyncGenerator<string | Uint8Array, CloseInfo> {
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (closed) return closed;
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    } finally {
      closeSocket(ws);
    }
  })();
}
