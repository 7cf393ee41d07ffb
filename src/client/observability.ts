/**
 * The client side of the observability streams (docs/observability.md): trace records and
 * probe records as async iterators over server-sent events, a capture as a byte stream, and
 * the Prometheus text of `/metrics`.
 */
import type { IncomingMessage } from 'node:http';
import type { ProbeRecord, TraceRecord } from '../api/index.js';
import { ObservabilityPaths, routePath } from '../api/wire/index.js';
import { VirtkitError } from '../util/errors.js';
import { readSse } from './sse.js';

export type StreamOpener = (path: string, signal?: AbortSignal) => Promise<IncomingMessage>;

export interface TraceOptions {
  /** Event names or globs (`virtio_blk_*`); at least one. */
  events: readonly string[];
  /** End after this many seconds (else when `signal` aborts or the guest stops). */
  duration?: number;
  signal?: AbortSignal;
  /** Called once the daemon switched the events on, with their names. */
  onStarted?: (events: string[]) => void;
}

function isReset(err: unknown, signal?: AbortSignal): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return signal?.aborted === true || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE' || (err as Error | undefined)?.name === 'AbortError';
}

/** The `event: error` message of a stream as the typed error it carries. */
function streamError(data: string): VirtkitError {
  const e = JSON.parse(data) as { code?: string; message?: string; data?: Record<string, unknown> };
  return new VirtkitError((e.code ?? 'internal') as never, e.message ?? 'the stream failed', e.data ?? {});
}

/** Live trace records of a running domain; ends with the duration, the signal, or a typed error. */
export async function* traceRecords(open: StreamOpener, name: string, opts: TraceOptions): AsyncGenerator<TraceRecord> {
  const q = new URLSearchParams();
  for (const e of opts.events) q.append('event', e);
  if (opts.duration !== undefined) q.set('duration', String(opts.duration));
  const res = await open(`${routePath(ObservabilityPaths.trace, { name })}?${q.toString()}`, opts.signal);
  try {
    for await (const msg of readSse(res, 1 << 20)) {
      if (msg.event === 'started') opts.onStarted?.((JSON.parse(msg.data) as { events: string[] }).events);
      else if (msg.event === 'end') return;
      else if (msg.event === 'error') throw streamError(msg.data);
      else yield JSON.parse(msg.data) as TraceRecord;
    }
  } catch (err) {
    if (isReset(err, opts.signal)) return;
    throw err;
  } finally {
    res.destroy();
  }
}

export interface ProbeOptions {
  /** Probe channels or globs (`api`, `store`, `qmp`, `qemu-event`); default all. */
  channels?: readonly string[];
  signal?: AbortSignal;
  onStarted?: (channels: string[]) => void;
}

/** The manager's probes as they fire (admin access). */
export async function* probeRecords(open: StreamOpener, opts: ProbeOptions = {}): AsyncGenerator<ProbeRecord> {
  const q = new URLSearchParams();
  for (const c of opts.channels ?? []) q.append('channel', c);
  const query = q.toString();
  const res = await open(`${ObservabilityPaths.probe}${query ? `?${query}` : ''}`, opts.signal);
  try {
    for await (const msg of readSse(res, 1 << 20)) {
      if (msg.event === 'started') opts.onStarted?.((JSON.parse(msg.data) as { channels: string[] }).channels);
      else if (msg.event === 'error') throw streamError(msg.data);
      else yield JSON.parse(msg.data) as ProbeRecord;
    }
  } catch (err) {
    if (isReset(err, opts.signal)) return;
    throw err;
  } finally {
    res.destroy();
  }
}

export interface NetdumpOptions {
  /** The NIC's id (default the first NIC). */
  iface?: string;
  duration?: number;
  count?: number;
  signal?: AbortSignal;
}

/** A capture of a NIC's traffic: the response's body is the pcap file's bytes. */
export function netdumpStream(open: StreamOpener, name: string, opts: NetdumpOptions = {}): Promise<IncomingMessage> {
  const q = new URLSearchParams();
  if (opts.iface !== undefined) q.set('iface', opts.iface);
  if (opts.duration !== undefined) q.set('duration', String(opts.duration));
  if (opts.count !== undefined) q.set('count', String(opts.count));
  const query = q.toString();
  return open(`${routePath(ObservabilityPaths.netdump, { name })}${query ? `?${query}` : ''}`, opts.signal);
}

/** The daemon's Prometheus text. */
export async function metricsText(open: StreamOpener): Promise<string> {
  const res = await open(ObservabilityPaths.metrics);
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}
