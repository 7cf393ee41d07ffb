/**
 * The daemon's observability endpoints (docs/observability.md): the method handlers of
 * `domain.traceEvents`, `domain.stats`, `domain.statsAll`, and the streams outside the table:
 * live trace records and the manager's probes as server-sent events, a packet capture as pcap
 * bytes, and `GET /metrics`. The work is in observability-*.ts; this file wires it to HTTP.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DomainStats, MethodName, ProbeRecord, StatsQuery, TraceEventsQuery, TraceRecord } from '../api/index.js';
import { ObservabilityPaths } from '../api/index.js';
import type { GuestHandle } from '../qemu/index.js';
import type { Origin, Store } from '../store/index.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';
import { authorizeStream, originOf } from './access.js';
import { statusOf, type ErrorBody } from './http-errors.js';
import type { Manager } from './manager.js';
import { DaemonCounts } from './observability-counts.js';
import type { DaemonMetrics } from './observability-metrics.js';
import { startNetdump } from './observability-netdump.js';
import { openProbe, probeSourcesMatching } from './observability-probes.js';
import { GuestStatsCollector } from './observability-stats.js';
import { TraceRegistry } from './observability-trace.js';

/** Bytes a trace or probe stream may keep waiting for a slow reader before it is dropped. */
const MaxBufferedBytes = 4 * 1024 * 1024;
/** Bytes waiting for a trace reader beyond which the daemon stops reading QEMU's log until it catches up. */
const TraceHoldBytes = 256 * 1024;
/** Longest --duration accepted (a day): a trace meant to run for ever simply omits it. */
const MaxDurationSeconds = 86_400;

/** Observability state of one manager: trace counts, the stats cache, the metrics registry. */
export class ObservabilityService {
  readonly traces = new TraceRegistry();
  readonly stats = new GuestStatsCollector();
  /** API calls and QEMU events, counted from `registerObservability` on. */
  private counts: DaemonCounts | undefined;
  private metricsRegistry: Promise<DaemonMetrics> | undefined;

  /** Set when the routes are registered (the metrics read the store's revision). */
  store: Store | undefined;

  constructor(readonly manager: Manager) {}

  /** The running guest's handle: `domain.not-found` / `domain.invalid-state` otherwise. */
  async guest(origin: Origin, name: string): Promise<GuestHandle> {
    return (await this.running(origin, name)).handle;
  }

  private async running(origin: Origin, name: string): Promise<{ handle: GuestHandle; state: string }> {
    const { state } = await this.manager.state(origin, name);
    const handle = this.manager.observedGuest(name);
    if (!handle || (state !== 'running' && state !== 'paused')) {
      throw new VirtkitError('domain.invalid-state', `domain "${name}" is ${state}, not running: nothing to observe`, { name, state, allowed: ['running', 'paused'] });
    }
    return { handle, state };
  }

  async domainStats(origin: Origin, name: string): Promise<DomainStats> {
    const { handle, state } = await this.running(origin, name);
    return this.stats.collect(name, state, handle);
  }

  async allStats(origin: Origin, names?: readonly string[]): Promise<DomainStats[]> {
    const wanted = names && names.length > 0 ? names : this.manager.runningNames().sort();
    const out = await Promise.all(wanted.map(async (n) => {
      try {
        return await this.domainStats(origin, n);
      } catch (err) {
        // Named explicitly: the caller hears why; from "all running": one that just stopped is left out.
        if (names && names.length > 0) throw err;
        return undefined;
      }
    }));
    return out.filter((s): s is DomainStats => s !== undefined);
  }

  /** Starts counting what `/metrics` reports (API calls, QEMU events). */
  startCounting(store: Store): void {
    this.store = store;
    this.counts ??= new DaemonCounts();
  }

  /** The registry, built at the first scrape: prom-client is loaded then, not with the daemon. */
  metrics(): Promise<DaemonMetrics> {
    const daemonOrigin: Origin = { client: 'metrics' };
    const store = this.store;
    const counts = this.counts;
    if (!store || !counts) throw new VirtkitError('internal', 'the metrics need the store (registerObservability)');
    return this.metricsRegistry ??= import('./observability-metrics.js').then(({ DaemonMetrics }) => new DaemonMetrics({
      store,
      counts,
      domainStates: async () => (await this.manager.list(daemonOrigin, true)).map((d) => d.state),
      runningStats: () => this.allStats(daemonOrigin),
    }));
  }

