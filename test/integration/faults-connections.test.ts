/**
 * Connection faults against a real daemon process on its unix socket, with real sockets:
 * thousands of idle connections are closed by the idle timeout (and the daemon's descriptors
 * go back down) while it keeps answering; a uid over its connection limit is refused with the
 * `{ error }` envelope until one of its connections closes; requests Node's parser or the
 * router reject (URL or headers too large, bad percent-encoding, unknown method) and event
 * cursors beyond the store's revision answer with the envelope. Limits are configured small
 * on the daemon's command line; waits are bounded polls, and nothing asserts a duration.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFilesLimit } from '../../src/daemon/connection-limits.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { DaemonHarness, waitFor } from './daemon-harness.js';

interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/** Connects to the unix socket; a full accept queue (EAGAIN) is retried, as a patient client would. */
async function connectTo(path: string): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = netConnect(path);
        s.once('connect', () => { s.off('error', reject); resolve(s); });
        s.once('error', reject);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt > 200) throw err;
      await sleep(20);
    }
  }
}

/** Reads one HTTP response from `socket` (until its content-length, or until the socket closes). */
function readResponse(socket: Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const parse = (): RawResponse | undefined => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const headers = data.subarray(0, end).toString('latin1');
      const length = /\r\ncontent-length: *(\d+)/i.exec(headers)?.[1];
      const body = data.subarray(end + 4);
      if (length !== undefined && body.length < Number(length)) return undefined;
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1]), headers, body: body.toString('utf8') };
    };
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      const r = parse();
      if (r) { cleanup(); resolve(r); }
    };
    const onClose = (): void => {
      cleanup();
      const r = parse();
      if (r) resolve(r);
      else reject(new Error(`connection closed before a response: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`));
    };
    const cleanup = (): void => { socket.off('data', onData); socket.off('close', onClose); };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', () => undefined);
  });
}

/** One request on a new connection, closed after. */
async function request(path: string, text: string): Promise<RawResponse> {
  const socket = await connectTo(path);
  try {
    const response = readResponse(socket);
    socket.write(text);
    return await response;
  } finally {
    socket.destroy();
  }
}

const get = (target: string, headers = ''): string => `GET ${target} HTTP/1.1\r\nhost: virtkit\r\n${headers}\r\n`;

function envelope(r: RawResponse): { code: string; message: string; data?: Record<string, unknown> } {
  expect(r.headers).toMatch(/\r\ncontent-type: application\/json/i);
  const parsed = JSON.parse(r.body) as { error?: { code: string; message: string; data?: Record<string, unknown> } };
  expect(parsed.error).toBeDefined();
  expect(typeof parsed.error!.message).toBe('string');
  return parsed.error!;
}

async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

function isClosed(s: Socket): boolean {
  return s.destroyed || s.readyState === 'closed';
}

const IdleConnections = 5_000;
// The daemon inherits this process's open-files limit (Node raises the soft limit to the hard
// one); both ends of 5,000 connections, plus the daemon's reserve, must fit in it.
const roomForIdle = (openFilesLimit() ?? Infinity) >= IdleConnections + 1_024;

