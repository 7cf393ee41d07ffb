/**
 * The daemon's streams in-process: a fastify app with only the streams, on a unix socket,
 * real SQLite for events, a console mux in front of a stand-in guest, and the Node client
 * (WebSocket over the socket) as the caller.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StreamCloseCodes } from '../api/methods.js';
import type { DomainEvent } from '../api/schemas.js';
import { connect, type VirtkitClient } from '../client/index.js';
import { openStore, type Store } from '../store/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { ConsoleMux } from './console-mux.js';
import { recordEvent } from './event-log.js';
import { createApp } from './server.js';
import type { AccessClass } from '../api/access.js';
import { registerStreams, type StreamKind } from './streams.js';

/** The guest's end of a console: what the mux writes is kept, `say` is guest output. */
class FakeGuest extends Duplex {
  typed = '';
  override _read(): void { /* output is pushed by say() */ }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.typed += chunk.toString();
    cb();
  }
  say(text: string): void { this.push(Buffer.from(text)); }
}

let dir: string;
let store: Store;
let app: FastifyInstance;
let socketPath: string;
let guest: FakeGuest;
let mux: ConsoleMux;
let stoppingMux: ConsoleMux;
const authorizations: { access: AccessClass; stream: StreamKind }[] = [];
let denyWrites = false;
const SmallLimit = 16 * 1024;
const clients: VirtkitClient[] = [];

