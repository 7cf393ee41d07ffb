/**
 * The SQLite backend: one database file (`store.db`) in WAL mode with synchronous=FULL.
 * Every commit is one SQLite transaction (BEGIN IMMEDIATE ... COMMIT), so a crash at any
 * instant leaves the old or the new state, never half of a commit.
 *
 * Tables: `nodes` (one row per path, with its value and revisions), `changes` (the bounded
 * change log behind `changesSince`) and `meta` (revision counters). better-sqlite3 is
 * synchronous; the async methods resolve at once, so the interface also fits a networked
 * backend. Reads use prepared statements and no transaction.
 */
import Database from 'better-sqlite3';
import { VirtkitError } from '../util/errors.js';
import { affects, baseName, parentPath } from './path.js';
import type {
  ChangeOp, CommitChecks, CommitOutcome, Mutation, NodeRecord, StoreBackend, StoreChange,
} from './types.js';

export const SchemaVersion = 1;
/** Changes kept in the log by default (at least; pruning runs in batches of PruneBatch). */
export const DefaultHistoryLimit = 10_000;
const PruneBatch = 1_000;
/** Bound on each read cache; past it the cache starts afresh. */
const MaxCachedNodes = 100_000;

export interface SqliteBackendOptions {
  /** How many changes `changesSince` can reach back at least. Default 10,000. */
  historyLimit?: number;
  /**
   * 'full' (default) syncs the WAL on every commit: a committed change survives power loss.
   * 'normal' syncs at checkpoints only: commits stay atomic and survive a crash of the
   * process, but the last ones may be lost if the machine loses power.
   */
  synchronous?: 'full' | 'normal';
}