  close(): void {
    this.traces.closeAll();
    this.counts?.close();
    void this.metricsRegistry?.then((m) => m.close(), () => undefined);
  }
}

const services = new WeakMap<Manager, ObservabilityService>();

function serviceOf(manager: Manager): ObservabilityService {
  let s = services.get(manager);
  if (!s) {
    s = new ObservabilityService(manager);
    services.set(manager, s);
  }
  return s;
}

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

/** The method handlers (one spread line in server.ts `handlers()`). */
export function observabilityHandlers(m: Manager): Record<Extract<MethodName, 'domain.traceEvents' | 'domain.stats' | 'domain.statsAll'>, Handler> {
  const svc = serviceOf(m);
  const name = (req: FastifyRequest): string => (req.params as { name: string }).name;
  return {
    'domain.traceEvents': async (req, o) => ({ events: await svc.traces.list(await svc.guest(o, name(req)), (req.query as TraceEventsQuery).pattern ?? '*') }),
    'domain.stats': (req, o) => svc.domainStats(o, name(req)),
    'domain.statsAll': async (req, o) => ({ domains: await svc.allStats(o, (req.query as StatsQuery).name) }),
  };
}

function errorBody(err: unknown): { status: number; error: ErrorBody } {
  if (isVirtkitError(err)) return { status: statusOf(err), error: err.toJSON() };
  return { status: 500, error: { code: 'internal', message: errorMessage(err) } };
}

function sse(reply: FastifyReply): (text: string) => void {
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  reply.raw.flushHeaders();
  const raw = reply.raw;
  return (text) => {
    if (raw.writableEnded || raw.destroyed) return;
    // A reader that stops reading is dropped rather than buffered for.
    if (raw.writableLength > MaxBufferedBytes) raw.destroy();
    else raw.write(text);
  };
}

function seconds(params: URLSearchParams, key: string): number | undefined {
  const v = params.get(key);
  if (v === null) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0) || n > MaxDurationSeconds) {
    throw new VirtkitError('request.invalid', `querystring.${key}: must be a number of seconds above 0, at most ${MaxDurationSeconds}`, { path: `querystring.${key}` });
  }
  return n;
}

function onlyParams(params: URLSearchParams, allowed: readonly string[]): void {
  for (const key of params.keys()) {
    if (!allowed.includes(key)) throw new VirtkitError('request.invalid', `querystring: must NOT have additional properties (${key})`, { path: 'querystring' });
  }
}

function queryOf(req: FastifyRequest): URLSearchParams {
  return new URL(req.url, 'http://virtkit').searchParams;
}