function client(): VirtkitClient {
  const c = connect(socketPath);
  clients.push(c);
  return c;
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

function collect(stream: Duplex): { text: () => string } {
  let text = '';
  stream.on('data', (d: Buffer) => { text += d.toString(); });
  return { text: () => text };
}

async function rejection(p: Promise<unknown>): Promise<VirtkitError> {
  try {
    await p;
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error('expected a typed error');
}

let eventCount = 0;
async function emitEvent(name = 'web1'): Promise<void> {
  eventCount++;
  await store.transaction((tx) => recordEvent(tx, 'started', { name, uuid: `uuid-${eventCount}` }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-streams-'));
  socketPath = join(dir, 's.sock');
  store = openStore(dir);
  guest = new FakeGuest();
  mux = new ConsoleMux();
  await mux.attach(join(dir, 'no-console.log'), async () => guest);
  stoppingMux = new ConsoleMux();
  await stoppingMux.attach(join(dir, 'no-console.log'), async () => new FakeGuest());
  app = createApp(false);
  registerStreams(app, {
    store,
    consoleOf: (name) => (name === 'web1' ? mux : name === 'web2' ? stoppingMux : undefined),
    pidOfClient: async () => null,
    maxBufferedBytes: SmallLimit,
    authorize: (access, _req, stream) => {
      authorizations.push({ access, stream });
      if (denyWrites && access !== 'read') throw new VirtkitError('access.denied', `${access} is not allowed here`);
    },
  });
  await app.listen({ path: socketPath });
});

afterEach(() => {
  denyWrites = false;
});

afterAll(async () => {
  for (const c of clients) c.close();
  mux.close();
  await app.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('console over a WebSocket', () => {
  it('one writer types, two readers watch, a second writer is refused with the typed error', async () => {
    const c = client();
    const writer = await c.openConsole('web1', 'write');
    const r1 = await c.openConsole('web1', 'read');
    const r2 = await c.openConsole('web1', 'read');
    const seen = [collect(writer), collect(r1), collect(r2)];
    const refused = await rejection(c.openConsole('web1', 'write'));
    expect(refused.code).toBe('domain.invalid-state');
    expect(refused.data.status).toBe(409);
    expect(refused.message).toMatch(/another client is typing/);

    writer.write('ls /\n');
    await until('the guest to receive the typing', () => guest.typed.includes('ls /\n'));
    guest.say('bin etc proc\r\n');
    for (const s of seen) await until('every client to see the output', () => s.text().includes('bin etc proc'));
    // A reader's keys go nowhere.
    r1.write('rm -rf /\n');
    writer.write('echo done\n');
    await until('the writer\'s next line', () => guest.typed.includes('echo done'));
    expect(guest.typed).not.toContain('rm -rf');

    // The writer's place is free once it detached.
    writer.destroy();
    const next = await until('the writer to be gone', () => !mux.hasWriter()).then(() => c.openConsole('web1', 'write'));
    next.destroy();
    r1.destroy();
    r2.destroy();
  });

  it('replays the kept output first with history=true, and only new output without', async () => {
    guest.say('old-line-before-attach\r\n');
    await until('the mux to keep the line', () => mux.history.contents().toString().includes('old-line-before-attach'));
    const c = client();
    const withHistory = await c.openConsole('web1', 'read', { history: true });
    const without = await c.openConsole('web1', 'read');
    const a = collect(withHistory);
    const b = collect(without);
    guest.say('new-line-after-attach\r\n');
    await until('both to see the new line', () => a.text().includes('new-line-after-attach') && b.text().includes('new-line-after-attach'));
    expect(a.text().indexOf('old-line-before-attach')).toBeGreaterThanOrEqual(0);
    expect(a.text().indexOf('old-line-before-attach')).toBeLessThan(a.text().indexOf('new-line-after-attach'));
    // Exactly once: the history and the live output do not overlap.
    expect(a.text().split('new-line-after-attach').length).toBe(2);
    expect(b.text()).not.toContain('old-line-before-attach');
    withHistory.destroy();
    without.destroy();
  });

  it('refuses a domain that does not run before the upgrade, and says so to a plain GET too', async () => {
    const c = client();
    const err = await rejection(c.openConsole('stopped-one', 'read'));
    expect(err.code).toBe('domain.invalid-state');
    expect(err.message).toMatch(/not running/);
    const plain = await get('/domains/stopped-one/console?mode=read');
    expect(plain.status).toBe(409);
    expect(JSON.parse(plain.body)).toMatchObject({ error: { code: 'domain.invalid-state' } });
    // A console that would open answers a plain GET with 426: it takes an upgrade.
    const running = await get('/domains/web1/console?mode=read');
    expect(running.status).toBe(426);
    expect(JSON.parse(running.body)).toMatchObject({ error: { code: 'request.invalid' } });
  });

  it('asks the authorizer with the access class of each stream, and refuses what it denies', async () => {
    const c = client();
    authorizations.length = 0;
    denyWrites = true;
    const err = await rejection(c.openConsole('web1', 'write'));
    expect(err.code).toBe('access.denied');
    expect(err.data.status).toBe(403);
    const reader = await c.openConsole('web1', 'read');
    reader.destroy();
    for await (const _ of c.events({ follow: false })) { /* none: live only */ }
    const snoop = await get('/snoop');
    expect(snoop.status).toBe(403);
    expect(JSON.parse(snoop.body)).toMatchObject({ error: { code: 'access.denied' } });
    // The classes come from the access table: snoop is an admin stream.
    expect(authorizations).toEqual([
      { access: 'write', stream: 'console.write' },
      { access: 'read', stream: 'console.read' },
      { access: 'read', stream: 'events' },
      { access: 'admin', stream: 'snoop' },
    ]);
  });

  it('ends every client when the console closes (the guest stopped)', async () => {
    const c = client();
    const writer = await c.openConsole('web2', 'write');
    const reader = await c.openConsole('web2', 'read');
    const bothClosed = Promise.all([writer, reader].map((s) => new Promise((resolve) => s.once('close', resolve))));
    [writer, reader].forEach((s) => s.resume());
    stoppingMux.close();
    await bothClosed;
    expect(writer.destroyed && reader.destroyed).toBe(true);
  });

  it('refuses unknown WebSocket paths and bad queries with the error envelope', async () => {
    expect(await upgradeStatus('/nothing-here')).toMatchObject({ status: 400, code: 'request.invalid' });
    expect(await upgradeStatus('/domains/web1/console?mode=type')).toMatchObject({ status: 400, code: 'request.invalid' });
    expect(await upgradeStatus('/events?since=-1')).toMatchObject({ status: 400, code: 'request.invalid' });
    expect(await upgradeStatus('/events?color=red')).toMatchObject({ status: 400, code: 'request.invalid' });
    expect(await upgradeStatus('/domains/%E0%A4%A/console')).toMatchObject({ status: 400, code: 'request.invalid' });
  });
});

describe('events over a WebSocket', () => {
  it('replays after `since` without gaps or repeats, then follows live events', async () => {
    const c = client();
    const from = store.revision;
    for (let i = 0; i < 5; i++) await emitEvent();
    const replayed: DomainEvent[] = [];
    for await (const ev of c.events({ since: from, follow: false })) replayed.push(ev);
    expect(replayed).toHaveLength(5);
    expect(replayed.every((ev) => ev.seq > from && ev.type === 'started' && ev.domain === 'web1')).toBe(true);
    expect(new Set(replayed.map((e) => e.seq)).size).toBe(5);

    const cursor = replayed[2]!.seq;
    const ac = new AbortController();
    const followed: DomainEvent[] = [];
    const following = (async () => {
      for await (const ev of c.events({ since: cursor, signal: ac.signal })) {
        followed.push(ev);
        if (followed.length === 4) ac.abort();
      }
    })();
    await until('the replayed tail', () => followed.length === 2);
    await emitEvent();
    await emitEvent();
    await following;
    expect(followed.map((e) => e.seq)).toEqual([...replayed.slice(3).map((e) => e.seq), ...followed.slice(2).map((e) => e.seq)]);
    expect(followed[3]!.seq).toBe(store.revision);
  });

  it('opens with the cursor message, then one DomainEvent per text message', async () => {
    const since = store.revision;
    await emitEvent();
    const ws = new WebSocket(`ws://localhost/events?since=${since}&follow=false`, { createConnection: () => netConnect(socketPath) });
    const messages: unknown[] = [];
    ws.on('message', (data, isBinary) => { expect(isBinary).toBe(false); messages.push(JSON.parse(String(data))); });
    const close = await new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    expect(close).toBe(StreamCloseCodes.done);
    expect(messages).toEqual([{ cursor: store.revision }, expect.objectContaining({ seq: since + 1, type: 'started', domain: 'web1' })]);
  });

  it('still serves server-sent events to plain HTTP clients, with the same cursor and replay', async () => {
    const since = store.revision;
    await emitEvent();
    await emitEvent();
    const { status, body } = await get(`/events?since=${since}&follow=false`);
    expect(status).toBe(200);
    const blocks = body.split('\n\n').filter((b) => b.length > 0);
    expect(blocks[0]).toBe(`event: cursor\ndata: {"seq":${store.revision}}`);
    expect(blocks.slice(1).map((b) => b.split('\n')[0])).toEqual([`id: ${since + 1}`, `id: ${since + 2}`]);
    expect(JSON.parse(blocks[1]!.split('\ndata: ')[1]!)).toMatchObject({ seq: since + 1, type: 'started', domain: 'web1' });
  });

  it('closes a reader that lets more than the limit wait, with the slow-reader code and a reason', async () => {
    const ws = new WebSocket('ws://localhost/events', { createConnection: () => netConnect(socketPath) });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.pause();
    // Far more than the limit plus what the kernel's socket buffers hold.
    const longName = 'n'.repeat(4000);
    const total = 600;
    for (let i = 0; i < total; i++) await emitEvent(longName);
    let received = 0;
    ws.on('message', () => { received++; });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.resume();
    const { code, reason } = await closed;
    expect(code).toBe(StreamCloseCodes.slowReader);
    expect(reason).toMatch(/reader too slow/);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(total);
  });

  it('a console reader that stops reading is dropped too, and the guest and other readers go on', async () => {
    const ws = new WebSocket('ws://localhost/domains/web1/console?mode=read', { createConnection: () => netConnect(socketPath) });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.pause();
    const c = client();
    const other = await c.openConsole('web1', 'read');
    const seen = collect(other);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const chunk = 'x'.repeat(8192);
    for (let i = 0; i < 200; i++) {
      guest.say(chunk);
      await new Promise((r) => setImmediate(r));
    }
    guest.say('end-of-flood');
    await until('the reading client to get everything', () => seen.text().includes('end-of-flood'));
    ws.resume();
    expect(await closed).toBe(StreamCloseCodes.slowReader);
    other.destroy();
  });
});

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ socketPath, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

/** The status and error code of a WebSocket upgrade the daemon refuses. */
function upgradeStatus(path: string): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://localhost${path}`, { createConnection: () => netConnect(socketPath) });
    ws.on('open', () => reject(new Error(`${path} opened`)));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code });
        ws.terminate();
      });
    });
  });
}
