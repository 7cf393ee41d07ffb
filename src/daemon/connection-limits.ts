/**
 * The daemon's limits on connections (docs/api.md, "Limits"), so that clients that open
 * connections and leave them, or open too many, cannot exhaust its file descriptors or memory:
 * - a connection with nothing in progress is closed after the idle timeout (a fresh one that
 *   sends nothing, one between keep-alive requests, one whose headers or body stopped arriving,
 *   one whose reader stopped reading); a request that waits for a long operation, or a stream
 *   that waits for its next event, stays open however long it takes;
 * - each uid holds at most so many connections at once; the next one is answered 503
 *   `connection.limit` and closed;
 * - all connections together are capped below the process's descriptor limit; beyond the cap
 *   a connection is closed as it is accepted, with a log line.
 * WebSockets leave the HTTP server's timeouts when they upgrade; they still count per uid.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { VirtkitError } from '../util/errors.js';

export interface ConnectionLimits {
  /** A connection with nothing in progress is closed after this long without traffic (ms). */
  idleTimeoutMs: number;
  /** A request's line and headers must have arrived this long after its first byte (ms). */
  headersTimeoutMs: number;
  /** Connections open at once per uid, for uids other than root and the daemon's own. */
  maxUserConnections: number;
  /** The same for root and for the daemon's own uid (each). */
  maxOwnerConnections: number;
  /** Connections open at once in all (further ones are closed at accept). */
  maxConnections: number;
}

export const DefaultConnectionLimits: Readonly<ConnectionLimits> = {
  idleTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  maxUserConnections: 64,
  maxOwnerConnections: 1024,
  maxConnections: 4096,
};

/** Descriptors kept free of connections for the daemon's own work (store, logs, QMP and console sockets, helpers). */
export const ReservedDescriptors = 512;

/** The soft limit on open files of this process, from /proc; undefined when it cannot be read. */
export function openFilesLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(text)?.[1];
  return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
}

/** The total cap actually applied: the configured one, kept below the descriptor limit. */
export function effectiveMaxConnections(limits: ConnectionLimits, openFiles = openFilesLimit()): number {
  if (openFiles === undefined) return limits.maxConnections;
  return Math.max(1, Math.min(limits.maxConnections, openFiles - ReservedDescriptors));
}

/** A warning logged at most once per interval, with how many times it happened meanwhile. */
export function throttledWarning(warn: (fields: Record<string, unknown>, msg: string) => void, intervalMs = 1_000): (fields: Record<string, unknown>, msg: string) => void {
  let last = 0;
  let suppressed = 0;
  return (fields, msg) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    warn({ ...fields, ...(suppressed > 0 ? { alsoSince: suppressed } : {}) }, msg);
    last = now;
    suppressed = 0;
  };
}

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
}

/**
 * Knows the request in progress on each connection, and closes connections that stay silent
 * for the idle timeout unless that request is still legitimately waiting. HTTP/1.1 answers a
 * connection's requests in order, so the latest exchange is the one that matters: one slot
 * per connection, set per request, with no listener to add and remove on the hot path.
 */
export class ConnectionTracker {
  private readonly latest = new WeakMap<Duplex, Exchange>();

  /** Installs the bookkeeping and the idle policy on `server` (whose `timeout` is the idle timeout). */
  watch(server: Server): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.latest.set(req.socket, { req, res });
    });
    // With a listener here, Node leaves the decision to us instead of destroying every socket
    // that reaches the inactivity timeout.
    server.on('timeout', (socket: Socket) => {
      if (!this.keepsWaiting(socket)) socket.destroy();
    });
  }

  /** The connection's exchange whose response is not finished yet, if any. */
  private inProgress(socket: Duplex): Exchange | undefined {
    const exchange = this.latest.get(socket);
    return exchange === undefined || exchange.res.writableFinished ? undefined : exchange;
  }

  /**
   * Whether a connection silent for the idle timeout stays open: only while a request it sent
   * in full waits for its answer (a long operation, a stream between events) and nothing waits
   * to be written to it (a reader that stopped reading is gone).
   */
  keepsWaiting(socket: Duplex): boolean {
    const exchange = this.inProgress(socket);
    if (exchange === undefined) return false;
    if (socket.writableLength > 0) return false;
    return exchange.req.complete;
  }

  /** Whether part of a response already went out on the connection (nothing else may be written then). */
  responseStarted(socket: Duplex): boolean {
    return this.inProgress(socket)?.res.headersSent ?? false;
  }
}

/** Counts connections per uid and refuses those over the uid's limit. */
export class ConnectionGate {
  private readonly open = new Map<number, number>();
  private readonly refusals = new WeakMap<object, VirtkitError>();
  private readonly warn: (fields: Record<string, unknown>, msg: string) => void;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly ownerUids: readonly number[],
    warn: (fields: Record<string, unknown>, msg: string) => void,
  ) {
    this.warn = throttledWarning(warn);
  }

  limitOf(uid: number | undefined): number {
    return uid !== undefined && this.ownerUids.includes(uid) ? this.limits.maxOwnerConnections : this.limits.maxUserConnections;
  }

  /** Connections the uid holds now (an unidentified caller is counted as uid -1). */
  connectionsOf(uid: number | undefined): number {
    return this.open.get(uid ?? -1) ?? 0;
  }

  /**
   * Admits an accepted connection or marks it refused (its first request is then answered with
   * the refusal, and it is closed). A refused connection holds no slot.
   */
  admit(socket: Socket, uid: number | undefined): VirtkitError | undefined {
    const key = uid ?? -1;
    const held = this.open.get(key) ?? 0;
    const limit = this.limitOf(uid);
    if (held >= limit) {
      const who = uid === undefined ? 'an unidentified caller' : `uid ${uid}`;
      const refusal = new VirtkitError('connection.limit',
        `${who} already holds ${held} connections to the daemon, its limit; close some and retry`,
        { limit, ...(uid !== undefined ? { uid } : {}) });
      this.refusals.set(socket, refusal);
      this.warn({ uid: uid ?? null, limit }, 'connection refused: the uid holds its limit of connections');
      return refusal;
    }
    this.open.set(key, held + 1);
    socket.once('close', () => {
      const now = (this.open.get(key) ?? 1) - 1;
      if (now > 0) this.open.set(key, now);
      else this.open.delete(key);
    });
    return undefined;
  }

  /** The refusal of a connection over its uid's limit; undefined for an admitted one. */
  refusalOf(socket: unknown): VirtkitError | undefined {
    return typeof socket === 'object' && socket !== null ? this.refusals.get(socket) : undefined;
  }
}

/**
 * The total cap on `server`: connections beyond it are closed by Node as they are accepted
 * (before any byte is read), and each such drop is logged (at most one line a second).
 */
export function capConnections(server: Server, max: number, warn: (fields: Record<string, unknown>, msg: string) => void): void {
  server.maxConnections = max;
  const dropped = throttledWarning(warn);
  server.on('drop', () => dropped({ limit: max }, 'connection closed at accept: the daemon holds its maximum of connections'));
}
