/**
 * Crash-only start: the daemon's only memory is the store. For every domain the store says is
 * starting, running or paused, re-attach to the QEMU in its run directory (pid and identity
 * verified by the driver's attach) or record that it died meanwhile. Then look for QEMUs of
 * ours the store does not account for (a crash between spawning QEMU and recording it) and
 * stop them; a process is signalled only when it is proven ours (ownership.ts), every other
 * process that names the run root is logged and left alone.
 */
import { resolve } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { provenVirtiofsdRunDir, releaseStaleGuestResources, type GuestHandle } from '../qemu/index.js';
import type { Store } from '../store/index.js';
import { errorMessage } from '../util/errors.js';
import { isActive, listDomainNames, readDomain } from './domain-records.js';
import type { Manager } from './manager.js';
import { processesNamingRunRoot, provenGuest, type KnownRunDirs } from './ownership.js';

export { qemuProcessesUnder } from './ownership.js';

export interface ReconcileReport {
  adopted: string[];
  gone: string[];
  /** Proven QEMUs of ours that no domain owned: stopped. */
  orphansKilled: number[];
  /** Processes that name the run root but are not proven ours: logged, never signalled. */
  lookAlikes: number[];
}

export async function reconcile(manager: Manager, store: Store, log: FastifyBaseLogger): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: [], gone: [], orphansKilled: [], lookAlikes: [] };
  const owned = new Set<string>();
  const known: KnownRunDirs = new Map();
  for (const name of await listDomainNames(store)) {
    const rec = await readDomain(store, name);
    if (!rec) continue;
    // Every run dir a domain of the store has (or will have), with the uuid its QEMU carries.
    known.set(resolve(manager.runDirOf(rec.uuid)), { uuid: rec.uuid, name });
    if (rec.status.runDir) known.set(resolve(rec.status.runDir), { uuid: rec.uuid, name });
    if (!isActive(rec.status)) continue;
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
      owned.add(resolve(runDir));
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
  await sweepOrphans(manager.runRoot, known, owned, log, report);
  // What guests that died unwatched left: their virtiofsd (proven ours) and empty cgroups.
  const stale = [...known].filter(([dir]) => !owned.has(dir)).map(([runDir, { uuid }]) => ({ runDir, uuid }));
  const running = [...known].filter(([dir]) => owned.has(dir)).map(([, { uuid }]) => uuid);
  const released = await releaseStaleGuestResources(stale, running);
  if (released.cgroupsRemoved.length > 0 || released.helpersStopped.length > 0) log.info(released, 'released what stopped guests left: cgroups, virtiofsd');
  return report;
}

/**
 * Stops every proven QEMU of ours whose run dir no adopted guest owns; logs, and leaves alone,
 * every other process whose command line names the run root.
 */
async function sweepOrphans(runRoot: string, known: KnownRunDirs, owned: Set<string>, log: FastifyBaseLogger,
  report: ReconcileReport): Promise<void> {
  for (const { pid, cmdline } of await processesNamingRunRoot(runRoot)) {
    if (pid === process.pid) continue;
    // a guest's virtiofsd (proven ours): kept with its guest, or stopped below with what stale guests left
    const helperOf = await provenVirtiofsdRunDir(pid, cmdline);
    if (helperOf !== undefined && known.has(resolve(helperOf))) continue;
    const verdict = await provenGuest(pid, cmdline, runRoot, known);
    if (!verdict.ours) {
      report.lookAlikes.push(pid);
      log.warn({ pid, why: verdict.why, cmdline: cmdline.slice(0, 6) }, 'left alone: a process naming the run root that is not proven ours');
      continue;
    }
    if (owned.has(verdict.runDir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      report.orphansKilled.push(pid);
      log.warn({ pid, runDir: verdict.runDir, domain: verdict.name }, 'stopped a QEMU of ours the store does not account for');
    } catch {
      /* gone meanwhile */
    }
  }
}
