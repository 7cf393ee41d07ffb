/**
 * Which processes are ours to signal. The orphan sweep (reconcile.ts) first finds every process
 * whose command line names the run root, which is cheap and loose: an ordinary `qemu-img info`
 * of a file under a run dir, or a renamed decoy, matches too. Each one is then put to the
 * proof: a run dir directly under the run root that a domain of the store owns, and a process
 * that is the QEMU of that run dir for that domain's uuid (qemu/process/proc.ts,
 * provenQemuOfRunDir: program, QMP socket, -uuid, -pidfile, the pidfile's pid, our uid).
 */
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { provenQemuOfRunDir, readCmdline, runPaths } from '../qemu/index.js';

/** Run dirs the store knows of, with the domain that owns each. */
export type KnownRunDirs = Map<string, { uuid: string; name: string }>;

export type OwnershipVerdict = { ours: true; runDir: string; name: string; uuid: string } | { ours: false; why: string };

/** Every process (but this one) whose command line names a path under `runRoot`, with its argv. */
export async function processesNamingRunRoot(runRoot: string): Promise<{ pid: number; cmdline: string[] }[]> {
  const prefix = `${runRoot.replace(/\/+$/, '')}/`;
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readCmdline(Number(entry));
    if (cmdline?.some((arg) => arg.includes(prefix))) out.push({ pid: Number(entry), cmdline });
  }
  return out;
}

/** Whether `pid` (running `cmdline`) is proven to be the QEMU of a run dir the store knows. */
export async function provenGuest(pid: number, cmdline: readonly string[], runRoot: string, known: KnownRunDirs): Promise<OwnershipVerdict> {
  const i = cmdline.lastIndexOf('-pidfile');
  const pidfile = i >= 0 ? cmdline[i + 1] : undefined;
  if (pidfile === undefined) return { ours: false, why: 'no -pidfile' };
  const runDir = dirname(resolve(pidfile));
  if (dirname(runDir) !== resolve(runRoot)) return { ours: false, why: `-pidfile ${pidfile} is not in a run dir of ${runRoot}` };
  const owner = known.get(runDir);
  if (!owner) return { ours: false, why: `no domain of the store owns ${runDir}` };
  const verdict = await provenQemuOfRunDir(pid, cmdline, runDir, owner.uuid, runPaths(runDir));
  return verdict.ours ? { ours: true, runDir, ...owner } : verdict;
}

/**
 * QEMU-looking processes (argv[0] mentions qemu) whose command line names a run dir under
 * `runRoot`: a loose scan for tests and diagnostics (what is left running after a test), never
 * a reason to signal anything.
 */
export async function qemuProcessesUnder(runRoot: string): Promise<{ pid: number; runDir: string }[]> {
  const out: { pid: number; runDir: string }[] = [];
  const prefix = `${runRoot.replace(/\/+$/, '')}/`;
  for (const { pid, cmdline } of await processesNamingRunRoot(runRoot)) {
    if (!/qemu/.test(cmdline[0] ?? '')) continue;
    for (const arg of cmdline) {
      const at = arg.indexOf(prefix);
      if (at < 0) continue;
      const dir = arg.slice(at + prefix.length).split('/')[0];
      if (dir) {
        out.push({ pid, runDir: join(runRoot, dir) });
        break;
      }
    }
  }
  return out;
}
