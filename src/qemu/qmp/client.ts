import { channel } from 'node:diagnostics_channel';
import { connect as netConnect, type Socket } from 'node:net';
import { VirtkitError, errorMessage } from '../../util/errors.js';
import { mark } from '../../util/timeline.js';
import type { QmpArgs, QmpCommandName, QmpReturn } from './commands.js';
import type { QmpEvent, QmpTimestamp } from './events.js';
import { LineReader } from './line-reader.js';

export interface QmpConnectOptions {
  /** Bound on connecting, reading the greeting and negotiating capabilities. Default 5000 ms. */
  timeoutMs?: number;
  /** Default per-call timeout for `execute`. Default 30000 ms. */
  callTimeoutMs?: number;
}

export interface QmpCallOptions {
  /** Rejects only this call with 'qmp.timeout'; the connection stays usable. */
  timeoutMs?: number;
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

interface PendingCall {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: VirtkitError) => void;
  timer: NodeJS.Timeout;
}

type EventListener = (ev: QmpEvent) => void;

const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/**
 * diagnostics_channel names, for tracing without touching the client: `vm:qmp:command` gets
 * `{ socket, command, args, outcome: 'return' | 'error' | 'timeout' | 'disconnected', ms }` once
 * per call, `vm:qmp:event` gets `{ socket, event }` for every event.
 */
export const QmpChannels = { command: channel('vm:qmp:command'), event: channel('vm:qmp:event') } as const;

/**
 * A QMP connection to one QEMU. Messages are newline-delimited JSON; each command carries an
 * incrementing id and its reply is matched by that id, so replies may arrive in any order
 * and events may interleave. Failures are typed:
 * - 'qmp.command-failed' when QEMU answers with an error (data: command, class, desc);
 * - 'qmp.timeout' rejects only the call that timed out (a late reply is dropped);
 * - 'qmp.disconnected' for every pending and later call once the socket closes;
 * - 'qmp.protocol' when QEMU sends something that is not QMP (the connection is then closed).
 */
export class QmpClient {
  readonly greeting: QmpGreeting;
  /** Settles (never rejects) once the connection is gone. */
  readonly closed: Promise<void>;
  /** Why the connection ended: undefined while open. */
  closeReason: VirtkitError | undefined;

  private nextId = 1;
  private readonly pending = new Map<string, PendingCall>();
  private readonly listeners = new Set<EventListener>();
  private readonly callTimeoutMs: number;
  private resolveClosed!: () => void;

