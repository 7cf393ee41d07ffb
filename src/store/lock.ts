/**
 * The state dir lock: one process owns a store. The manager's state (which QEMU processes
 * are ours, what their run dirs hold) has one owner, and the store's read caches trust that
 * this owner is its only writer; a second daemon on the same state dir is refused with
 * `store.locked`. (Other connections that open the file as `shared` backends are seen by
 * the owner's commits and change feed; see docs/store.md.)
 *
 * `stateDir/store.lock` is a tiny SQLite database used for its file lock: the owner holds
 * an open write transaction on it (a RESERVED fcntl lock) for as long as it lives. The
 * kernel drops the lock when the owner exits, however it exits (kill -9 included), so a
 * lock is never stale and no pid guessing is needed to break one. The owner's pid is
 * committed into the file first, so a refused opener can name it.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { VirtkitError } from '../util/errors.js';

export const LockFileName = 'store.lock';

export interface LockOwner {
  readonly pid: number;
  readonly since: number;
}

export class StateDirLock {
  private constructor(
    readonly path: string,
    private db: Database.Database | undefined,
  ) {}

  /** Takes the lock of `stateDir` or throws `store.locked` (data: `{ stateDir, pid? }`). */
  static acquire(stateDir: string): StateDirLock {
    const path = join(stateDir, LockFileName);
    // A short busy timeout: long enough to ride out another opener's brief commit of its
    // pid, short enough that a refusal is prompt.
    const db = new Database(path, { timeout: 250 });
    try {
      db.pragma('journal_mode = DELETE');
      db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
      // Phase 1: take the lock and publish our pid (committing releases the lock briefly).
      if (!tryBegin(db)) throw lockedError(stateDir, readOwner(db));
      db.exec('DELETE FROM owner');
      db.prepare('INSERT INTO owner (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
      db.exec('COMMIT');
      // Phase 2: take it again and keep it. If another opener slipped in between, the pid
      // in the file is no longer ours: back off rather than guess who won.
      if (!tryBegin(db)) throw lockedError(stateDir, readOwner(db));
      const owner = readOwner(db);
      if (owner?.pid !== process.pid) {
        db.exec('ROLLBACK');
        throw lockedError(stateDir, owner);
      }
      return new StateDirLock(path, db);
    } catch (err) {
      db.close();
      // Any lock contention, even while reading the schema, means someone else holds it.
      if (isBusy(err)) throw lockedError(stateDir, undefined);
      throw err;
    }
  }

  get held(): boolean {
    return this.db !== undefined;
  }

  release(): void {
    const db = this.db;
    this.db = undefined;
    if (db === undefined) return;
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  }
}

function tryBegin(db: Database.Database): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (err) {
    if (isBusy(err)) return false;
    throw err;
  }
}

function readOwner(db: Database.Database): LockOwner | undefined {
  try {
    return db.prepare('SELECT pid, since FROM owner LIMIT 1').get() as LockOwner | undefined;
  } catch (err) {
    if (isBusy(err)) return undefined;
    throw err;
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function lockedError(stateDir: string, owner: LockOwner | undefined): VirtkitError {
  const who = owner === undefined ? 'another process' : `process ${owner.pid}`;
  return new VirtkitError('store.locked',
    `the store in ${stateDir} is in use by ${who}: only one virtkit daemon may own a state dir`,
    { stateDir, ...(owner === undefined ? {} : { pid: owner.pid }) });
}
