/**
 * The state store's public types. A store is a tree of paths holding string values, with
 * xenstore semantics (read, write, mkdir, rm, list), optimistic transactions, watches, a
 * resumable change log and an operation hook for snoop. docs/store.md is the user guide.
 */

/** Who performed an operation, as snoop and the change feed show it: the client's pid and
 * uid (from the unix socket's peer credentials) and/or a client name. All optional; `{}` is
 * the daemon itself. */
export interface Origin {
  readonly pid?: number;
  readonly uid?: number;
  readonly client?: string;
}

export const ChangeOps = ['write', 'mkdir', 'rm'] as const;
export type ChangeOp = (typeof ChangeOps)[number];

/**
 * One committed change. `revision` is the store-wide revision it created: every committed
 * change gets the next integer, so revisions are unique, increasing and gap-free, and the
 * changes of one commit carry consecutive revisions. `value` is set for `write` only.
 * `origin` is the handle's origin that committed it, absent for the daemon itself (`{}`).
 */
export interface StoreChange {
  readonly revision: number;
  readonly op: ChangeOp;
  readonly path: string;
  readonly value?: string;
  readonly origin?: Origin;
}

/** Receives the changes of the feed, a batch at a time, oldest first. */
export type ChangeBatchCallback = (changes: readonly StoreChange[]) => void;

export type WatchCallback = (change: StoreChange) => void;

export interface WatchOptions {
  /**
   * Replay the retained changes after this revision first, then continue live, with no
   * gap and no duplicate: how a client resumes from its cursor. Throws (from `watch`,
   * asynchronously via `onError`) `store.compacted` when the log no longer reaches back.
   */
  readonly since?: number;
  /** Receives errors of the replay or of the live feed (`store.compacted`; the watch ends). Default: rethrown asynchronously. */
  readonly onError?: (err: unknown) => void;
}

/** Disposes a watch or a snoop subscription; calling it twice is harmless. */
export type Disposer = () => void;

export interface ChangesSinceOptions {
  /** Only changes that concern this path: at or below it, or the removal of an ancestor. */
  readonly prefix?: string;
  /** At most this many changes (default 1000); ask again from the last revision for more. */
  readonly limit?: number;
}

