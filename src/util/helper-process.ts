/**
 * Helper processes that die with the process that started them. The capability probe, the
 * KVM test boot and qemu-img are short-lived helpers: if virtkit is killed (kill -9, OOM) while
 * one runs, the helper must not live on with ppid 1. Linux's parent-death signal does that:
 * each helper runs as `setpriv --pdeathsig KILL -- /bin/sh -c GUARD ...`, which sets
 * PR_SET_PDEATHSIG and then execs the helper (same pid, signal kept across exec).
 *
 * The race: a parent that dies between fork and prctl never sends the signal. GUARD closes it:
 * the shell starts after prctl and compares its parent ($PPID, read at start-up) with the pid
 * that spawned it; if the parent is already gone (reparented to init or a subreaper) it exits
 * instead of running the helper. Once the check passed, the parent was alive after prctl, so
 * its death delivers SIGKILL. What remains is documented in docs/qemu-driver.md: the signal
 * follows the spawning *thread* (spawn from the main thread), exec of a set-user-ID program
 * clears it, and a helper's own children do not inherit it.
 *
 * Guests are never started this way: they are detached on purpose and outlive the daemon.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { VirtkitError } from './errors.js';

/** Runs "$@" only if this shell's parent is still the pid in $1 (see the module comment). */
const PARENT_GUARD = '[ "$PPID" = "$1" ] || exit 125; shift; exec "$@"';

/** What to spawn instead of `binary args`: the same program, dying with this process. */
export interface HelperCommand {
  readonly file: string;
  readonly args: string[];
}

let setprivPath: string | undefined;

/**
 * The command line that runs `binary args` (binary an absolute path, see findExecutable) so
 * that it is killed when this process dies. Throws 'operation.unsupported' when util-linux's
 * setpriv is missing: a helper is never started without the parent-death signal.
 * `parentPid` is who must be the helper's parent when it starts (this process; tests vary it).
 */
export function dieWithParent(binary: string, args: readonly string[], parentPid = process.pid): HelperCommand {
  setprivPath ??= findExecutable('setpriv');
  if (setprivPath === undefined) {
    throw new VirtkitError('operation.unsupported',
      'setpriv (util-linux) is not installed: virtkit runs its helper processes (capability probe, KVM check, qemu-img) under `setpriv --pdeathsig KILL` so that none outlives it; install util-linux',
      { binary: 'setpriv' });
  }
  return {
    file: setprivPath,
    args: ['--pdeathsig', 'KILL', '--', '/bin/sh', '-c', PARENT_GUARD, 'virtkit-helper', String(parentPid), binary, ...args],
  };
}

/**
 * An executable file: `name` itself when it holds a slash (resolved against the working
 * directory), else the first match on PATH. Undefined when there is none.
 */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [resolve(name)]
    : (process.env['PATH'] ?? '').split(delimiter).filter((d) => isAbsolute(d)).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}