/** Registers the trace, netdump, probe and metrics endpoints (one line in server.ts `registerApi`). */
export function registerObservability(app: FastifyInstance, opts: { manager: Manager; store: Store; pidOfClient: (client: string) => number | undefined }): void {
  const svc = serviceOf(opts.manager);
  // From the start: API calls and QEMU events are counted before the first scrape.
  svc.startCounting(opts.store);
  app.addHook('onClose', async () => svc.close());

  /** Runs the checks; a refusal is answered with its `{ error }` envelope. */
  const checked = async <T>(reply: FastifyReply, check: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await check();
    } catch (err) {
      const { status, error } = errorBody(err);
      await reply.status(status).send({ error });
      return undefined;
    }
  };

  app.get(ObservabilityPaths.trace, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    let stopTrace: (() => Promise<void>) | undefined;
    let write: (text: string) => void = () => undefined;
    const started = await checked(reply, async () => {
      const caller = authorizeStream(req.raw, 'domain.trace', name);
      const q = queryOf(req);
      onlyParams(q, ['event', 'duration']);
      const duration = seconds(q, 'duration');
      const handle = await svc.guest(originOf(caller), name);
      const session = await svc.traces.open(handle, q.getAll('event'), {
        record: (rec: TraceRecord) => write(`data: ${JSON.stringify(rec)}\n\n`),
        // A trace reader that lags holds the log's reading back (QEMU's file keeps the backlog).
        congested: () => reply.raw.writableLength > TraceHoldBytes,
      });
      stopTrace = () => session.close();
      return { session, duration, handle };
    });
    if (!started) return reply;
    const { session, duration, handle } = started;
    write = sse(reply);
    const raw = reply.raw;
    write(`event: started\ndata: ${JSON.stringify({ events: session.events })}\n\n`);
    let ended = false;
    const finish = (last: string | undefined): void => {
      if (ended) return;
      ended = true;
      if (timer) clearTimeout(timer);
      void stopTrace?.().finally(() => {
        if (last) write(last);
        raw.end();
      });
    };
    const timer = duration !== undefined ? setTimeout(() => finish('event: end\ndata: {"reason":"duration"}\n\n'), duration * 1000) : undefined;
    void handle.exited.then(() => {
      // The last records QEMU wrote are read before the end is told.
      setTimeout(() => finish(`event: error\ndata: ${JSON.stringify(new VirtkitError('domain.invalid-state', `domain "${name}" stopped during the trace`, { name }).toJSON())}\n\n`), 100);
    });
    raw.on('close', () => finish(undefined));
    return reply;
  });

  app.get(ObservabilityPaths.netdump, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    const raw = reply.raw;
    let stop: (() => Promise<void>) | undefined;
    const ok = await checked(reply, async () => {
      const caller = authorizeStream(req.raw, 'domain.netdump', name);
      const q = queryOf(req);
      onlyParams(q, ['iface', 'duration', 'count']);
      const duration = seconds(q, 'duration');
      const countText = q.get('count');
      if (countText !== null && !/^[1-9]\d{0,8}$/.test(countText)) {
        throw new VirtkitError('request.invalid', 'querystring.count: must be a whole number of packets above 0', { path: 'querystring.count' });
      }
      const handle = await svc.guest(originOf(caller), name);
      const iface = q.get('iface');
      let headersSent = false;
      // The response starts with the first bytes (or the end): a refusal before then is an ordinary error reply.
      const head = (): void => {
        if (headersSent) return;
        headersSent = true;
        reply.hijack();
        raw.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap', 'cache-control': 'no-store' });
        raw.flushHeaders();
      };
      stop = await startNetdump(handle, name, {
        ...(iface !== null ? { iface } : {}),
        ...(duration !== undefined ? { durationMs: duration * 1000 } : {}),
        ...(countText !== null ? { count: Number(countText) } : {}),
      }, {
        write: (bytes) => { head(); if (!raw.destroyed) raw.write(bytes); },
        end: () => { head(); raw.end(); },
        // Once bytes went out the status is said; a failure then cuts the stream short.
        fail: () => { head(); raw.destroy(); },
      });
      head();
      return true;
    });
    if (!ok) return reply;
    raw.on('close', () => { void stop?.(); });
    return reply;
  });

  app.get(ObservabilityPaths.probe, async (req, reply) => {
    const sources = await checked(reply, async () => {
      authorizeStream(req.raw, 'daemon.probe');
      const q = queryOf(req);
      onlyParams(q, ['channel']);
      const found = probeSourcesMatching(q.getAll('channel'));
      if (found.length === 0) {
        throw new VirtkitError('argument.invalid', `--channel ${q.getAll('channel').join(', ')}: matches no probe channel (api, store, qmp, qemu-event)`, { path: 'channel' });
      }
      return found;
    });
    if (!sources) return reply;
    const write = sse(reply);
    write(`event: started\ndata: ${JSON.stringify({ channels: sources })}\n\n`);
    const detach = openProbe(sources, {
      store: opts.store,
      pidOfClient: opts.pidOfClient,
      domainOfRunDir: (runDir) => opts.manager.runningNames().find((n) => opts.manager.observedGuest(n)?.runDir === runDir),
    }, (rec: ProbeRecord) => write(`data: ${JSON.stringify(rec)}\n\n`));
    reply.raw.on('close', detach);
    return reply;
  });

  app.get(ObservabilityPaths.metrics, async (req, reply) => {
    const ok = await checked(reply, async () => { authorizeStream(req.raw, 'daemon.metrics'); return true; });
    if (!ok) return reply;
    const m = await svc.metrics();
    const text = await m.text();
    return reply.status(200).header('content-type', m.contentType).send(text);
  });
}
