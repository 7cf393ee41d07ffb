/**
 * Connecting to a unix socket QEMU is about to create (its QMP and console sockets, right after
 * the spawn), as soon as it exists: the run dir is watched (inotify, through fs.watch) and a
 * connection is tried when the name appears, instead of polling on a timer whose period would be
 * added to every start. Two windows remain, each closed by a retry: the name exists between
 * QEMU's bind() and listen() (refused: tried again a moment later), and a change that came while
 * a try was under way (counted, so the next try starts at once). A slow timer backs the watch up
 * where a file system does not report changes.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A try that failed because QEMU has not listened yet (the name is missing, or bound and not listening). */
export type NotYet = 'missing' | 'refused';

export interface ConnectWhenCreatedOptions {
  /** Stop waiting (the caller's error) once this is past; Date.now() milliseconds. */
  deadline: number;
  /** Called before each wait: a reason to give up now (QEMU exited), or undefined to go on. */
  giveUp: () => Error | undefined;
  /** Error for the deadline. */
  timedOut: () => Error;
  /** Whether a failed try means the socket is not there yet (and how), or a real failure (thrown as is). */
  notYet: (err: unknown) => NotYet | undefined;
  /** How often to try without a change notice. Default FALLBACK_MS. */
  fallbackMs?: number;
}

/** Backs up the watch: how often to try without a change notice. */
const FALLBACK_MS = 50;
/** Between bind() and listen() QEMU runs a handful of instructions: try again this soon. */
const REFUSED_RETRY_MS = 1;

/**
 * Tries `attempt` until it succeeds: at once, then on every change to `path`'s directory that
 * names it, after a refused connection again within a millisecond, and every `fallbackMs`.
 */
export async function connectWhenCreated<T>(path: string, attempt: () => Promise<T>, opts: ConnectWhenCreatedOptions): Promise<T> {
  const name = basename(path);
  let changes = 0;
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file !== null && file !== name) return;
      changes++;
      wake?.();
    });
    watcher.on('error', () => undefined); // the fallback timer carries on
  } catch {
    watcher = undefined; // no change notices here: the fallback timer alone
  }
  try {
    for (;;) {
      const seen = changes;
      try {
        return await attempt();
      } catch (err) {
        const why = opts.notYet(err);
        if (why === undefined) throw err;
        const stop = opts.giveUp();
        if (stop) throw stop;
        if (Date.now() > opts.deadline) throw opts.timedOut();
        if (why === 'refused') {
          await sleep(REFUSED_RETRY_MS);
          continue;
        }
      }
      if (changes !== seen) continue; // it changed while we tried
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.fallbackMs ?? FALLBACK_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    watcher?.close();
  }
}

/** The errno of a failed connect (the error itself or its cause), as NotYet when it means "not listening yet". */
export function notListeningYet(err: unknown): NotYet | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ECONNREFUSED') return 'refused';
  }
  return undefined;
}
