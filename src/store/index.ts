/**
 * The state store: a tree of paths with xenstore semantics, optimistic transactions,
 * watches, a resumable change log and a snoop hook. See docs/store.md.
 *
 *   const store = openStore('/var/lib/virtkit');
 *   await store.write('/domain/web1/state', 'running');
 *   await withRetry(() => store.transaction(async (tx) => { ... }));
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';
import { LockFileName, StateDirLock } from './lock.js';
import { SqliteBackend, type SqliteBackendOptions } from './sqlite.js';
import { createStore, type StoreOptions } from './store.js';
import { asStoreUnavailable } from './unavailable.js';
import type { Store } from './types.js';

export const StoreFileName = 'store.db';

export type OpenStoreOptions = Omit<StoreOptions, 'onClose'> & SqliteBackendOptions;

/**
 * Opens (creating if needed, mode 0700) the store of `stateDir`: `stateDir/store.db`, owned
 * through the lock `stateDir/store.lock`. Throws `store.locked` when another process (or
 * another open store in this process) owns it. Synchronous: SQLite opens in microseconds.
 */
export function openStore(stateDir: string, options: OpenStoreOptions = {}): Store {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lock = wrapOpenError(join(stateDir, LockFileName), () => StateDirLock.acquire(stateDir));
  let backend: SqliteBackend;
  try {
    backend = wrapOpenError(join(stateDir, StoreFileName), () => new SqliteBackend(join(stateDir, StoreFileName), options));
  } catch (err) {
    lock.release();
    throw err;
  }
  return createStore(backend, { ...options, onClose: () => lock.release() });
}

/**
 * SQLite's own errors become typed ones: a failing storage (full, read-only, I/O error)
 * `store.unavailable`, anything else (a file that is not a database) `internal`.
 */
function wrapOpenError<T>(file: string, open: () => T): T {
  try {
    return open();
  } catch (err) {
    if (isVirtkitError(err)) throw err;
    const unavailable = asStoreUnavailable(err, `open ${file}`);
    if (isVirtkitError(unavailable)) throw unavailable;
    throw new VirtkitError('internal', `cannot open the store file ${file}: ${errorMessage(err)}`,
      { file, sqlite: (err as { code?: unknown }).code }, { cause: err });
  }
}

export { createStore, DefaultMaxValueBytes, StoreChannel, isStoreOf, type StoreOptions } from './store.js';
export { SqliteBackend, DefaultHistoryLimit, type SqliteBackendOptions } from './sqlite.js';
export { PolledChangeFeed, DefaultFeedPollMs, type PolledFeedSource } from './polled-feed.js';
export { StateDirLock, LockFileName } from './lock.js';
export { withRetry, type RetryOptions } from './retry.js';
export { asStoreUnavailable, storageFailureOf, type StorageFailure } from './unavailable.js';
export { FaultyBackend } from './faulty-backend.js';
export { formatSnoopHeader, formatSnoopJson, formatSnoopLine } from './snoop.js';
export {
  assertValidPath, isValidPath, pathProblem, parsePath, joinPath, parentPath, baseName, isAtOrBelow,
  ancestorsOf, affects, encodeSegment, decodeSegment, MaxPathLength, MaxSegmentLength,
} from './path.js';
export type * from './types.js';
export { ChangeOps } from './types.js';
