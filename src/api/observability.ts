/**
 * The observability part of the API contract (docs/observability.md): trace event listing and
 * guest statistics in the method table, and the streams outside it: live trace records and the
 * manager's own probes as server-sent events, a packet capture as a pcap byte stream, and the
 * Prometheus text of `GET /metrics`.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MethodSpec } from './methods.js';
import { NameParams } from './schemas.js';

const strict = { additionalProperties: false } as const;

export const TraceValue = Type.Union([Type.Number(), Type.String(), Type.Boolean()]);

/** One trace record: the event, when, which thread/vCPU when known, arguments typed per the event's format. */
export const TraceRecord = Type.Object({
  event: Type.String(),
  time: Type.String(),
  tid: Type.Optional(Type.Integer()),
  vcpu: Type.Optional(Type.Integer()),
  args: Type.Record(Type.String(), TraceValue),
});
export type TraceRecord = Static<typeof TraceRecord>;

export const TraceEventsQuery = Type.Object({
  /** A QEMU trace event name or glob (`virtio_blk_*`); default every event. */
  pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
}, strict);
export type TraceEventsQuery = Static<typeof TraceEventsQuery>;

export const TraceEventState = Type.Object({
  name: Type.String(),
  /** QEMU's state: `unavailable` events were left out of this build. */
  state: Type.Union([Type.Literal('enabled'), Type.Literal('disabled'), Type.Literal('unavailable')]),
  /** Traces of this daemon that hold the event on now. */
  tracers: Type.Integer(),
});
export type TraceEventState = Static<typeof TraceEventState>;

export const TraceEventList = Type.Object({ events: Type.Array(TraceEventState) });
export type TraceEventList = Static<typeof TraceEventList>;

const Counter = Type.Union([Type.Integer(), Type.Null()]);

export const VcpuStats = Type.Object({
  index: Type.Integer(),
  threadId: Type.Integer(),
  /** CPU time of the vCPU's thread (user + system), from /proc. */
  timeSeconds: Type.Union([Type.Number(), Type.Null()]),
});

export const BlockStats = Type.Object({
  /** The disk's stable id (QEMU's device id). */
  id: Type.String(),
  rdBytes: Type.Integer(),
  wrBytes: Type.Integer(),
  rdOps: Type.Integer(),
  wrOps: Type.Integer(),
  flushOps: Type.Integer(),
  rdTimeNs: Type.Integer(),
  wrTimeNs: Type.Integer(),
});
export type BlockStats = Static<typeof BlockStats>;

export const NetStats = Type.Object({
  id: Type.String(),
  mac: Type.String(),
  model: Type.String(),
  network: Type.String(),
  /** Byte and packet counters: null where QEMU keeps none (user networking). */
  rxBytes: Counter,
  txBytes: Counter,
  rxPackets: Counter,
  txPackets: Counter,
});
export type NetStats = Static<typeof NetStats>;

export const DomainStats = Type.Object({
  name: Type.String(),
  state: Type.String(),
  pid: Type.Integer(),
  cpu: Type.Object({
    /** All of QEMU's threads (user + system), from /proc/PID/stat. */
    timeSeconds: Type.Number(),
    userSeconds: Type.Number(),
    systemSeconds: Type.Number(),
    vcpus: Type.Array(VcpuStats),
  }),
  memory: Type.Object({
    /** The definition's memory. */
    definedBytes: Type.Integer(),
    /** Resident set of the QEMU process. */
    rssBytes: Type.Integer(),
    /** The balloon's current size (query-balloon) when the guest has one. */
    balloonBytes: Type.Optional(Type.Integer()),
  }),
  block: Type.Array(BlockStats),
  net: Type.Array(NetStats),
});
export type DomainStats = Static<typeof DomainStats>;

export const StatsQuery = Type.Object({
  /** Names of running domains; default every running one. */
  name: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 1000 })),
}, strict);
export type StatsQuery = Static<typeof StatsQuery>;

export const StatsList = Type.Object({ domains: Type.Array(DomainStats) });
export type StatsList = Static<typeof StatsList>;

/** One message of the manager's probes (`virtkit probe`). */
export const ProbeRecord = Type.Object({
  time: Type.String(),
  /** `virtkit:api`, `virtkit:store`, `virtkit:qmp` or `virtkit:qemu-event`. */
  channel: Type.String(),
  /** The API method, store operation, QMP command or QEMU event name. */
  name: Type.String(),
  domain: Type.Optional(Type.String()),
  uid: Type.Optional(Type.Integer()),
  pid: Type.Optional(Type.Integer()),
  latencyMs: Type.Optional(Type.Number()),
  /** `ok` or the error code. */
  outcome: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
});
export type ProbeRecord = Static<typeof ProbeRecord>;

