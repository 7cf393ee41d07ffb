/**
 * `info` derived once per revision of a domain's values: the same texts give the cached answer
 * without deriving again; any changed text (a new status, a live definition, an edit), or the
 * same content in a new string, is checked; a domain gone is not-found and forgotten. And
 * `list`'s rows kept per store revision.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { StoreReader } from '../store/index.js';
import { domainPath } from './domain-records.js';
import { DomainInfoCache } from './info-cache.js';
import { FakeDomainDriver, FakeHost } from '../qemu/driver/fake-driver.js';
import { startDaemon } from './index.js';
import { infoOf } from './manager.js';

const values = new Map<string, string>();
const store: StoreReader = {
  read: async (path) => values.get(path),
  readOrThrow: async (path) => values.get(path)!,
  exists: async (path) => values.has(path),
  list: async () => [],
};

const definition = (memory: number): string => JSON.stringify({ name: 'web', memory, vcpus: 1, nics: [], disks: [] });

it('derives once per revision of the texts, and again for each change', async () => {
  values.set(domainPath('web', 'uuid'), 'u-1');
  values.set(domainPath('web', 'definition'), definition(64));
  values.set(domainPath('web', 'status'), JSON.stringify({ state: 'shutoff' }));
  let derived = 0;
  const cache = new DomainInfoCache((rec) => { derived++; return infoOf(rec); });
  const first = await cache.info(store, 'web');
  expect(first).toMatchObject({ name: 'web', uuid: 'u-1', state: 'shutoff', memory: 64, tainted: [] });
  first.tainted.push('changed by a caller');
  (first as { extra?: boolean }).extra = true;
  expect(await cache.info(store, 'web')).toEqual({ name: 'web', uuid: 'u-1', state: 'shutoff', memory: 64, vcpus: 1, autostart: false, tainted: [] });
  expect(derived).toBe(1);

  values.set(domainPath('web', 'status'), JSON.stringify({ state: 'paused', pid: 42, accel: 'tcg' }));
  values.set(domainPath('web', 'live'), definition(64));
  expect(await cache.info(store, 'web')).toMatchObject({ state: 'paused', pid: 42, definitionDiffers: false });
  expect(derived).toBe(2);
  values.set(domainPath('web', 'definition'), definition(128));
  expect(await cache.info(store, 'web')).toMatchObject({ memory: 128, definitionDiffers: true });
  expect(derived).toBe(3);
  // The same content in a new string object: the same answer, not derived again.
  values.set(domainPath('web', 'definition'), `${definition(128)}`.slice(0));
  expect(await cache.info(store, 'web')).toMatchObject({ memory: 128 });
  expect(derived).toBe(3);
  values.set(domainPath('web', 'autostart'), 'true');
  expect(await cache.info(store, 'web')).toMatchObject({ autostart: true });
  expect(derived).toBe(4);

  values.delete(domainPath('web', 'definition'));
  await expect(cache.info(store, 'web')).rejects.toMatchObject({ code: 'domain.not-found', data: { name: 'web' } });
});

it('lists from rows kept per store revision: no per-domain read while nothing changed, fresh rows after a change', async () => {
  const dir = await mkdtemp('/tmp/vk-list-cache-');
  const daemon = await startDaemon({ stateDir: join(dir, 'state'), logFile: join(dir, 'daemon.log'), driver: new FakeDomainDriver({ host: new FakeHost() }) });
  try {
    const m = daemon.manager;
    for (const name of ['a', 'b', 'c']) await m.define({}, { text: `name: ${name}\nmemory: 64MiB\n` });
    const reads: string[] = [];
    const stop = daemon.store.onOperation((rec) => { if (rec.op === 'read' || rec.op === 'list') reads.push(`${rec.op} ${rec.path ?? ''}`); });
    const first = await m.list({}, true);
    expect(first.map((d) => [d.name, d.autostart])).toEqual([['a', false], ['b', false], ['c', false]]);
    expect(reads.length).toBe(1 + 3 * 4);
    reads.length = 0;
    expect(await m.list({}, true)).toEqual(first);
    expect(reads).toEqual(['list /domain']);
    await m.setAutostart({}, 'b', true);
    expect((await m.list({}, true)).map((d) => [d.name, d.autostart])).toEqual([['a', false], ['b', true], ['c', false]]);
    expect(await m.list({}, false)).toEqual([]);
    stop();
  } finally {
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
