/**
 * The daemon's streams, outside the request/response method table (docs/api.md, "Streams"):
 * - `/events`: domain events as server-sent events, or over a WebSocket (one JSON text
 *   message each); both replay from the store after `since` and then follow;
 * - `/snoop`: every store operation, as server-sent events;
 * - `/domains/:name/console`: the serial console over a WebSocket, binary both ways, through
 *   the domain's console mux (one writer, any number of readers).
 * Every stream is bounded: a reader that falls more than `maxBufferedBytes` behind is dropped
 * (WebSockets close with `StreamCloseCodes.slowReader`) instead of growing the daemon.
 * A refused upgrade is an ordinary HTTP error response with the `{ error }` envelope.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { WebSocket, WebSocketServer } from 'ws';
import { StreamSpecs, type AccessClass, type StreamName } from '../api/index.js';
import { StreamCloseCodes, StreamPaths } from '../api/index.js';
import { EventsQuery as EventsQuerySchema } from '../api/index.js';
import type { DomainEvent, EventsQuery, SnoopRecord as ApiSnoopRecord } from '../api/index.js';
import type { SnoopRecord, Store } from '../store/index.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';
import type { ConsoleMux } from './console-mux.js';
import { followEvents, replayEvents } from './event-log.js';
import { checkRequestLine, endWith, rawErrorResponse, statusOf, type ErrorBody } from './http-errors.js';
import { DefaultMaxBufferedBytes, sendBounded, websocketDuplex } from './websocket-duplex.js';

/** The streams served here. */
export type StreamKind = 'events' | 'snoop' | 'console.read' | 'console.write';

/** Their names in the access table (src/api/access.ts), which gives each its access class. */
export const StreamNameOf: Readonly<Record<StreamKind, StreamName>> = {
  events: 'events.stream',
  snoop: 'store.snoop',
  'console.read': 'domain.consoleWatch',
  'console.write': 'domain.console',
};

/** Refuses a stream by throwing a VirtkitError (`access.denied`); returns to allow it. */
export type StreamAuthorizer = (access: AccessClass, req: IncomingMessage, stream: StreamKind) => void | Promise<void>;

export interface StreamOptions {
  store: Store;
  /** The console of a running domain; undefined when it does not run. */
  consoleOf: (name: string) => ConsoleMux | undefined;
  /** The pid of the process behind a connection's client id (snoop attributes operations with it). */
  pidOfClient: (client: string) => Promise<number | null>;
  /** Called before a stream opens (before any upgrade); default: everyone may. */
  authorize?: StreamAuthorizer;
  /** Bytes a stream may keep waiting for a slow reader before it is dropped. */
  maxBufferedBytes?: number;
  /** Why a connection is refused (over its uid's connection limit); undefined when it is admitted. */
  connectionRefusal?: (socket: Duplex) => VirtkitError | undefined;
  /**
   * Other protocols served by upgrade on this socket, by the `Upgrade` header's token in lower
   * case (the RPC channel, src/daemon/rpc.ts); a handler that throws refuses the upgrade.
   */
  upgrades?: ReadonlyMap<string, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
}

/** The `{ error }` envelope and status of a stream's failure. */
function errorEnvelope(err: unknown): { status: number; error: ErrorBody } {
  if (isVirtkitError(err)) return { status: statusOf(err), error: err.toJSON() };
  return { status: 500, error: { code: 'internal', message: errorMessage(err) } };
}

function sseHeaders(reply: FastifyReply): void {
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  reply.raw.flushHeaders();
}

export function snoopLine(rec: SnoopRecord, pid: number | null): ApiSnoopRecord {
  const value = rec.value === undefined ? null : rec.value.length > 1024 ? `${rec.value.slice(0, 1024)}...` : rec.value;
  return {
    time: new Date(rec.time).toISOString(),
    pid: rec.origin.pid ?? pid,
    ...(rec.origin.uid !== undefined ? { uid: rec.origin.uid } : {}),
    client: rec.origin.client ?? 'daemon',
    tx: String(rec.tx),
    op: rec.op,
    path: rec.path ?? '',
    value,
    result: rec.result,
  };
}

/** Where an event stream's messages go: SSE lines or WebSocket messages. */
interface EventSink {
  cursor(seq: number): void;
  event(ev: DomainEvent): void;
  /** The stream ends with a typed error. */
  fail(err: unknown): void;
  /** A replay (`follow=false`) is complete. */
  end(): void;
}

