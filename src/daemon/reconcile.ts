/**
 * Crash-only start: the daemon's only memory is the store. For every domain the store says is
 * starting, running or paused, re-attach to the QEMU in its run directory (pid and identity
 * verified by the driver's attach) or record that it died meanwhile. Then make sure no QEMU runs from
 * the run root that the store does not account for.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { GuestHandle } from '../qemu/index.js';
import type { Store } from '../store/index.js';
import { errorMessage } from '../util/errors.js';
import { isActive, listDomainNames, readDomain } from './domain-records.js';
import type { Manager } from './manager.js';

export interface ReconcileReport {
  adopted: string[];
  gone: string[];
  orphansKilled: number[];
}

export async function reconcile(manager: Manager, store: Store, log: FastifyBaseLogger): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: [], gone: [], orphansKilled: [] };
  const owned = new Set<string>();
  for (const name of await listDomainNames(store)) {
    const rec = await readDomain(store, name);
    if (!rec || !isActive(rec.status)) continue;
    const runDir = rec.status.runDir ?? manager.runDirOf(rec.uuid);
    let handle: GuestHandle | undefined;
    try {
      // The definition the guest was started with; a guest adopted mid-start has only the saved one.
      handle = await manager.driver.attach(rec.live ?? rec.definition, runDir);
      let status = await handle.state();
      if (status === 'prelaunch' && rec.status.state === 'starting') {
        // The daemon died between spawning QEMU and letting the guest run: finish the start.
        await handle.resume();
        status = 'running';
      }
      owned.add(runDir);
      // A guest kept stopped after it powered off or panicked (a preserve policy) counts as paused.
      await manager.markAdopted(rec, handle, status === 'running' ? 'running' : 'paused');
      await manager.adopt(rec, handle);
      report.adopted.push(name);
      log.info({ domain: name, pid: handle.pid, guestState: status }, 're-attached to running guest');
    } catch (err) {
      // A QEMU attached but not adopted is not ours to watch; the orphan sweep below ends it.
      if (handle && !manager.liveNames().includes(name)) handle.detach();
      const reason = rec.status.state === 'starting' ? 'failed' : 'crashed';
      await manager.markGone(rec, reason);
      report.gone.push(name);
      log.warn({ domain: name, reason, err: errorMessage(err) }, 'guest was gone at daemon start');
    }
  }
  report.orphansKilled = await killOrphans(manager.runRoot, owned, log);
  return report;
}

/** QEMU processes (any of /proc) whose command line names a run dir under `runRoot`. */
export async function qemuProcessesUnder(runRoot: string): Promise<{ pid: number; runDir: string }[]> {
  const out: { pid: number; runDir: string }[] = [];
  const prefix = `${runRoot.replace(/\/+$/, '')}/`;
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const raw = await readFile(`/proc/${entry}/cmdline`).catch(() => undefined);
    if (!raw || raw.length === 0) continue;
    const args = raw.toString('utf8').split('\0');
    if (!/qemu/.test(args[0] ?? '')) continue;
    for (const arg of args) {
      const i = arg.indexOf(prefix);
      if (i < 0) continue;
      const rest = arg.slice(i + prefix.length);
      const dir = rest.split('/')[0];
      if (dir) {
        out.push({ pid: Number(entry), runDir: join(runRoot, dir) });
        break;
      }
    }
  }
  return out;
}

async function killOrphans(runRoot: string, owned: Set<string>, log: FastifyBaseLogger): Promise<number[]> {
  const killed: number[] = [];
  for (const { pid, runDir } of await qemuProcessesUnder(runRoot)) {
    if (owned.has(runDir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
      log.warn({ pid, runDir }, 'killed a QEMU the store does not account for');
    } catch {
      /* gone meanwhile */
    }
  }
  return killed;
}
