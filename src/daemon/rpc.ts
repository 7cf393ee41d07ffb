/**
 * The RPC channel (docs/api.md, "The RPC channel"): a connection of the daemon's socket that
 * asked `GET /v1/rpc` with `Upgrade: virtkit-rpc` carries newline-delimited JSON frames
 * after `101 Switching Protocols`, several calls in flight at once. Each frame is one call of
 * the method table, run by the same function as its REST route (access class, state
 * precondition, handler, audit line, metrics) after the same validation; only the framing
 * differs. What it saves per call is the HTTP framing on both sides: request and status
 * lines, headers, the parser, fastify's routing and reply objects (docs/performance.md).
 *
 * Bounded like the HTTP side: a frame longer than `MaxRpcFrameChars` is refused and skipped
 * as it arrives (never held); at most `MaxInFlight` calls run per connection (reading pauses beyond);
 * a reader that leaves more than `MaxUnsentBytes` unread stops the reading of new frames; a
 * connection with no call in flight and no traffic for the idle timeout is closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { MethodName } from '../api/index.js';
import { LineSplitter, MaxRpcFrameChars, RpcPath, RpcProtocol, type RpcId } from '../api/wire/index.js';
import { VirtkitError } from '../util/errors.js';
import type { Caller } from './access.js';
import type { ErrorBody } from './http-errors.js';
import type { CallInput, MethodCodecs } from './rpc-codecs.js';

/** Calls one connection may have running at once; reading waits beyond. */
export const MaxInFlight = 128;
/** Answer bytes a connection may leave unread before its new frames wait. */
export const MaxUnsentBytes = 1024 * 1024;

export interface RpcServerOptions {
  codecs: MethodCodecs;
  /** Runs one call as its route does: access, state precondition, handler, audit, metrics. */
  call: (method: MethodName, input: CallInput, caller: Caller) => Promise<unknown>;
  /** The caller of the connection (identified when it was accepted). */
  callerOf: (req: IncomingMessage) => Caller;
  /** Why the connection is refused (over its uid's limit); undefined when admitted. */
  refusalOf: (socket: Duplex) => VirtkitError | undefined;
  /** The `{ error }` envelope and status of anything thrown, as the routes answer it. */
  errorReply: (err: unknown) => { status: number; body: { error: ErrorBody } };
  /** Logs a call that failed with a 5xx status (as the routes' error handler does). */
  onServerError: (err: unknown) => void;
  idleTimeoutMs: number;
}

/** The channel's side of the daemon: opens channels on upgrade, closes them when the daemon stops. */
export class RpcServer {
  private readonly open = new Set<RpcConnection>();

  constructor(private readonly opts: RpcServerOptions) {}

  /**
   * Opens a channel on an upgrade request with `Upgrade: virtkit-rpc`; throws (the caller
   * refuses the upgrade with the error's envelope) when it cannot open.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refusal = this.opts.refusalOf(socket);
    if (refusal) throw refusal;
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (req.method !== 'GET' || path !== RpcPath) {
      throw new VirtkitError('request.invalid', `the ${RpcProtocol} channel opens with GET ${RpcPath}, not ${req.method ?? ''} ${path}`);
    }
    if (socket.destroyed) return;
    const caller = this.opts.callerOf(req);
    const seconds = Math.max(1, Math.floor(this.opts.idleTimeoutMs / 1000));
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RpcProtocol}\r\nKeep-Alive: timeout=${seconds}\r\n\r\n`);
    const conn = new RpcConnection(socket as Socket, caller, this.opts);
    this.open.add(conn);
    socket.once('close', () => this.open.delete(conn));
    // Frames the client sent right behind its request.
    if (head.length > 0) conn.receive(head);
  }

  /** Channels open now. */
  get connections(): number { return this.open.size; }

  /** Ends every channel (the daemon stops): their calls in flight are not answered. */
  closeAll(): void {
    for (const c of this.open) c.close();
  }
}