describe.skipIf(!roomForIdle)(`idle connections (needs an open-files limit of ${IdleConnections + 1_024})`, () => {
  let d: DaemonHarness;

  beforeAll(async () => {
    d = await DaemonHarness.create();
    await d.start({}, ['--idle-timeout', '5', '--max-owner-connections', '10000', '--max-connections', '10000']);
  });
  afterAll(async () => { await d?.cleanup(); });

  it(`closes ${IdleConnections} connections left idle, keeps answering, and gives their descriptors back`, async () => {
    const pid = d.proc!.pid!;
    const baseline = await openDescriptors(pid);

    const sockets: Socket[] = [];
    const closedByDaemon = new Set<Socket>();
    let peak = baseline;
    for (let i = 0; i < IdleConnections; i += 250) {
      const batch = await Promise.all(Array.from({ length: Math.min(250, IdleConnections - i) }, () => connectTo(d.socketPath)));
      for (const s of batch) {
        s.on('error', () => undefined);
        // The test never ends these itself: a close is the daemon's doing.
        s.on('close', () => closedByDaemon.add(s));
        s.resume();
        sockets.push(s);
      }
      peak = Math.max(peak, await openDescriptors(pid));
    }
    expect(sockets).toHaveLength(IdleConnections);
    // They were accepted and held at once (each is one descriptor in the daemon).
    peak = Math.max(peak, await openDescriptors(pid));
    expect(peak).toBeGreaterThan(baseline + IdleConnections / 2);

    // With thousands of connections open, the daemon still answers on a new one.
    const info = await request(d.socketPath, get('/'));
    expect(info.status).toBe(200);
    expect((JSON.parse(info.body) as { pid: number }).pid).toBe(pid);

    await waitFor('the daemon to close every idle connection', async () => closedByDaemon.size === IdleConnections, 120_000, 200);
    expect(sockets.every(isClosed)).toBe(true);
    await waitFor('the daemon\'s descriptors to go back down', async () => (await openDescriptors(pid)) <= baseline + 5, 30_000, 200);

    // And a new connection works as before.
    const again = await request(d.socketPath, get('/'));
    expect(again.status).toBe(200);
  }, 240_000);
});