  private constructor(private readonly socket: Socket, private readonly socketPath: string, greeting: QmpGreeting, reader: LineReader, callTimeoutMs: number) {
    this.greeting = greeting;
    this.callTimeoutMs = callTimeoutMs;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (err) {
        this.fail(err as VirtkitError);
        return;
      }
      for (const line of lines) {
        if (this.closeReason) return;
        this.handleLine(line);
      }
    });
    socket.on('error', () => undefined); // 'close' follows and does the bookkeeping
    socket.on('close', () => this.fail(new VirtkitError('qmp.disconnected', 'QEMU closed the QMP connection')));
  }

  /**
   * Connects to a QMP unix socket, reads the greeting and leaves negotiation mode.
   * Throws 'qmp.disconnected' (no socket, refused, closed early), 'qmp.timeout' or 'qmp.protocol'.
   */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const socket = netConnect(socketPath);
    const reader = new LineReader();
    const greeting = await new Promise<{ greeting: QmpGreeting; rest: string[] }>((resolve, reject) => {
      const timer = setTimeout(() => done(new VirtkitError('qmp.timeout', `no QMP greeting on ${socketPath} within ${timeoutMs} ms`, { socketPath })), timeoutMs);
      const done = (err: VirtkitError | undefined, value?: { greeting: QmpGreeting; rest: string[] }): void => {
        clearTimeout(timer);
        socket.off('data', onData).off('error', onError).off('close', onClose);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve(value!);
      };
      const onData = (chunk: Buffer): void => {
        let lines: string[];
        try {
          lines = reader.push(chunk);
        } catch (err) {
          done(err as VirtkitError);
          return;
        }
        if (lines.length === 0) return;
        const msg = parseMessage(lines[0]!);
        if (!msg || !isObject(msg['QMP'])) {
          done(new VirtkitError('qmp.protocol', `expected a QMP greeting on ${socketPath}, got ${preview(lines[0]!)}`, { socketPath }));
          return;
        }
        const qmp = msg['QMP'];
        done(undefined, {
          greeting: { version: qmp['version'] as QmpGreeting['version'], capabilities: (qmp['capabilities'] as string[] | undefined) ?? [] },
          rest: lines.slice(1),
        });
      };
      const onError = (err: Error): void =>
        done(new VirtkitError('qmp.disconnected', `cannot connect to QMP socket ${socketPath}: ${err.message}`, { socketPath }, { cause: err }));
      const onClose = (): void => done(new VirtkitError('qmp.disconnected', `QMP socket ${socketPath} closed before the greeting`, { socketPath }));
      socket.on('data', onData).on('error', onError).on('close', onClose);
    });
    mark('qmp: greeting');
    const client = new QmpClient(socket, socketPath, greeting.greeting, reader, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    for (const line of greeting.rest) client.handleLine(line);
    try {
      await client.execute('qmp_capabilities', undefined, { timeoutMs });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Runs a command from the typed table. */
  execute<K extends QmpCommandName>(command: K, args?: QmpArgs<K>, opts: QmpCallOptions = {}): Promise<QmpReturn<K>> {
    return this.executeUntyped(command, args as Record<string, unknown> | undefined, opts) as Promise<QmpReturn<K>>;
  }

  /** Runs any QMP command (passthrough); the reply's `return` is not checked. */
  executeUntyped(command: string, args?: Record<string, unknown>, opts: QmpCallOptions = {}): Promise<unknown> {
    if (this.closeReason) return Promise.reject(this.closedError(command));
    const id = `virtkit-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    const message = JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id });
    // Nanoseconds: a QMP round trip takes well under a millisecond, which Date.now() rounds away.
    const started = process.hrtime.bigint();
    const trace = (outcome: string): void => {
      if (QmpChannels.command.hasSubscribers) {
        QmpChannels.command.publish({ socket: this.socketPath, command, args, outcome, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      }
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        trace('timeout');
        reject(new VirtkitError('qmp.timeout', `QMP command ${command} got no reply within ${timeoutMs} ms`, { command, timeoutMs }));
      }, timeoutMs);
      this.pending.set(id, {
        command,
        resolve: (v) => { trace('return'); resolve(v); },
        reject: (e) => { trace(e.code === 'qmp.command-failed' ? 'error' : 'disconnected'); reject(e); },
        timer,
      });
      this.socket.write(`${message}\n`);
    });
  }

  /** HMP passthrough via human-monitor-command; returns HMP's text output. */
  hmp(commandLine: string, opts: QmpCallOptions = {}): Promise<string> {
    return this.execute('human-monitor-command', { 'command-line': commandLine }, opts);
  }

  /** Calls `fn` for every event (or only those named `name`); returns an unsubscribe function. */
  on(fn: EventListener): () => void;
  on<E extends string>(name: E, fn: (ev: QmpEvent<E>) => void): () => void;
  on(a: string | EventListener, b?: (ev: QmpEvent) => void): () => void {
    const fn: EventListener = typeof a === 'function' ? a : (ev) => { if (ev.event === a) b!(ev); };
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Events as an async iterable, starting from the moment of the call; ends when the connection
   * closes. Events are buffered until consumed.
   */
  events(): AsyncIterableIterator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const off = this.on((ev) => { queue.push(ev); wake?.(); });
    void this.closed.then(() => { ended = true; off(); wake?.(); });
    const iterator: AsyncIterableIterator<QmpEvent> = {
      next: async () => {
        while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const ev = queue.shift();
        return ev ? { value: ev, done: false } : { value: undefined, done: true };
      },
      return: () => {
        ended = true;
        off();
        wake?.();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Resolves with the next event named `name` (optionally matching `filter`); 'qmp.timeout' or 'qmp.disconnected' otherwise. */
  waitForEvent<E extends string>(name: E, opts: { timeoutMs: number; filter?: (ev: QmpEvent<E>) => boolean }): Promise<QmpEvent<E>> {
    if (this.closeReason) return Promise.reject(this.closedError(`wait for ${name}`));
    return new Promise((resolve, reject) => {
      const finish = (err?: VirtkitError, ev?: QmpEvent<E>): void => {
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve(ev!);
      };
      const timer = setTimeout(() => finish(new VirtkitError('qmp.timeout', `no ${name} event within ${opts.timeoutMs} ms`, { event: name })), opts.timeoutMs);
      const off = this.on(name, (ev) => { if (!opts.filter || opts.filter(ev)) finish(undefined, ev); });
      void this.closed.then(() => finish(this.closedError(`wait for ${name}`)));
    });
  }

  /** Closes the connection; pending calls reject with 'qmp.disconnected'. */
  close(): void {
    this.fail(new VirtkitError('qmp.disconnected', 'QMP connection closed by virtkit'));
    this.socket.destroy();
  }

  private handleLine(line: string): void {
    if (line.trim() === '') return;
    const msg = parseMessage(line);
    if (!msg) {
      this.fail(new VirtkitError('qmp.protocol', `QEMU sent a line that is not a JSON object: ${preview(line)}`));
      this.socket.destroy();
      return;
    }
    if (typeof msg['event'] === 'string') {
      const ev: QmpEvent = {
        event: msg['event'],
        data: isObject(msg['data']) ? msg['data'] : {},
        timestamp: isObject(msg['timestamp']) ? (msg['timestamp'] as unknown as QmpTimestamp) : { seconds: 0, microseconds: 0 },
      };
      if (QmpChannels.event.hasSubscribers) QmpChannels.event.publish({ socket: this.socketPath, event: ev });
      for (const fn of [...this.listeners]) fn(ev);
      return;
    }
    // A reply whose id we no longer wait for (the call timed out) or without id (QEMU could not
    // parse a request) belongs to no caller: drop it.
    const id = msg['id'];
    if (typeof id !== 'string') return;
    const call = this.pending.get(id);
    if (!call) return;
    this.pending.delete(id);
    clearTimeout(call.timer);
    if ('return' in msg) {
      call.resolve(msg['return']);
    } else if (isObject(msg['error'])) {
      const qmpClass = String(msg['error']['class'] ?? 'GenericError');
      const desc = String(msg['error']['desc'] ?? '');
      call.reject(new VirtkitError('qmp.command-failed', `${call.command}: ${desc}`, { command: call.command, class: qmpClass, desc }));
    } else {
      call.reject(new VirtkitError('qmp.protocol', `reply to ${call.command} has neither return nor error`, { command: call.command }));
    }
  }

  private fail(reason: VirtkitError): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    for (const [id, call] of this.pending) {
      this.pending.delete(id);
      clearTimeout(call.timer);
      call.reject(reason.code === 'qmp.protocol' ? reason : this.closedError(call.command));
    }
    this.socket.destroy();
    this.resolveClosed();
  }

  private closedError(command: string): VirtkitError {
    const why = this.closeReason ? errorMessage(this.closeReason) : 'connection closed';
    return new VirtkitError('qmp.disconnected', `QMP command ${command} failed: ${why}`, { command }, { cause: this.closeReason });
  }
}

function parseMessage(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function preview(line: string): string {
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}...` : line);
}
