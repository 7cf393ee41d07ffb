import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isVirtkitError, type VirtkitError } from '../../util/errors.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { QmpClient } from './client.js';
import { TypedQmpCommands, type QmpCommandName } from './commands.js';
import type { QmpEvent } from './events.js';
import { LineReader } from './line-reader.js';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": ["oob"]}}\n';

interface Request { execute: string; id: string; arguments?: Record<string, unknown> }

/**
 * A scripted QEMU on a real unix socket: sends the greeting, answers qmp_capabilities, and hands
 * every later request to `onRequest`, which writes whatever the case needs, byte by byte if it likes.
 */
class FakeQemu {
  server!: Server;
  peer: Socket | undefined;
  requests: Request[] = [];
  onRequest: (req: Request, peer: Socket) => void = () => undefined;
  greeting = GREETING;

  constructor(readonly path: string) {}

  async start(): Promise<void> {
    this.server = createServer((sock) => {
      this.peer = sock;
      const reader = new LineReader();
      sock.write(this.greeting);
      sock.on('data', (chunk: Buffer) => {
        for (const line of reader.push(chunk)) {
          const req = JSON.parse(line) as Request;
          if (req.execute === 'qmp_capabilities') {
            sock.write(`{"return": {}, "id": ${JSON.stringify(req.id)}}\n`);
            continue;
          }
          this.requests.push(req);
          this.onRequest(req, sock);
        }
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => this.server.listen(this.path, r));
  }

  async stop(): Promise<void> {
    this.peer?.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function rejection(p: Promise<unknown>): Promise<VirtkitError> {
  try {
    await p;
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

const reply = (req: Request, ret: unknown): string => `${JSON.stringify({ return: ret, id: req.id })}\n`;
const event = (name: string, data: unknown = {}): string =>
  `${JSON.stringify({ event: name, data, timestamp: { seconds: 1, microseconds: 2 } })}\n`;

describe('QmpClient', () => {
  let dir: string;
  let fake: FakeQemu;
  let client: QmpClient | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtkit-qmp-'));
    fake = new FakeQemu(join(dir, 'qmp.sock'));
    await fake.start();
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the greeting, negotiates capabilities and runs a typed command', async () => {
    fake.onRequest = (req, peer) => peer.write(reply(req, { running: true, status: 'running' }));
    client = await QmpClient.connect(fake.path);
    expect(client.greeting.version.qemu).toEqual({ major: 7, minor: 2, micro: 0 });
    await expect(client.execute('query-status')).resolves.toEqual({ running: true, status: 'running' });
    expect(fake.requests[0]).toMatchObject({ execute: 'query-status' });
  });

  it('matches replies by id when they arrive out of order', async () => {
    const held: Request[] = [];
    fake.onRequest = (req, peer) => {
      held.push(req);
      if (held.length === 3) for (const r of [...held].reverse()) peer.write(reply(r, r.execute));
    };
    client = await QmpClient.connect(fake.path);
    const results = await Promise.all([
      client.executeUntyped('a'), client.executeUntyped('b'), client.executeUntyped('c'),
    ]);
    expect(results).toEqual(['a', 'b', 'c']);
  });

  it('delivers events interleaved with replies, split across partial writes', async () => {
    fake.onRequest = (req, peer) => {
      const bytes = Buffer.from(event('STOP') + reply(req, {}) + event('RESUME'));
      // one byte at a time: every message arrives in pieces
      let i = 0;
      const drip = (): void => {
        if (i < bytes.length) { peer.write(bytes.subarray(i, i + 1)); i++; setImmediate(drip); }
      };
      drip();
    };
    client = await QmpClient.connect(fake.path);
    const seen: QmpEvent[] = [];
    client.on((ev) => seen.push(ev));
    const resumed = client.waitForEvent('RESUME', { timeoutMs: 5000 });
    await expect(client.execute('stop')).resolves.toEqual({});
    await resumed;
    expect(seen.map((e) => e.event)).toEqual(['STOP', 'RESUME']);
    expect(seen[0]!.timestamp).toEqual({ seconds: 1, microseconds: 2 });
  });

  it('offers events as an async iterable that ends when QEMU goes away', async () => {
    client = await QmpClient.connect(fake.path);
    const it = client.events();
    fake.peer!.write(event('POWERDOWN') + event('SHUTDOWN', { guest: true, reason: 'guest-shutdown' }));
    fake.peer!.end();
    const names: string[] = [];
    for await (const ev of it) names.push(ev.event);
    expect(names).toEqual(['POWERDOWN', 'SHUTDOWN']);
  });

  it('rejects every pending call with qmp.disconnected when QEMU goes away mid-command', async () => {
    let count = 0;
    fake.onRequest = (_req, peer) => { if (++count === 2) peer.destroy(); };
    client = await QmpClient.connect(fake.path);
    const a = rejection(client.executeUntyped('one'));
    const b = rejection(client.executeUntyped('two'));
    expect((await a).code).toBe('qmp.disconnected');
    expect((await b).code).toBe('qmp.disconnected');
    await client.closed;
    expect((await rejection(client.execute('query-status'))).code).toBe('qmp.disconnected');
  });

  it('times out one call, keeps the connection and ignores the late reply', async () => {
    const slow: Request[] = [];
    fake.onRequest = (req, peer) => {
      if (req.execute === 'slow') slow.push(req);
      else {
        // the late reply to the timed-out call arrives first; it must not satisfy anything
        for (const s of slow) peer.write(reply(s, 'late'));
        peer.write(reply(req, 'fast'));
      }
    };
    client = await QmpClient.connect(fake.path);
    const err = await rejection(client.executeUntyped('slow', undefined, { timeoutMs: 50 }));
    expect(err.code).toBe('qmp.timeout');
    expect(err.data).toMatchObject({ command: 'slow' });
    await expect(client.executeUntyped('quick')).resolves.toBe('fast');
    expect(client.closeReason).toBeUndefined();
  });

  it('turns a QEMU error reply into qmp.command-failed with class and desc', async () => {
    fake.onRequest = (req, peer) =>
      peer.write(`${JSON.stringify({ error: { class: 'CommandNotFound', desc: "The command nope has not been found" }, id: req.id })}\n`);
    client = await QmpClient.connect(fake.path);
    const err = await rejection(client.executeUntyped('nope'));
    expect(err.code).toBe('qmp.command-failed');
    expect(err.data).toMatchObject({ command: 'nope', class: 'CommandNotFound', desc: 'The command nope has not been found' });
  });

  it('turns a garbage line into qmp.protocol for pending calls and closes', async () => {
    fake.onRequest = (_req, peer) => peer.write('this is not json\n');
    client = await QmpClient.connect(fake.path);
    const err = await rejection(client.executeUntyped('x'));
    expect(err.code).toBe('qmp.protocol');
    await client.closed;
    expect(client.closeReason?.code).toBe('qmp.protocol');
  });

  it('passes HMP through human-monitor-command', async () => {
    fake.onRequest = (req, peer) => peer.write(reply(req, `echo: ${String(req.arguments?.['command-line'])}\r\n`));
    client = await QmpClient.connect(fake.path);
    await expect(client.hmp('info status')).resolves.toBe('echo: info status\r\n');
    expect(fake.requests[0]).toEqual({ execute: 'human-monitor-command', arguments: { 'command-line': 'info status' }, id: expect.any(String) });
  });

  it('refuses a peer whose first line is not a QMP greeting', async () => {
    fake.greeting = '{"hello": 1}\n';
    expect((await rejection(QmpClient.connect(fake.path))).code).toBe('qmp.protocol');
  });

  it('reports a missing socket as qmp.disconnected and a silent peer as qmp.timeout', async () => {
    expect((await rejection(QmpClient.connect(join(dir, 'absent.sock')))).code).toBe('qmp.disconnected');
    fake.greeting = '';
    expect((await rejection(QmpClient.connect(fake.path, { timeoutMs: 100 }))).code).toBe('qmp.timeout');
  });

  it('survives random garbage without hanging or throwing untyped errors', async () => {
    // bounded fuzz: random byte soup either parses as replies/events or fails with qmp.protocol
    let seed = 42;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const alphabet = '{}[]":,\n abc0123event"return"id"\\';
    for (let round = 0; round < 20; round++) {
      let soup = '';
      for (let i = 0; i < 200; i++) soup += alphabet[rand(alphabet.length)];
      fake.onRequest = (_req, peer) => peer.write(`${soup}\n`);
      const c = await QmpClient.connect(fake.path);
      const outcome = await Promise.race([
        c.executeUntyped('x', undefined, { timeoutMs: 200 }).then(() => 'ok', (e: unknown) => (isVirtkitError(e) ? e.code : 'untyped')),
      ]);
      expect(['ok', 'qmp.protocol', 'qmp.timeout', 'qmp.command-failed']).toContain(outcome);
      c.close();
    }
  });
});

// Compile-time: every command of the typed table is listed in TypedQmpCommands.
const typedListComplete: [Exclude<QmpCommandName, (typeof TypedQmpCommands)[number]>] extends [never] ? true : false = true;

describe('QmpChannels', () => {
  it('publishes each call and event on diagnostics_channel', async () => {
    expect(typedListComplete).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'virtkit-qmp-'));
    const fake = new FakeQemu(join(dir, 'qmp.sock'));
    await fake.start();
    const seen: unknown[] = [];
    const onMessage = (m: unknown): void => { seen.push(m); };
    subscribe('vm:qmp:command', onMessage);
    subscribe('vm:qmp:event', onMessage);
    try {
      fake.onRequest = (req, peer) => peer.write(event('STOP') + reply(req, {}));
      const client = await QmpClient.connect(fake.path);
      await client.execute('stop');
      client.close();
      expect(seen).toEqual(expect.arrayContaining([
        expect.objectContaining({ command: 'stop', outcome: 'return', socket: fake.path }),
        expect.objectContaining({ event: expect.objectContaining({ event: 'STOP' }) }),
      ]));
      // Measured finer than Date.now()'s whole milliseconds (a local round trip is far below one).
      const call = seen.find((m) => (m as { command?: string }).command === 'stop') as { ms: number };
      expect(call.ms).toBeGreaterThan(0);
      expect(Number.isInteger(call.ms)).toBe(false);
    } finally {
      unsubscribe('vm:qmp:command', onMessage);
      unsubscribe('vm:qmp:event', onMessage);
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LineReader', () => {
  it('bounds the length of a line', () => {
    const r = new LineReader(10);
    expect(r.push(Buffer.from('12345'))).toEqual([]);
    expect(() => r.push(Buffer.from('678901'))).toThrow(expect.objectContaining({ code: 'qmp.protocol' }));
  });

  it('gives back exactly the lines written, however the stream is cut (10,000 random cases)', () => {
    let seed = 1234;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const alphabet = ['a', '{', '"', ' ', '\u00e9', '\u{1f600}', '\\', '\r'];
    for (let round = 0; round < 10_000; round++) {
      const lines: string[] = [];
      for (let i = rand(5); i > 0; i--) {
        let line = '';
        for (let j = rand(12); j > 0; j--) line += alphabet[rand(alphabet.length)];
        lines.push(line.replace(/\r$/, ''));
      }
      const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
      const reader = new LineReader(1024);
      const got: string[] = [];
      for (let at = 0; at < bytes.length;) {
        const next = Math.min(bytes.length, at + 1 + rand(8));
        got.push(...reader.push(bytes.subarray(at, next)));
        at = next;
      }
      expect(got).toEqual(lines);
    }
  });

  it('joins pieces and strips CR', () => {
    const r = new LineReader();
    expect(r.push(Buffer.from('ab'))).toEqual([]);
    expect(r.push(Buffer.from('c\r\nde\nf'))).toEqual(['abc', 'de']);
    expect(r.push(Buffer.from('\n'))).toEqual(['f']);
  });
});
