/**
 * The web listener on the fake driver: the token is the credential (requests and WebSockets),
 * a foreign Host or Origin is refused, only loopback addresses are accepted, the page's
 * security headers, and the token file's mode.
 */
import { mkdtemp, rm, stat, readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BrowserClient, type WebSocketFactory } from '../client/browser.js';
import { FakeDomainDriver, FakeHost } from '../qemu/driver/fake-driver.js';
import { isVirtkitError } from '../util/errors.js';
import { parseHttpAddress } from './http-listener.js';
import { startDaemon, type RunningDaemon } from './index.js';

let dir: string;
let daemon: RunningDaemon;
let base: string;
let token: string;
const host = new FakeHost();

beforeAll(async () => {
  dir = await mkdtemp('/tmp/vkweb-');
  process.env.VIRTKIT_BOOT_ID = 'fake-boot';
  const webRoot = join(dir, 'web');
  await mkdir(join(webRoot, 'assets'), { recursive: true });
  await writeFile(join(webRoot, 'index.html'), '<!doctype html><title>virtkit</title>');
  await writeFile(join(webRoot, 'assets', 'app-1.js'), 'export {};');
  daemon = await startDaemon({ stateDir: join(dir, 'state'), logFile: join(dir, 'daemon.log'), driver: new FakeDomainDriver({ host }), http: '127.0.0.1:0', webRoot });
  base = daemon.http!.url;
  token = daemon.http!.token;
});

afterAll(async () => {
  for (const g of host.liveGuests()) g.die();
  await daemon.stop();
  delete process.env.VIRTKIT_BOOT_ID;
  await rm(dir, { recursive: true, force: true });
});

const definition = (name: string): string =>
  `name: ${name}\nmemory: 64MiB\nboot:\n  loader: direct\n  kernel: ${process.execPath}\n`;

describe('the web listener', () => {
  it('serves the API through the typed browser client with the token, events and console included', async () => {
    const c = new BrowserClient({ baseUrl: base, token, WebSocket: WebSocket as unknown as WebSocketFactory });
    // GET / is daemon.info for a client with the token, the page for a browser without.
    expect((await c.daemonInfo()).pid).toBe(process.pid);
    await c.define(definition('web1'));
    const events = c.events({ since: 0 });
    await c.start('web1');
    const seen: string[] = [];
    for await (const ev of events) {
      seen.push(ev.type);
      if (ev.type === 'started') break;
    }
    expect(seen).toContain('started');
    const con = await c.openConsole('web1', 'write', { history: true });
    const out: string[] = [];
    const dec = new TextDecoder();
    con.send('echo hello-web\n');
    for await (const bytes of con.output) {
      out.push(dec.decode(bytes));
      if (out.join('').includes('hello-web\r\n') || out.join('').match(/hello-web[\r\n]+.*hello-web/s)) break;
    }
    con.close();
    expect(out.join('')).toContain('hello-web');
    expect((await c.list({ all: true })).domains.map((d) => d.name)).toContain('web1');
  });

  it('refuses requests and WebSockets without the token, or with another one (401, access.unauthenticated)', async () => {
    const res = await fetch(`${base}/domains`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('access.unauthenticated');
    const wrong = new BrowserClient({ baseUrl: base, token: 'x'.repeat(43), WebSocket: WebSocket as unknown as WebSocketFactory });
    await expect(wrong.list()).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'access.unauthenticated'));
    const ws = new WebSocket(`${base.replace('http', 'ws')}/events`);
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0)));
    expect(status).toBe(401);
  });

  it('refuses a foreign Origin or Host even with the token', async () => {
    const origin = await fetch(`${base}/domains`, { headers: { authorization: `Bearer ${token}`, origin: 'http://evil.example' } });
    expect(origin.status).toBe(403);
    const ws = new WebSocket(`${base.replace('http', 'ws')}/events`, ['virtkit', `virtkit-token.${token}`], { origin: 'http://evil.example' });
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0)));
    expect(status).toBe(403);
    const port = new URL(base).port;
    const rebinding = await new Promise<number>((resolve, reject) => {
      import('node:http').then(({ request }) => {
        const req = request({ host: '127.0.0.1', port, path: '/', headers: { host: `attacker.example:${port}` } }, (r) => { r.resume(); resolve(r.statusCode ?? 0); });
        req.on('error', reject);
        req.end();
      }, reject);
    });
    expect(rebinding).toBe(403);
  });

  it('serves the page without the token, with a strict CSP and no-referrer', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await fetch(`${base}/assets/../../state/http-token`)).status).not.toBe(200);
  });

  it('keeps its token in a 0600 file and names itself in http.json', async () => {
    const state = join(dir, 'state');
    expect((await stat(join(state, 'http-token'))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(state, 'http-token'), 'utf8')).trim()).toBe(token);
    expect(JSON.parse(await readFile(join(state, 'http.json'), 'utf8'))).toMatchObject({ url: base, pid: process.pid });
  });

  it('refuses a VNC console of a guest without graphics', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/domains/web1/vnc`, ['binary', `virtkit-token.${token}`]);
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0)));
    expect(status).toBe(409);
  });
});

describe('--http addresses', () => {
  it('accepts loopback only', () => {
    expect(parseHttpAddress('127.0.0.1:8006')).toEqual({ host: '127.0.0.1', port: 8006 });
    expect(parseHttpAddress('localhost:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseHttpAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    for (const bad of ['0.0.0.0:8006', '192.168.1.2:80', '8006', 'example.com:80', '127.0.0.1:99999', '']) {
      expect(() => parseHttpAddress(bad), bad).toThrow(/--http/);
    }
  });
});
