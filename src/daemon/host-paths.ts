/**
 * Which host files a caller without `admin` may have QEMU open. QEMU runs as the daemon's user
 * (root for the system daemon) and opens what a definition names (a disk's `source`, the
 * kernel, the initrd) when the guest starts, later than the definition is accepted. So a path is
 * acceptable only if nobody but root and the daemon's user can change what it leads to until
 * then, and the caller could have read it themselves:
 *
 * - every directory on the way and the file itself are owned by root or the daemon's user and
 *   writable by no group and no other user (a sticky world-writable directory such as /tmp is
 *   not trusted either: another user may create the name first); symlinks on the way are
 *   followed under the same rule (a symlink's owner must be trusted too);
 * - the caller may search every directory and read the file, by its mode bits, with its uid,
 *   its kernel gid and its /etc/group groups (ACLs are not consulted: they can only make the
 *   check refuse what the caller could read, never the reverse, except a named-user deny entry);
 * - a disk QEMU would write (`readonly: false`) is never acceptable: the caller cannot write a
 *   trusted file, and a writable image would let them rewrite its qcow2 header (its backing
 *   file) for the next start. Writable disks of non-admins are pool volumes.
 *
 * A name that does not exist in a trusted directory is acceptable: nobody but root or the daemon's
 * user can create it, and the start fails if it is still missing.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { isAbsolute } from 'node:path';

export interface PathCaller {
  uid: number;
  /** The kernel gid and the supplementary groups. */
  gids: ReadonlySet<number>;
}

const MaxSymlinks = 40;
const Read = 0o4;
const Search = 0o1;

function mayAccess(st: Stats, caller: PathCaller, bit: number): boolean {
  if (caller.uid === st.uid) return (st.mode & (bit << 6)) !== 0;
  if (caller.gids.has(st.gid)) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

function untrusted(st: Stats, trustedUids: ReadonlySet<number>): string | undefined {
  if (!trustedUids.has(st.uid)) return `owned by uid ${st.uid}`;
  if (!st.isSymbolicLink() && (st.mode & 0o022) !== 0) return `writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'its group'}`;
  return undefined;
}

/**
 * Why a caller without `admin` may not name `path` in a definition, or `undefined` when it may.
 * `trustedUids`: root and the daemon's user.
 */
export function hostPathProblem(path: string, caller: PathCaller, trustedUids: ReadonlySet<number>): string | undefined {
  if (!isAbsolute(path)) return `${path} is not an absolute path`;
  const rootStat = lstatSync('/');
  const rootProblem = untrusted(rootStat, trustedUids);
  if (rootProblem) return `/ is ${rootProblem}`;
  let pending = path.split('/').filter((s) => s !== '' && s !== '.');
  // The directories walked so far (each checked), so ".." goes back to a checked one.
  let walked: string[] = [];
  let links = 0;
  let last: Stats = rootStat;
  while (pending.length > 0) {
    const segment = pending.shift()!;
    if (segment === '..') {
      walked = walked.slice(0, -1);
      last = lstatSync(`/${walked.join('/')}`);
      continue;
    }
    if (!last.isDirectory()) return `/${walked.join('/')} is not a directory`;
    if (!mayAccess(last, caller, Search)) return `uid ${caller.uid} cannot search /${walked.join('/')}`;
    const here = `/${[...walked, segment].join('/')}`;
    const st = lstatSync(here, { throwIfNoEntry: false });
    // Missing in a trusted directory: only root or the daemon's user can create it.
    if (!st) return undefined;
    const problem = untrusted(st, trustedUids);
    if (problem) return `${here} is ${problem}`;
    if (st.isSymbolicLink()) {
      if (++links > MaxSymlinks) return `${path}: too many symbolic links`;
      const target = readlinkSync(here);
      pending = [...target.split('/').filter((s) => s !== '' && s !== '.'), ...pending];
      if (isAbsolute(target)) {
        walked = [];
        last = rootStat;
      }
      continue;
    }
    walked.push(segment);
    last = st;
  }
  if (last.isDirectory()) return `${path} is a directory`;
  if (!mayAccess(last, caller, Read)) return `uid ${caller.uid} cannot read ${path}`;
  return undefined;
}
