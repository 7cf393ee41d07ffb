/**
 * The SQLite backend: one database file (`store.db`) in WAL mode with synchronous=FULL.
 * Every commit is one SQLite transaction (BEGIN IMMEDIATE ... COMMIT), so a crash at any
 * instant leaves the old or the new state, never half of a commit.
 *
 * Tables: `tree` (one row per node, keyed by its parent's path and its own name, with its
 * value and revisions), `changes` (the bounded change log behind `changesSince` and the change
 * feed, with each change's origin) and `meta` (the compaction mark). better-sqlite3 is
 * synchronous; the async methods resolve at once, so the interface also fits a networked
 * backend. Reads use prepared statements and no transaction.
 *
 * What a commit writes is what bounds a durable commit besides its fsync, so the layout keeps
 * it small (docs/store.md, "On disk"): one B-tree for the nodes, whose key (parent, name)
 * serves both the lookup of a path and the listing of a directory (a node's children and a
 * subtree are key ranges), so no index is written beside it; the store's revision is the last
 * revision of the log, not a counter rewritten by every commit; and a commit that creates
 * several children of one node updates that node's child revision once.
 *
 * Other writers of the same file (another process, another connection) are noticed through
 * `PRAGMA data_version`, which changes exactly when another connection committed: a commit
 * checks it first (inside its write lock, so revisions stay gap-free and its checks see
 * their writes), the change feed polls it while someone follows, and a `shared` backend
 * checks it before every read instead of trusting its caches.
 */
import Database from 'better-sqlite3';
import { VirtkitError } from '../util/errors.js';
import { affects, baseName, parentPath } from './path.js';
import { CommitGroupQueue, type GroupEntry } from './group-commit.js';
import { DefaultFeedPollMs, PolledChangeFeed, compactedError, type PolledFeedSource } from './polled-feed.js';
import type {
  ChangeBatchCallback, ChangeOp, CommitChecks, CommitOutcome, Disposer, Mutation, NodeRecord, Origin,
  StoreBackend, StoreChange,
} from './types.js';

/**
 * 2 added the origin of each change to the log; 3 keyed the nodes by (parent, name) in `tree`
 * (was `nodes`, keyed by path, with an index by parent) and took the revision from the log.
 * Older files are upgraded in place when opened, in one transaction.
 */
export const SchemaVersion = 3;
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
  /**
   * Other processes (or other connections) also commit to this file. Every read then first
   * asks SQLite whether they did (one `PRAGMA data_version`, about a microsecond) and drops
   * the read caches if so. Without it the caches trust that this backend is the only writer,
   * as the state dir lock guarantees for `openStore`, and pick up others' commits only when
   * this backend commits or its followed feed polls.
   */
  shared?: boolean;
  /** How often a followed feed looks for other writers' commits, in ms (default 50). */
  feedPollMs?: number;
  /**
   * Commits arriving in the same event-loop turn share one SQLite transaction, so one fsync
   * (default true; see group-commit.ts). Each still applies or conflicts on its own, and its
   * promise settles only after the shared COMMIT returned.
   */
  groupCommit?: boolean;
}

interface CommitRequest { checks: CommitChecks | undefined; mutations: readonly Mutation[]; origin: Origin | undefined }

