/**
 * The change feed across store instances: a store that owns the state dir (openStore) and a
 * second connection on the same database file (a `shared` SqliteBackend), each hearing the
 * other's commits through its backend's feed. Polls are triggered by hand (`pollFeed`) where
 * the test needs to know when one happened; one test lets the timer do it.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import {
  SqliteBackend, StateDirLock, StoreFileName, createStore, openStore, type OpenStoreOptions, type SqliteBackendOptions, type Store,
  type StoreChange,
} from './index.js';

const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-feed-'));
  dirs.push(dir);
  return dir;
}

/** The daemon's store: owns the state dir. */
function owner(dir: string, options: OpenStoreOptions = {}): Store {
  const store = openStore(dir, { synchronous: 'normal', ...options });
  stores.push(store);
  return store;
}

/** The daemon's store, built as openStore builds it, with its backend in hand. */
function ownerWithBackend(dir: string): { store: Store; backend: SqliteBackend } {
  const lock = StateDirLock.acquire(dir);
  const backend = new SqliteBackend(join(dir, StoreFileName), { synchronous: 'normal' });
  const store = createStore(backend, { onClose: () => lock.release() });
  stores.push(store);
  return { store, backend };
}

/** Another connection on the same file, as another process would open it. */
function other(dir: string, options: SqliteBackendOptions = {}): { store: Store; backend: SqliteBackend } {
  const backend = new SqliteBackend(join(dir, StoreFileName), { shared: true, synchronous: 'normal', ...options });
  const store = createStore(backend);
  stores.push(store);
  return { store, backend };
}

const strip = (changes: readonly StoreChange[]) => changes.map(({ revision, op, path }) => `${revision} ${op} ${path}`);

