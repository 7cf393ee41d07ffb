/**
 * The client's side of the wire, shared by the Node and browser entries and free of any
 * platform (no `node:` imports, no Buffer): requests built from the method table, replies
 * and the `{ error }` envelope decoded into typed errors, stream paths and the messages of
 * the event WebSocket.
 */
import type { Static } from '@sinclair/typebox';
// Values come from the light modules (no TypeBox): a client command starts without the schemas.
import type { MethodName, MethodSpec, Methods } from '../api/index.js';
import type { DomainEvent } from '../api/index.js';
import { Routes, StreamPaths, codeForStatus, routePath } from '../api/wire/index.js';
import { ErrorCodes, VirtkitError, type ErrorCode } from '../util/errors.js';

type Spec<M extends MethodName> = (typeof Methods)[M];
type Part<M extends MethodName, K extends 'params' | 'query' | 'body'> =
  Spec<M> extends Record<K, infer S extends MethodSpec['result']> ? Static<S> : undefined;
export type MethodInput<M extends MethodName> = { params?: Part<M, 'params'>; query?: Part<M, 'query'>; body?: Part<M, 'body'> };
export type MethodResult<M extends MethodName> = Static<Spec<M>['result']>;

export interface ApiRequest {
  method: MethodSpec['http'];
  /** Path and query string. */
  path: string;
  /** The JSON body, for methods that take one. */
  body?: unknown;
}

export function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const parts = Object.entries(query).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The HTTP request of one method call, from the method table. */
export function requestFor<M extends MethodName>(method: M, input: MethodInput<M> = {}): ApiRequest {
  const spec = Routes[method];
  const path = routePath(spec.path, input.params as Record<string, string> | undefined)
    + queryString(input.query as Record<string, unknown> | undefined);
  return spec.body ? { method: spec.http, path, body: input.body ?? {} } : { method: spec.http, path };
}

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (ErrorCodes as readonly string[]).includes(code);
}

/** The typed error of a failed reply; `status` 0 for an error that came inside a stream. */
export function errorFromBody(status: number, body: unknown): VirtkitError {
  const err = (body as { error?: { code?: unknown; message?: unknown; data?: unknown } } | undefined)?.error;
  const code = isErrorCode(err?.code) ? err.code : codeForStatus(status);
  const message = typeof err?.message === 'string' ? err.message : `daemon replied HTTP ${status}`;
  const data = err?.data && typeof err.data === 'object' ? (err.data as Record<string, unknown>) : {};
  return new VirtkitError(code, message, { ...data, status });
}

/** A reply's text: the decoded JSON of a 2xx, else its typed error. */
export function decodeReply(status: number, text: string): unknown {
  let parsed: unknown;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    if (status >= 200 && status < 300) {
      throw new VirtkitError('internal', `daemon sent a reply that is not JSON (HTTP ${status})`, { status });
    }
    parsed = undefined;
  }
  if (status >= 200 && status < 300) return parsed;
  throw errorFromBody(status, parsed);
}

/** Path and query of the event stream. */
export function eventsPath(since: number | undefined, follow: boolean): string {
  return StreamPaths.events + queryString({ since, follow });
}

export type ConsoleMode = 'read' | 'write';

/** Path and query of a domain's console. */
export function consolePath(name: string, mode: ConsoleMode, history = false): string {
  return routePath(StreamPaths.console, { name }) + queryString({ mode, ...(history ? { history: true } : {}) });
}

/** One message of the event WebSocket. */
export type EventMessage =
  | { kind: 'cursor'; seq: number }
  | { kind: 'event'; event: DomainEvent }
  | { kind: 'error'; error: VirtkitError };

/** Decodes one text message of the event WebSocket; a message it cannot read is an error. */
export function decodeEventMessage(text: string): EventMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new VirtkitError('internal', 'event stream sent a message that is not JSON');
  }
  if (typeof msg === 'object' && msg !== null) {
    const m = msg as Record<string, unknown>;
    if (typeof m.cursor === 'number') return { kind: 'cursor', seq: m.cursor };
    if (typeof m.error === 'object' && m.error !== null) return { kind: 'error', error: errorFromBody(0, m) };
    if (typeof m.seq === 'number' && typeof m.type === 'string') return { kind: 'event', event: m as unknown as DomainEvent };
  }
  throw new VirtkitError('internal', 'event stream sent a message of unknown shape');
}
