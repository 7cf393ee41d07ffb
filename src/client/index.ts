/**
 * `virtkit/client`: the typed client of the manager's API, for Node (the daemon's unix
 * socket). One method per API operation, typed errors (`VirtkitError` with the daemon's
 * code), events as an async iterator that reconnects and resumes from its cursor by itself,
 * the console as a byte Duplex. Browsers use `virtkit/client/browser` (fetch + WebSocket),
 * built on the same method table and decoding.
 *
 *   const c = connect('./s/virtkit.sock');
 *   await c.start('demo');
 *   for await (const ev of c.events({ since: 0 })) console.log(ev.seq, ev.type, ev.domain);
 */
import type { IncomingMessage } from 'node:http';
import * as os from 'node:os';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { MethodName } from '../api/index.js';
import { StreamPaths, managerDirs } from '../api/wire/index.js';
import type { DomainEvent, ProbeRecord, SnoopRecord, TraceRecord } from '../api/index.js';
import type { VolumeInfo } from '../api/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { ApiClient } from './api-client.js';
import { followEventStream, type EventsOptions } from './events.js';
import { consolePath, requestFor, type ConsoleMode, type MethodInput, type MethodResult } from './protocol.js';
import { readSse } from './sse.js';
import { metricsText, netdumpStream, probeRecords, traceRecords, type NetdumpOptions, type ProbeOptions, type TraceOptions } from './observability.js';
import { downloadVolume, uploadVolume, type DownloadOptions, type ProgressCallback } from './volumes.js';
import { Transport } from './transport.js';
import { RpcChannel, RpcUnavailable } from './rpc.js';

export { VirtkitError, isVirtkitError };
export type * from '../api/index.js';
export type * from '../api/index.js';
export type { DownloadOptions, ProgressCallback, VolumeWriter } from './volumes.js';
export type { EventsOptions } from './events.js';
export type { NetdumpOptions, ProbeOptions, TraceOptions } from './observability.js';
export type { ConsoleMode, MethodInput, MethodResult } from './protocol.js';

/** The socket a CLI or program talks to: explicit path, else VIRTKIT_CONNECT, else the default state dir's. */
export function defaultSocketPath(env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env.VIRTKIT_CONNECT;
  if (fromEnv) return fromEnv;
  return managerDirs({ isRoot: process.getuid?.() === 0, home: os.homedir(), env }).socketPath;
}

export interface ConsoleOptions {
  /** First receive what the daemon kept of the console's output (up to 256 KiB). */
  history?: boolean;
}

export interface ClientOptions {
  /** Connections the HTTP side keeps (calls when `transport` is 'http', streams). Default 4. */
  maxSockets?: number;
  /**
   * How method calls travel: 'rpc' (the default) over the daemon's RPC channel, one upgraded
   * connection with calls in flight side by side, falling back to HTTP on a daemon without
   * it; 'http', one HTTP request per call (the REST routes). Streams are HTTP either way.
   */
  transport?: 'rpc' | 'http';
}

export class VirtkitClient extends ApiClient {
  private readonly transport: Transport;
  private rpc: RpcChannel | undefined;

  constructor(readonly socketPath: string = defaultSocketPath(), opts: ClientOptions = {}) {
    super();
    this.transport = new Transport(socketPath, opts);
    if (opts.transport !== 'http') this.rpc = new RpcChannel(socketPath);
  }

  /** Call any method of the table by name; the named methods are thin wrappers. */
  async call<M extends MethodName>(method: M, input: MethodInput<M> = {}): Promise<MethodResult<M>> {
    if (this.rpc !== undefined) {
      try {
        return (await this.rpc.call(method, input as MethodInput<MethodName>)) as MethodResult<M>;
      } catch (err) {
        if (!(err instanceof RpcUnavailable)) throw err;
        // A daemon that predates the channel: HTTP from now on.
        this.rpc = undefined;
      }
    }
    return (await this.transport.json(requestFor(method, input))) as MethodResult<M>;
  }

  /** Streams `size` bytes from `source` into the volume (replacing its content). */
  volumeUpload(pool: string, volume: string, source: Readable, size: number, onProgress?: ProgressCallback): Promise<VolumeInfo> {
    return uploadVolume(this.socketPath, pool, volume, source, size, onProgress);
  }
  /** Streams the volume's bytes into `sink`; resolves with the byte count. `opts`: see DownloadOptions. */
  volumeDownload(pool: string, volume: string, sink: Writable, onProgress?: ProgressCallback, opts: DownloadOptions = {}): Promise<number> {
    return downloadVolume(this.socketPath, pool, volume, sink, onProgress, opts);
  }

  /**
   * Domain events over the event WebSocket, replayed from `since` and then followed live.
   * When the daemon goes away (restart, crash) the iterator reconnects and resumes after the
   * last event it yielded, so nothing is missed and nothing is repeated. Ends when `signal`
   * aborts or, with `follow: false`, after the replay.
   */
  events(opts: EventsOptions = {}): AsyncGenerator<DomainEvent> {
    return followEventStream((path) => this.transport.messageSocket(path), opts);
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

  /**
   * The guest's serial console as a byte Duplex over a WebSocket; mode 'write' may type (one
   * writer at a time: a second is refused with `domain.invalid-state`).
   */
  async openConsole(name: string, mode: ConsoleMode = 'write', opts: ConsoleOptions = {}): Promise<Duplex> {
    let stream: Duplex | undefined;
    // The Duplex listens from before the socket opens: history sent right after the handshake
    // is not lost. Until then its errors are the refusal's, which the promise reports.
    const quiet = (): void => undefined;
    // Loaded here, not at start-up: only a console needs ws's stream adapter.
    const { createWebSocketStream } = await import('ws');
    try {
      await this.transport.websocket(consolePath(name, mode, opts.history), (ws) => {
        stream = createWebSocketStream(ws);
        stream.on('error', quiet);
      });
    } catch (err) {
      stream?.destroy();
      throw err;
    }
    stream!.off('error', quiet);
    // When the daemon closes the console (the guest stopped), the stream ends and closes as a
    // socket would; `ws` on its own keeps the writable half open.
    stream!.once('end', () => stream!.destroy());
    return stream!;
  }

  /** Live QEMU trace records of a running domain (docs/observability.md). */
  trace(name: string, opts: TraceOptions): AsyncGenerator<TraceRecord> { return traceRecords((p, s) => this.transport.stream(p, s), name, opts); }
  /** The manager's probes as they fire: API calls, store operations, QMP commands, QEMU events (admin). */
  probe(opts: ProbeOptions = {}): AsyncGenerator<ProbeRecord> { return probeRecords((p, s) => this.transport.stream(p, s), opts); }
  /** A packet capture of a NIC: the response body is pcap. */
  netdump(name: string, opts: NetdumpOptions = {}): Promise<IncomingMessage> { return netdumpStream((p, s) => this.transport.stream(p, s), name, opts); }
  /** The daemon's `/metrics` (Prometheus text). */
  metrics(): Promise<string> { return metricsText((p, s) => this.transport.stream(p, s)); }

  close(): void {
    this.rpc?.close();
    this.transport.close();
  }

}

function isStreamReset(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE';
}

/** A client for the daemon at `socketPath` (default: VIRTKIT_CONNECT or the default state dir). */
export function connect(socketPath?: string, opts: ClientOptions = {}): VirtkitClient {
  return new VirtkitClient(socketPath ?? defaultSocketPath(), opts);
}
