/**
 * The daemon's API against a real daemon process and real SQLite, with as little QEMU as
 * possible: bad input, the socket, OpenAPI, events that survive restarts, snoop with client
 * pids, a crash inside a define, and autostart once per boot id (guests started and destroyed
 * without waiting for them to boot).
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { get } from 'node:http';
import { connect as netConnect } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Methods } from '../../src/api/methods.js';
import type { DomainEvent, SnoopRecord } from '../../src/api/schemas.js';
import { isVirtkitError, type VirtkitError } from '../../src/util/errors.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { CliPath, DaemonHarness, waitFor } from './daemon-harness.js';

let d: DaemonHarness;
let guestYaml: string;
let baseDir: string;

/** The test guest's definition under another name (and a fresh uuid). */
function definitionNamed(name: string, extra = ''): string {
  return guestYaml.replace(/^name: .*$/m, `name: ${name}`) + extra;
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

/** Raw HTTP over the socket, for requests the typed client cannot produce. */
function rawRequest(request: string | Buffer, opts: { hangUpAfterWrite?: boolean } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = netConnect(d.socketPath);
    let data = '';
    s.on('data', (c: Buffer) => { data += c.toString(); });
    // The daemon may answer (413) and close before the whole request is written: that is
    // the answer, not a failure.
    s.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err); });
    s.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    s.write(request, () => { if (opts.hangUpAfterWrite) s.destroy(); });
  });
}

beforeAll(async () => {
  guestYaml = await readFile(testGuestDefinition(), 'utf8');
  baseDir = dirname(testGuestDefinition());
  d = await DaemonHarness.create();
  await d.start();
});

afterAll(async () => {
  await d.cleanup();
});

