/**
 * Finding processes by identity in /proc, for tests that prove a helper did not outlive its
 * parent. A process matches when one of its arguments contains a marker only the test put
 * there (a temporary directory, a FIFO path).
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state, then ppid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const argv = cmdline.split('\0').filter((a, i, all) => i < all.length - 1 || a !== '');
    // A zombie has an empty cmdline: it already ran its course and holds nothing.
    return argv.length === 0 ? undefined : { pid, ppid, argv };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Every live process (not this one) one of whose arguments contains `marker`. */
export async function processesWithArg(marker: string): Promise<ProcessInfo[]> {
  const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => p !== process.pid);
  const infos = await Promise.all(pids.map(processInfo));
  return infos.filter((p): p is ProcessInfo => p !== undefined && p.argv.some((a) => a.includes(marker)));
}

/** Polls until `find` returns something, at most `timeoutMs`; returns the last result. */
export async function pollFor<T>(find: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined || Date.now() > deadline) return found;
    await sleep(everyMs);
  }
}

/**
 * Polls until no process carries `marker` (the kernel delivers a parent-death signal
 * asynchronously), at most `timeoutMs`; returns those still there, an empty list on success.
 */
export async function waitUntilNoneWithArg(marker: string, timeoutMs: number): Promise<ProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await processesWithArg(marker);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(50);
  }
}

/** Test cleanup: SIGKILL what a failed test left behind, by pid. */
export function killLeftovers(procs: readonly ProcessInfo[]): void {
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