/**
 * One event stream: the cursor (the revision it opens at), then the events after `since`,
 * then (with `follow`) each new one. Returns what stops it.
 */
function openEventStream(store: Store, q: EventsQuery, sink: EventSink): () => void {
  const follow = q.follow ?? true;
  sink.cursor(store.revision);
  // since=0 asks for everything kept: when the log was compacted, start where it starts now.
  const keptFrom = (err: unknown): number | undefined =>
    q.since === 0 && isVirtkitError(err, 'store.compacted') && typeof err.data.oldest === 'number' ? err.data.oldest - 1 : undefined;
  if (!follow) {
    // Replay only: up to the revision the stream opened at, then end.
    let stopped = false;
    const onEvent = (ev: DomainEvent): void => { if (!stopped) sink.event(ev); };
    const replay = (since: number): Promise<void> => replayEvents(store, since, onEvent);
    replay(q.since ?? store.revision).catch((err: unknown) => {
      const from = keptFrom(err);
      if (from === undefined) throw err;
      return replay(from);
    }).then(() => { if (!stopped) sink.end(); }, (err: unknown) => { if (!stopped) sink.fail(err); });
    return () => { stopped = true; };
  }
  let dispose = (): void => undefined;
  const subscribe = (since: number | undefined, retry: boolean): void => {
    dispose = followEvents(store, since, (ev) => sink.event(ev), (err) => {
      dispose();
      const from = retry ? keptFrom(err) : undefined;
      if (from === undefined) sink.fail(err);
      else subscribe(from, false);
    });
  };
  subscribe(q.since, true);
  return () => dispose();
}

/**
 * A cursor the store has not reached is refused before the stream opens: it names a revision
 * of another store (or a client's mistake), and following from it would silently skip events.
 */
function checkCursor(store: Store, q: EventsQuery): void {
  if (q.since !== undefined && q.since > store.revision) {
    throw new VirtkitError('request.invalid',
      `querystring.since: ${q.since} is beyond the store's current revision ${store.revision}`,
      { path: 'querystring.since', since: q.since, revision: store.revision });
  }
}

/**
 * Runs a stream's checks; a refusal is answered here with its `{ error }` envelope (the
 * streams do not lean on the app's error handler). Returns whether the stream may open.
 */
async function allowed(reply: FastifyReply, check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch (err) {
    const { status, error } = errorEnvelope(err);
    await reply.status(status).send({ error });
    return false;
  }
}

