/**
 * Group commit in the SQLite backend: concurrent commits share one transaction (one fsync)
 * yet each applies, conflicts or fails on its own; sequential ones are unchanged; a store
 * that cannot be written fails every commit of the group and leaves none of them behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { SqliteBackend, StoreFileName, createStore, withRetry, type Store } from './index.js';

const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(options: { groupCommit?: boolean } = {}): { store: Store; backend: SqliteBackend; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-group-'));
  dirs.push(dir);
  const backend = new SqliteBackend(join(dir, StoreFileName), options);
  const store = createStore(backend);
  stores.push(store);
  return { store, backend, dir };
}

describe('group commit', () => {
  it('writes 50 concurrent commits in one group, each with its own consecutive revision and event', async () => {
    const { store, backend } = open();
    const heard: number[] = [];
    store.watch('/d', (c) => heard.push(c.revision));
    const revisions = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      await store.write(`/d/n${i}`, String(i));
      return store.revision;
    }));
    expect(backend.groupStats).toEqual({ groups: 1, commits: 50 });
    expect(heard).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(revisions.every((r) => r === 50)).toBe(true); // all answered after the one COMMIT
    for (let i = 0; i < 50; i++) expect(await store.read(`/d/n${i}`)).toBe(String(i));
  });

  it('keeps sequential commits one group each', async () => {
    const { store, backend } = open();
    for (let i = 0; i < 5; i++) await store.write('/x', String(i));
    expect(backend.groupStats).toEqual({ groups: 5, commits: 5 });
  });

  it('fails only the conflicting transaction of a group, and its retry succeeds', async () => {
    const { store } = open();
    await store.write('/counter', '0');
    // Both read /counter at 0, then commit in the same turn: the second conflicts.
    const bump = (): Promise<void> => store.transaction(async (tx) => {
      const n = Number(await tx.read('/counter'));
      await tx.write('/counter', String(n + 1));
    });
    const results = await Promise.allSettled([bump(), bump(), store.write('/other', 'x')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(isVirtkitError((results[1] as PromiseRejectedResult).reason, 'store.conflict')).toBe(true);
    expect(await store.read('/counter')).toBe('1');
    expect(await store.read('/other')).toBe('x');
    await Promise.all([withRetry(bump), withRetry(bump)]);
    expect(await store.read('/counter')).toBe('3');
  });

  it('undoes one failing commit alone: the others of its group stay', async () => {
    const { backend } = open();
    const results = await Promise.allSettled([
      backend.commit(undefined, [{ op: 'write', path: '/a', value: '1' }]),
      backend.commit(undefined, [{ op: 'write', path: '/b', value: '1' }, { op: 'rm', path: '/' }]),
      backend.commit(undefined, [{ op: 'write', path: '/c', value: '1' }]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await backend.get('/a'))?.value).toBe('1');
    expect(await backend.get('/b')).toBeUndefined();
    expect((await backend.get('/c'))?.value).toBe('1');
    // Revisions stay gap-free: /a is 1, /c is 2 (the undone /b left no hole).
    expect((await backend.get('/c'))?.modRevision).toBe(2);
    expect(backend.revision).toBe(2);
    const reopened = new SqliteBackend(join(dirs[dirs.length - 1]!, StoreFileName), { shared: true });
    try {
      expect(reopened.revision).toBe(2);
      expect((await reopened.changesSince(0, { limit: 10 })).map((c) => c.path)).toEqual(['/a', '/c']);
    } finally {
      await reopened.close();
    }
  });

  it('answers commits still queued when the store closes', async () => {
    const { store, backend, dir } = open();
    const pending = store.write('/late', 'v');
    stores.splice(stores.indexOf(store), 1);
    await store.close();
    await pending;
    expect(backend.groupStats?.commits).toBe(1);
    const again = new SqliteBackend(join(dir, StoreFileName));
    try {
      expect((await again.get('/late'))?.value).toBe('v');
    } finally {
      await again.close();
    }
  });

  it('can be turned off: every commit on its own', async () => {
    const { store, backend } = open({ groupCommit: false });
    await Promise.all([store.write('/a', '1'), store.write('/b', '2')]);
    expect(backend.groupStats).toBeUndefined();
    expect(await store.read('/b')).toBe('2');
  });
});