describe('limits and error envelopes', () => {
  let d: DaemonHarness;
  const PerUid = 4;

  beforeAll(async () => {
    d = await DaemonHarness.create();
    // The test runs as root: the owner limit is the one that applies to it.
    await d.start({}, ['--idle-timeout', '1', '--headers-timeout', '2', '--max-owner-connections', String(PerUid)]);
  });
  afterAll(async () => { await d?.cleanup(); });

  it('refuses the connection over the uid\'s limit with 503 connection.limit, and admits again once one closes', async () => {
    const held: Socket[] = [];
    try {
      // Each slot is taken by a connection that got an answer (kept alive, and busy enough to
      // outlast the idle timeout: each holds an event stream open).
      for (let i = 0; i < PerUid; i++) {
        held.push(await waitFor(`slot ${i + 1} of ${PerUid}`, async () => {
          const s = await connectTo(d.socketPath);
          s.on('error', () => undefined);
          s.write(get('/events?since=0'));
          const first = await new Promise<string>((resolve) => s.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
          if (first.startsWith('HTTP/1.1 200')) return s;
          s.destroy();
          return undefined;
        }, 30_000, 100));
      }

      const refused = await request(d.socketPath, get('/'));
      expect(refused.status).toBe(503);
      expect(refused.headers).toMatch(/\r\nconnection: close/i);
      const error = envelope(refused);
      expect(error.code).toBe('connection.limit');
      expect(error.data).toMatchObject({ limit: PerUid, uid: 0 });

      // A WebSocket upgrade is refused the same way, before the upgrade.
      const upgrade = await request(d.socketPath, get('/events', 'connection: Upgrade\r\nupgrade: websocket\r\n'
        + 'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n'));
      expect(upgrade.status).toBe(503);
      expect(envelope(upgrade).code).toBe('connection.limit');

      // The streams are still open: the idle timeout does not cut a request in progress.
      expect(held.some(isClosed)).toBe(false);

      held.shift()!.destroy();
      const admitted = await waitFor('a slot to free up', async () => {
        const r = await request(d.socketPath, get('/'));
        return r.status === 200 ? r : undefined;
      }, 30_000, 100);
      expect(admitted.status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it('answers a 20 KB URL with 414 and the envelope', async () => {
    const r = await request(d.socketPath, get(`/domains/${'a'.repeat(20 * 1024)}`));
    expect(r.status).toBe(414);
    const error = envelope(r);
    expect(error.code).toBe('request.too-large');
    expect(error.data).toMatchObject({ what: 'url' });
  });

  it('answers a 10 KB URL (within what the parser takes) with 414 too', async () => {
    const r = await request(d.socketPath, get(`/domains/${'a'.repeat(10 * 1024)}`));
    expect(r.status).toBe(414);
    expect(envelope(r).code).toBe('request.too-large');
  });

  it('answers oversized headers with 431 and the envelope', async () => {
    const r = await request(d.socketPath, get('/', `x-filler: ${'b'.repeat(20 * 1024)}\r\n`));
    expect(r.status).toBe(431);
    const error = envelope(r);
    expect(error.code).toBe('request.too-large');
    expect(error.data).toMatchObject({ what: 'headers' });
  });

  it('answers a malformed percent-encoding with 400 and the envelope', async () => {
    for (const target of ['/domains/%zz', '/domains/%E0%A4%A/state', '/%zz']) {
      const r = await request(d.socketPath, get(target));
      expect(r.status, target).toBe(400);
      expect(envelope(r).code, target).toBe('request.invalid');
    }
  });

  it('answers an unknown method, an unknown route and a body that is not JSON with the envelope', async () => {
    const method = await request(d.socketPath, 'BREW / HTTP/1.1\r\nhost: virtkit\r\n\r\n');
    expect(method.status).toBe(400);
    expect(envelope(method).code).toBe('request.invalid');

    const route = await request(d.socketPath, get('/no/such/thing'));
    expect(route.status).toBe(404);
    expect(envelope(route).code).toBe('request.invalid');

    const body = '{"text": not json';
    const notJson = await request(d.socketPath,
      `POST /domains HTTP/1.1\r\nhost: virtkit\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    expect(notJson.status).toBe(400);
    expect(envelope(notJson).code).toBe('request.invalid');
  });

  it('answers headers that do not arrive in time with 408 and the envelope', async () => {
    const s = await connectTo(d.socketPath);
    s.on('error', () => undefined);
    const response = readResponse(s);
    // Started, then trickled: traffic keeps the idle timeout away, the headers timeout is not.
    s.write('GET / HTTP/1.1\r\n');
    const trickle = setInterval(() => { if (!isClosed(s)) s.write('x-slow: 1\r\n'); }, 200);
    try {
      const r = await response;
      expect(r.status).toBe(408);
      expect(envelope(r).code).toBe('request.invalid');
    } finally {
      clearInterval(trickle);
      s.destroy();
    }
  });

  it('refuses an event cursor beyond the store\'s revision with 400, for server-sent events and WebSocket alike', async () => {
    const info = JSON.parse((await request(d.socketPath, get('/'))).body) as { revision: number };
    const beyond = info.revision + 1000;
    const sse = await request(d.socketPath, get(`/events?since=${beyond}`));
    expect(sse.status).toBe(400);
    const error = envelope(sse);
    expect(error.code).toBe('request.invalid');
    expect(error.data).toMatchObject({ since: beyond, revision: info.revision });
    expect(error.message).toContain(String(info.revision));

    const ws = await request(d.socketPath, get(`/events?since=${beyond}`, 'connection: Upgrade\r\nupgrade: websocket\r\n'
      + 'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n'));
    expect(ws.status).toBe(400);
    expect(envelope(ws).data).toMatchObject({ since: beyond, revision: info.revision });

    for (const bad of ['-1', '1.5', 'x']) {
      const r = await request(d.socketPath, get(`/events?since=${bad}`));
      expect(r.status, bad).toBe(400);
      expect(envelope(r).code, bad).toBe('request.invalid');
    }
    // The current revision itself is a cursor like any other.
    const at = await request(d.socketPath, get(`/events?since=${info.revision}&follow=false`));
    expect(at.status).toBe(200);
  });

  // Last in this daemon: the typed client's connections must not hold the uid's slots above.
  it('keeps the connection of a shutdown that waits many idle timeouts, and answers it', async () => {
    const c = d.client();
    const defined = await c.define(await readFile(testGuestDefinition(), 'utf8'), { baseDir: dirname(testGuestDefinition()) });
    // Paused, the guest cannot act on the power button: the shutdown waits its whole timeout.
    await c.start(defined.name, { paused: true });
    c.close();
    const body = JSON.stringify({ timeout: 4 });
    const r = await request(d.socketPath, `POST /domains/${defined.name}/shutdown HTTP/1.1\r\nhost: virtkit\r\n`
      + `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ state: 'shutoff', outcome: 'forced' });
  });
});

const isRoot = process.getuid?.() === 0;
const haveUserTools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v useradd && command -v groupadd && command -v setpriv'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Run as another local user: opens connections one after another, each holding an event
 * stream (so the idle timeout leaves it), and prints the status each got; then closes the
 * first and tries once more.
 */
const MemberScript = `
import net from 'node:net';
const [socketPath, count] = [process.argv[2], Number(process.argv[3])];
const open = () => new Promise((resolve, reject) => {
  const s = net.connect(socketPath);
  s.on('error', reject);
  s.once('connect', () => s.write('GET /events?since=0 HTTP/1.1\\r\\nhost: virtkit\\r\\n\\r\\n'));
  let text = '';
  s.on('data', (c) => { text += c; if (text.includes('\\r\\n\\r\\n')) resolve({ s, status: Number(text.slice(9, 12)), text }); });
  s.on('close', () => resolve({ s, status: Number(text.slice(9, 12)), text }));
});
const results = [];
const held = [];
for (let i = 0; i < count; i++) {
  const r = await open();
  results.push(r.status === 503 ? { status: r.status, error: JSON.parse(r.text.slice(r.text.indexOf('\\r\\n\\r\\n') + 4)).error } : { status: r.status });
  if (r.status === 200) held.push(r.s);
}
held.shift().destroy();
for (let i = 0; i < 50; i++) {
  const again = await open();
  again.s.destroy();
  if (again.status === 200) { results.push({ status: 200, after: 'close' }); break; }
  await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write(JSON.stringify(results));
for (const s of held) s.destroy();
`;

describe.skipIf(!isRoot || !haveUserTools)('connections of a second local user (--socket-group)', () => {
  const tag = `vkc${process.pid.toString(36)}`;
  const group = `${tag}-g`;
  const user = `${tag}-u`;
  const PerUser = 3;
  let d: DaemonHarness;
  let scriptDir: string;

  beforeAll(async () => {
    execFileSync('groupadd', [group]);
    execFileSync('useradd', ['-M', '-N', '-g', 'nogroup', '-G', group, '-d', '/nonexistent', '-s', '/usr/sbin/nologin', user]);
    scriptDir = mkdtempSync('/tmp/vkconn-');
    chmodSync(scriptDir, 0o755);
    writeFileSync(join(scriptDir, 'member.mjs'), MemberScript, { mode: 0o644 });
    d = await DaemonHarness.create();
    await d.start({}, ['--socket-group', group, '--idle-timeout', '1', '--max-user-connections', String(PerUser)]);
  });

  afterAll(async () => {
    await d?.cleanup();
    if (scriptDir) await rm(scriptDir, { recursive: true, force: true });
    try { execFileSync('userdel', [user], { stdio: 'ignore' }); } catch { /* not created */ }
    try { execFileSync('groupdel', [group], { stdio: 'ignore' }); } catch { /* not created */ }
  });

  it('refuses the user\'s connection over its limit with connection.limit, not root\'s, and admits it again after one closes', async () => {
    const member = spawn('setpriv', [`--reuid=${user}`, '--regid=nogroup', '--init-groups', process.execPath,
      join(scriptDir, 'member.mjs'), d.socketPath, String(PerUser + 1)], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    member.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    member.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    // While the user holds its limit (or gets there), root is not held back by it.
    const rootInfo = await request(d.socketPath, get('/'));
    expect(rootInfo.status).toBe(200);
    const code = await new Promise<number | null>((resolve) => member.once('close', resolve));
    expect(code, stderr).toBe(0);
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const results = JSON.parse(stdout) as { status: number; error?: { code: string; data: Record<string, unknown> }; after?: string }[];
    expect(results.slice(0, PerUser).map((r) => r.status)).toEqual(Array(PerUser).fill(200));
    expect(results[PerUser]).toMatchObject({ status: 503, error: { code: 'connection.limit', data: { uid, limit: PerUser } } });
    expect(results[PerUser + 1]).toEqual({ status: 200, after: 'close' });
  });
});
