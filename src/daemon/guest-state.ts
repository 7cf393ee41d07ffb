/**
 * Save, restore, managed save and memory dumps, for the manager (docs/save-restore.md,
 * docs/dumps.md). The manager lends what it owns (the domain locks, live handles, store
 * transactions, start) through GuestStateHost; the QEMU side is the driver's.
 *
 * A save writes the file's header (save-file.ts) with the definition QEMU runs, has the driver
 * stop the CPUs and stream the migration into the file, lets QEMU go (the domain is recorded
 * `shutoff (saved)`), then completes the header with the disks' identities as QEMU left them.
 * A restore reads the header, refuses disks changed since (unless forced), defines the domain
 * if it is not (or checks the uuid if it is), and starts it with the stream as its incoming
 * migration. A managed save is a save into STATE/save/<uuid>.save, which the next start uses.
 */
import { access, open, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { constants, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { DomainInfo, DumpBody, DumpResult, JobInfo, ManagedSaveRemoveResult, SaveResult, StopReason } from '../api/index.js';
import { assertStateAllowed, type StatefulMethod } from '../api/index.js';
import type { DomainDefinition } from '../conf/index.js';
import type { GuestHandle } from '../qemu/index.js';
import type { Origin, Store, Transaction } from '../store/index.js';
import { VirtkitError, errorMessage } from '../util/errors.js';
import { preconditionState, readDomain, requireDomain, uuidPath, writeNewDomain, type DomainRecord } from './domain-records.js';
import { recordEvent } from './event-log.js';
import { assertDisksUnchanged, completeHeader, diskIdentities, readSaveFile, writeProvisionalHeader } from './save-file.js';

/** What a start needs to resume from a save instead of booting. */
export interface RestoreSource {
  path: string;
  offset: number;
  definition: DomainDefinition;
  paused: boolean;
  /** A managed save: removed once the guest runs from it. */
  managed: boolean;
}

/** The part of a live guest these operations use. */
export interface LiveGuest {
  handle: GuestHandle;
  /** How its coming exit is recorded (`saved`), undefined to forget it again. */
  setIntent(reason: StopReason | undefined): void;
  /** Resolves once its exit is committed to the store. */
  recorded(): Promise<void>;
}

export interface GuestStateHost {
  store: Store;
  saveDir: string;
  tx<T>(origin: Origin, fn: (tx: Transaction) => Promise<T>): Promise<T>;
  lock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** The live guest, once `method`'s precondition holds (domain.invalid-state otherwise). */
  requireLive(name: string, rec: DomainRecord, method: StatefulMethod): LiveGuest;
  /** Host paths of a definition's disks (pool volumes resolved). */
  diskPaths(def: DomainDefinition): Promise<{ id: string; path: string; format: string; readonly: boolean }[]>;
  start(origin: Origin, name: string, opts: { paused?: boolean; restore?: RestoreSource }): Promise<DomainInfo>;
  destroy(origin: Origin, name: string): Promise<unknown>;
  jobs: JobTable;
}

/** The long job in progress per domain, for `domain.jobInfo` (and the CLI's progress line). */
export class JobTable {
  private readonly jobs = new Map<string, { type: Exclude<JobInfo['type'], 'none'>; done: number; total: number; startedAt: string }>();

  async run<T>(name: string, type: Exclude<JobInfo['type'], 'none'>, fn: (progress: (p: { done: number; total: number }) => void) => Promise<T>): Promise<T> {
    const job = { type, done: 0, total: 0, startedAt: new Date().toISOString() };
    this.jobs.set(name, job);
    try {
      return await fn((p) => { job.done = p.done; job.total = p.total; });
    } finally {
      if (this.jobs.get(name) === job) this.jobs.delete(name);
    }
  }

  info(name: string): JobInfo {
    const job = this.jobs.get(name);
    return job ? { ...job } : { type: 'none' };
  }
}

function requireAbsolute(file: string, what: string): void {
  if (!isAbsolute(file) || /[\n\0]/.test(file)) {
    throw new VirtkitError('argument.invalid', `${what} must be an absolute path without newline or NUL (got ${JSON.stringify(file)})`, { file });
  }
}

export function managedSavePath(saveDir: string, uuid: string): string {
  return join(saveDir, `${uuid}.save`);
}

export function hasManagedSave(saveDir: string, uuid: string): Promise<boolean> {
  // On every info call: a synchronous stat of the local state dir that does not throw costs a
  // microsecond; the promise stat's ENOENT error cost about 40 us (docs/performance.md).
  return Promise.resolve(statSync(managedSavePath(saveDir, uuid), { throwIfNoEntry: false }) !== undefined);
}

/** Makes a rename in `dir` durable (the directory entry itself is synced). */
async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Saves the running or paused guest `name` into `file`; QEMU is gone afterwards. */
export async function saveGuest(h: GuestStateHost, origin: Origin, name: string, file: string, method: 'domain.save' | 'domain.managedSave'): Promise<SaveResult> {
  requireAbsolute(file, 'the save file');
  return h.lock(name, () => h.jobs.run(name, 'save', async (progress) => {
    const rec = await requireDomain(h.store.as(origin), name);
    const live = h.requireLive(name, rec, method);
    const definition = rec.live ?? rec.definition;
    const disks = (await h.diskPaths(definition)).filter((d) => !d.readonly);
    const paused = (await live.handle.state()) !== 'running';
    // Written beside `file` under another name and renamed over it once complete and synced: a
    // save that fails or is refused (by the driver, after this point) leaves an older save at
    // `file` as it was, and `file` never names a half-written save.
    const partial = join(dirname(file), `.${basename(file)}.partial-${randomBytes(6).toString('hex')}`);
    const offset = await writeProvisionalHeader(partial, { definition, paused, savedAt: new Date().toISOString() }, disks);
    live.setIntent('saved');
    let streamBytes: number;
    try {
      streamBytes = await live.handle.saveState({ path: partial, offset }, progress);
    } catch (err) {
      live.setIntent(undefined);
      await rm(partial, { force: true });
      throw err;
    }
    try {
      await live.recorded();
      // QEMU is gone: the disks are as the restored guest must find them
      await completeHeader(partial, offset, { complete: true, definition, paused, savedAt: new Date().toISOString(), streamBytes, disks: await diskIdentities(disks) });
      await rename(partial, file);
      await syncDirectory(dirname(file));
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    return { file, bytes: offset + streamBytes };
  }));
}

/** The managed save the next start of `rec` resumes from, checked; undefined when there is none. */
export async function managedRestoreOf(saveDir: string, rec: DomainRecord): Promise<RestoreSource | undefined> {
  const path = managedSavePath(saveDir, rec.uuid);
  if (!(await hasManagedSave(saveDir, rec.uuid))) return undefined;
  const hint = ` (virtkit managedsave-remove ${rec.name} discards it; the next start then boots)`;
  let parsed;
  try {
    parsed = await readSaveFile(path);
    await assertDisksUnchanged(path, parsed.header);
  } catch (err) {
    if (err instanceof VirtkitError) throw new VirtkitError(err.code, `the managed save of "${rec.name}": ${err.message}${hint}`, { ...err.data, name: rec.name });
    throw err;
  }
  if (parsed.header.definition.uuid !== rec.uuid) {
    throw new VirtkitError('save.invalid', `the managed save ${path} is of uuid ${parsed.header.definition.uuid}, not "${rec.name}"'s ${rec.uuid}${hint}`, { path, reason: 'uuid' });
  }
  return { path, offset: parsed.streamOffset, definition: parsed.header.definition, paused: parsed.header.paused, managed: true };
}

/** Restores the guest saved in `file`, defining its domain if needed. */
export async function restoreGuest(h: GuestStateHost, origin: Origin, file: string, force: boolean): Promise<DomainInfo> {
  requireAbsolute(file, 'the save file');
  const parsed = await readSaveFile(file);
  if (!force) await assertDisksUnchanged(file, parsed.header);
  const def = parsed.header.definition;
  await h.lock(def.name, () => h.tx(origin, async (tx) => {
    const existing = await readDomain(tx, def.name);
    if (existing) {
      if (existing.uuid !== def.uuid) {
        throw new VirtkitError('domain.exists', `a domain named "${def.name}" exists with another uuid (${existing.uuid}; the save is of ${def.uuid})`, { name: def.name, uuid: existing.uuid });
      }
      assertStateAllowed('domain.start', def.name, preconditionState(existing.status));
      return;
    }
    const owner = await tx.read(uuidPath(def.uuid));
    if (owner !== undefined) throw new VirtkitError('domain.exists', `UUID ${def.uuid} already belongs to domain "${owner}"`, { uuid: def.uuid, name: owner });
    await writeNewDomain(tx, def);
    await recordEvent(tx, 'defined', def, 'restore');
  }));
  return h.jobs.run(def.name, 'restore', () => h.start(origin, def.name, {
    restore: { path: file, offset: parsed.streamOffset, definition: def, paused: parsed.header.paused, managed: false },
  }));
}

export async function managedSaveRemove(h: GuestStateHost, origin: Origin, name: string): Promise<ManagedSaveRemoveResult> {
  return h.lock(name, async () => {
    const rec = await requireDomain(h.store.as(origin), name);
    assertStateAllowed('domain.managedSaveRemove', name, preconditionState(rec.status));
    const removed = await hasManagedSave(h.saveDir, rec.uuid);
    await rm(managedSavePath(h.saveDir, rec.uuid), { force: true });
    return { removed };
  });
}

/** QEMU writes the dump itself and tells a missing directory only as a failed job: checked first. */
async function assertWritableDir(file: string): Promise<void> {
  const dir = dirname(file);
  try {
    if (!(await stat(dir)).isDirectory()) throw new VirtkitError('output.unwritable', `${file}: ${dir} is not a directory`, { path: file });
    await access(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof VirtkitError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new VirtkitError('output.unwritable', `${file}: ${code === 'ENOENT' || code === 'ENOTDIR' ? `no directory ${dir}` : `cannot write in ${dir} (${code ?? errorMessage(err)})`}`, { path: file });
  }
}

/** The guest's memory into `file` via the driver's dump-guest-memory; the guest's state is unchanged. */
export async function dumpGuest(h: GuestStateHost, origin: Origin, name: string, body: DumpBody): Promise<DumpResult> {
  requireAbsolute(body.file, 'the dump file');
  await assertWritableDir(body.file);
  const format = body.format ?? 'elf';
  return h.lock(name, () => h.jobs.run(name, 'dump', async (progress) => {
    const rec = await requireDomain(h.store.as(origin), name);
    const live = h.requireLive(name, rec, 'domain.dump');
    try {
      await live.handle.dumpMemory(body.file, format, progress);
    } catch (err) {
      throw err instanceof VirtkitError ? err : new VirtkitError('qmp.command-failed', `dump of "${name}" failed: ${errorMessage(err)}`, { name });
    }
    const st = await stat(body.file);
    return { file: body.file, bytes: st.size, format };
  }));
}