describe('change feed across two connections', () => {
  it('delivers the other writer\'s commits to a watch in revision order, with their origin', async () => {
    const dir = tempDir();
    const a = owner(dir);
    const b = other(dir);
    const heard: StoreChange[] = [];
    b.store.watch('/domain', (c) => heard.push(c));
    await a.write('/domain/web1/state', 'shutoff');
    await a.as({ pid: 4711, uid: 1000, client: 'virtkit' }).transaction(async (tx) => {
      await tx.write('/domain/web1/state', 'running');
      await tx.write('/host/boot-id', 'abc');   // not below /domain
      await tx.rm('/domain/web2');              // nothing there: not a change
    });
    await a.rm('/domain/web1');
    expect(heard).toEqual([]);                  // nothing is pushed across connections: the feed polls
    // A read notices the other writer's commits before the feed's next poll does; the
    // poll must still hand them over.
    expect(await b.store.read('/domain/web1')).toBeUndefined();
    b.backend.pollFeed();
    expect(heard).toEqual([
      { revision: 1, op: 'write', path: '/domain/web1/state', value: 'shutoff' },
      { revision: 2, op: 'write', path: '/domain/web1/state', value: 'running', origin: { pid: 4711, uid: 1000, client: 'virtkit' } },
      { revision: 4, op: 'rm', path: '/domain/web1' },
    ]);
    // The poll also told the shared reader's caches and revision.
    expect(b.store.revision).toBe(4);
    expect(await b.store.read('/host/boot-id')).toBe('abc');
  });

  it('hears the other writer without help from the test: the poll timer runs while someone follows', async () => {
    const dir = tempDir();
    const a = owner(dir);
    const b = other(dir, { feedPollMs: 5 });
    const seen = new Promise<StoreChange>((resolve) => { b.store.watch('/x', resolve); });
    await a.write('/x', 'from a');
    expect(await seen).toEqual({ revision: 1, op: 'write', path: '/x', value: 'from a' });
  });

  it('keeps revisions gap-free and the order of commits when both connections write', async () => {
    const dir = tempDir();
    const { store: a, backend: aBackend } = ownerWithBackend(dir);
    const b = other(dir);
    const heardByA: string[] = [];
    const heardByB: string[] = [];
    a.watch('/', (c) => heardByA.push(`${c.revision} ${c.path}=${c.value ?? ''}`));
    b.store.watch('/', (c) => heardByB.push(`${c.revision} ${c.path}=${c.value ?? ''}`));
    await a.write('/k', 'a1');
    await b.store.write('/k', 'b1');    // b's commit continues a's revisions
    await a.write('/k', 'a2');          // a notices b's commit inside its own: b1 is heard first
    await b.store.transaction(async (tx) => {
      // A transaction on b reads what a committed, and conflicts with it like any other.
      expect(await tx.read('/k')).toBe('a2');
      await tx.write('/j', 'b2');
    });
    aBackend.pollFeed();
    const expected = ['1 /k=a1', '2 /k=b1', '3 /k=a2', '4 /j=b2'];
    expect(heardByA).toEqual(expected);
    b.backend.pollFeed();
    expect(heardByB).toEqual(expected);
    expect(a.revision).toBe(4);
    expect(await a.read('/j')).toBe('b2');
  });

  it('detects a conflict with the other connection\'s commit', async () => {
    const dir = tempDir();
    const a = owner(dir);
    const b = other(dir);
    await a.write('/counter', '1');
    const err = await b.store.transaction(async (tx) => {
      const n = Number(await tx.read('/counter'));
      await a.write('/counter', '5');
      await tx.write('/counter', String(n + 1));
    }).then(() => undefined, (e: unknown) => e);
    expect(isVirtkitError(err, 'store.conflict')).toBe(true);
    expect(await b.store.read('/counter')).toBe('5');
  });

  it('resumes from a cursor on the other connection: replay, then live, no gap, no duplicate', async () => {
    const dir = tempDir();
    const a = owner(dir);
    await a.write('/domain/a/state', 'defined');
    const cursor = a.revision;
    await a.write('/domain/a/state', 'running');
    await a.write('/unrelated', 'x');
    const b = other(dir);
    const heard: number[] = [];
    b.store.watch('/domain', (c) => heard.push(c.revision), { since: cursor });
    await a.write('/domain/b/state', 'defined');   // before the replay resolves
    await new Promise((resolve) => setImmediate(resolve));
    b.backend.pollFeed();
    await a.write('/domain/a/state', 'paused');
    b.backend.pollFeed();
    expect(heard).toEqual([2, 4, 5]);
  });

  it('refuses a cursor older than the log with store.compacted, and ends a watch whose feed fell behind', async () => {
    const dir = tempDir();
    const a = owner(dir, { historyLimit: 10 });
    // b looks only when the test says so: a's commits yield to the event loop (group commit),
    // where b's own poll timer would otherwise catch up between them.
    const b = other(dir, { historyLimit: 10, feedPollMs: 3_600_000 });
    await a.write('/n', '0');
    const live: number[] = [];
    const liveError = new Promise<unknown>((resolve) => { b.store.watch('/n', (c) => live.push(c.revision), { onError: resolve }); });
    b.backend.pollFeed();
    expect(live).toEqual([]);
    // The other writer commits more than the log keeps before this connection looks again.
    for (let i = 1; i <= 1020; i++) await a.write('/n', String(i));
    b.backend.pollFeed();
    const err = await liveError;
    expect(isVirtkitError(err, 'store.compacted'), String(err)).toBe(true);
    expect(live).toEqual([]);
    expect(b.backend.feedPolling).toBe(false);
    // A cursor older than the log, as before.
    const replayError = await new Promise<unknown>((resolve) => {
      b.store.watch('/n', () => resolve('unexpected change'), { since: 1, onError: resolve });
    });
    expect(isVirtkitError(replayError, 'store.compacted')).toBe(true);
    // The store recovers: a new watch hears new commits.
    const again: number[] = [];
    b.store.watch('/n', (c) => again.push(c.revision));
    await a.write('/n', 'after');
    b.backend.pollFeed();
    expect(again).toEqual([a.revision]);
  });

  it('costs nothing once the last follower is gone: the poll timer is cleared', async () => {
    const dir = tempDir();
    owner(dir);
    const b = other(dir);
    expect(b.backend.feedPolling).toBe(false);
    const stopFirst = b.store.watch('/a', () => {});
    const stopSecond = b.store.watch('/b', () => {}, { since: 0 });
    expect(b.backend.feedPolling).toBe(true);
    expect(b.backend.feedFollowers).toBe(1);  // one subscription serves every watch of a store
    stopFirst();
    expect(b.backend.feedPolling).toBe(true);
    stopSecond();
    expect(b.backend.feedPolling).toBe(false);
    expect(b.backend.feedFollowers).toBe(0);
    // A direct subscription to the backend's feed likewise.
    const unsubscribe = b.backend.onChanges(0, () => {}, () => {});
    expect(b.backend.feedPolling).toBe(true);
    unsubscribe();
    expect(b.backend.feedPolling).toBe(false);
    // Closing ends everything.
    b.store.watch('/c', () => {});
    await b.store.close();
    expect(b.backend.feedPolling).toBe(false);
  });
});

