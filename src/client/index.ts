/**
 * `virtkit/client`: the typed client of the manager's API. One method per API operation,
 * typed errors (`VirtkitError` with the daemon's code), events as an async iterator that
 * reconnects and resumes from its cursor by itself.
 *
 *   const c = connect('./s/virtkit.sock');
 *   await c.start('demo');
 *   for await (const ev of c.events({ since: 0 })) console.log(ev.seq, ev.type, ev.domain);
 */
import * as os from 'node:os';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Static } from '@sinclair/typebox';
import { ConsoleUpgradeProtocol, Methods, StreamPaths, routePath, type MethodName, type MethodSpec } from '../api/methods.js';
import { managerDirs } from '../api/paths.js';
import type {
  DaemonInfo, DefinitionFormat, DefinitionText, DomainEvent, DomainInfo, DomainList, DomainStateInfo, DomainSummary,
  HostShutdownResult, MonitorBody, ShutdownResult, SnoopRecord,
} from '../api/schemas.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { readSse } from './sse.js';
import { downloadVolume, uploadVolume, type ProgressCallback } from './volumes.js';
import type { PoolDefineBody, PoolInfo, PoolList, VolumeCreateBody, VolumeInfo, VolumeList } from '../api/pools.js';
import { Transport, errorFromBody } from './transport.js';

export { VirtkitError, isVirtkitError };
export type * from '../api/schemas.js';
export type * from '../api/pools.js';
export type { ProgressCallback } from './volumes.js';

type Spec<M extends MethodName> = (typeof Methods)[M];
type Part<M extends MethodName, K extends 'params' | 'query' | 'body'> =
  Spec<M> extends Record<K, infer S extends MethodSpec['result']> ? Static<S> : undefined;
export type MethodInput<M extends MethodName> = { params?: Part<M, 'params'>; query?: Part<M, 'query'>; body?: Part<M, 'body'> };
export type MethodResult<M extends MethodName> = Static<Spec<M>['result']>;

/** The socket a CLI or program talks to: explicit path, else VIRTKIT_CONNECT, else the default state dir's. */
export function defaultSocketPath(env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env.VIRTKIT_CONNECT;
  if (fromEnv) return fromEnv;
  return managerDirs({ isRoot: process.getuid?.() === 0, home: os.homedir(), env }).socketPath;
}

export interface EventsOptions {
  /** Replay events after this sequence number first (0 = from the beginning of the store's history). */
  since?: number;
  /** Keep following live events (default true); false ends after the replay. */
  follow?: boolean;
  signal?: AbortSignal;
  /** Delay between reconnect attempts while the daemon is away. */
  retryMs?: number;
}

function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const parts = Object.entries(query).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

export class VirtkitClient {
  private readonly transport: Transport;

  constructor(readonly socketPath: string = defaultSocketPath(), opts: { maxSockets?: number } = {}) {
    this.transport = new Transport(socketPath, opts);
  }

  /** Call any method of the table by name; the named methods below are thin wrappers. */
  async call<M extends MethodName>(method: M, input: MethodInput<M> = {}): Promise<MethodResult<M>> {
    const spec: MethodSpec = Methods[method];
    const path = routePath(spec.path, input.params as Record<string, string> | undefined)
      + queryString(input.query as Record<string, unknown> | undefined);
    const body = spec.body ? (input.body ?? {}) : undefined;
    return (await this.transport.json({ method: spec.http, path, body })) as MethodResult<M>;
  }

