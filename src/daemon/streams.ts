/**
 * The daemon's streams, outside the request/response method table: domain events and store
 * snoop as server-sent events, and the serial console as a raw HTTP upgrade.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ConsoleUpgradeProtocol, StreamPaths } from '../api/methods.js';
import { EventsQuery as EventsQuerySchema } from '../api/schemas.js';
import type { DomainEvent, EventsQuery, SnoopRecord as ApiSnoopRecord } from '../api/schemas.js';
import type { SnoopRecord, Store } from '../store/index.js';
import { httpStatusOf } from '../api/http-status.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';
import type { ConsoleMux } from './console-mux.js';
import { followEvents, replayEvents } from './event-log.js';

export interface StreamOptions {
  store: Store;
  /** The console of a running domain; undefined when it does not run. */
  consoleOf: (name: string) => ConsoleMux | undefined;
  /** The pid of the process behind a connection's client id (snoop attributes operations with it). */
  pidOfClient: (client: string) => Promise<number | null>;
}

/** The `{ error }` envelope and status of a stream's failure (request validation never gets here). */
function errorEnvelope(err: unknown): { status: number; error: { code: string; message: string; data?: Record<string, unknown> } } {
  if (isVirtkitError(err)) return { status: httpStatusOf(err.code), error: err.toJSON() };
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
    client: rec.origin.client ?? 'daemon',
    tx: String(rec.tx),
    op: rec.op,
    path: rec.path ?? '',
    value,
    result: rec.result,
  };
}

/** Registers `/events`, `/snoop` and the console upgrade on `app`. */
export function registerStreams(app: FastifyInstance, opts: StreamOptions): void {
  app.get(StreamPaths.events, { schema: { querystring: EventsQuerySchema } }, (req, reply) => {
    const q = req.query as EventsQuery;
    const follow = q.follow ?? true;
    sseHeaders(reply);
    const raw = reply.raw;
    raw.write(`event: cursor\ndata: ${JSON.stringify({ seq: opts.store.revision })}\n\n`);
    const writeEvent = (ev: DomainEvent): void => { raw.write(`id: ${ev.seq}\ndata: ${JSON.stringify(ev)}\n\n`); };
    const writeError = (err: unknown): void => {
      raw.write(`event: error\ndata: ${JSON.stringify(errorEnvelope(err).error)}\n\n`);
      raw.end();
    };
    // since=0 asks for everything kept: when the log was compacted, start where it starts now.
    const keptFrom = (err: unknown): number | undefined =>
      q.since === 0 && isVirtkitError(err, 'store.compacted') && typeof err.data.oldest === 'number' ? err.data.oldest - 1 : undefined;
    if (!follow) {
      // Replay only: up to the revision the stream opened at, then end.
      const replay = (since: number): Promise<void> => replayEvents(opts.store, since, writeEvent);
      replay(q.since ?? opts.store.revision).catch((err: unknown) => {
        const from = keptFrom(err);
        if (from === undefined) throw err;
        return replay(from);
      }).then(() => raw.end(), writeError);
      return;
    }
    let dispose = (): void => undefined;
    const subscribe = (since: number | undefined, retry: boolean): void => {
      dispose = followEvents(opts.store, since, writeEvent, (err) => {
        dispose();
        const from = retry ? keptFrom(err) : undefined;
        if (from === undefined) writeError(err);
        else subscribe(from, false);
      });
    };
    subscribe(q.since, true);
    // The response closes when the client goes away (the request itself is long complete).
    raw.on('close', () => dispose());
  });

  app.get(StreamPaths.snoop, (_req, reply) => {
    sseHeaders(reply);
    const raw = reply.raw;
    // Lines go out in operation order even while a connection's pid is still being resolved.
    let chain = Promise.resolve();
    const dispose = opts.store.onOperation((rec) => {
      const conn = rec.origin.client;
      chain = chain.then(async () => {
        const pid = rec.origin.pid ?? (conn ? await opts.pidOfClient(conn) : process.pid);
        if (!raw.writableEnded) raw.write(`data: ${JSON.stringify(snoopLine(rec, pid))}\n\n`);
      });
    });
    // The response closes when the client goes away (the request itself is long complete).
    raw.on('close', () => dispose());
  });

  // Upgraded sockets leave the HTTP server's bookkeeping: close them ourselves on shutdown.
  const upgraded = new Set<Duplex>();
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    handleConsoleUpgrade(opts.consoleOf, req, socket, head);
  });
  app.addHook('preClose', async () => {
    for (const s of upgraded) s.destroy();
  });
}

const ConsoleRoute = /^\/domains\/([^/?]+)\/console(?:\?(.*))?$/;

function rejectUpgrade(socket: Duplex, err: VirtkitError): void {
  const { status, error } = errorEnvelope(err);
  const text = JSON.stringify({ error });
  socket.end(`HTTP/1.1 ${status} Error\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
}

function handleConsoleUpgrade(consoleOf: StreamOptions['consoleOf'], req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const m = ConsoleRoute.exec(req.url ?? '');
  if (!m || (req.headers.upgrade ?? '').toLowerCase() !== ConsoleUpgradeProtocol) {
    rejectUpgrade(socket, new VirtkitError('request.invalid', `no upgrade endpoint at ${req.url ?? ''}`));
    return;
  }
  const name = decodeURIComponent(m[1]!);
  const mode = new URLSearchParams(m[2] ?? '').get('mode') === 'read' ? 'read' : 'write';
  const mux = consoleOf(name);
  if (!mux) {
    rejectUpgrade(socket, new VirtkitError('domain.invalid-state', `domain "${name}" is not running (or has no console)`, { name }));
    return;
  }
  if (mode === 'write' && mux.hasWriter()) {
    rejectUpgrade(socket, new VirtkitError('domain.invalid-state', `another client is typing on the console of "${name}"; attach with --read-only to watch`, { name }));
    return;
  }
  try {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${ConsoleUpgradeProtocol}\r\n\r\n`);
    if (head.length > 0) socket.unshift(head);
    mux.addClient(socket, mode);
  } catch (err) {
    socket.end(`\r\nvirtkit: ${errorMessage(err)}\r\n`);
  }
}
