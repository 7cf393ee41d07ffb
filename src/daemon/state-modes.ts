/**
 * File modes of the daemon's directories (docs/security.md, "Files"). The state dir is the one
 * place a `--socket-group` needs to reach (for the socket): it is 0750 and group-owned then,
 * 0700 otherwise. Everything in it is the daemon's alone: files 0600, directories 0700, owned
 * by the daemon's user. A state dir an older virtkit left with 0644 files (SQLite and pino
 * create files 0644 under the usual umask) is corrected when the daemon starts, before it
 * serves anyone; files created afterwards are created private (`createPrivately`, the log's
 * `openPrivateFile`, the audit log's own mode).
 */
import { chmodSync, chownSync, closeSync, fchmodSync, fstatSync, lstatSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { VirtkitError } from '../util/errors.js';

export interface StateDirModes {
  stateDir: string;
  runDir: string;
  /** The `--socket-group`'s gid: the state dir is 0750 and owned by this group. */
  socketGid?: number | undefined;
}

const ownUid = (): number => process.getuid?.() ?? 0;
const ownGid = (): number => process.getgid?.() ?? 0;

/**
 * Makes `path` (an existing directory entry, never followed if it is a symlink) `mode` and
 * owned by the daemon's user, when it is a regular file or a directory. Sockets, FIFOs and
 * symlinks are left alone: the API socket gets its mode when it is created, and a guest's
 * sockets live in its 0700 run dir.
 */
function makePrivate(path: string, fileMode: number, dirMode: number): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st || !(st.isFile() || st.isDirectory())) return;
  const mode = st.isDirectory() ? dirMode : fileMode;
  // Root may own what an earlier daemon (run as another user) left; others cannot chown.
  if (ownUid() === 0 && st.uid !== 0) chownSync(path, 0, ownGid());
  if ((st.mode & 0o7777) !== mode) chmodSync(path, mode);
}

/**
 * The state dir's mode and group, and every entry directly in it private (0600 files, 0700
 * directories: what is below a 0700 directory is out of others' reach whatever its own mode).
 * The run dirs of guests are 0700 where they are; the parent of the run dirs is too when it is
 * inside the state dir (`STATE/run`); a host-wide one (`/run/virtkit`) keeps its mode, as
 * other host-wide files (the KVM verdict) live there.
 */
export function correctStateDirModes(opts: StateDirModes): void {
  const { stateDir, runDir, socketGid } = opts;
  // Everything in the state dir is made the daemon's: refuse a directory that is not its own
  // (`--state-dir /tmp` must not close /tmp), before touching anything.
  const st = statSync(stateDir);
  if (st.uid !== ownUid()) {
    throw new VirtkitError('argument.invalid', `the state dir ${stateDir} is owned by uid ${st.uid}, not by the daemon's user (uid ${ownUid()})`,
      { stateDir, uid: st.uid });
  }
  if ((st.mode & 0o1000) !== 0) {
    throw new VirtkitError('argument.invalid', `the state dir ${stateDir} is a shared directory (sticky, like /tmp): give the daemon a directory of its own`,
      { stateDir });
  }
  if (socketGid !== undefined) {
    chownSync(stateDir, ownUid(), socketGid);
    chmodSync(stateDir, 0o750);
  } else {
    chmodSync(stateDir, 0o700);
  }
  for (const name of readdirSync(stateDir)) makePrivate(join(stateDir, name), 0o600, 0o700);
  for (const entry of readdirSync(runDir, { withFileTypes: true })) {
    if (entry.isDirectory()) makePrivate(join(runDir, entry.name), 0o600, 0o700);
  }
}

/**
 * Runs `create` (synchronous, so nothing else in this process creates files meanwhile) with the
 * umask 077: what it creates (SQLite's database, WAL and shared-memory files, the lock) is 0600.
 */
export function createPrivately<T>(create: () => T): T {
  const old = process.umask(0o077);
  try {
    return create();
  } finally {
    process.umask(old);
  }
}

/**
 * Creates `path` 0600 if it does not exist, and makes it 0600 if it is an existing regular file
 * (a log named `/dev/stderr` or a FIFO keeps its mode). For files another library opens by name
 * afterwards, as pino does with the daemon's log.
 */
export function openPrivateFile(path: string): void {
  const fd = openSync(path, 'a', 0o600);
  try {
    if (fstatSync(fd).isFile()) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}
