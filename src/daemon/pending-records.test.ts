/**
 * A store that cannot be written (disk full, I/O error) under the manager, on the fake driver:
 * what the daemon observed is kept and written in order once the store takes writes again,
 * reads answer from what was observed, and nothing is killed or spawned because of the store.
 * The same on real QEMU and a real full tmpfs: test/integration/faults-store.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { DomainEvent } from '../api/schemas.js';
import { FakeDomainDriver, FakeHost } from '../qemu/driver/fake-driver.js';
import { FaultyBackend, SqliteBackend, createStore, type Origin, type Store } from '../store/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { domainPath } from './domain-records.js';
import { replayEvents } from './event-log.js';
import { Manager } from './manager.js';
import { PendingRecords } from './pending-records.js';

const log = Fastify({ logger: false }).log;
const origin: Origin = { client: 'test' };

let dir: string;
let faulty: FaultyBackend;
let store: Store;
let host: FakeHost;
let manager: Manager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-pending-'));
  await writeFile(join(dir, 'vmlinuz'), 'kernel');
  await writeFile(join(dir, 'initrd.img'), 'initrd');
  faulty = new FaultyBackend(new SqliteBackend(join(dir, 'store.db')));
  store = createStore(faulty);
  host = new FakeHost();
  manager = new Manager({ store, runRoot: join(dir, 'run'), log, driver: new FakeDomainDriver({ host }) });
});

afterEach(async () => {
  faulty.failCommits(undefined);
  for (const g of host.liveGuests()) g.die();
  await manager.settled();
  manager.detachAll();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function define(name: string): Promise<void> {
  const text = YAML.stringify({ name, memory: '128MiB', boot: { loader: 'direct', kernel: 'vmlinuz', initrd: 'initrd.img' }, shutdown_timeout: 5 });
  await manager.define(origin, { text, baseDir: dir });
}

async function errorOf(p: Promise<unknown>): Promise<VirtkitError> {
  try {
    await p;
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error('expected an error');
}

/** The status the store itself holds (not what reads of the manager answer). */
async function storedState(name: string): Promise<string> {
  return (JSON.parse((await store.read(domainPath(name, 'status')))!) as { state: string }).state;
}

async function events(): Promise<string[]> {
  const out: string[] = [];
  await replayEvents(store, 0, (ev: DomainEvent) => out.push(`${ev.type} ${ev.domain}${ev.reason ? ` ${ev.reason}` : ''}`));
  return out;
}