/** Reads, shared by a store handle and a transaction. */
export interface StoreReader {
  /** The value at `path`, or undefined when there is no such node. Directories read as ''. */
  read(path: string): Promise<string | undefined>;
  /** Like `read`, but throws `store.not-found` (data: `{ path }`) when there is no such node. */
  readOrThrow(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
  /** Names of the direct children of `path`, sorted bytewise; undefined when `path` does not exist. */
  list(path: string): Promise<string[] | undefined>;
}

/** Mutations, shared by a store handle (each one its own commit) and a transaction (buffered). */
export interface StoreWriter {
  /** Sets the value at `path`, creating it and any missing parents (with value ''). */
  write(path: string, value: string): Promise<void>;
  /** Creates `path` (and parents) with value '' unless it exists; an existing node is left as is. */
  mkdir(path: string): Promise<void>;
  /** Removes `path` and everything below it; false when there was nothing to remove. The root cannot be removed. */
  rm(path: string): Promise<boolean>;
}

/**
 * A transaction: reads see the committed store plus this transaction's own writes; writes
 * are buffered and applied atomically at commit. It records the revision of everything it
 * read or listed; if any of those changed before it commits, the commit fails with a
 * retryable `store.conflict` and nothing is applied.
 */
export interface Transaction extends StoreReader, StoreWriter {
  /** Transaction id, as snoop shows it. */
  readonly id: number;
  /** Runs after a successful commit with the commit's last revision (and its changes). */
  onCommit(callback: (revision: number, changes: readonly StoreChange[]) => void): void;
}

export type SnoopOp =
  | 'read' | 'exists' | 'list' | 'write' | 'mkdir' | 'rm'
  | 'tx-start' | 'commit' | 'abort' | 'watch' | 'unwatch' | 'watch-event';

/** xenstore-style result codes: EAGAIN is a transaction conflict, EINVAL a bad path or value. */
export type SnoopResult = 'OK' | 'ENOENT' | 'EAGAIN' | 'EINVAL' | 'EIO';

/**
 * One store operation as snoop reports it. `tx` is the transaction id or '-'. `value` is
 * the value written (write), read (read), the children joined by ' ' (list) or
 * 'true'/'false' (exists). `revision` is set on commits and on mutations outside a
 * transaction that changed something (the revision they created), and on watch events.
 */
export interface SnoopRecord {
  readonly time: number;
  readonly origin: Origin;
  readonly tx: number | '-';
  readonly op: SnoopOp;
  readonly path?: string;
  readonly value?: string;
  readonly result: SnoopResult;
  readonly revision?: number;
}

export type SnoopCallback = (record: SnoopRecord) => void;

/**
 * A handle on the store. `openStore` returns one for the daemon itself; `as(origin)` returns
 * another handle on the same store whose operations snoop attributes to `origin`.
 */
export interface Store extends StoreReader, StoreWriter {
  /** The revision of the last committed change (0 for an empty store). */
  readonly revision: number;
  readonly origin: Origin;
  /** A handle on the same store whose operations report `origin`. */
  as(origin: Origin): Store;
  /**
   * Runs `fn` in a transaction and commits what it wrote when it returns; if it throws,
   * nothing is written and the error propagates. Throws `store.conflict`
   * (data: `{ retryable: true, path }`) when something it read changed meanwhile; wrap in
   * `withRetry` to rerun. Keep `fn` short: it holds no lock, but the longer it runs the
   * likelier a conflict.
   */
  transaction<T>(fn: (tx: Transaction) => T | Promise<T>): Promise<T>;
  /**
   * Hears every change at or below `path` after it is committed, in revision order, plus
   * the removal of an ancestor of `path` (which removes `path` too). Fed by the backend's
   * change feed, so it hears other writers of a shared store too (within the backend's
   * latency); this store's own commits are heard before they resolve. Returns a disposer.
   * If the feed falls behind the bounded log, the watch ends with `store.compacted` on
   * `onError`.
   */
  watch(path: string, callback: WatchCallback, options?: WatchOptions): Disposer;
  /**
   * Committed changes with a revision above `revision`, oldest first. Throws
   * `store.compacted` (data: `{ revision, oldest }`) when some of them were already dropped
   * from the bounded log, and `argument.invalid` when `revision` is ahead of the store.
   */
  changesSince(revision: number, options?: ChangesSinceOptions): Promise<StoreChange[]>;
  /** Hears every operation on the store by any handle (snoop). Returns a disposer. */
  onOperation(callback: SnoopCallback): Disposer;
  /** Closes the store (all handles) and releases the state dir's lock. */
  close(): Promise<void>;
}

// ---- backends -------------------------------------------------------------------------

/** A node as a backend stores it. Revisions are >= 1; 0 stands for "absent" in checks. */
export interface NodeRecord {
  readonly value: string;
  /** Revision of the last change of this node's value (or of its creation). */
  readonly modRevision: number;
  /** Revision of the last creation or removal of a direct child (or of this node's creation). */
  readonly childRevision: number;
}

/** A mutation of a commit. `rm` removes a subtree; `write` and `mkdir` create missing parents. */
export type Mutation =
  | { readonly op: 'write'; readonly path: string; readonly value: string }
  | { readonly op: 'mkdir'; readonly path: string }
  | { readonly op: 'rm'; readonly path: string };

/** What a transaction saw: the commit applies only if these revisions are still current. */
export interface CommitChecks {
  /** path -> modRevision read (0: was absent). */
  readonly reads: ReadonlyMap<string, number>;
  /** path -> childRevision listed (0: was absent). */
  readonly lists: ReadonlyMap<string, number>;
}

export type CommitOutcome =
  | { readonly ok: true; readonly revision: number; readonly changes: readonly StoreChange[] }
  | { readonly ok: false; readonly conflictPath: string };

/**
 * What a storage engine provides; the generic layer (`createStore`) adds path checks,
 * transactions, watches and snoop on top. The SQLite backend (sqlite.ts) is the one in use;
 * an etcd backend maps `commit` onto an etcd Txn comparing mod revisions and `onChanges`
 * onto an etcd watch. Paths reaching a backend are already valid.
 *
 * Watches (and so the daemon's events) hear only what `onChanges` delivers: the backend's
 * change feed is the one source of "what was committed", whoever committed it.
 */
export interface StoreBackend {
  /** The last committed revision this backend knows of. */
  readonly revision: number;
  get(path: string): Promise<NodeRecord | undefined>;
  /** Sorted child names and the parent's record, or undefined when `path` does not exist. */
  children(path: string): Promise<{ readonly names: string[]; readonly node: NodeRecord } | undefined>;
  /**
   * Atomically: verify `checks`, then apply `mutations` in order, logging one change per
   * effective mutation (a `mkdir` of an existing node or an `rm` of nothing logs nothing),
   * each with `origin` (omitted when empty).
   */
  commit(checks: CommitChecks | undefined, mutations: readonly Mutation[], origin?: Origin): Promise<CommitOutcome>;
  /** The retained changes after `revision`, oldest first (see `Store.changesSince`). */
  changesSince(revision: number, options: { prefix?: string; limit: number }): Promise<StoreChange[]>;
  /**
   * The change feed: every change committed after revision `after`, by this process or any
   * other writer of the same store, in revision order, each exactly once, with no gap.
   * Changes committed through this backend are delivered before its `commit` resolves;
   * others' within the backend's documented latency. When the feed cannot continue without
   * a gap (its position fell out of the bounded log) `onError` gets `store.compacted` and the
   * subscription ends. Returns a disposer; a backend does no work for its feed while nobody
   * is subscribed.
   */
  onChanges(after: number, onChanges: ChangeBatchCallback, onError: (err: unknown) => void): Disposer;
  close(): Promise<void>;
}