  daemonInfo(): Promise<DaemonInfo> { return this.call('daemon.info'); }
  list(opts: { all?: boolean } = {}): Promise<DomainList> {
    return this.call('domain.list', { query: opts.all ? { all: true } : {} });
  }
  info(name: string): Promise<DomainInfo> { return this.call('domain.info', { params: { name } }); }
  state(name: string): Promise<DomainStateInfo> { return this.call('domain.state', { params: { name } }); }
  define(text: string, opts: { format?: DefinitionFormat; baseDir?: string } = {}): Promise<DomainInfo> {
    return this.call('domain.define', { body: { text, ...opts } });
  }
  undefine(name: string, opts: { force?: boolean } = {}): Promise<{ ok: true }> {
    return this.call('domain.undefine', { params: { name }, query: opts.force ? { force: true } : {} });
  }
  start(name: string, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    return this.call('domain.start', { params: { name }, body: opts });
  }
  shutdown(name: string, opts: { timeout?: number } = {}): Promise<ShutdownResult> {
    return this.call('domain.shutdown', { params: { name }, body: opts });
  }
  destroy(name: string): Promise<DomainStateInfo> { return this.call('domain.destroy', { params: { name } }); }
  reboot(name: string): Promise<{ ok: true }> { return this.call('domain.reboot', { params: { name } }); }
  reset(name: string): Promise<{ ok: true }> { return this.call('domain.reset', { params: { name } }); }
  suspend(name: string): Promise<DomainStateInfo> { return this.call('domain.suspend', { params: { name } }); }
  resume(name: string): Promise<DomainStateInfo> { return this.call('domain.resume', { params: { name } }); }
  setAutostart(name: string, enabled: boolean): Promise<DomainSummary> {
    return this.call('domain.setAutostart', { params: { name }, body: { enabled } });
  }
  getDefinition(name: string, format: DefinitionFormat = 'yaml'): Promise<DefinitionText> {
    return this.call('domain.getDefinition', { params: { name }, query: { format } });
  }
  updateDefinition(name: string, text: string, opts: { format?: DefinitionFormat; baseDir?: string } = {}): Promise<DomainInfo> {
    return this.call('domain.updateDefinition', { params: { name }, body: { text, ...opts } });
  }
  consoleLog(name: string): Promise<string> {
    return this.call('domain.consoleLog', { params: { name } }).then((r) => r.text);
  }
  monitorCommand(name: string, command: MonitorBody): Promise<unknown> {
    return this.call('domain.monitorCommand', { params: { name }, body: command }).then((r) => r.result);
  }
  hostShutdown(opts: { timeout?: number } = {}): Promise<HostShutdownResult> {
    return this.call('host.shutdown', { body: opts });
  }
  // pools and volumes (docs/pools.md)
  poolList(opts: { all?: boolean } = {}): Promise<PoolList> { return this.call('pool.list', { query: opts.all ? { all: true } : {} }); }
  poolDefine(body: PoolDefineBody): Promise<PoolInfo> { return this.call('pool.define', { body }); }
  poolInfo(pool: string): Promise<PoolInfo> { return this.call('pool.info', { params: { pool } }); }
  poolRefresh(pool: string): Promise<PoolInfo> { return this.call('pool.refresh', { params: { pool } }); }
  poolUndefine(pool: string): Promise<{ ok: true }> { return this.call('pool.undefine', { params: { pool } }); }
  volumeList(pool: string): Promise<VolumeList> { return this.call('volume.list', { params: { pool } }); }
  volumeCreate(pool: string, body: VolumeCreateBody): Promise<VolumeInfo> { return this.call('volume.create', { params: { pool }, body }); }
  volumeInfo(pool: string, volume: string): Promise<VolumeInfo> { return this.call('volume.info', { params: { pool, volume } }); }
  volumeClone(pool: string, volume: string, name: string): Promise<VolumeInfo> { return this.call('volume.clone', { params: { pool, volume }, body: { name } }); }
  volumeResize(pool: string, volume: string, capacity: number, opts: { shrink?: boolean } = {}): Promise<VolumeInfo> {
    return this.call('volume.resize', { params: { pool, volume }, body: { capacity, ...opts } });
  }
  volumeDelete(pool: string, volume: string): Promise<{ ok: true }> { return this.call('volume.delete', { params: { pool, volume } }); }
  /** Streams `size` bytes from `source` into the volume (replacing its content). */
  volumeUpload(pool: string, volume: string, source: Readable, size: number, onProgress?: ProgressCallback): Promise<VolumeInfo> {
    return uploadVolume(this.socketPath, pool, volume, source, size, onProgress);
  }
  /** Streams the volume's bytes into `sink`; resolves with the byte count. */
  volumeDownload(pool: string, volume: string, sink: Writable, onProgress?: ProgressCallback): Promise<number> {
    return downloadVolume(this.socketPath, pool, volume, sink, onProgress);
  }

  /**
   * Domain events, replayed from `since` and then followed live. When the daemon goes away
   * (restart, crash) the iterator reconnects and resumes after the last event it yielded, so
   * nothing is missed and nothing is repeated. Ends when `signal` aborts or, with
   * `follow: false`, after the replay.
   */
  async *events(opts: EventsOptions = {}): AsyncGenerator<DomainEvent> {
    let cursor = opts.since;
    const follow = opts.follow ?? true;
    const retryMs = opts.retryMs ?? 200;
    for (;;) {
      if (opts.signal?.aborted) return;
      try {
        const res = await this.transport.stream(StreamPaths.events + queryString({ since: cursor, follow }), opts.signal);
        for await (const msg of readSse(res)) {
          // The daemon opens every stream with the revision it starts from, so a client that
          // asked for "live only" still has a cursor to resume from after a reconnect.
          if (msg.event === 'cursor') {
            cursor ??= (JSON.parse(msg.data) as { seq: number }).seq;
            continue;
          }
          if (msg.event === 'error') throw errorFromBody(0, { error: JSON.parse(msg.data) as unknown });
          const ev = JSON.parse(msg.data) as DomainEvent;
          if (cursor !== undefined && ev.seq <= cursor) continue;
          cursor = ev.seq;
          yield ev;
        }
        if (!follow) return;
        // Cursor stays where it is when the stream opened empty; fall through to reconnect.
      } catch (err) {
        if (opts.signal?.aborted) return;
        if (!isVirtkitError(err, 'connection.failed') && !isStreamReset(err)) throw err;
      }
      await sleep(retryMs, opts.signal);
    }
  }

  /** Every store operation as it happens (the daemon's snoop stream). */
  async *snoop(opts: { signal?: AbortSignal } = {}): AsyncGenerator<SnoopRecord> {
    const res = await this.transport.stream(StreamPaths.snoop, opts.signal);
    try {
      for await (const msg of readSse(res)) yield JSON.parse(msg.data) as SnoopRecord;
    } catch (err) {
      if (opts.signal?.aborted || isStreamReset(err)) return;
      throw err;
    }
  }

  /** The guest's serial console as a raw byte stream; mode 'write' may type (one writer at a time). */
  openConsole(name: string, mode: 'read' | 'write' = 'write'): Promise<Duplex> {
    return this.transport.upgrade(`${routePath(StreamPaths.console, { name })}?mode=${mode}`, ConsoleUpgradeProtocol);
  }

  close(): void {
    this.transport.close();
  }

}

function isStreamReset(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => { clearTimeout(t); resolve(); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A client for the daemon at `socketPath` (default: VIRTKIT_CONNECT or the default state dir). */
export function connect(socketPath?: string, opts: { maxSockets?: number } = {}): VirtkitClient {
  return new VirtkitClient(socketPath ?? defaultSocketPath(), opts);
}
