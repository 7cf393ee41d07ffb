/**
 * A backend that fails its commits on demand, as a full disk or a failing device makes SQLite
 * fail them: for tests of what the store and the daemon do when the store cannot be written.
 * Reads and the change feed pass through untouched (a full disk does not stop SQLite reading).
 *
 *   const faulty = new FaultyBackend(new SqliteBackend(file));
 *   const store = createStore(faulty);
 *   faulty.failCommits('SQLITE_FULL');   // every commit now throws what better-sqlite3 throws
 *   faulty.failCommits(undefined);       // space freed
 */
import type {
  ChangeBatchCallback, CommitChecks, CommitOutcome, Disposer, Mutation, NodeRecord, Origin, StoreBackend, StoreChange,
} from './types.js';

const Messages: Record<string, string> = {
  SQLITE_FULL: 'database or disk is full',
  SQLITE_IOERR_WRITE: 'disk I/O error',
  SQLITE_READONLY: 'attempt to write a readonly database',
};

/** What better-sqlite3 throws: an Error whose `code` is SQLite's result code name. */
export class SimulatedSqliteError extends Error {
  override readonly name = 'SqliteError';
  constructor(readonly code: string) {
    super(Messages[code] ?? code.toLowerCase());
  }
}

export class FaultyBackend implements StoreBackend {
  private failing: string | undefined;
  /** Commits refused so far. */
  refused = 0;

  constructor(readonly inner: StoreBackend) {}

  /** From now on every commit fails with this SQLite code (undefined: commits work again). */
  failCommits(code: string | undefined): void {
    this.failing = code;
  }

  get revision(): number {
    return this.inner.revision;
  }

  get(path: string): Promise<NodeRecord | undefined> {
    return this.inner.get(path);
  }

  children(path: string): Promise<{ readonly names: string[]; readonly node: NodeRecord } | undefined> {
    return this.inner.children(path);
  }

  commit(checks: CommitChecks | undefined, mutations: readonly Mutation[], origin?: Origin): Promise<CommitOutcome> {
    // A commit with nothing to write only checks what it read: SQLite does that without
    // writing a page, so a full disk does not stop it.
    if (this.failing !== undefined && mutations.length > 0) {
      this.refused++;
      return Promise.reject(new SimulatedSqliteError(this.failing));
    }
    return this.inner.commit(checks, mutations, origin);
  }

  changesSince(revision: number, options: { prefix?: string; limit: number }): Promise<StoreChange[]> {
    return this.inner.changesSince(revision, options);
  }

  onChanges(after: number, onChanges: ChangeBatchCallback, onError: (err: unknown) => void): Disposer {
    return this.inner.onChanges(after, onChanges, onError);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