function frameError(message: string, path: string): VirtkitError {
  return new VirtkitError('request.invalid', message, { path });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a frame's id: a finite number or a string of at most 128 characters. */
function idOf(frame: Record<string, unknown>): RpcId {
  const id = frame.id;
  if ((typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length <= 128)) return id;
  throw frameError('frame.id: must be a number or a string of at most 128 characters', 'frame.id');
}

/** The parts of a call frame, checked for shape (the method's schemas check their content). */
export function decodeCallFrame(frame: unknown): { id: RpcId; method: string; input: CallInput } {
  if (!isPlainObject(frame)) throw frameError('frame: must be a JSON object', 'frame');
  const id = idOf(frame);
  if (typeof frame.method !== 'string') throw Object.assign(frameError('frame.method: must be a method name', 'frame.method'), { id });
  for (const key of Object.keys(frame)) {
    if (key !== 'id' && key !== 'method' && key !== 'params' && key !== 'query' && key !== 'body') {
      throw Object.assign(frameError(`frame: must NOT have additional properties (${key})`, 'frame'), { id });
    }
  }
  for (const part of ['params', 'query'] as const) {
    if (frame[part] !== undefined && !isPlainObject(frame[part])) {
      throw Object.assign(frameError(`frame.${part}: must be an object`, `frame.${part}`), { id });
    }
  }
  return {
    id,
    method: frame.method,
    input: {
      params: (frame.params as Record<string, unknown> | undefined) ?? {},
      query: (frame.query as Record<string, unknown> | undefined) ?? {},
      body: frame.body,
    },
  };
}

class RpcConnection {
  private readonly lines: LineSplitter;
  private readonly decoder = new StringDecoder('utf8');
  private readonly inFlight = new Set<RpcId>();
  private corked = false;
  private waitingDrain = false;

  constructor(private readonly socket: Socket, private readonly caller: Caller, private readonly opts: RpcServerOptions) {
    // An over-long line is answered and skipped as it arrives: never held, and the frames after it are read.
    this.lines = new LineSplitter(MaxRpcFrameChars, (line) => this.frame(line), () => this.send(null, {
      error: { code: 'request.too-large', message: `an RPC frame is longer than ${MaxRpcFrameChars} characters`, data: { limit: MaxRpcFrameChars } },
    }));
    // Node's HTTP server forbids setEncoding on its sockets, upgraded ones too: decode here
    // (a character split across two chunks stays whole).
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => socket.destroy());
    // Idle: nothing in flight and no traffic for the idle timeout. A call that takes minutes
    // (a shutdown with a long timeout) keeps its connection, unless its reader stopped reading.
    // (A listener of its own: the callback of setTimeout would be called once only.)
    socket.setTimeout(opts.idleTimeoutMs);
    socket.on('timeout', () => {
      if (this.inFlight.size === 0 || socket.writableLength > 0) socket.destroy();
    });
  }

  receive(bytes: Buffer): void {
    this.lines.push(this.decoder.write(bytes));
  }

  close(): void {
    this.socket.destroy();
  }

  private frame(line: string): void {
    let call: ReturnType<typeof decodeCallFrame>;
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw frameError('frame: not JSON', 'frame');
      }
      call = decodeCallFrame(parsed);
      if (this.inFlight.has(call.id)) throw Object.assign(frameError(`frame.id: ${JSON.stringify(call.id)} is already in flight`, 'frame.id'), { id: call.id });
    } catch (err) {
      const id = (err as { id?: RpcId }).id ?? null;
      this.send(id, { error: this.opts.errorReply(err).body.error });
      return;
    }
    this.start(call.id, call.method, call.input);
  }

  private start(id: RpcId, method: string, input: CallInput): void {
    const codec = this.opts.codecs.of(method);
    if (!codec) {
      this.send(id, { error: { code: 'request.invalid', message: `no such method: ${method}`, data: { path: 'frame.method' } } });
      return;
    }
    this.inFlight.add(id);
    this.throttle();
    let result: Promise<unknown>;
    try {
      codec.check(input);
      result = this.opts.call(method as MethodName, input, this.caller);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then((value) => {
      this.inFlight.delete(id);
      this.sendText(`{"id":${JSON.stringify(id)},"result":${codec.serialize(value)}}\n`);
    }).catch((err: unknown) => {
      this.inFlight.delete(id);
      const { status, body } = this.opts.errorReply(err);
      if (status >= 500) this.opts.onServerError(err);
      this.send(id, body);
    }).finally(() => this.throttle());
  }

  private send(id: RpcId | null, reply: { error: ErrorBody }): void {
    this.sendText(`${JSON.stringify({ id, ...reply })}\n`);
  }

  private sendText(text: string): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) return;
    // The answers of one turn go out in one write.
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(() => {
        this.corked = false;
        s.uncork();
      });
    }
    s.write(text);
  }

  /** Pauses reading while the connection has its most calls in flight, or its reader lags. */
  private throttle(): void {
    const s = this.socket;
    if (s.destroyed) return;
    const lagging = s.writableLength > MaxUnsentBytes;
    if (this.inFlight.size >= MaxInFlight || lagging) {
      s.pause();
      if (lagging && !this.waitingDrain) {
        this.waitingDrain = true;
        s.once('drain', () => {
          this.waitingDrain = false;
          this.throttle();
        });
      }
    } else if (s.isPaused()) {
      s.resume();
    }
  }
}