async function waitFor(what: string, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the manager on a store that refuses writes', () => {
  it('destroy still kills QEMU and answers what happened; the record is written when the store recovers, without a restart', async () => {
    await define('a');
    await manager.start(origin, 'a');
    faulty.failCommits('SQLITE_FULL');

    // The user asked: QEMU goes, and the answer is the state the guest is in.
    expect(await manager.destroy(origin, 'a')).toEqual({ state: 'shutoff', reason: 'destroyed' });
    expect(host.liveGuests()).toEqual([]);
    expect(await storedState('a')).toBe('running');
    // Reads answer from what was observed, not from the stale store.
    expect(await manager.state(origin, 'a')).toEqual({ state: 'shutoff', reason: 'destroyed' });
    expect((await manager.info(origin, 'a')).pid).toBeUndefined();
    expect(await manager.list(origin, true)).toMatchObject([{ name: 'a', state: 'shutoff' }]);
    expect(await manager.list(origin, false)).toEqual([]);

    // A second destroy finds nothing to destroy; a start is refused before any QEMU is spawned.
    expect((await errorOf(manager.destroy(origin, 'a'))).code).toBe('domain.invalid-state');
    const start = await errorOf(manager.start(origin, 'a'));
    expect(start.code).toBe('store.unavailable');
    expect(start.data).toMatchObject({ reason: 'disk-full', pending: ['a stopped (destroyed)'] });
    expect(host.liveGuests()).toEqual([]);
    const define2 = await errorOf(define('b'));
    expect(define2.code).toBe('store.unavailable');

    // Space comes back: the pending record is written by the retry timer alone.
    faulty.failCommits(undefined);
    await waitFor('the exit to be recorded', async () => (await storedState('a')) === 'shutoff');
    expect(await store.exists(domainPath('a', 'live'))).toBe(false);
    expect(await events()).toEqual(['defined a', 'started a', 'stopped a destroyed']);
    expect((await manager.start(origin, 'a')).state).toBe('running');
    expect(await manager.destroy(origin, 'a')).toEqual({ state: 'shutoff', reason: 'destroyed' });
  });

  it('keeps what guests did by themselves, in order, and writes it before any later write', async () => {
    await define('a');
    await define('b');
    await manager.start(origin, 'a');
    await manager.start(origin, 'b');
    faulty.failCommits('SQLITE_IOERR_WRITE');

    host.guestNamed('a')!.monitorStop();
    await manager.settled();
    expect(await manager.state(origin, 'a')).toEqual({ state: 'paused' });
    expect(await storedState('a')).toBe('running');
    host.guestNamed('a')!.die();
    host.guestNamed('b')!.powerOff();
    await manager.settled();
    await waitFor('both exits to be observed', async () => manager.liveNames().length === 0);
    expect(await manager.state(origin, 'a')).toEqual({ state: 'crashed', reason: 'crashed' });
    expect(await manager.state(origin, 'b')).toEqual({ state: 'shutoff', reason: 'shutdown' });

    // Nothing was killed because of the store: each guest ended by itself.
    const refused = await errorOf(manager.setAutostart(origin, 'a', true));
    expect(refused.code).toBe('store.unavailable');
    expect(refused.data['reason']).toBe('io-error');
    expect(refused.data['pending']).toEqual(['a suspended (monitor)', 'a stopped (crashed)', 'b stopped (shutdown)']);

    // The next write that the store accepts carries them first, in the order they happened.
    faulty.failCommits(undefined);
    await manager.setAutostart(origin, 'a', true);
    expect(await events()).toEqual([
      'defined a', 'defined b', 'started a', 'started b',
      'suspended a monitor', 'stopped a crashed', 'stopped b shutdown', 'autostart a enabled',
    ]);
    expect(await storedState('a')).toBe('crashed');
    expect(await storedState('b')).toBe('shutoff');
  });

  it('a store that refuses the record of a start keeps the guest: adopted, shown running, recorded later', async () => {
    await define('a');
    // The first commit of start (starting) goes through; the one after QEMU is spawned does not.
    const commit = faulty.commit.bind(faulty);
    let commits = 0;
    faulty.commit = (checks, mutations, o) => {
      if (mutations.length > 0 && ++commits === 2) faulty.failCommits('SQLITE_FULL');
      return commit(checks, mutations, o);
    };
    const info = await manager.start(origin, 'a');
    expect(info.state).toBe('running');
    expect(host.liveGuests()).toEqual([host.guestNamed('a')]);
    expect(await storedState('a')).toBe('starting');
    expect(manager.liveNames()).toEqual(['a']);
    faulty.failCommits(undefined);
    await waitFor('the start to be recorded', async () => (await storedState('a')) === 'running');
    expect(await manager.destroy(origin, 'a')).toEqual({ state: 'shutoff', reason: 'destroyed' });
  });
});

describe('PendingRecords', () => {
  it('drops a record that can never be written (not a storage failure) without blocking the ones behind it', async () => {
    await store.write('/x', '0');
    const records = new PendingRecords({ log, commit: (write) => store.transaction(write), firstRetryMs: 1 });
    try {
      faulty.failCommits('SQLITE_FULL');
      expect(await records.record({ domain: 'd', what: 'one', overlay: { '/x': '1' }, write: (tx) => tx.write('/x', '1') })).toBe(false);
      expect(await records.record({ domain: 'd', what: 'bug', write: () => Promise.reject(new TypeError('a bug')) })).toBe(false);
      expect(await records.record({ domain: 'd', what: 'two', overlay: { '/x': '2', '/y': null }, write: (tx) => tx.write('/x', '2') })).toBe(false);
      expect(records.describe()).toEqual(['one', 'bug', 'two']);
      const overlaid = records.overlay(store);
      expect(await overlaid.read('/x')).toBe('2');
      expect(await overlaid.exists('/y')).toBe(false);
      expect(await store.read('/x')).toBe('0');
      faulty.failCommits(undefined);
      await records.flush();
      expect(records.size).toBe(0);
      expect((await store.changesSince(1)).map((c) => c.value)).toEqual(['1', '2']);
      expect(await overlaid.read('/x')).toBe('2');
    } finally {
      records.close();
    }
  });
});
