import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { SimulatedSqliteError } from './faulty-backend.js';
import { FaultyBackend, SqliteBackend, asStoreUnavailable, createStore, storageFailureOf, type Store } from './index.js';

const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function faultyStore(): { store: Store; faulty: FaultyBackend } {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-store-faulty-'));
  dirs.push(dir);
  const faulty = new FaultyBackend(new SqliteBackend(join(dir, 'store.db')));
  const store = createStore(faulty);
  stores.push(store);
  return { store, faulty };
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

describe('storage failures', () => {
  it('are told apart from bugs by their SQLite or errno code', () => {
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_FULL'))).toBe('disk-full');
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_IOERR_WRITE'))).toBe('io-error');
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_IOERR'))).toBe('io-error');
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_READONLY_DBMOVED'))).toBe('read-only');
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_CANTOPEN'))).toBe('cannot-open');
    expect(storageFailureOf(Object.assign(new Error('no space'), { code: 'ENOSPC' }))).toBe('disk-full');
    expect(storageFailureOf(Object.assign(new Error('ro'), { code: 'EROFS' }))).toBe('read-only');
    // Not the storage: a constraint, a corrupt file, a plain bug.
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_CONSTRAINT_PRIMARYKEY'))).toBeUndefined();
    expect(storageFailureOf(new SimulatedSqliteError('SQLITE_CORRUPT'))).toBeUndefined();
    expect(storageFailureOf(new TypeError('x is undefined'))).toBeUndefined();
    expect(storageFailureOf(new VirtkitError('store.conflict', 'conflict'))).toBeUndefined();
  });

  it('become store.unavailable naming the reason and the code; anything else is left as it is', () => {
    const err = asStoreUnavailable(new SimulatedSqliteError('SQLITE_FULL'), 'commit');
    expect(isVirtkitError(err, 'store.unavailable')).toBe(true);
    expect((err as VirtkitError).data).toEqual({ reason: 'disk-full', code: 'SQLITE_FULL' });
    expect((err as VirtkitError).message).toMatch(/cannot commit: the file system is full/);
    const bug = new TypeError('oops');
    expect(asStoreUnavailable(bug, 'commit')).toBe(bug);
  });
});

describe('a store whose commits fail', () => {
  it('refuses writes and transactions with store.unavailable, never internal, and changes nothing', async () => {
    const { store, faulty } = faultyStore();
    await store.write('/a', '1');
    const revision = store.revision;
    faulty.failCommits('SQLITE_FULL');
    const write = await errorOf(store.write('/a', '2'));
    expect(write.code).toBe('store.unavailable');
    expect(write.data['reason']).toBe('disk-full');
    const tx = await errorOf(store.transaction(async (t) => {
      await t.write('/b', 'x');
      await t.rm('/a');
    }));
    expect(tx.code).toBe('store.unavailable');
    expect((await errorOf(store.rm('/a'))).code).toBe('store.unavailable');
    faulty.failCommits('SQLITE_IOERR_FSYNC');
    expect((await errorOf(store.mkdir('/c'))).data['reason']).toBe('io-error');
    expect(faulty.refused).toBe(4);
    expect(store.revision).toBe(revision);
    expect(await store.read('/a')).toBe('1');
    expect(await store.exists('/b')).toBe(false);
  });

  it('keeps reads, lists, the change log and read-only transactions working', async () => {
    const { store, faulty } = faultyStore();
    await store.write('/d/x', 'v');
    faulty.failCommits('SQLITE_FULL');
    expect(await store.read('/d/x')).toBe('v');
    expect(await store.list('/d')).toEqual(['x']);
    expect((await store.changesSince(0)).map((c) => c.path)).toContain('/d/x');
    expect(await store.transaction((t) => t.read('/d/x'))).toBe('v');
  });

  it('takes writes again once the storage accepts them, the revisions without a gap', async () => {
    const { store, faulty } = faultyStore();
    await store.write('/a', '1');
    const before = store.revision;
    faulty.failCommits('SQLITE_FULL');
    await errorOf(store.write('/a', '2'));
    faulty.failCommits(undefined);
    await store.write('/a', '3');
    expect(store.revision).toBe(before + 1);
    expect((await store.changesSince(before)).map((c) => c.value)).toEqual(['3']);
  });
});
