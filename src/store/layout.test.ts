/**
 * The SQLite backend's file layout (schema 3): a file of schema 2, as the previous version
 * wrote it, opens with its nodes, revisions and log; and what a commit writes stays small
 * (the WAL frames of a define-shaped commit are counted, since each is written and synced).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend, StoreFileName, createStore, openStore, type Store } from './index.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-store-layout-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The schema 2 layout, as `sqlite.ts` created it before schema 3. */
const Schema2 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE nodes (path TEXT PRIMARY KEY, parent TEXT, value TEXT NOT NULL, mod_rev INTEGER NOT NULL,
  child_rev INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX nodes_by_parent ON nodes (parent, path);
CREATE TABLE changes (revision INTEGER PRIMARY KEY, op TEXT NOT NULL, path TEXT NOT NULL, value TEXT,
  origin_pid INTEGER, origin_uid INTEGER, origin_client TEXT);
PRAGMA user_version = 2;
`;

/**
 * A schema 2 store holding one domain as the manager lays it out, at revision 40 with the log
 * pruned to its last 2 changes (so the revision must come from `meta`, not from the log).
 */
function writeSchema2File(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(Schema2);
  const node = db.prepare('INSERT INTO nodes VALUES (?, ?, ?, ?, ?)');
  node.run('/', null, '', 0, 30);
  node.run('/domain', '/', '', 30, 31);
  node.run('/domain/web1', '/domain', '', 31, 35);
  node.run('/domain/web1/uuid', '/domain/web1', '0b7c3a52-5f0e-4d4e-9d55-6f3a0c2b9e11', 31, 31);
  node.run('/domain/web1/definition', '/domain/web1', '{"name":"web1","memory":134217728}', 32, 32);
  node.run('/domain/web1/status', '/domain/web1', '{"state":"shutoff"}', 33, 33);
  node.run('/domain/web1/autostart', '/domain/web1', 'true', 34, 34);
  node.run('/domain/web1/tainted', '/domain/web1', '[]', 35, 35);
  node.run('/uuid', '/', '', 30, 36);
  node.run('/uuid/0b7c3a52-5f0e-4d4e-9d55-6f3a0c2b9e11', '/uuid', 'web1', 36, 36);
  node.run('/event', '/', '{"type":"defined"}', 40, 40);
  db.exec(`INSERT INTO meta VALUES ('revision', 40), ('compacted', 38);
    INSERT INTO changes VALUES (39, 'write', '/event', '{"type":"started"}', NULL, NULL, NULL),
                               (40, 'write', '/event', '{"type":"defined"}', 12, 0, 'cli');`);
  db.close();
}

describe('schema 2 files', () => {
  it('open with their nodes, revisions and log, and keep working', async () => {
    const dir = tempDir();
    writeSchema2File(join(dir, StoreFileName));
    const store = openStore(dir);
    try {
      expect(store.revision).toBe(40);
      expect(await store.list('/')).toEqual(['domain', 'event', 'uuid']);
      expect(await store.list('/domain/web1')).toEqual(['autostart', 'definition', 'status', 'tainted', 'uuid']);
      expect(await store.read('/domain/web1/definition')).toBe('{"name":"web1","memory":134217728}');
      expect(await store.read('/uuid/0b7c3a52-5f0e-4d4e-9d55-6f3a0c2b9e11')).toBe('web1');
      expect(await store.changesSince(38)).toEqual([
        { revision: 39, op: 'write', path: '/event', value: '{"type":"started"}' },
        { revision: 40, op: 'write', path: '/event', value: '{"type":"defined"}', origin: { pid: 12, uid: 0, client: 'cli' } },
      ]);
      // New commits continue the revisions; removing the domain takes its whole subtree.
      await store.write('/domain/web1/status', '{"state":"running"}');
      expect(store.revision).toBe(41);
      expect(await store.rm('/domain/web1')).toBe(true);
      expect(await store.list('/domain')).toEqual([]);
      expect(await store.read('/domain/web1/uuid')).toBeUndefined();
      expect(store.revision).toBe(42);
    } finally {
      await store.close();
    }
    const again = openStore(dir);
    try {
      expect(again.revision).toBe(42);
      expect(await again.list('/')).toEqual(['domain', 'event', 'uuid']);
    } finally {
      await again.close();
    }
  });

  it('keep each node\'s revisions, so a transaction that read before the upgrade still sees conflicts right', async () => {
    const dir = tempDir();
    const file = join(dir, StoreFileName);
    writeSchema2File(file);
    const backend = new SqliteBackend(file);
    try {
      expect(await backend.get('/domain/web1/autostart')).toEqual({ value: 'true', modRevision: 34, childRevision: 34 });
      expect((await backend.children('/domain'))?.node).toEqual({ value: '', modRevision: 30, childRevision: 31 });
      expect((await backend.children('/'))?.node.childRevision).toBe(30);
    } finally {
      await backend.close();
    }
    // The file is schema 3 now, and the old table is gone; a view shows the nodes by path.
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(3);
      expect(db.prepare("SELECT type FROM sqlite_master WHERE name = 'nodes'").pluck().get()).toBe('view');
      expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'nodes_by_parent'").pluck().get()).toBe(0);
      expect(db.prepare('SELECT path, parent, value FROM nodes WHERE path IN (?, ?, ?) ORDER BY path').all('/', '/domain', '/domain/web1/status'))
        .toEqual([
          { path: '/', parent: null, value: '' },
          { path: '/domain', parent: '/', value: '' },
          { path: '/domain/web1/status', parent: '/domain/web1', value: '{"state":"shutoff"}' },
        ]);
    } finally {
      db.close();
    }
  });
});

/** Counts the WAL frames appended since the last call (each frame is one page written and synced). */
function walFrameCounter(walFile: string): () => number {
  let salt = '';
  let offset = 32;
  return () => {
    const wal = readFileSync(walFile);
    const pageSize = wal.readUInt32BE(8);
    const header = wal.subarray(16, 24).toString('hex');
    if (header !== salt) {
      // A checkpoint restarted the WAL: frames count from its start.
      salt = header;
      offset = 32;
    }
    let frames = 0;
    for (; offset + 24 + pageSize <= wal.length && wal.subarray(offset + 8, offset + 16).toString('hex') === header; offset += 24 + pageSize) frames++;
    return frames;
  };
}

async function defineShaped(store: Store, name: string, n: number): Promise<void> {
  const uuid = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  await store.transaction(async (tx) => {
    await tx.write(`/domain/${name}/uuid`, uuid);
    await tx.write(`/domain/${name}/definition`, JSON.stringify({ name, uuid, memory: 134217728, cmdline: 'console=ttyS0 '.repeat(30) }));
    await tx.write(`/domain/${name}/status`, '{"state":"shutoff"}');
    await tx.write(`/domain/${name}/autostart`, 'false');
    await tx.write(`/domain/${name}/tainted`, '[]');
    await tx.write(`/uuid/${uuid}`, name);
    await tx.write('/event', JSON.stringify({ type: 'defined', domain: name, uuid }));
  });
}

describe('what a commit writes', () => {
  it('a define-shaped commit (7 nodes, 8 changes) writes at most 8 pages on average, an undefine at most 6', async () => {
    // Schema 2 wrote about 12 and 10 here: an index beside the nodes, the revision counter,
    // and the parent's child revision once per child.
    const dir = tempDir();
    const store = createStore(new SqliteBackend(join(dir, StoreFileName), { groupCommit: false }));
    try {
      for (let i = 0; i < 40; i++) await defineShaped(store, `idle${i}`, i);
      const frames = walFrameCounter(join(dir, `${StoreFileName}-wal`));
      frames();
      let defined = 0;
      for (let i = 0; i < 40; i++) {
        await defineShaped(store, `t${i}`, 100 + i);
        defined += frames();
      }
      let undefined_ = 0;
      for (let i = 0; i < 40; i++) {
        await store.transaction(async (tx) => {
          await tx.rm(`/domain/t${i}`);
          await tx.rm(`/uuid/00000000-0000-4000-8000-${String(100 + i).padStart(12, '0')}`);
          await tx.write('/event', JSON.stringify({ type: 'undefined', domain: `t${i}` }));
        });
        undefined_ += frames();
      }
      expect(defined / 40).toBeLessThanOrEqual(8);
      expect(undefined_ / 40).toBeLessThanOrEqual(6);
      expect(await store.list('/domain')).toHaveLength(40);
    } finally {
      await store.close();
    }
  });

  it('a commit creating children of one node gives that node the last revision as its child revision', async () => {
    const dir = tempDir();
    const backend = new SqliteBackend(join(dir, StoreFileName), { groupCommit: false });
    const store = createStore(backend);
    try {
      await store.transaction(async (tx) => {
        await tx.write('/d/a', '1');
        await tx.write('/d/b', '2');
        await tx.write('/d/c/x', '3');
      });
      // A write creates its missing parents with its own revision: /d and /d/a (1), /d/b (2),
      // /d/c and /d/c/x (3).
      expect(await backend.get('/d')).toEqual({ value: '', modRevision: 1, childRevision: 3 });
      expect(await backend.get('/d/c')).toEqual({ value: '', modRevision: 3, childRevision: 3 });
      expect((await backend.children('/'))?.node.childRevision).toBe(1);
      await store.transaction(async (tx) => {
        await tx.rm('/d/a');
        await tx.write('/d/e', '4');
      });
      expect((await backend.get('/d'))?.childRevision).toBe(5);
    } finally {
      await store.close();
    }
  });
});

describe('read caches', () => {
  it('agree with the file after every commit: values, revisions and listings, across removals and re-creations', async () => {
    // The backend keeps what it read and what it wrote; a removal drops only its subtree's
    // entries. The file is the reference, revisions included (they decide transaction conflicts).
    const dir = tempDir();
    const file = join(dir, StoreFileName);
    const warm = new SqliteBackend(file, { groupCommit: false });
    const store = createStore(warm);
    // The reference reads the file itself, through a read-only connection (another writer
    // would make the warm backend drop its caches, and hide what this test looks for).
    const reference = new Database(file, { readonly: true });
    const nodeRow = reference.prepare('SELECT value, mod_rev, child_rev FROM nodes WHERE path = ?');
    const childNames = reference.prepare('SELECT name FROM tree WHERE parent = ? ORDER BY name').pluck();
    let seed = 4242;
    const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const paths: string[] = ['/'];
    for (const a of ['a', 'b']) {
      paths.push(`/${a}`);
      for (const b of ['x', 'y']) {
        paths.push(`/${a}/${b}`);
        for (const c of ['1', '2']) paths.push(`/${a}/${b}/${c}`);
      }
    }
    try {
      for (let step = 0; step < 300; step++) {
        await store.transaction(async (tx) => {
          for (let n = 1 + Math.floor(rand() * 4); n > 0; n--) {
            const path = pick(paths.slice(1));
            const r = rand();
            if (r < 0.5) await tx.write(path, String(step));
            else if (r < 0.65) await tx.mkdir(path);
            else await tx.rm(path);
          }
        });
        // Warm the caches the way a daemon does: reads and listings between commits.
        for (const path of paths) if (rand() < 0.7) { await warm.get(path); await warm.children(path); }
        for (const path of paths) {
          const row = nodeRow.get(path) as { value: string; mod_rev: number; child_rev: number } | undefined;
          const expected = row && { value: row.value, modRevision: row.mod_rev, childRevision: row.child_rev };
          expect(await warm.get(path), `${path} after commit ${step}`).toEqual(expected);
          expect(await warm.children(path), `${path}'s children after commit ${step}`)
            .toEqual(expected && { names: childNames.all(path) as string[], node: expected });
        }
      }
    } finally {
      reference.close();
      await store.close();
    }
  });
});