describe('daemon socket and API document', () => {
  it('listens on STATE_DIR/virtkit.sock with mode 0600', async () => {
    const st = await stat(d.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('serves an OpenAPI document naming every method of the table', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      get({ socketPath: d.socketPath, path: '/openapi.json' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    const doc = JSON.parse(text) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
    expect(doc.openapi).toBe('3.1.0');
    const ids = Object.values(doc.paths).flatMap((p) => Object.values(p).map((op) => op.operationId));
    for (const name of Object.keys(Methods)) expect(ids).toContain(name);
  });

  it('refuses a second daemon on the same state dir', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [CliPath, 'daemon', '--state-dir', d.stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      p.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('store.locked');
  });
});

describe('bad input gets a typed error, the right status, and leaves the store unchanged', () => {
  it('unknown domain: 404 domain.not-found', async () => {
    const c = d.client();
    const before = (await c.daemonInfo()).revision;
    const err = await rejected(c.info('no-such-domain'));
    expect(err.code).toBe('domain.not-found');
    expect(err.data.status).toBe(404);
    expect((await rejected(c.start('no-such-domain'))).code).toBe('domain.not-found');
    expect((await c.daemonInfo()).revision).toBe(before);
    const cli = await d.cli(['dominfo', 'no-such-domain']);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain('domain.not-found');
  });

  it('invalid definition: 400 definition.invalid naming the field', async () => {
    const c = d.client();
    const before = (await c.daemonInfo()).revision;
    const err = await rejected(c.define(definitionNamed('bad-memory').replace(/^memory: .*$/m, 'memory: 1KiB'), { baseDir }));
    expect(err.code).toBe('definition.invalid');
    expect(err.data.status).toBe(400);
    expect(err.data.path).toBe('memory');
    expect(err.message).toContain('memory');
    expect((await c.daemonInfo()).revision).toBe(before);
  });

  it('duplicate name or uuid: 409 domain.exists', async () => {
    const c = d.client();
    const first = await c.define(definitionNamed('dup-a'), { baseDir });
    const before = (await c.daemonInfo()).revision;
    const byName = await rejected(c.define(definitionNamed('dup-a'), { baseDir }));
    expect(byName.code).toBe('domain.exists');
    expect(byName.data.status).toBe(409);
    const byUuid = await rejected(c.define(definitionNamed('dup-b', `uuid: ${first.uuid}\n`), { baseDir }));
    expect(byUuid.code).toBe('domain.exists');
    expect(byUuid.message).toContain('dup-a');
    expect((await c.daemonInfo()).revision).toBe(before);
    await c.undefine('dup-a');
  });

  it('shutdown, destroy, suspend of a stopped domain: 409 domain.invalid-state', async () => {
    const c = d.client();
    await c.define(definitionNamed('stopped-one'), { baseDir });
    for (const call of [c.shutdown('stopped-one'), c.destroy('stopped-one'), c.suspend('stopped-one')]) {
      const err = await rejected(call);
      expect(err.code).toBe('domain.invalid-state');
      expect(err.data.status).toBe(409);
    }
    expect((await c.state('stopped-one')).state).toBe('shutoff');
    await c.undefine('stopped-one');
  });

  it('a disk that does not exist: qemu.failed-to-start with QEMU\'s message, domain stays shutoff', async () => {
    const c = d.client();
    await c.define(definitionNamed('no-disk', 'disks:\n  - source: /nonexistent/virtkit-missing.img\n    format: raw\n'), { baseDir });
    const err = await rejected(c.start('no-disk'));
    expect(err.code).toBe('qemu.failed-to-start');
    expect(err.message).toContain('virtkit-missing.img');
    expect(await c.state('no-disk')).toEqual({ state: 'shutoff', reason: 'failed' });
    expect(await d.qemuPids()).toEqual([]);
    await c.undefine('no-disk');
  });

  it('malformed JSON: 400 request.invalid', async () => {
    const body = '{"text": "name: x", ';
    const res = await rawRequest(`POST /domains HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'request.invalid' } });
  });

  it('unknown body fields: 400 request.invalid naming the field', async () => {
    const body = JSON.stringify({ text: 'name: x', surprise: 1 });
    const res = await rawRequest(`POST /domains HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'request.invalid' } });
    expect(res.body).toContain('surprise');
  });

  it('oversize body: 413 request.too-large', async () => {
    const c = d.client();
    const before = (await c.daemonInfo()).revision;
    // The declared length alone is over the limit: the daemon answers before reading the body.
    const res = await rawRequest(`POST /domains HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${2 * 1024 * 1024}\r\nconnection: close\r\n\r\n{"text": "`);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'request.too-large' } });
    expect((await c.daemonInfo()).revision).toBe(before);
  });

  it('a client that disconnects mid-request leaves the store unchanged', async () => {
    const c = d.client();
    const before = (await c.daemonInfo()).revision;
    const body = JSON.stringify({ text: definitionNamed('half-sent'), baseDir });
    const half = body.slice(0, body.length >> 1);
    await rawRequest(`POST /domains HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${half}`, { hangUpAfterWrite: true });
    await new Promise((r) => setTimeout(r, 300));
    expect((await c.daemonInfo()).revision).toBe(before);
    expect((await rejected(c.info('half-sent'))).code).toBe('domain.not-found');
  });
});

describe('events', { timeout: 240_000 }, () => {
  it('replays from a cursor after a daemon restart and keeps following through a kill -9', async () => {
    const c = d.client();
    const cursor = (await c.daemonInfo()).revision;
    await c.define(definitionNamed('ev-one'), { baseDir });
    await d.stop();
    await d.start();
    // Replay across the restart: the event recorded before it is there, with its seq.
    const replayed: DomainEvent[] = [];
    for await (const ev of c.events({ since: cursor, follow: false })) replayed.push(ev);
    expect(replayed.map((e) => [e.type, e.domain])).toEqual([['defined', 'ev-one']]);
    expect(replayed[0]!.seq).toBeGreaterThan(cursor);

    // A live iterator survives a crash of the daemon and misses nothing.
    const ac = new AbortController();
    const seen: DomainEvent[] = [];
    const iter = (async () => {
      for await (const ev of c.events({ since: replayed[0]!.seq, signal: ac.signal, retryMs: 100 })) {
        seen.push(ev);
        if (seen.length === 2) ac.abort();
      }
    })();
    await c.setAutostart('ev-one', true);
    await waitFor('the first live event', async () => seen.length >= 1);
    await d.kill9();
    await d.start();
    await c.undefine('ev-one');
    await iter;
    expect(seen.map((e) => [e.type, e.domain, e.reason])).toEqual([['autostart', 'ev-one', 'enabled'], ['undefined', 'ev-one', undefined]]);
    expect(seen[1]!.seq).toBeGreaterThan(seen[0]!.seq);
    const cli = await d.cli(['event', '--since', String(cursor), '--json']);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ type: 'defined', domain: 'ev-one' });
  });
});