/** Registers `/events`, `/snoop` and the WebSocket upgrades of `/events` and the console on `app`. */
export function registerStreams(app: FastifyInstance, opts: StreamOptions): void {
  const maxBuffered = opts.maxBufferedBytes ?? DefaultMaxBufferedBytes;
  const authorize = async (kind: StreamKind, req: IncomingMessage): Promise<void> => {
    await opts.authorize?.(StreamSpecs[StreamNameOf[kind]].access, req, kind);
  };

  app.get(StreamPaths.events, { schema: { querystring: EventsQuerySchema } }, async (req, reply) => {
    const checks = async (): Promise<void> => {
      await authorize('events', req.raw);
      checkCursor(opts.store, req.query as EventsQuery);
    };
    if (!await allowed(reply, checks)) return reply;
    sseHeaders(reply);
    const raw = reply.raw;
    // A reader that stops reading is dropped rather than buffered for; it resumes from its cursor.
    const write = (text: string): void => {
      if (raw.writableLength > maxBuffered) raw.destroy();
      else raw.write(text);
    };
    const dispose = openEventStream(opts.store, req.query as EventsQuery, {
      cursor: (seq) => write(`event: cursor\ndata: ${JSON.stringify({ seq })}\n\n`),
      event: (ev) => write(`id: ${ev.seq}\ndata: ${JSON.stringify(ev)}\n\n`),
      fail: (err) => {
        write(`event: error\ndata: ${JSON.stringify(errorEnvelope(err).error)}\n\n`);
        raw.end();
      },
      end: () => raw.end(),
    });
    // The response closes when the client goes away (the request itself is long complete).
    raw.on('close', dispose);
    return reply;
  });

  app.get(StreamPaths.snoop, async (req, reply) => {
    if (!await allowed(reply, () => authorize('snoop', req.raw))) return reply;
    sseHeaders(reply);
    const raw = reply.raw;
    // Lines go out in operation order even while a connection's pid is still being resolved.
    let chain = Promise.resolve();
    const dispose = opts.store.onOperation((rec) => {
      const conn = rec.origin.client;
      chain = chain.then(async () => {
        const pid = rec.origin.pid ?? (conn ? await opts.pidOfClient(conn) : process.pid);
        if (raw.writableEnded || raw.destroyed) return;
        if (raw.writableLength > maxBuffered) raw.destroy();
        else raw.write(`data: ${JSON.stringify(snoopLine(rec, pid))}\n\n`);
      });
    });
    // The response closes when the client goes away (the request itself is long complete).
    raw.on('close', () => dispose());
    return reply;
  });

  const consoleFor = async (name: string, q: ConsoleQuery, req: IncomingMessage): Promise<ConsoleMux> => {
    await authorize(q.mode === 'write' ? 'console.write' : 'console.read', req);
    const mux = opts.consoleOf(name);
    if (!mux) throw new VirtkitError('domain.invalid-state', `domain "${name}" is not running (or has no console)`, { name });
    if (q.mode === 'write' && mux.hasWriter()) {
      throw new VirtkitError('domain.invalid-state', `another client is typing on the console of "${name}"; attach with --read-only to watch`, { name });
    }
    return mux;
  };

  // The console without an upgrade: the same checks, so a browser, whose WebSocket cannot
  // read why an upgrade was refused, can ask here with fetch; 426 when it would have opened.
  app.get(StreamPaths.console, async (req, reply) => {
    const { name } = req.params as { name: string };
    const [path = '', query = ''] = req.url.split('?');
    if (!await allowed(reply, () => consoleFor(name, parseConsoleQuery(new URLSearchParams(query)), req.raw))) return reply;
    const error = new VirtkitError('request.invalid', `${path} takes a WebSocket upgrade (GET with Upgrade: websocket)`);
    return reply.status(426).send({ error: error.toJSON() });
  });

  // ws (about 13 MiB of a daemon's memory) is loaded at the first upgrade, not with the daemon.
  let wss: WebSocketServer | undefined;
  const websocketServer = async (): Promise<WebSocketServer> =>
    wss ??= new (await import('ws')).WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  // Sockets between the upgrade request and the WebSocket (an authorizer may take a while).
  const pending = new Set<Duplex>();

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    // Before the checks: accept() must follow them in the same turn.
    const server = await websocketServer();
    const refusal = opts.connectionRefusal?.(socket);
    if (refusal) throw refusal;
    checkRequestLine(req);
    const url = parseUrl(req.url);
    const consoleName = ConsoleRoute.exec(url.pathname)?.[1];
    if (url.pathname === StreamPaths.events) {
      const q = parseEventsQuery(url.searchParams);
      await authorize('events', req);
      checkCursor(opts.store, q);
      accept(server, req, socket, head, (ws) => serveEvents(ws, q));
    } else if (consoleName !== undefined) {
      const name = decodedName(consoleName);
      const q = parseConsoleQuery(url.searchParams);
      const mux = await consoleFor(name, q, req);
      // The upgrade completes in this same turn (no verifyClient), so the checks still hold.
      accept(server, req, socket, head, (ws) => {
        const stream = websocketDuplex(ws, maxBuffered);
        try {
          // Contents and the new client join in one turn: no output between them is lost or doubled.
          if (q.history) stream.write(mux.history.contents());
          mux.addClient(stream, q.mode);
        } catch (err) {
          ws.close(1011, isVirtkitError(err) ? err.code : 'internal');
          stream.destroy();
        }
      });
    } else {
      throw new VirtkitError('request.invalid', `no WebSocket endpoint at ${url.pathname}`);
    }
  };

  const accept = (server: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, serve: (ws: WebSocket) => void): void => {
    if (socket.destroyed) return;
    server.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => { /* the reader went away; 'close' follows */ });
      serve(ws);
    });
  };

  // Every follower of the stream is sent the same text for an event: serialized and encoded
  // once, not once per follower (100 subscribers are 100 sends of each event).
  let lastEvent: { seq: number; bytes: Buffer } | undefined;
  const eventBytes = (ev: DomainEvent): Buffer => {
    if (lastEvent?.seq !== ev.seq) lastEvent = { seq: ev.seq, bytes: Buffer.from(JSON.stringify(ev)) };
    return lastEvent.bytes;
  };

  const serveEvents = (ws: WebSocket, q: EventsQuery): void => {
    const send = (msg: unknown): void => { sendBounded(ws, JSON.stringify(msg), maxBuffered); };
    const dispose = openEventStream(opts.store, q, {
      cursor: (seq) => send({ cursor: seq }),
      event: (ev) => {
        const bytes = eventBytes(ev);
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount + bytes.length > maxBuffered) {
          ws.close(StreamCloseCodes.slowReader, `reader too slow: over ${maxBuffered} bytes waiting`);
          return;
        }
        ws.send(bytes, { binary: false });
      },
      fail: (err) => {
        const { error } = errorEnvelope(err);
        send({ error });
        ws.close(StreamCloseCodes.error, error.code);
      },
      end: () => ws.close(StreamCloseCodes.done, 'replay complete'),
    });
    ws.on('close', dispose);
    // Events only flow out; a client's messages are read and dropped.
  };

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const other = opts.upgrades?.get(req.headers.upgrade?.toLowerCase() ?? '');
    if (other) {
      socket.on('error', () => socket.destroy());
      try {
        checkRequestLine(req);
        other(req, socket, head);
      } catch (err) {
        refuse(socket, err);
      }
      return;
    }
    pending.add(socket);
    socket.on('error', () => socket.destroy());
    upgrade(req, socket, head).catch((err: unknown) => refuse(socket, err)).finally(() => pending.delete(socket));
  });

  // Upgraded sockets leave the HTTP server's bookkeeping: close them ourselves on shutdown,
  // with "going away" so clients know to come back.
  app.addHook('preClose', async () => {
    for (const s of pending) s.destroy();
    const open = [...wss?.clients ?? []];
    for (const ws of open) ws.close(StreamCloseCodes.goingAway, 'daemon stopping');
    await Promise.race([
      Promise.all(open.map((ws) => new Promise((resolve) => { if (ws.readyState === ws.CLOSED) resolve(undefined); else ws.once('close', resolve); }))),
      new Promise((resolve) => setTimeout(resolve, 500).unref()),
    ]);
    for (const ws of wss?.clients ?? []) ws.terminate();
  });
}