const Schema = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree (
  parent    TEXT NOT NULL,
  name      TEXT NOT NULL,
  value     TEXT NOT NULL,
  mod_rev   INTEGER NOT NULL,
  child_rev INTEGER NOT NULL,
  PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  revision      INTEGER PRIMARY KEY,
  op            TEXT NOT NULL,
  path          TEXT NOT NULL,
  value         TEXT,
  origin_pid    INTEGER,
  origin_uid    INTEGER,
  origin_client TEXT
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
INSERT OR IGNORE INTO tree (parent, name, value, mod_rev, child_rev) VALUES ('', '', '', 0, 0);
`;

/**
 * The nodes by path, as schema 2 stored them: for people reading the file with sqlite3 and
 * for tests; nothing writes through it. The root is the row with an empty parent.
 */
const NodesView = `
CREATE VIEW IF NOT EXISTS nodes (path, parent, value, mod_rev, child_rev) AS
  SELECT CASE parent WHEN '' THEN '/' WHEN '/' THEN '/' || name ELSE parent || '/' || name END,
         CASE parent WHEN '' THEN NULL ELSE parent END, value, mod_rev, child_rev
  FROM tree;
`;

const ChangeColumns = 'revision, op, path, value, origin_pid, origin_uid, origin_client';
/** Columns added by schema 2 to a log created by schema 1. */
const OriginColumns = ['origin_pid INTEGER', 'origin_uid INTEGER', 'origin_client TEXT'];

interface NodeRow { value: string; mod_rev: number; child_rev: number }

/** The key of a node in `tree`: its parent's path ('' for the root) and its name ('' for the root). */
function keyOf(path: string): [parent: string, name: string] {
  const i = path.lastIndexOf('/');
  if (path.length === 1) return ['', ''];
  return [i === 0 ? '/' : path.slice(0, i), path.slice(i + 1)];
}

/**
 * Schema 1 and 2 kept the nodes in `nodes`, keyed by path with an index by parent: their rows
 * move to `tree`, in the opening transaction, so a crash leaves the old layout or the new one.
 */
function moveNodesToTree(db: Database.Database): void {
  const kind = db.prepare("SELECT type FROM sqlite_master WHERE name = 'nodes'").pluck().get() as string | undefined;
  if (kind !== 'table') return;
  const insert = db.prepare('INSERT OR REPLACE INTO tree (parent, name, value, mod_rev, child_rev) VALUES (?, ?, ?, ?, ?)');
  const rows = db.prepare('SELECT path, value, mod_rev, child_rev FROM nodes').all() as Array<NodeRow & { path: string }>;
  for (const row of rows) insert.run(...keyOf(row.path), row.value, row.mod_rev, row.child_rev);
  db.exec('DROP INDEX IF EXISTS nodes_by_parent; DROP TABLE nodes;');
}
interface ChangeRow {
  revision: number; op: ChangeOp; path: string; value: string | null;
  origin_pid: number | null; origin_uid: number | null; origin_client: string | null;
}

export class SqliteBackend implements StoreBackend, PolledFeedSource {
  private readonly db: Database.Database;
  private readonly historyLimit: number;
  private readonly shared: boolean;
  private currentRevision: number;
  private compacted: number;
  /** `PRAGMA data_version` when this backend last caught up with other writers. */
  private dataVersion: number;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly feed: PolledChangeFeed;
  /**
   * Read caches. Unless `shared`, this backend is the only writer (the state dir lock
   * guarantees it), so what it read stays true until one of its own commits changes it;
   * each mutation drops the entries it may have changed. Noticing another writer's commit
   * drops them all. null marks a path known to be absent.
   */
  private readonly nodeCache = new Map<string, NodeRecord | null>();
  private readonly childCache = new Map<string, readonly string[]>();
  private readonly applyInTransaction: (checks: CommitChecks | undefined, mutations: readonly Mutation[],
    origin: Origin | undefined) => CommitOutcome;
  private readonly group: CommitGroupQueue<CommitRequest, CommitOutcome> | undefined;
  /**
   * Child revisions a commit being applied has yet to write, by parent path: a commit that
   * creates five nodes under one parent updates the parent once, with the last revision.
   */
  private readonly childRevisions = new Map<string, number>();
  /** Nodes the commit being applied created: their children cannot exist yet, no need to look. */
  private readonly createdNow = new Set<string>();

  /** Opens (creating if needed) the database at `file`. The caller holds the state dir lock. */
  constructor(file: string, options: SqliteBackendOptions = {}) {
    this.historyLimit = Math.max(1, Math.floor(options.historyLimit ?? DefaultHistoryLimit));
    this.shared = options.shared ?? false;
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
        const columns = new Set((db.pragma('table_info(changes)') as Array<{ name: string }>).map((c) => c.name));
        for (const column of OriginColumns) {
          if (!columns.has(column.split(' ')[0]!)) db.exec(`ALTER TABLE changes ADD COLUMN ${column}`);
        }
        moveNodesToTree(db);
        db.exec(NodesView);
        db.pragma(`user_version = ${SchemaVersion}`);
      }).immediate();
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
    this.stmt = prepareStatements(db);
    this.dataVersion = this.stmt.dataVersion.get() as number;
    this.currentRevision = 0;
    this.compacted = 0;
    this.loadCounters();
    const apply = db.transaction((checks: CommitChecks | undefined, mutations: readonly Mutation[], origin: Origin | undefined) =>
      this.apply(checks, mutations, origin));
    this.applyInTransaction = (checks, mutations, origin) => apply.immediate(checks, mutations, origin);
    this.feed = new PolledChangeFeed(this, options.feedPollMs ?? DefaultFeedPollMs);
    if (options.groupCommit ?? true) this.group = new CommitGroupQueue((entries) => this.commitGroup(entries));
  }

  /** Groups written and the commits in them, when grouping is on. */
  get groupStats(): { groups: number; commits: number } | undefined {
    return this.group && { groups: this.group.groups, commits: this.group.grouped };
  }

  get revision(): number {
    if (this.shared) this.noticeOtherWriters();
    return this.currentRevision;
  }

  /** Revisions at or below this one have left the change log. */
  get compactedRevision(): number {
    return this.compacted;
  }

  getSync(path: string): NodeRecord | undefined {
    if (this.shared) this.noticeOtherWriters();
    return this.lookup(path);
  }

  private lookup(path: string): NodeRecord | undefined {
    const cached = this.nodeCache.get(path);
    if (cached !== undefined) return cached ?? undefined;
    const row = this.stmt.getNode.get(...keyOf(path)) as NodeRow | undefined;
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
      names = this.stmt.listChildren.all(path) as string[];
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

  commitSync(checks: CommitChecks | undefined, mutations: readonly Mutation[], origin?: Origin): CommitOutcome {
    const before = this.currentRevision;
    const compactedBefore = this.compacted;
    let outcome: CommitOutcome;
    try {
      outcome = this.applyInTransaction(checks, mutations, origin !== undefined && hasOrigin(origin) ? origin : undefined);
    } catch (err) {
      // The SQLite transaction was rolled back; so are the counters (to what is committed,
      // which includes other writers' commits noticed inside it), and the caches may hold
      // what it wrote.
      this.nodeCache.clear();
      this.childCache.clear();
      try {
        this.loadCounters();
      } catch {
        this.currentRevision = before;
        this.compacted = compactedBefore;
      }
      throw err;
    }
    if (outcome.ok) this.feed.committed(outcome.changes);
    return outcome;
  }

  commit(checks: CommitChecks | undefined, mutations: readonly Mutation[], origin?: Origin): Promise<CommitOutcome> {
    if (this.group !== undefined) {
      if (!this.db.open) return Promise.reject(new VirtkitError('internal', 'the store is closed'));
      return this.group.enqueue({ checks, mutations, origin: origin !== undefined && hasOrigin(origin) ? origin : undefined });
    }
    try {
      return Promise.resolve(this.commitSync(checks, mutations, origin));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  onChanges(after: number, onChanges: ChangeBatchCallback, onError: (err: unknown) => void): Disposer {
    if (!this.db.open) throw new VirtkitError('internal', 'the store is closed');
    return this.feed.subscribe(after, onChanges, onError);
  }

  /** Whether the change feed's poll timer runs: exactly while someone follows the feed. */
  get feedPolling(): boolean {
    return this.feed.polling;
  }

  /** How many subscriptions the change feed has. */
  get feedFollowers(): number {
    return this.feed.followerCount;
  }

  /** Looks for other writers' commits now, as the feed's timer does (tests call it). */
  pollFeed(): void {
    this.feed.poll();
  }

  /**
   * Picks up other connections' commits: when `PRAGMA data_version` moved, reloads the
   * counters and drops the read caches. True when there were some.
   */
  noticeOtherWriters(): boolean {
    const version = this.stmt.dataVersion.get() as number;
    if (version === this.dataVersion) return false;
    this.dataVersion = version;
    this.nodeCache.clear();
    this.childCache.clear();
    this.loadCounters();
    return true;
  }

  /** At most `limit` logged changes after `revision`, oldest first (the feed's catch-up). */
  readLog(revision: number, limit: number): StoreChange[] {
    return (this.stmt.changesAfterLimit.all(revision, limit) as ChangeRow[]).map(toChange);
  }

  changesSinceSync(revision: number, options: { prefix?: string; limit: number }): StoreChange[] {
    if (!Number.isSafeInteger(revision) || revision < 0) {
      throw new VirtkitError('argument.invalid', `a revision is a non-negative integer, got ${String(revision)}`, { revision });
    }
    // The log is read from the file anyway: make the bounds agree with it.
    this.noticeOtherWriters();
    if (revision > this.currentRevision) {
      throw new VirtkitError('argument.invalid',
        `revision ${revision} is ahead of the store (at ${this.currentRevision}): the cursor belongs to another store`,
        { revision, current: this.currentRevision });
    }
    if (revision < this.compacted) throw compactedError(revision, this.compacted);
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
        out.push(toChange(row));
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

  /**
   * Writes a group of commits as one SQLite transaction: each inside its own savepoint, so a
   * conflict or an error undoes that one alone; then one COMMIT (one fsync) for all, and only
   * then are the callers answered. When SQLite itself rolled the whole transaction back (a full
   * disk, an I/O error), every commit of the group fails with that error: none was written.
   */
  private commitGroup(entries: ReadonlyArray<GroupEntry<CommitRequest, CommitOutcome>>): void {
    if (entries.length === 1) {
      const [only] = entries;
      try {
        only!.resolve(this.commitSync(only!.request.checks, only!.request.mutations, only!.request.origin));
      } catch (err) {
        only!.reject(err);
      }
      return;
    }
    const { db } = this;
    const outcomes: Array<{ outcome: CommitOutcome } | { error: unknown }> = [];
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const e of entries) e.reject(err);
      return;
    }
    try {
      for (const { request } of entries) {
        const revision = this.currentRevision;
        const compacted = this.compacted;
        db.exec('SAVEPOINT one_commit');
        try {
          const outcome = this.apply(request.checks, request.mutations, request.origin);
          db.exec('RELEASE one_commit');
          outcomes.push({ outcome });
        } catch (err) {
          if (!db.inTransaction) throw err; // SQLite gave up the whole transaction
          db.exec('ROLLBACK TO one_commit');
          db.exec('RELEASE one_commit');
          this.currentRevision = revision;
          this.compacted = compacted;
          this.nodeCache.clear();
          this.childCache.clear();
          outcomes.push({ error: err });
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) {
        try { db.exec('ROLLBACK'); } catch { /* already gone */ }
      }
      this.nodeCache.clear();
      this.childCache.clear();
      try { this.loadCounters(); } catch { /* the counters are reloaded by the next commit's noticeOtherWriters */ }
      for (const e of entries) e.reject(err);
      return;
    }
    // Durable now: tell the feed (so watchers hear before their committer resumes), then each caller.
    for (const [i, e] of entries.entries()) {
      const result = outcomes[i]!;
      if ('error' in result) {
        e.reject(result.error);
        continue;
      }
      if (result.outcome.ok) this.feed.committed(result.outcome.changes);
      e.resolve(result.outcome);
    }
  }

  close(): Promise<void> {
    // Commits still queued are written first: their callers were not answered yet.
    if (this.db.open) this.group?.drain();
    this.feed.close();
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }

  private loadCounters(): void {
    // The last logged change carries the store's revision: every revision is logged, and
    // pruning keeps the newest. `meta.revision` covers a log that is still empty, and files
    // of schema 2, which rewrote it at every commit.
    const logged = (this.stmt.lastRevision.get() as number | null) ?? 0;
    this.currentRevision = Math.max(logged, this.stmt.getMeta.get('revision') as number);
    this.compacted = this.stmt.getMeta.get('compacted') as number;
  }

  // Runs inside BEGIN IMMEDIATE: other writers' commits, checks, mutations, the counters.
  private apply(checks: CommitChecks | undefined, mutations: readonly Mutation[], origin: Origin | undefined): CommitOutcome {
    // No other writer can commit while this transaction holds the write lock, so what is
    // noticed here is exact: the revisions continue theirs, the checks see their writes.
    this.noticeOtherWriters();
    if (checks !== undefined) {
      for (const [path, seen] of checks.reads) {
        if ((this.lookup(path)?.modRevision ?? 0) !== seen) return { ok: false, conflictPath: path };
      }
      for (const [path, seen] of checks.lists) {
        if ((this.lookup(path)?.childRevision ?? 0) !== seen) return { ok: false, conflictPath: path };
      }
    }
    const changes: StoreChange[] = [];
    this.childRevisions.clear();
    this.createdNow.clear();
    for (const m of mutations) {
      const change = this.applyMutation(m, origin);
      if (change !== undefined) changes.push(change);
    }
    for (const [parent, revision] of this.childRevisions) {
      this.stmt.bumpChildRev.run(revision, ...keyOf(parent));
      this.nodeCache.delete(parent);
    }
    this.childRevisions.clear();
    this.createdNow.clear();
    if (changes.length > 0 && this.currentRevision - this.compacted >= this.historyLimit + PruneBatch) {
      this.compacted = this.currentRevision - this.historyLimit;
      this.stmt.pruneChanges.run(this.compacted);
      this.stmt.setMeta.run(this.compacted, 'compacted');
      // Not needed while the log holds the newest change (pruning keeps it), but it keeps
      // `meta` telling the truth to whoever reads the file.
      this.stmt.setMeta.run(this.currentRevision, 'revision');
    }
    return { ok: true, revision: this.currentRevision, changes };
  }

  private applyMutation(m: Mutation, origin: Origin | undefined): StoreChange | undefined {
    const { stmt } = this;
    switch (m.op) {
      case 'write': {
        const revision = ++this.currentRevision;
        const old = this.existing(m.path);
        if (old !== undefined) {
          stmt.updateValue.run(m.value, revision, ...keyOf(m.path));
          this.cacheNode(m.path, { value: m.value, modRevision: revision, childRevision: old.childRevision });
        } else {
          this.createNode(m.path, m.value, revision);
        }
        this.logChange(revision, 'write', m.path, m.value, origin);
        return origin === undefined
          ? { revision, op: 'write', path: m.path, value: m.value }
          : { revision, op: 'write', path: m.path, value: m.value, origin };
      }
      case 'mkdir': {
        if (this.existing(m.path) !== undefined) return undefined;
        const revision = ++this.currentRevision;
        this.createNode(m.path, '', revision);
        this.logChange(revision, 'mkdir', m.path, null, origin);
        return origin === undefined ? { revision, op: 'mkdir', path: m.path } : { revision, op: 'mkdir', path: m.path, origin };
      }
      case 'rm': {
        const parent = parentPath(m.path);
        if (parent === undefined) throw new VirtkitError('store.invalid-path', 'the root cannot be removed', { path: m.path });
        // The subtree: the nodes whose parent is the removed node or lies below it. Their cache
        // entries go (the rest of the cache stays true: a daemon's reads after an undefine hit it).
        const below = stmt.subtree.all(m.path, `${m.path}/`, `${m.path}0`) as Array<{ parent: string; name: string }>;
        if (stmt.deleteNode.run(...keyOf(m.path)).changes === 0) return undefined;
        stmt.deleteChildren.run(m.path);
        stmt.deleteDeeper.run(`${m.path}/`, `${m.path}0`);
        for (const path of [m.path, ...below.map((row) => `${row.parent === '/' ? '' : row.parent}/${row.name}`)]) {
          this.nodeCache.delete(path);
          this.childCache.delete(path);
        }
        this.nodeCache.delete(parent);
        this.childCache.delete(parent);
        this.createdNow.clear();
        const revision = ++this.currentRevision;
        this.childRevisions.set(parent, revision);
        this.logChange(revision, 'rm', m.path, null, origin);
        return origin === undefined ? { revision, op: 'rm', path: m.path } : { revision, op: 'rm', path: m.path, origin };
      }
    }
  }

  private logChange(revision: number, op: ChangeOp, path: string, value: string | null, origin: Origin | undefined): void {
    // The daemon's own commits (no origin) keep the narrower statement: the hot path.
    if (origin === undefined) this.stmt.insertChange.run(revision, op, path, value);
    else this.stmt.insertChangeWithOrigin.run(revision, op, path, value, origin.pid ?? null, origin.uid ?? null, origin.client ?? null);
  }

  /** Inserts a node that does not exist, creating missing ancestors with value ''. */
  private createNode(path: string, value: string, revision: number): void {
    const parent = parentPath(path);
    if (parent === undefined) throw new VirtkitError('store.invalid-path', 'the root cannot be written', { path });
    if (this.existing(parent) === undefined) this.createNode(parent, '', revision);
    this.stmt.insertNode.run(parent, baseName(path), value, revision, revision);
    this.childRevisions.set(parent, revision);
    this.createdNow.add(path);
    this.cacheNode(path, { value, modRevision: revision, childRevision: revision });
    this.nodeCache.delete(parent);
    this.childCache.delete(parent);
  }

  /** `lookup` inside a commit, skipping the query for a child of a node this commit created. */
  private existing(path: string): NodeRecord | undefined {
    const parent = parentPath(path);
    if (parent !== undefined && this.createdNow.has(parent) && !this.createdNow.has(path)) return undefined;
    return this.lookup(path);
  }

  /** What a commit just wrote, so reads after it need no query (a child revision bumped later in the commit drops it again). */
  private cacheNode(path: string, node: NodeRecord): void {
    if (this.nodeCache.size >= MaxCachedNodes) this.nodeCache.clear();
    this.nodeCache.set(path, node);
  }
}

function hasOrigin(origin: Origin): boolean {
  return origin.pid !== undefined || origin.uid !== undefined || origin.client !== undefined;
}

function toChange(row: ChangeRow): StoreChange {
  const change: { -readonly [K in keyof StoreChange]: StoreChange[K] } = { revision: row.revision, op: row.op, path: row.path };
  if (row.value !== null) change.value = row.value;
  if (row.origin_pid !== null || row.origin_uid !== null || row.origin_client !== null) {
    const origin: { -readonly [K in keyof Origin]: Origin[K] } = {};
    if (row.origin_pid !== null) origin.pid = row.origin_pid;
    if (row.origin_uid !== null) origin.uid = row.origin_uid;
    if (row.origin_client !== null) origin.client = row.origin_client;
    change.origin = origin;
  }
  return change;
}

function prepareStatements(db: Database.Database) {
  return {
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare('UPDATE meta SET value = ? WHERE key = ?'),
    lastRevision: db.prepare('SELECT max(revision) FROM changes').pluck(),
    getNode: db.prepare('SELECT value, mod_rev, child_rev FROM tree WHERE parent = ? AND name = ?'),
    listChildren: db.prepare('SELECT name FROM tree WHERE parent = ? ORDER BY name').pluck(),
    insertNode: db.prepare('INSERT INTO tree (parent, name, value, mod_rev, child_rev) VALUES (?, ?, ?, ?, ?)'),
    updateValue: db.prepare('UPDATE tree SET value = ?, mod_rev = ? WHERE parent = ? AND name = ?'),
    bumpChildRev: db.prepare('UPDATE tree SET child_rev = ? WHERE parent = ? AND name = ?'),
    deleteNode: db.prepare('DELETE FROM tree WHERE parent = ? AND name = ?'),
    deleteChildren: db.prepare('DELETE FROM tree WHERE parent = ?'),
    subtree: db.prepare('SELECT parent, name FROM tree WHERE parent = ? UNION ALL SELECT parent, name FROM tree WHERE parent >= ? AND parent < ?'),
    // Nodes deeper below /a have a parent in ['/a/', '/a0'): '0' follows '/' in ASCII.
    deleteDeeper: db.prepare('DELETE FROM tree WHERE parent >= ? AND parent < ?'),
    insertChange: db.prepare('INSERT INTO changes (revision, op, path, value) VALUES (?, ?, ?, ?)'),
    insertChangeWithOrigin: db.prepare(`INSERT INTO changes (revision, op, path, value, origin_pid, origin_uid, origin_client)
      VALUES (?, ?, ?, ?, ?, ?, ?)`),
    pruneChanges: db.prepare('DELETE FROM changes WHERE revision <= ?'),
    changesAfter: db.prepare(`SELECT ${ChangeColumns} FROM changes WHERE revision > ? ORDER BY revision`),
    changesAfterLimit: db.prepare(`SELECT ${ChangeColumns} FROM changes WHERE revision > ? ORDER BY revision LIMIT ?`),
    changesAfterUnder: db.prepare(`SELECT ${ChangeColumns} FROM changes
      WHERE revision > ? AND (path = ? OR (path >= ? AND path < ?) OR op = 'rm') ORDER BY revision`),
  };
}
