/**
 * Error answers the daemon writes itself, for requests fastify never turns into a reply: the
 * ones Node's HTTP parser rejects (headers or request line too large, a malformed request, a
 * headers timeout), the ones fastify's router rejects (a malformed percent-encoding), and a
 * request line over the limit. Each is the documented `{ "error": { code, message, data } }`
 * envelope, like every other failure (docs/api.md, "Limits" and "Errors").
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { httpStatusOf } from '../api/index.js';
import { VirtkitError } from '../util/errors.js';

/** Request line plus headers; Node's parser refuses more (its default, stated here). */
export const MaxHeaderBytes = 16 * 1024;
/** The request line alone (method, URL, version); a longer one is 414. */
export const MaxRequestLineBytes = 8 * 1024;

export type ErrorBody = { code: string; message: string; data?: Record<string, unknown> };

/** A complete HTTP/1.1 error response with the envelope, closing the connection. */
export function rawErrorResponse(status: number, error: ErrorBody): string {
  const text = JSON.stringify({ error });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`;
}

/**
 * Writes `response` and closes the socket once it is sent. A peer that does not read gets a
 * moment, then the socket is destroyed: a refusal never holds a connection open.
 */
export function endWith(socket: Duplex, response: string): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), 2_000).unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(response, () => socket.destroy());
}

/** What Node's HTTP parser says when it gives up on a request (the `clientError` event). */
export interface ClientErrorLike {
  code?: string;
  reason?: string;
  message?: string;
  /** The bytes the parser choked on (a Buffer; fastify's types say otherwise). */
  rawPacket?: unknown;
}

/**
 * The status and envelope for a request the parser rejected; undefined when there is nobody
 * to answer (the peer reset the connection).
 */
export function clientErrorReply(err: ClientErrorLike, headersTimeoutMs: number): { status: number; error: ErrorBody } | undefined {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW': {
      // The parser counts the request line with the headers: it is the URL when the request
      // line alone is over its own limit.
      const line = requestLineLength(err.rawPacket);
      if (line !== undefined && line > MaxRequestLineBytes) {
        return { status: 414, error: requestLineTooLong(line).toJSON() };
      }
      return {
        status: 431,
        error: new VirtkitError('request.too-large', `request headers larger than ${MaxHeaderBytes} bytes`,
          { limit: MaxHeaderBytes, what: 'headers' }).toJSON(),
      };
    }
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, error: new VirtkitError('request.too-large', 'chunk extensions too large', { what: 'chunk-extensions' }).toJSON() };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        error: new VirtkitError('request.invalid', `request headers not complete within ${headersTimeoutMs} ms`,
          { limit: headersTimeoutMs, what: 'headers-timeout' }).toJSON(),
      };
    case 'HPE_INVALID_METHOD':
      return { status: 400, error: new VirtkitError('request.invalid', 'unknown HTTP method', { parser: err.code }).toJSON() };
    default:
      return {
        status: 400,
        error: new VirtkitError('request.invalid', `malformed HTTP request: ${err.reason ?? err.message ?? err.code ?? 'unreadable'}`,
          { ...(err.code !== undefined ? { parser: err.code } : {}) }).toJSON(),
      };
  }
}

/** The length of the request line at the start of `packet`, when it starts with one. */
function requestLineLength(packet: unknown): number | undefined {
  if (!Buffer.isBuffer(packet)) return undefined;
  const head = packet.subarray(0, 16).toString('latin1');
  if (!/^[A-Z]{1,15} /.test(head)) return undefined;
  const end = packet.indexOf('\r\n');
  return end < 0 ? packet.length : end;
}

/**
 * The status of a typed error, where HTTP has a more precise one than the code's: 414 for a
 * request line and 431 for headers over their limits (both `request.too-large`, else 413).
 */
export function statusOf(err: VirtkitError): number {
  if (err.code === 'request.too-large' && err.data.what === 'url') return 414;
  if (err.code === 'request.too-large' && err.data.what === 'headers') return 431;
  return httpStatusOf(err.code);
}

export function requestLineTooLong(length: number): VirtkitError {
  return new VirtkitError('request.too-large', `request line (method and URL) longer than ${MaxRequestLineBytes} bytes`,
    { limit: MaxRequestLineBytes, length, what: 'url' });
}

/** 414 for a request whose line is over the limit but within what the parser accepts. */
export function checkRequestLine(req: IncomingMessage): void {
  const length = (req.method?.length ?? 0) + 1 + (req.url?.length ?? 0) + ' HTTP/1.1'.length;
  if (length > MaxRequestLineBytes) throw requestLineTooLong(length);
}

/**
 * The `clientError` listener: Node's parser gave up on a request, so there is no request
 * object and no fastify reply; the envelope is written on the socket. Nothing is written when
 * part of a response already went out (it would corrupt it).
 */
export function clientErrorHandler(headersTimeoutMs: number, responseStarted: (socket: Duplex) => boolean): (err: ClientErrorLike, socket: Duplex) => void {
  return (err, socket) => {
    const reply = clientErrorReply(err, headersTimeoutMs);
    if (reply === undefined || responseStarted(socket)) {
      socket.destroy();
      return;
    }
    endWith(socket, rawErrorResponse(reply.status, reply.error));
  };
}
