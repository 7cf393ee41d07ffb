/**
 * The streams against a real daemon process and a real guest: the browser entry of the typed
 * client, and `virtkit console` / `virtkit event` over the same WebSockets. The daemon listens
 * on its unix socket only, so for the browser entry a loopback TCP port is forwarded to it;
 * the client then runs as it would in a page: Node's own fetch, and `ws`'s WebSocket in place
 * of the browser's.
 */
import { readFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type AddressInfo, type Server } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BrowserClient, type FetchLike } from '../../src/client/browser.js';
import type { DomainEvent } from '../../src/api/schemas.js';
import { isVirtkitError, type VirtkitError } from '../../src/util/errors.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { DaemonHarness, waitFor } from './daemon-harness.js';

const Ready = 'virtkit-guest: ready';
let d: DaemonHarness;
let forwarder: Server;
let baseUrl: string;
let guestYaml: string;
const sentHeaders: Record<string, string>[] = [];

/** Node's fetch, recording the headers each request carried. */
const recordingFetch: FetchLike = (url, init) => {
  sentHeaders.push(init.headers);
  return fetch(url, init);
};

function client(): BrowserClient {
  return new BrowserClient({ baseUrl, token: 't0ken', fetch: recordingFetch, WebSocket });
}

async function rejected(p: Promise<unknown>): Promise<VirtkitError> {
  try {
    await p;
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error('expected a typed error');
}

beforeAll(async () => {
  guestYaml = await readFile(testGuestDefinition(), 'utf8');
  d = await DaemonHarness.create();
  await d.start();
  forwarder = createServer((tcp) => {
    const unix = netConnect(d.socketPath);
    tcp.pipe(unix).pipe(tcp);
    const end = (): void => { tcp.destroy(); unix.destroy(); };
    tcp.on('error', end);
    unix.on('error', end);
    tcp.on('close', end);
    unix.on('close', end);
  });
  await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(forwarder.address() as AddressInfo).port}`;
});

afterAll(async () => {
  // The daemon first: its end of every forwarded connection closes, and with it the
  // forwarder's (fetch keeps connections alive for as long as the daemon offers).
  await d?.cleanup();
  await new Promise((resolve) => forwarder?.close(resolve));
});

describe('the browser entry (fetch + WebSocket)', () => {
  it('calls methods of the table through fetch, with the bearer token, and decodes typed errors', async () => {
    const c = client();
    const info = await c.daemonInfo();
    expect(info.pid).toBe(d.proc!.pid);
    expect(info.apiExtensions).toContain('console-websocket');
    expect(info.apiExtensions).toContain('events-websocket');
    expect(sentHeaders.at(-1)).toMatchObject({ authorization: 'Bearer t0ken', accept: 'application/json' });

    const defined = await c.define(guestYaml, { baseDir: dirname(testGuestDefinition()) });
    expect(defined.name).toBe('testguest');
    expect((await c.list({ all: true })).domains.map((x) => x.name)).toEqual(['testguest']);
    expect(await c.info('testguest')).toMatchObject({ name: 'testguest', state: 'shutoff' });
    const missing = await rejected(c.info('nope'));
    expect(missing.code).toBe('domain.not-found');
    expect(missing.data.status).toBe(404);
  });

  it('replays events with since over a WebSocket and follows new ones', async () => {
    const c = client();
    const all: DomainEvent[] = [];
    for await (const ev of c.events({ since: 0, follow: false })) all.push(ev);
    expect(all.map((e) => [e.type, e.domain])).toEqual([['defined', 'testguest']]);

    const ac = new AbortController();
    const followed: DomainEvent[] = [];
    const following = (async () => {
      for await (const ev of c.events({ since: all[0]!.seq, signal: ac.signal })) {
        followed.push(ev);
        ac.abort();
      }
    })();
    await c.setAutostart('testguest', true);
    await following;
    expect(followed).toEqual([expect.objectContaining({ type: 'autostart', domain: 'testguest', reason: 'enabled' })]);
    expect(followed[0]!.seq).toBeGreaterThan(all[0]!.seq);
  });

  it('learns why a console was refused (a browser WebSocket cannot) and types on a running guest', async () => {
    const c = client();
    const refused = await rejected(c.openConsole('testguest', 'read'));
    expect(refused.code).toBe('domain.invalid-state');
    expect(refused.message).toMatch(/not running/);

    await c.start('testguest');
    await d.waitConsole('testguest', Ready);
    const con = await c.openConsole('testguest', 'write', { history: true });
    const second = await rejected(c.openConsole('testguest', 'write'));
    expect(second.code).toBe('domain.invalid-state');
    const decoder = new TextDecoder();
    let text = '';
    const reading = (async () => {
      for await (const bytes of con.output) {
        expect(bytes).toBeInstanceOf(Uint8Array);
        text += decoder.decode(bytes, { stream: true });
        if (text.includes('browser-5-marker')) return;
      }
    })();
    con.send('echo browser-$((2+3))-marker\n');
    await reading;
    // The history came first: the guest's boot output is there before the answer.
    expect(text.indexOf(Ready)).toBeGreaterThanOrEqual(0);
    expect(text.indexOf(Ready)).toBeLessThan(text.indexOf('browser-5-marker'));
    con.close();
    expect((await con.closed).code).toBe(1000);
    await waitFor('the writer\'s place to be free', async () => {
      const next = await c.openConsole('testguest', 'write');
      next.close();
      return true;
    }, 5000);
  });
});

describe('virtkit console and virtkit event over the WebSockets', () => {
  it('types piped input on the console and prints the guest\'s answer; a second writer is refused, a reader is not', async () => {
    const c = client();
    const run = await d.cli(['console', 'testguest'], { input: 'echo cli-$((3*4))-marker\n' });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("Connected to domain 'testguest'");
    expect(run.stdout).toContain('cli-12-marker');

    const holder = await c.openConsole('testguest', 'write');
    const refused = await d.cli(['console', 'testguest'], { input: 'echo nope\n' });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('domain.invalid-state');
    expect(refused.stderr).toContain('--read-only');
    const watching = d.cli(['console', 'testguest', '--read-only'], { input: '' });
    holder.send('echo held-$((5*5))-marker\n');
    // The reader's stdin ends at once: it detaches a second later, having watched meanwhile.
    const watched = await watching;
    expect(watched.code).toBe(0);
    holder.close();
    expect((await c.consoleLog('testguest'))).toContain('held-25-marker');
  });

  it('prints the event that follows, then exits', async () => {
    const c = client();
    const cursor = (await c.daemonInfo()).revision;
    const waiting = d.cli(['event', '--since', String(cursor), '--domain', 'testguest', '--json', '--timeout', '60']);
    await c.destroy('testguest');
    const out = await waiting;
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ type: 'stopped', domain: 'testguest', reason: 'destroyed' });
  });
});
