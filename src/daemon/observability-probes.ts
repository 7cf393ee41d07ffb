/**
 * The manager's own probes (`virtkit probe`), on `node:diagnostics_channel` as undici's are:
 * - `virtkit:api`: every API call once it is answered: `{ method, domain, uid, pid, client, ms, outcome }`;
 * - `vm:qmp:command` and `vm:qmp:event`: every QMP command and QEMU event (the QMP client's own
 *   channels, src/qemu/qmp/client.ts);
 * - `virtkit:store`: every store operation (what `virtkit snoop` shows), from the store itself
 *   (src/store/store.ts).
 * A publisher builds its message only when `channel.hasSubscribers`: with nothing attached a
 * probe costs a property read. `openProbe` attaches for one `virtkit probe` client.
 */
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import { basename, dirname } from 'node:path';
import type { ProbeRecord } from '../api/index.js';
import { QmpChannels } from '../qemu/index.js';
import { StoreChannel, isStoreOf, type SnoopRecord, type Store } from '../store/index.js';
import { isVirtkitError } from '../util/errors.js';

export const ApiChannelName = 'virtkit:api';
const apiChannel = channel(ApiChannelName);

/** What `virtkit:api` carries per call. */
export interface ApiCallMessage {
  method: string;
  domain?: string;
  uid?: number;
  pid?: number;
  client: string;
  ms: number;
  outcome: string;
}

/** Someone (metrics) that wants every API call without the channel. */
export type ApiObserver = (method: string, outcome: string, seconds: number) => void;
const apiObservers = new Set<ApiObserver>();

/** Calls `fn` for every answered API call until the returned function is called. */
export function observeApiCalls(fn: ApiObserver): () => void {
  apiObservers.add(fn);
  return () => { apiObservers.delete(fn); };
}

/** Called by the route handler when a call is answered; `startedMs` from performance.now(). */
export function apiCallDone(method: string, domain: string | undefined, caller: { client: string; uid?: number; pid?: number }, startedMs: number, err?: unknown): void {
  if (apiObservers.size === 0 && !apiChannel.hasSubscribers) return;
  const ms = performance.now() - startedMs;
  const outcome = err === undefined ? 'ok' : isVirtkitError(err) ? err.code : 'internal';
  for (const observer of apiObservers) observer(method, outcome, ms / 1000);
  if (!apiChannel.hasSubscribers) return;
  const msg: ApiCallMessage = {
    method, client: caller.client, ms, outcome,
    ...(domain !== undefined ? { domain } : {}),
    ...(caller.uid !== undefined ? { uid: caller.uid } : {}),
    ...(caller.pid !== undefined ? { pid: caller.pid } : {}),
  };
  apiChannel.publish(msg);
}

/** The probe sources a client may ask for, by the name `--channel` matches. */
export const ProbeSources = ['api', 'store', 'qmp', 'qemu-event'] as const;
export type ProbeSource = (typeof ProbeSources)[number];

/** `--channel` globs (`qmp`, `q*`) to the sources they name; a glob naming none is refused by the caller. */
export function probeSourcesMatching(patterns: readonly string[]): ProbeSource[] {
  if (patterns.length === 0) return [...ProbeSources];
  const res = patterns.map((p) => new RegExp(`^(virtkit:)?${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  return ProbeSources.filter((s) => res.some((re) => re.test(s)));
}

export interface ProbeContext {
  store: Store;
  /** The domain whose run dir is `runDir`, if one runs there. */
  domainOfRunDir: (runDir: string) => string | undefined;
  /** The pid of a connection's client id. */
  pidOfClient: (client: string) => number | undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function storeRecord(rec: SnoopRecord, ctx: ProbeContext): ProbeRecord {
  const client = rec.origin.client;
  const pid = rec.origin.pid ?? (client ? ctx.pidOfClient(client) : process.pid);
  const domain = rec.path ? /^\/domains\/([^/]+)/.exec(rec.path)?.[1] : undefined;
  return {
    time: new Date(rec.time).toISOString(), channel: 'store', name: rec.op, outcome: rec.result,
    ...(domain !== undefined ? { domain } : {}),
    ...(rec.origin.uid !== undefined ? { uid: rec.origin.uid } : {}),
    ...(pid !== undefined ? { pid } : {}),
    detail: `tx ${rec.tx} ${rec.path ?? ''}`.trim(),
  };
}

/** Attaches one probe client to the sources; returns what detaches it. */
export function openProbe(sources: readonly ProbeSource[], ctx: ProbeContext, send: (rec: ProbeRecord) => void): () => void {
  const detach: (() => void)[] = [];
  const domainOfSocket = (socket: string): string | undefined => ctx.domainOfRunDir(dirname(socket));
  if (sources.includes('api')) {
    const fn = (m: unknown): void => {
      const c = m as ApiCallMessage;
      send({
        time: new Date().toISOString(), channel: 'api', name: c.method, latencyMs: round(c.ms), outcome: c.outcome,
        ...(c.domain !== undefined ? { domain: c.domain } : {}),
        ...(c.uid !== undefined ? { uid: c.uid } : {}),
        ...(c.pid !== undefined ? { pid: c.pid } : {}),
        detail: c.client,
      });
    };
    subscribe(ApiChannelName, fn);
    detach.push(() => unsubscribe(ApiChannelName, fn));
  }
  if (sources.includes('qmp')) {
    const fn = (m: unknown): void => {
      const c = m as { socket: string; command: string; outcome: string; ms: number };
      const domain = domainOfSocket(c.socket);
      send({
        time: new Date().toISOString(), channel: 'qmp', name: c.command, latencyMs: round(c.ms), outcome: c.outcome === 'return' ? 'ok' : c.outcome,
        ...(domain !== undefined ? { domain } : {}), pid: process.pid, detail: basename(dirname(c.socket)),
      });
    };
    QmpChannels.command.subscribe(fn);
    detach.push(() => QmpChannels.command.unsubscribe(fn));
  }
  if (sources.includes('qemu-event')) {
    const fn = (m: unknown): void => {
      const c = m as { socket: string; event: { event: string; data?: unknown } };
      const domain = domainOfSocket(c.socket);
      send({
        time: new Date().toISOString(), channel: 'qemu-event', name: c.event.event,
        ...(domain !== undefined ? { domain } : {}),
        ...(c.event.data !== undefined ? { detail: JSON.stringify(c.event.data).slice(0, 256) } : {}),
      });
    };
    QmpChannels.event.subscribe(fn);
    detach.push(() => QmpChannels.event.unsubscribe(fn));
  }
  if (sources.includes('store')) {
    const fn = (m: unknown): void => {
      const { store, record } = m as { store: unknown; record: SnoopRecord };
      // The channel is the process's: other stores (tests run several daemons) are not this daemon's.
      if (isStoreOf(ctx.store, store)) send(storeRecord(record, ctx));
    };
    StoreChannel.subscribe(fn);
    detach.push(() => StoreChannel.unsubscribe(fn));
  }
  return () => { for (const d of detach) d(); };
}
