/**
 * Failures of the storage under the store, told apart from bugs. A commit that fails because
 * the disk is full, the device reports an I/O error or the file system went read-only is not
 * `internal` (a bug) but `store.unavailable`: nothing was written, reads still work, and the
 * same write succeeds once the host's storage is fixed. SQLite reports these with its own
 * codes (`SQLITE_FULL`, `SQLITE_IOERR_*`, `SQLITE_READONLY_*`, `SQLITE_CANTOPEN`); the file
 * system calls around it with errno codes.
 */
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';

export type StorageFailure = 'disk-full' | 'io-error' | 'read-only' | 'cannot-open';

/** SQLite result codes (extended ones start with the primary's name) and errno codes. */
const Failures: ReadonlyArray<readonly [prefix: string, failure: StorageFailure]> = [
  ['SQLITE_FULL', 'disk-full'],
  ['SQLITE_IOERR', 'io-error'],
  ['SQLITE_READONLY', 'read-only'],
  ['SQLITE_CANTOPEN', 'cannot-open'],
  ['ENOSPC', 'disk-full'],
  ['EDQUOT', 'disk-full'],
  ['EIO', 'io-error'],
  ['EROFS', 'read-only'],
];

const Explanations: Record<StorageFailure, string> = {
  'disk-full': 'the file system is full',
  'io-error': 'the storage reported an I/O error',
  'read-only': 'the store file or its file system is read-only',
  'cannot-open': 'a store file cannot be opened',
};

/** What kind of storage failure `err` is, or undefined when it is something else (a bug, a conflict). */
export function storageFailureOf(err: unknown): StorageFailure | undefined {
  if (isVirtkitError(err)) return isVirtkitError(err, 'store.unavailable') ? err.data['reason'] as StorageFailure : undefined;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  for (const [prefix, failure] of Failures) {
    if (code === prefix || code.startsWith(`${prefix}_`)) return failure;
  }
  return undefined;
}

/**
 * `err` as `store.unavailable` when it is a storage failure (data: `reason`, the backend's
 * own `code`), else `err` unchanged. `what` says what could not be done ("commit", "read").
 */
export function asStoreUnavailable(err: unknown, what: string): unknown {
  if (isVirtkitError(err)) return err;
  const reason = storageFailureOf(err);
  if (reason === undefined) return err;
  const code = (err as { code: string }).code;
  return new VirtkitError('store.unavailable',
    `the store cannot ${what}: ${Explanations[reason]} (${code}: ${errorMessage(err)})${what === 'commit' ? '; nothing was changed, reads still work' : ''}`,
    { reason, code }, { cause: err });
}