const Schema = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (
  path      TEXT PRIMARY KEY,
  parent    TEXT,
  value     TEXT NOT NULL,
  mod_rev   INTEGER NOT NULL,
  child_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_by_parent ON nodes (parent, path);
CREATE TABLE IF NOT EXISTS changes (
  revision INTEGER PRIMARY KEY,
  op       TEXT NOT NULL,
  path     TEXT NOT NULL,
  value    TEXT
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
INSERT OR IGNORE INTO nodes (path, parent, value, mod_rev, child_rev) VALUES ('/', NULL, '', 0, 0);
`;

interface NodeRow { value: string; mod_rev: number; child_rev: number }
interface ChangeRow { revision: number; op: ChangeOp; path: string; value: string | null }

export class SqliteBackend implements StoreBackend {
  private readonly db: Database.Database;
  private readonly historyLimit: number;
  private currentRevision: number;
  private compacted: number;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  /**
   * Read caches. This process is the only writer (the state dir lock guarantees it), so
   * what it read stays true until one of its own commits changes it; each mutation drops
   * the entries it may have changed. null marks a path known to be absent.
   */
  private readonly nodeCache = new Map<string, NodeRecord | null>();
  private readonly childCache = new Map<string, readonly string[]>();
  private readonly applyInTransaction: (checks: CommitChecks | undefined, mutations: readonly Mutation[]) => CommitOutcome;

  /** Opens (creating if needed) the database at `file`. The caller holds the state dir lock. */
  constructor(file: string, options: SqliteBackendOptions = {}) {
    this.historyLimit = Math.max(1, Math.floor(options.historyLimit ?? DefaultHistoryLimit));
    const db = new Database(file);
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new VirtkitError('internal', `cannot put ${file} in WAL mode (got ${String(mode)})`);
      db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.pragma('temp_store = MEMORY');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SchemaVersion) {
        throw new VirtkitError('internal', `${file} has store schema ${version}, newer than this virtkit's (${SchemaVersion})`);
      }
      db.transaction(() => {
        db.exec(Schema);
        db.pragma(`user_version = ${SchemaVersion}`);
      }).immediate();
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
    this.stmt = prepareStatements(db);
    this.currentRevision = this.stmt.getMeta.get('revision') as number;
    this.compacted = this.stmt.getMeta.get('compacted') as number;
    const apply = db.transaction((checks: CommitChecks | undefined, mutations: readonly Mutation[]) =>
      this.apply(checks, mutations));
    this.applyInTransaction = (checks, mutations) => apply.immediate(checks, mutations);
  }

  get revision(): number {
    return this.currentRevision;
  }

  /** Revisions at or below this one have left the change log. */
  get compactedRevision(): number {
    return this.compacted;
  }

  getSync(path: string): NodeRecord | undefined {
    const cached = this.nodeCache.get(path);
    if (cached !== undefined) return cached ?? undefined;
    const row = this.stmt.getNode.get(path) as NodeRow | undefined;
    const node = row && { value: row.value, modRevision: row.mod_rev, childRevision: row.child_rev };
    if (this.nodeCache.size >= MaxCachedNodes) this.nodeCache.clear();
    this.nodeCache.set(path, node ?? null);
    return node;
  }

  childrenSync(path: string): { names: string[]; node: NodeRecord } | undefined {
    const node = this.getSync(path);
    if (node === undefined) return undefined;
    let names = this.childCache.get(path);
    if (names === undefined) {
      names = (this.stmt.listChildren.all(path) as string[]).map(baseName);
      if (this.childCache.size >= MaxCachedNodes) this.childCache.clear();
      this.childCache.set(path, names);
    }
    return { names: [...names], node };
  }

  get(path: string): Promise<NodeRecord | undefined> {
    return Promise.resolve(this.getSync(path));
  }

  children(path: string): Promise<{ names: string[]; node: NodeRecord } | undefined> {
    return Promise.resolve(this.childrenSync(path));
  }

  commitSync(checks: CommitChecks | undefined, mutations: readonly Mutation[]): CommitOutcome {
    const before = this.currentRevision;
    const compactedBefore = this.compacted;
    try {
      return this.applyInTransaction(checks, mutations);
    } catch (err) {
      // The SQLite transaction was rolled back; so are the counters, and the caches may
      // hold what it wrote.
      this.currentRevision = before;
      this.compacted = compactedBefore;
      this.nodeCache.clear();
      this.childCache.clear();
      throw err;
    }
  }

  commit(checks: CommitChecks | undefined, mutations: readonly Mutation[]): Promise<CommitOutcome> {
    try {
      return Promise.resolve(this.commitSync(checks, mutations));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  changesSinceSync(revision: number, options: { prefix?: string; limit: number }): StoreChange[] {
    if (!Number.isSafeInteger(revision) || revision < 0) {
      throw new VirtkitError('argument.invalid', `a revision is a non-negative integer, got ${String(revision)}`, { revision });
    }
    if (revision > this.currentRevision) {
      throw new VirtkitError('argument.invalid',
        `revision ${revision} is ahead of the store (at ${this.currentRevision}): the cursor belongs to another store`,
        { revision, current: this.currentRevision });
    }
    if (revision < this.compacted) {
      throw new VirtkitError('store.compacted',
        `changes after revision ${revision} are no longer kept (the log starts at ${this.compacted + 1}): read the current state again`,
        { revision, oldest: this.compacted + 1 });
    }
    const out: StoreChange[] = [];
    if (options.limit <= 0) return out;
    const { prefix } = options;
    // SQLite narrows the scan to the subtree (plus every rm, which may remove an ancestor);
    // `affects` then keeps exactly the changes that concern the prefix.
    const rows = prefix === undefined || prefix === '/'
      ? this.stmt.changesAfter.iterate(revision)
      : this.stmt.changesAfterUnder.iterate(revision, prefix, `${prefix}/`, `${prefix}0`);
    for (const row of rows as IterableIterator<ChangeRow>) {
      if (prefix === undefined || affects(row.op, row.path, prefix)) {
        out.push(row.value === null
          ? { revision: row.revision, op: row.op, path: row.path }
          : { revision: row.revision, op: row.op, path: row.path, value: row.value });
        if (out.length >= options.limit) break;
      }
    }
    return out;
  }

  changesSince(revision: number, options: { prefix?: string; limit: number }): Promise<StoreChange[]> {
    try {
      return Promise.resolve(this.changesSinceSync(revision, options));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }

  // Runs inside BEGIN IMMEDIATE: checks, then mutations, then the counters.
  private apply(checks: CommitChecks | undefined, mutations: readonly Mutation[]): CommitOutcome {
    if (checks !== undefined) {
      for (const [path, seen] of checks.reads) {
        if ((this.getSync(path)?.modRevision ?? 0) !== seen) return { ok: false, conflictPath: path };
      }
      for (const [path, seen] of checks.lists) {
        if ((this.getSync(path)?.childRevision ?? 0) !== seen) return { ok: false, conflictPath: path };
      }
    }
    const changes: StoreChange[] = [];
    for (const m of mutations) {
      const change = this.applyMutation(m);
      if (change !== undefined) changes.push(change);
    }
    if (changes.length > 0) {
      this.stmt.setMeta.run(this.currentRevision, 'revision');
      if (this.currentRevision - this.compacted >= this.historyLimit + PruneBatch) {
        this.compacted = this.currentRevision - this.historyLimit;
        this.stmt.pruneChanges.run(this.compacted);
        this.stmt.setMeta.run(this.compacted, 'compacted');
      }
    }
    return { ok: true, revision: this.currentRevision, changes };
  }

  private applyMutation(m: Mutation): StoreChange | undefined {
    const { stmt } = this;
    switch (m.op) {
      case 'write': {
        const revision = ++this.currentRevision;
        if (this.getSync(m.path) !== undefined) {
          stmt.updateValue.run(m.value, revision, m.path);
          this.nodeCache.delete(m.path);
        } else {
          this.createNode(m.path, m.value, revision);
        }
        stmt.insertChange.run(revision, 'write', m.path, m.value);
        return { revision, op: 'write', path: m.path, value: m.value };
      }
      case 'mkdir': {
        if (this.getSync(m.path) !== undefined) return undefined;
        const revision = ++this.currentRevision;
        this.createNode(m.path, '', revision);
        stmt.insertChange.run(revision, 'mkdir', m.path, null);
        return { revision, op: 'mkdir', path: m.path };
      }
      case 'rm': {
        const parent = parentPath(m.path);
        if (parent === undefined) throw new VirtkitError('store.invalid-path', 'the root cannot be removed', { path: m.path });
        if (stmt.deleteNode.run(m.path).changes === 0) return undefined;
        stmt.deleteDescendants.run(`${m.path}/`, `${m.path}0`);
        // A subtree may have any number of cached entries: start afresh.
        this.nodeCache.clear();
        this.childCache.clear();
        const revision = ++this.currentRevision;
        stmt.bumpChildRev.run(revision, parent);
        stmt.insertChange.run(revision, 'rm', m.path, null);
        return { revision, op: 'rm', path: m.path };
      }
    }
  }

  /** Inserts a node that does not exist, creating missing ancestors with value ''. */
  private createNode(path: string, value: string, revision: number): void {
    const parent = parentPath(path);
    if (parent === undefined) throw new VirtkitError('store.invalid-path', 'the root cannot be written', { path });
    if (this.getSync(parent) === undefined) this.createNode(parent, '', revision);
    this.stmt.insertNode.run(path, parent, value, revision, revision);
    this.stmt.bumpChildRev.run(revision, parent);
    this.nodeCache.delete(path);
    this.nodeCache.delete(parent);
    this.childCache.delete(parent);
  }
}

function prepareStatements(db: Database.Database) {
  return {
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare('UPDATE meta SET value = ? WHERE key = ?'),
    getNode: db.prepare('SELECT value, mod_rev, child_rev FROM nodes WHERE path = ?'),
    listChildren: db.prepare('SELECT path FROM nodes WHERE parent = ? ORDER BY path').pluck(),
    insertNode: db.prepare('INSERT INTO nodes (path, parent, value, mod_rev, child_rev) VALUES (?, ?, ?, ?, ?)'),
    updateValue: db.prepare('UPDATE nodes SET value = ?, mod_rev = ? WHERE path = ?'),
    bumpChildRev: db.prepare('UPDATE nodes SET child_rev = ? WHERE path = ?'),
    deleteNode: db.prepare('DELETE FROM nodes WHERE path = ?'),
    // Descendants of /a are exactly the paths in ['/a/', '/a0'): '0' follows '/' in ASCII.
    deleteDescendants: db.prepare('DELETE FROM nodes WHERE path >= ? AND path < ?'),
    insertChange: db.prepare('INSERT INTO changes (revision, op, path, value) VALUES (?, ?, ?, ?)'),
    pruneChanges: db.prepare('DELETE FROM changes WHERE revision <= ?'),
    changesAfter: db.prepare('SELECT revision, op, path, value FROM changes WHERE revision > ? ORDER BY revision'),
    changesAfterUnder: db.prepare(`SELECT revision, op, path, value FROM changes
      WHERE revision > ? AND (path = ? OR (path >= ? AND path < ?) OR op = 'rm') ORDER BY revision`),
  };
}