const ConsoleRoute = /^\/domains\/([^/]+)\/console$/;

function parseUrl(text: string | undefined): URL {
  try {
    return new URL(text ?? '/', 'http://virtkit');
  } catch {
    throw new VirtkitError('request.invalid', 'not a valid request URL', { path: 'url' });
  }
}

interface ConsoleQuery {
  mode: 'read' | 'write';
  history: boolean;
}

function decodedName(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new VirtkitError('request.invalid', `not a valid domain name in the path: ${text}`, { path: 'params.name' });
  }
}

function booleanParam(params: URLSearchParams, key: string): boolean | undefined {
  const v = params.get(key);
  if (v === null) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new VirtkitError('request.invalid', `querystring.${key}: must be true or false`, { path: `querystring.${key}` });
}

function onlyParams(params: URLSearchParams, allowed: readonly string[]): void {
  for (const key of params.keys()) {
    if (!allowed.includes(key)) {
      throw new VirtkitError('request.invalid', `querystring: must NOT have additional properties (${key})`, { path: 'querystring' });
    }
  }
}

function parseConsoleQuery(params: URLSearchParams): ConsoleQuery {
  onlyParams(params, ['mode', 'history']);
  const mode = params.get('mode') ?? 'write';
  if (mode !== 'read' && mode !== 'write') {
    throw new VirtkitError('request.invalid', 'querystring.mode: must be read or write', { path: 'querystring.mode' });
  }
  return { mode, history: booleanParam(params, 'history') ?? false };
}

function parseEventsQuery(params: URLSearchParams): EventsQuery {
  onlyParams(params, ['since', 'follow']);
  const q: EventsQuery = {};
  const since = params.get('since');
  if (since !== null) {
    if (!/^\d{1,15}$/.test(since)) {
      throw new VirtkitError('request.invalid', 'querystring.since: must be a sequence number', { path: 'querystring.since' });
    }
    q.since = Number(since);
  }
  const follow = booleanParam(params, 'follow');
  if (follow !== undefined) q.follow = follow;
  return q;
}

/** A refused upgrade: an HTTP error response with the `{ error }` envelope, then close. */
function refuse(socket: Duplex, err: unknown): void {
  if (socket.destroyed) return;
  const { status, error } = errorEnvelope(err);
  endWith(socket, rawErrorResponse(status, error));
}