describe('snoop', { timeout: 240_000 }, () => {
  it('shows the operations of two concurrent clients with their pids', async () => {
    const c = d.client();
    const ac = new AbortController();
    const records: SnoopRecord[] = [];
    const reading = (async () => {
      for await (const r of c.snoop({ signal: ac.signal })) records.push(r);
    })();
    await waitFor('the snoop stream', async () => {
      await c.daemonInfo();
      return records.length > 0 || (await c.list({ all: true }), records.length > 0);
    });
    const spawnCli = (args: string[]): { pid: number; done: Promise<number> } => {
      const p = spawn(process.execPath, [CliPath, ...args], { env: { ...process.env, VIRTKIT_CONNECT: d.socketPath }, stdio: 'ignore' });
      return { pid: p.pid!, done: new Promise((r) => p.on('close', (code) => r(code ?? -1))) };
    };
    const a = spawnCli(['list', '--all']);
    const b = spawnCli(['define', testGuestDefinition()]);
    expect(await a.done).toBe(0);
    expect(await b.done).toBe(0);
    await waitFor('snoop lines of both clients', async () =>
      records.some((r) => r.pid === a.pid) && records.some((r) => r.pid === b.pid && r.op === 'commit'), 10_000);
    ac.abort();
    await reading;
    const ofB = records.filter((r) => r.pid === b.pid);
    expect(ofB.some((r) => r.op === 'write' && r.path === '/domain/testguest/definition' && r.tx !== '-')).toBe(true);
    expect(records.filter((r) => r.pid === a.pid).some((r) => r.op === 'list' && r.path === '/domain')).toBe(true);
    await c.undefine('testguest');
  });
});

describe('crash-only', { timeout: 240_000 }, () => {
  it('a daemon killed inside a define transaction leaves nothing half-defined', async () => {
    await d.stop();
    await d.start({ VIRTKIT_CRASH_AT: 'define.in-transaction' });
    const c = d.client();
    const before = (await c.daemonInfo()).revision;
    const err = await rejected(c.define(definitionNamed('crash-define'), { baseDir }));
    expect(err.code).toBe('connection.failed');
    await d.waitCrashed();
    await d.start();
    expect((await rejected(c.info('crash-define'))).code).toBe('domain.not-found');
    expect((await c.daemonInfo()).revision).toBe(before);
    await c.define(definitionNamed('crash-define'), { baseDir });
    expect((await c.info('crash-define')).state).toBe('shutoff');
    await c.undefine('crash-define');
  });
});

describe('autostart', { timeout: 240_000 }, () => {
  it('starts autostart domains once per host boot id, not on every daemon restart', async () => {
    const c = d.client();
    await c.define(guestYaml, { baseDir });
    await c.setAutostart('testguest', true);
    const startsOf = async (): Promise<number> => {
      let n = 0;
      for await (const ev of c.events({ since: 0, follow: false })) if (ev.domain === 'testguest' && ev.type === 'started') n++;
      return n;
    };
    const restartWithBoot = async (bootId: string): Promise<void> => {
      await d.stop();
      await d.start({ VIRTKIT_BOOT_ID: bootId });
    };
    await restartWithBoot('boot-a');
    await waitFor('autostart for boot-a', async () => (await c.info('testguest')).state === 'running', 30_000);
    expect(await startsOf()).toBe(1);
    await c.destroy('testguest');

    await restartWithBoot('boot-a');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await c.info('testguest')).state).toBe('shutoff');
    expect(await startsOf()).toBe(1);

    await restartWithBoot('boot-b');
    await waitFor('autostart for boot-b', async () => (await c.info('testguest')).state === 'running', 30_000);
    expect(await startsOf()).toBe(2);
    await c.destroy('testguest');
    await c.undefine('testguest');
    expect(await d.qemuPids()).toEqual([]);
  });
});
