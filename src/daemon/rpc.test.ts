/**
 * The RPC channel's framing and its guards, over a real socket of a daemon whose manager is a
 * stub (these tests are about the channel, not the guests): the line splitter against random
 * cuts, bad frames of every kind answered with a typed error on a connection that survives,
 * an over-long line refused and skipped without the daemon holding it, many
 * calls in flight on one connection, and the access classes of a read-only caller.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessClass, DomainState } from '../api/index.js';
import { LineSplitter, MaxRpcFrameChars } from '../api/wire/index.js';
import { connect } from '../client/index.js';
import type { Store } from '../store/index.js';
import { mulberry32 } from '../../test/helpers/prng.js';
import { letOthersTraverse } from '../../test/helpers/trusted-dir.js';
import { AccessPolicy } from './access.js';
import { DefaultConnectionLimits, type ConnectionLimits } from './connection-limits.js';
import type { Manager } from './manager.js';
import type { PoolService } from './pools.js';
import { createApp, registerApi } from './server.js';

const isRoot = process.getuid?.() === 0;
const Nobody = 65534;

describe('the line splitter', () => {
  it('gives back the same lines however the text is cut, and holds no more than its bound', () => {
    const rand = mulberry32(15);
    for (let round = 0; round < 2000; round++) {
      const lines = Array.from({ length: 1 + Math.floor(rand() * 6) }, () =>
        Array.from({ length: Math.floor(rand() * 40) }, () => String.fromCharCode(32 + Math.floor(rand() * 200))).join(''));
      const text = `${lines.join('\n')}\n`;
      const got: string[] = [];
      const splitter = new LineSplitter(64, (l) => got.push(l));
      let at = 0;
      while (at < text.length) {
        const n = 1 + Math.floor(rand() * 20);
        expect(splitter.push(text.slice(at, at + n))).toBe(true);
        expect(splitter.pendingChars).toBeLessThanOrEqual(64);
        at += n;
      }
      expect(got).toEqual(lines.filter((l) => l.length > 0));
    }
  });

  it('refuses a line past its bound, whether it arrives whole or in pieces: stopping, or skipping it and reading on', () => {
    const whole = new LineSplitter(10, () => undefined);
    expect(whole.push(`${'x'.repeat(11)}\nok\n`)).toBe(false);
    expect(whole.overflow).toBe(true);
    const seen: string[] = [];
    const pieces = new LineSplitter(10, (l) => seen.push(l));
    expect(pieces.push('a\nxxxxxx')).toBe(true);
    expect(pieces.push('xxxxx')).toBe(false);
    expect(pieces.pendingChars).toBe(0);
    expect(pieces.push('\nb\n')).toBe(false);
    expect(seen).toEqual(['a']);
    const kept: string[] = [];
    let refused = 0;
    const skipping = new LineSplitter(10, (l) => kept.push(l), () => { refused++; });
    for (const chunk of ['a\nxxxxxx', 'xxxxx', 'x'.repeat(1000), 'xx\nb\n', `${'y'.repeat(20)}\nc`, '\n']) {
      expect(skipping.push(chunk)).toBe(true);
      expect(skipping.pendingChars).toBeLessThanOrEqual(10);
    }
    expect(kept).toEqual(['a', 'b', 'c']);
    expect(refused).toBe(2);
  });
});

/** A raw channel: the upgrade by hand, then lines both ways. */
class RawChannel {
  readonly replies: Record<string, unknown>[] = [];
  closed = false;
  private text = '';
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.text += chunk;
      let nl: number;
      while ((nl = this.text.indexOf('\n')) !== -1) {
        const line = this.text.slice(0, nl);
        this.text = this.text.slice(nl + 1);
        this.replies.push(JSON.parse(line) as Record<string, unknown>);
      }
      this.wake();
    });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => undefined);
  }

  static async open(path: string): Promise<RawChannel> {
    const socket = netConnect(path);
    const head = await new Promise<string>((resolve, reject) => {
      let got = '';
      const onData = (d: Buffer): void => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) {
          socket.off('data', onData);
          resolve(got);
        }
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.write('GET /v1/rpc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: virtkit-rpc\r\n\r\n');
    });
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    return new RawChannel(socket);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `n` replies arrived in all (or the connection closed). */
  async until(n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.replies.length < n && !this.closed) {
      if (Date.now() > deadline) throw new Error(`waited for ${n} replies, have ${this.replies.length}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }

  async call(line: string): Promise<Record<string, unknown>> {
    const n = this.replies.length + 1;
    this.socket.write(`${line}\n`);
    await this.until(n);
    return this.replies[n - 1]!;
  }
}

interface Daemon { app: FastifyInstance; socketPath: string; auditPath: string; dir: string }

async function stubDaemon(policy?: AccessPolicy, limits?: Partial<ConnectionLimits>): Promise<Daemon> {
  const dir = await mkdtemp(join(tmpdir(), 'vk-rpc-'));
  await chmod(dir, 0o755);
  const socketPath = join(dir, 'virtkit.sock');
  const auditPath = join(dir, 'audit.log');
  const states = new Map<string, DomainState>([['web', 'running']]);
  const manager = {
    state: async (_o: unknown, name: string) => ({ state: states.get(name) ?? 'shutoff' }),
    info: async (_o: unknown, name: string) => ({ name, uuid: 'u', state: states.get(name) ?? 'shutoff', memory: 1, vcpus: 1, autostart: false, tainted: [] }),
    list: async () => [],
    suspend: async (_o: unknown, name: string) => { states.set(name, 'paused'); return { state: 'paused' }; },
    // A call that takes a while (longer than the short idle timeout of one test).
    reset: async () => { await new Promise((r) => setTimeout(r, 700)); },
    consoleOf: () => undefined,
  } as unknown as Manager;
  const store = { revision: 0, onOperation: () => () => undefined } as unknown as Store;
  const app = createApp(false, { ...DefaultConnectionLimits, ...limits });
  await registerApi(app, {
    manager, store, pools: {} as PoolService, auditLogPath: auditPath, ...(policy ? { accessPolicy: policy } : {}),
    info: () => ({ version: '0', pid: process.pid, stateDir: dir, runDir: dir, bootId: 'b', revision: 0, apiExtensions: [] }),
  });
  await app.listen({ path: socketPath });
  await chmod(socketPath, 0o777);
  return { app, socketPath, auditPath, dir };
}

async function stopDaemon(d: Daemon): Promise<void> {
  await d.app.close();
  await rm(d.dir, { recursive: true, force: true });
}

describe('frames on a live channel', () => {
  let d: Daemon;
  beforeAll(async () => { d = await stubDaemon(); });
  afterAll(async () => { await stopDaemon(d); });

  it('answers bad frames with a typed error and keeps the connection', async () => {
    const ch = await RawChannel.open(d.socketPath);
    const codeAndPath = (r: Record<string, unknown>): unknown => {
      const error = r.error as { code: string; data?: { path?: string } } | undefined;
      return [r.id, error?.code, error?.data?.path];
    };
    expect(codeAndPath(await ch.call('not json'))).toEqual([null, 'request.invalid', 'frame']);
    expect(codeAndPath(await ch.call('[1,2]'))).toEqual([null, 'request.invalid', 'frame']);
    expect(codeAndPath(await ch.call('{"id":{},"method":"daemon.info"}'))).toEqual([null, 'request.invalid', 'frame.id']);
    expect(codeAndPath(await ch.call('{"id":1,"method":7}'))).toEqual([1, 'request.invalid', 'frame.method']);
    expect(codeAndPath(await ch.call('{"id":2,"method":"domain.explode"}'))).toEqual([2, 'request.invalid', 'frame.method']);
    expect(codeAndPath(await ch.call('{"id":3,"method":"toString"}'))).toEqual([3, 'request.invalid', 'frame.method']);
    expect(codeAndPath(await ch.call('{"id":4,"method":"domain.info","params":[]}'))).toEqual([4, 'request.invalid', 'frame.params']);
    expect(codeAndPath(await ch.call('{"id":5,"method":"domain.info","params":{"name":"../x"}}'))).toEqual([5, 'request.invalid', 'params.name']);
    expect(codeAndPath(await ch.call('{"id":6,"method":"domain.list","extra":1}'))).toEqual([6, 'request.invalid', 'frame']);
    expect(codeAndPath(await ch.call('{"id":"s","method":"domain.list","query":{"all":"yes"}}'))).toEqual(['s', 'request.invalid', 'querystring.all']);
    // A frame cut into single bytes, a character of two bytes among them, is one frame.
    const frame = Buffer.from('{"id":8,"method":"domain.info","params":{"name":"wéb"}}\n');
    for (const byte of frame) ch.socket.write(Buffer.from([byte]));
    await ch.until(11);
    expect(ch.replies[10]).toEqual({ id: 8, error: expect.objectContaining({ code: 'request.invalid', data: { path: 'params.name' } }) as unknown });
    expect(await ch.call('{"id":9,"method":"domain.info","params":{"name":"web"}}')).toMatchObject({ id: 9, result: { name: 'web', state: 'running' } });
    expect(ch.closed).toBe(false);
    ch.socket.destroy();
  });

  it('survives a few thousand random frames, each answered with a result or a typed error', async () => {
    const rand = mulberry32(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const values: unknown[] = [null, true, 0, -1, 1e308, 'web', '', 'x'.repeat(300), [], {}, { name: 'web' }, { all: true }, [1, { a: 2 }]];
    const methods = ['daemon.info', 'domain.list', 'domain.info', 'domain.suspend', 'domain.define', 'nope', '__proto__', 'constructor'];
    const ch = await RawChannel.open(d.socketPath);
    const frames: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const frame: Record<string, unknown> = { id: i, method: pick(methods) };
      for (const key of ['params', 'query', 'body', 'extra']) if (rand() < 0.3) frame[key] = pick(values);
      let text = JSON.stringify(frame);
      // Now and then a byte flipped or the frame cut short: not JSON any more, most of the time.
      if (rand() < 0.1) {
        const at = Math.floor(rand() * text.length);
        text = text.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)).replace('\n', ' ') + text.slice(at + 1);
      } else if (rand() < 0.05) {
        text = text.slice(0, Math.floor(rand() * text.length));
      }
      frames.push(text);
    }
    ch.socket.write(`${frames.join('\n')}\n`);
    // An empty line is no frame, and gets no answer.
    const answered = frames.filter((f) => f.length > 0).length;
    await ch.until(answered);
    expect(ch.closed).toBe(false);
    expect(ch.replies.length).toBe(answered);
    const known = new Set(['request.invalid', 'domain.invalid-state', 'definition.invalid', 'internal']);
    for (const r of ch.replies) {
      expect(Object.keys(r).sort()).toEqual(r.error !== undefined ? ['error', 'id'] : ['id', 'result']);
      if (r.error !== undefined) expect(known, JSON.stringify(r)).toContain((r.error as { code: string }).code);
    }
    // `internal` would be a bug in the dispatch: a typed refusal is expected for everything here.
    expect(ch.replies.filter((r) => (r.error as { code?: string } | undefined)?.code === 'internal')).toEqual([]);
    expect(await ch.call('{"id":"after","method":"daemon.info"}')).toMatchObject({ id: 'after', result: { version: '0' } });
    ch.socket.destroy();
  });

  it('refuses a line longer than a frame may be, skips it without holding it, and reads the frames after it', async () => {
    const ch = await RawChannel.open(d.socketPath);
    const chunk = 'x'.repeat(64 * 1024);
    for (let sent = 0; sent < 3 * MaxRpcFrameChars; sent += chunk.length) {
      if (!ch.socket.write(chunk)) await new Promise((r) => ch.socket.once('drain', r));
    }
    ch.socket.write('\n{"id":1,"method":"daemon.info"}\n');
    await ch.until(2);
    expect(ch.replies[0]).toMatchObject({ id: null, error: { code: 'request.too-large', data: { limit: MaxRpcFrameChars } } });
    expect(ch.replies[1]).toMatchObject({ id: 1, result: { version: '0' } });
    ch.socket.destroy();
  });

  it('answers many calls in flight on one connection, each by its id, and a second call with an id still in flight is refused', async () => {
    const c = connect(d.socketPath);
    const names = Array.from({ length: 300 }, (_, i) => `d${i}`);
    const infos = await Promise.all(names.map((n) => c.info(n)));
    expect(infos.map((i) => i.name)).toEqual(names);
    c.close();
    const ch = await RawChannel.open(d.socketPath);
    // The stub answers at once, so the duplicate must arrive in the same chunk as the first.
    ch.socket.write('{"id":1,"method":"daemon.info"}\n{"id":1,"method":"daemon.info"}\n');
    await ch.until(2);
    expect(ch.replies.map((r) => [r.id, 'result' in r ? 'result' : (r.error as { code: string }).code])).toEqual([[1, 'request.invalid'], [1, 'result']]);
    ch.socket.destroy();
  });

  it('is refused with the envelope on another path or verb, and WebSocket upgrades still work beside it', async () => {
    const answer = await new Promise<string>((resolve) => {
      const s = netConnect(d.socketPath);
      let got = '';
      s.on('data', (b: Buffer) => { got += b.toString(); });
      s.on('close', () => resolve(got));
      s.write('GET /v2/rpc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: virtkit-rpc\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"request.invalid"');
    // The console WebSocket, through the same upgrade listener: refused by its own check (the stub runs no console).
    const c = connect(d.socketPath);
    await expect(c.openConsole('web', 'read')).rejects.toMatchObject({ code: 'domain.invalid-state' });
    c.close();
  });

  it.skipIf(!isRoot)(`identifies the caller once per channel: uid ${Nobody} holds nothing and is refused a read`, async () => {
    const script = `
      import(${JSON.stringify(join(process.cwd(), 'dist/src/client/index.js'))}).then(async ({ connect }) => {
        const c = connect(${JSON.stringify(d.socketPath)});
        try { await c.info('web'); process.stdout.write('allowed'); }
        catch (e) { process.stdout.write(JSON.stringify({ code: e.code, data: e.data })); }
        c.close();
      });`;
    // The child imports this checkout's client: a checkout under a 0700 directory (a
    // `mktemp -d` clone) is otherwise out of nobody's reach.
    const restore = letOthersTraverse(join(process.cwd(), 'dist'));
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('setpriv', [`--reuid=${Nobody}`, `--regid=${Nobody}`, '--clear-groups', process.execPath, '-e', script], { cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (b: Buffer) => { text += b.toString(); });
      child.on('error', reject);
      child.on('exit', () => resolve(text));
    }).finally(restore);
    expect(JSON.parse(out)).toMatchObject({ code: 'access.denied', data: { access: 'read', method: 'domain.info', uid: Nobody } });
  });
});

describe('the idle timeout on a channel', () => {
  let d: Daemon;
  beforeAll(async () => { d = await stubDaemon(undefined, { idleTimeoutMs: 300 }); });
  afterAll(async () => { await stopDaemon(d); });

  it('keeps a channel whose call outlasts the timeout, and closes it once idle, each time', async () => {
    const ch = await RawChannel.open(d.socketPath);
    for (let round = 0; round < 2; round++) {
      expect(await ch.call(`{"id":${round},"method":"domain.reset","params":{"name":"web"}}`)).toEqual({ id: round, result: { ok: true } });
      expect(ch.closed).toBe(false);
    }
    // Idle now: the daemon closes it (the wait ends at the close; no third answer comes).
    await ch.until(3);
    expect(ch.closed).toBe(true);
    expect(ch.replies).toHaveLength(2);
  });

  it('lets the typed client call again after its channel went idle', async () => {
    const c = connect(d.socketPath);
    expect(await c.daemonInfo()).toMatchObject({ version: '0' });
    await new Promise((r) => setTimeout(r, 900));
    expect(await c.daemonInfo()).toMatchObject({ version: '0' });
    c.close();
  });
});

describe('the client on a server without the channel', () => {
  it('falls back to one HTTP request per call, whether the server refuses the upgrade or ignores it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vk-rpc-old-'));
    const seen: string[] = [];
    for (const refuses of [true, false]) {
      const server = createServer((req, res) => {
        seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ domains: [] }));
      });
      // An older daemon refuses an upgrade it does not know, with the envelope; a plain server has no upgrade listener.
      if (refuses) {
        server.on('upgrade', (_req, socket: Socket) => {
          const body = JSON.stringify({ error: { code: 'request.invalid', message: 'no WebSocket endpoint at /v1/rpc' } });
          socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
        });
      }
      const path = join(dir, `s${String(refuses)}.sock`);
      await new Promise<void>((r) => server.listen(path, r));
      const c = connect(path);
      expect(await c.list()).toEqual({ domains: [] });
      expect(await c.list()).toEqual({ domains: [] });
      c.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    // Refused: two plain requests; ignored: the upgrade request answered as a GET, then two plain ones.
    expect(seen).toEqual(['GET /domains', 'GET /domains', 'GET /v1/rpc', 'GET /domains', 'GET /domains']);
    await rm(dir, { recursive: true, force: true });
  });
});

/** A policy that gives every caller the read class only. */
class ReadOnlyPolicy extends AccessPolicy {
  override classesOf(): readonly AccessClass[] { return ['read']; }
}

describe('access over the channel', () => {
  let d: Daemon;
  beforeAll(async () => { d = await stubDaemon(new ReadOnlyPolicy()); });
  afterAll(async () => { await stopDaemon(d); });

  it('lets a read-only caller read and refuses it a write method, audited, as the route does', async () => {
    const viaRpc = connect(d.socketPath);
    const viaHttp = connect(d.socketPath, { transport: 'http' });
    expect(await viaRpc.info('web')).toMatchObject({ name: 'web' });
    const refusal = async (c: typeof viaRpc): Promise<unknown> => c.suspend('web').then(() => 'done', (err: { code: string; message: string; data: unknown }) =>
      ({ code: err.code, message: err.message, data: err.data }));
    const rpcRefusal = await refusal(viaRpc);
    expect(rpcRefusal).toMatchObject({ code: 'access.denied', data: { access: 'write', method: 'domain.suspend', uid: process.getuid!(), status: 403 } });
    expect({ ...(rpcRefusal as object), data: { ...(rpcRefusal as { data: object }).data, pid: 0 } })
      .toEqual({ ...(await refusal(viaHttp) as object), data: { ...((await refusal(viaHttp)) as { data: object }).data, pid: 0 } });
    const audit = (await readFile(d.auditPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit[0]).toMatchObject({ method: 'domain.suspend', access: 'write', domain: 'web', outcome: 'error', code: 'access.denied', pid: process.pid });
    viaRpc.close();
    viaHttp.close();
  });

});