const Active = ['running', 'paused'] as const;

export const ObservabilityMethods = {
  'domain.traceEvents': { http: 'GET', path: '/domains/:name/trace/events', summary: 'QEMU trace events (matching a pattern) and their state', params: NameParams, query: TraceEventsQuery, result: TraceEventList, states: Active, access: 'read', long: false },
  'domain.stats': { http: 'GET', path: '/domains/:name/stats', summary: 'CPU, memory, block and network statistics of a running domain', params: NameParams, result: DomainStats, states: Active, access: 'read', long: false },
  'domain.statsAll': { http: 'GET', path: '/stats', summary: 'Statistics of running domains (all, or those named)', query: StatsQuery, result: StatsList, states: null, access: 'read', long: false },
} as const satisfies Record<string, MethodSpec>;

/**
 * Streams outside the method table:
 * - `GET /domains/:name/trace?event=PATTERN&event=...&duration=S`: server-sent events, one
 *   `TraceRecord` per `data:` line after an `event: started` naming the events switched on;
 *   `event: end` when the duration is over, `event: error` with `{ code, message }` when it fails.
 * - `GET /domains/:name/netdump?iface=ID&duration=S&count=N`: the capture as pcap bytes
 *   (`application/vnd.tcpdump.pcap`), ending after the duration, the count or when the client leaves.
 * - `GET /probe?channel=PATTERN`: server-sent events, one `ProbeRecord` each.
 * - `GET /metrics`: Prometheus text exposition format 0.0.4.
 */
export const ObservabilityPaths = {
  trace: '/domains/:name/trace',
  netdump: '/domains/:name/netdump',
  probe: '/probe',
  metrics: '/metrics',
} as const;

/** The diagnostics_channel names the daemon publishes to (`virtkit probe --channel`). */
export const ProbeChannels = ['virtkit:api', 'virtkit:store', 'virtkit:qmp', 'virtkit:qemu-event'] as const;
export type ProbeChannel = (typeof ProbeChannels)[number];

/** A netdump's query. */
export interface NetdumpQuery {
  iface?: string;
  duration?: number;
  count?: number;
}

/** A trace's query. */
export interface TraceQuery {
  event: string[];
  duration?: number;
}

/** The streams' entries of the OpenAPI document (src/api/openapi.ts). */
export function observabilityStreams(errorResponse: unknown): Record<string, unknown> {
  const name = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  const q = (n: string, schema: unknown, description: string): unknown => ({ name: n, in: 'query', required: false, schema, description });
  const seconds = { type: 'number', exclusiveMinimum: 0, maximum: 86400 };
  return {
    '/domains/{name}/trace': { get: {
      operationId: 'domain.trace',
      summary: 'Server-sent events: `started` (the events switched on), one TraceRecord per message, then `end` or `error`; the events go off when the stream ends',
      parameters: [name, q('event', { type: 'array', items: { type: 'string' } }, 'event name or glob, repeatable'), q('duration', seconds, 'seconds')],
      responses: { 200: { description: 'trace records', content: { 'text/event-stream': { schema: TraceRecord } } }, default: errorResponse },
    } },
    '/domains/{name}/netdump': { get: {
      operationId: 'domain.netdump',
      summary: 'A capture of a NIC\'s traffic as pcap bytes, through a QEMU filter-dump removed at the end',
      parameters: [name, q('iface', { type: 'string' }, 'NIC id (default the first)'), q('duration', seconds, 'seconds'), q('count', { type: 'integer', minimum: 1 }, 'packets')],
      responses: { 200: { description: 'pcap', content: { 'application/vnd.tcpdump.pcap': {} } }, default: errorResponse },
    } },
    [ObservabilityPaths.probe]: { get: {
      operationId: 'daemon.probe',
      summary: 'Server-sent events: one ProbeRecord per API call, store operation, QMP command or QEMU event',
      parameters: [q('channel', { type: 'array', items: { type: 'string' } }, 'api, store, qmp, qemu-event or a glob')],
      responses: { 200: { description: 'probe records', content: { 'text/event-stream': { schema: ProbeRecord } } }, default: errorResponse },
    } },
    [ObservabilityPaths.metrics]: { get: {
      operationId: 'daemon.metrics',
      summary: 'Prometheus text exposition format 0.0.4: per running guest and the daemon\'s own figures',
      responses: { 200: { description: 'metrics', content: { 'text/plain': {} } }, default: errorResponse },
    } },
  };
}