describe('the backend feed', () => {
  it('replays from its starting point, then own commits at once, each change once', async () => {
    const dir = tempDir();
    const a = owner(dir);
    await a.write('/a', '1');
    await a.write('/b', '2');
    const backend = new SqliteBackend(join(dir, StoreFileName), { shared: true });
    const store = createStore(backend);
    stores.push(store);
    const batches: string[][] = [];
    backend.onChanges(1, (changes) => batches.push(strip(changes)), (err) => { throw err; });
    expect(batches).toEqual([]);              // never from inside onChanges
    await store.write('/c', '3');             // catch-up of /b and the commit, in order
    await store.transaction(async (tx) => {
      await tx.write('/d', '4');
      await tx.mkdir('/e');
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches.flat()).toEqual(['2 write /b', '3 write /c', '4 write /d', '5 mkdir /e']);
    expect(batches.at(-1)).toEqual(['4 write /d', '5 mkdir /e']);  // a commit's changes arrive together
  });

  it('reads origins back from the log, and logs none for the daemon itself', async () => {
    const dir = tempDir();
    const a = owner(dir);
    await a.as({ client: 'web-ui' }).write('/a', '1');
    await a.write('/b', '2');
    await a.as({ pid: 7, uid: 0 }).rm('/a');
    expect(await a.changesSince(0)).toEqual([
      { revision: 1, op: 'write', path: '/a', value: '1', origin: { client: 'web-ui' } },
      { revision: 2, op: 'write', path: '/b', value: '2' },
      { revision: 3, op: 'rm', path: '/a', origin: { pid: 7, uid: 0 } },
    ]);
  });
});

describe('schema', () => {
  it('upgrades a schema 1 file in place: its log reads back without origins, new changes carry theirs', async () => {
    const dir = tempDir();
    const db = new Database(join(dir, StoreFileName));
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE nodes (path TEXT PRIMARY KEY, parent TEXT, value TEXT NOT NULL, mod_rev INTEGER NOT NULL,
        child_rev INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX nodes_by_parent ON nodes (parent, path);
      CREATE TABLE changes (revision INTEGER PRIMARY KEY, op TEXT NOT NULL, path TEXT NOT NULL, value TEXT);
      INSERT INTO meta (key, value) VALUES ('revision', 1), ('compacted', 0);
      INSERT INTO nodes VALUES ('/', NULL, '', 0, 1), ('/a', '/', 'old', 1, 1);
      INSERT INTO changes VALUES (1, 'write', '/a', 'old');
      PRAGMA user_version = 1;`);
    db.close();
    const a = owner(dir);
    await a.as({ client: 'new' }).write('/a', 'new');
    expect(await a.changesSince(0)).toEqual([
      { revision: 1, op: 'write', path: '/a', value: 'old' },
      { revision: 2, op: 'write', path: '/a', value: 'new', origin: { client: 'new' } },
    ]);
  });
});
