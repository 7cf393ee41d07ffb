/**
 * The client's side of the daemon's RPC channel (docs/api.md, "The RPC channel"): one
 * connection upgraded with `GET /v1/rpc` + `Upgrade: virtkit-rpc`, then newline-delimited
 * JSON frames, any number of calls in flight, answers matched by id. Opened by the first call
 * and again by the first call after it closed; while no call is in flight it does not keep
 * the process alive, and it closes itself before the daemon's idle timeout would.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { MethodName } from '../api/index.js';
import { LineSplitter, RpcPath, RpcProtocol, httpStatusOf, type RpcReplyFrame } from '../api/wire/index.js';
import { VirtkitError } from '../util/errors.js';
import { errorFromBody, type MethodInput } from './protocol.js';
import { connectionError } from './transport.js';

/** The daemon refused the upgrade as an endpoint it does not have: it predates the channel. */
export class RpcUnavailable extends Error {}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const HeaderEnd = '\r\n\r\n';
/**
 * The longest answer frame read: answers have no size limit on the REST side either (a list
 * of thousands of domains), so this bound only keeps a broken daemon from growing the client.
 */
const MaxReplyChars = 256 * 1024 * 1024;
/** The longest handshake answer read before giving up on it. */
const MaxHandshakeChars = 64 * 1024;

class Channel {
  readonly pending = new Map<number, Pending>();
  private readonly lines: LineSplitter;
  private idleTimer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(readonly socket: Socket, idleMs: number, private readonly onClosed: (c: Channel) => void) {
    this.lines = new LineSplitter(MaxReplyChars, (line) => this.reply(line));
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('close', () => this.fail(new VirtkitError('connection.failed', 'the daemon closed the connection during the call',
      { socketPath: socket.remoteAddress ?? '' })));
    socket.on('error', () => socket.destroy());
    // Closed by us before the daemon's idle timeout, so no call is sent on a connection it closes.
    this.idleTimer = setTimeout(() => { if (this.pending.size === 0) this.close(); }, idleMs);
    this.idleTimer.unref();
    socket.unref();
  }

  receive(chunk: string): void {
    if (!this.lines.push(chunk)) {
      this.fail(new VirtkitError('internal', `the daemon sent an RPC frame longer than ${MaxReplyChars} characters`));
      this.socket.destroy();
    }
  }

  send(id: number, frame: string, pending: Pending): void {
    if (this.pending.size === 0) this.socket.ref();
    this.pending.set(id, pending);
    this.socket.write(frame);
  }

  close(): void {
    this.closed = true;
    this.onClosed(this);
    this.socket.end();
    this.socket.unref();
  }

  private reply(line: string): void {
    let frame: Partial<RpcReplyFrame> & { result?: unknown; error?: unknown };
    try {
      frame = JSON.parse(line) as typeof frame;
    } catch {
      this.fail(new VirtkitError('internal', 'the daemon sent an RPC frame that is not JSON'));
      this.socket.destroy();
      return;
    }
    const waiter = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
    if (!waiter) {
      // An answer to no call of ours (a frame the daemon could not read): the channel is not usable.
      this.fail(frame.error !== undefined ? frameError(frame) : new VirtkitError('internal', 'the daemon answered a call that was not made'));
      this.socket.destroy();
      return;
    }
    this.pending.delete(frame.id as number);
    if (this.pending.size === 0) {
      this.socket.unref();
      this.idleTimer?.refresh();
    }
    if (frame.error !== undefined) waiter.reject(frameError(frame));
    else waiter.resolve(frame.result);
  }

  private fail(err: VirtkitError): void {
    if (!this.closed) {
      this.closed = true;
      this.onClosed(this);
    }
    clearTimeout(this.idleTimer);
    const waiters = [...this.pending.values()];
    this.pending.clear();
    for (const w of waiters) w.reject(err);
  }
}

/** The typed error of an error frame, with the HTTP status its code has on the REST side (as a route's error carries). */
function frameError(frame: { error?: unknown }): VirtkitError {
  const err = errorFromBody(0, frame);
  return new VirtkitError(err.code, err.message, { ...err.data, status: httpStatusOf(err.code) });
}

export class RpcChannel {
  private channel: Channel | undefined;
  private opening: Promise<Channel> | undefined;
  private nextId = 1;

  constructor(readonly socketPath: string) {}

  /** One call of the method table over the channel; rejects with RpcUnavailable on a daemon without it. */
  call(method: MethodName, input: MethodInput<MethodName>): Promise<unknown> {
    const id = this.nextId++;
    const frame = `${JSON.stringify({ id, method, ...input })}\n`;
    const ready = this.channel;
    if (ready !== undefined && !ready.closed) return new Promise((resolve, reject) => ready.send(id, frame, { resolve, reject }));
    return this.open().then((c) => new Promise((resolve, reject) => c.send(id, frame, { resolve, reject })));
  }

  close(): void {
    this.channel?.close();
    this.channel = undefined;
  }

  private open(): Promise<Channel> {
    this.opening ??= handshake(this.socketPath).then(({ socket, rest, idleMs }) => {
      const c = new Channel(socket, idleMs, (closed) => { if (this.channel === closed) this.channel = undefined; });
      this.channel = c;
      if (rest.length > 0) c.receive(rest);
      return c;
    }).finally(() => { this.opening = undefined; });
    return this.opening;
  }
}

/** Connects and upgrades; resolves with the socket and what followed the 101's headers. */
function handshake(socketPath: string): Promise<{ socket: Socket; rest: string; idleMs: number }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(socketPath);
    socket.setEncoding('utf8');
    let text = '';
    let upgraded = false;
    const onData = (chunk: string): void => {
      text += chunk;
      const end = text.indexOf(HeaderEnd);
      if (end === -1) {
        if (text.length > MaxHandshakeChars) {
          socket.destroy();
          reject(new VirtkitError('internal', 'the daemon answered the RPC upgrade with headers too long to read'));
        }
        return;
      }
      const head = text.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status !== 101) {
        // A refusal (the daemon closes after it), or a server that took the upgrade request for
        // a plain one and keeps the connection: done once its body is in.
        const length = /^content-length:\s*(\d+)/im.exec(head)?.[1];
        if (length !== undefined && Buffer.byteLength(text.slice(end + HeaderEnd.length)) >= Number(length)) onEnd();
        return;
      }
      upgraded = true;
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      const timeout = Number(/^keep-alive:\s*timeout=(\d+)/im.exec(head)?.[1] ?? 30);
      resolve({ socket, rest: text.slice(end + HeaderEnd.length), idleMs: Math.max(500, timeout * 1000 - 1000) });
    };
    const onEnd = (): void => {
      if (upgraded || socket.destroyed) return;
      const end = text.indexOf(HeaderEnd);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      let body: unknown;
      try { body = JSON.parse(end === -1 ? '' : text.slice(end + HeaderEnd.length)); } catch { body = undefined; }
      socket.destroy();
      const err = errorFromBody(status, body);
      // An older daemon answers an upgrade it does not know with request.invalid (or a plain
      // 404); a server without upgrades at all answers the request as a plain GET.
      if (status === 404 || (status === 400 && err.code === 'request.invalid') || (status >= 200 && status < 300)) reject(new RpcUnavailable(err.message));
      else reject(err);
    };
    const onError = (err: Error): void => {
      socket.destroy();
      reject(connectionError(socketPath, err));
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.write(`GET ${RpcPath} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: ${RpcProtocol}\r\n\r\n`);
  });
}
