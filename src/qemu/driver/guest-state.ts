/**
 * The QMP sequences behind save/restore, snapshots and memory dumps (docs/save-restore.md,
 * docs/snapshots.md, docs/dumps.md). QemuGuest delegates to these; nothing here knows the store.
 *
 * Save and restore move QEMU's migration stream over a unix socket the driver owns in the run
 * directory: QEMU 7.2 has no `file:` migration URI, `exec:` runs a shell, and handing QEMU an
 * open fd needs SCM_RIGHTS, which Node's net.Socket cannot send. The driver listens (save) or
 * connects (restore), and a `cat` it starts (stream-copy.ts) copies the stream between that
 * socket and the save file after its header; no shell is ever involved.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VirtkitError, errorMessage } from '../../util/errors.js';
import type { QmpClient } from '../qmp/client.js';
import { copyWithCat, filePosition, seekTo, type StreamCopy } from './stream-copy.js';

/** Progress of a long guest-state job: bytes done of total (0 when unknown yet). */
export interface JobProgress {
  done: number;
  total: number;
}
export type ProgressListener = (p: JobProgress) => void;

/** Where a migration stream goes or comes from: a file, after its `offset` bytes of header. */
export interface StreamFile {
  path: string;
  offset: number;
}

const PollMs = 20;
/**
 * How often a migration's progress is asked for. Its end is not polled for: QEMU's MIGRATION
 * event (capability `events`) says it at once; the poll only feeds the progress line and is the
 * fallback should an event be missed.
 */
const MigrationProgressMs = 250;
/** No byte of progress for this long during a save, restore or dump: the job is given up. */
const StallMs = 120_000;
/** Bandwidth for a save of a paused guest: as fast as the disk takes it (libvirt does the same). */
const UnlimitedBandwidth = 2 ** 40;

interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  ram?: { transferred?: number; total?: number; remaining?: number };
}

async function queryMigrate(qmp: QmpClient): Promise<MigrationInfo> {
  return (await qmp.executeUntyped('query-migrate')) as MigrationInfo;
}

/** Listens on a fresh unix socket for exactly one connection. */
async function listenOnce(path: string): Promise<{ server: Server; accepted: Promise<Socket> }> {
  await rm(path, { force: true });
  // pauseOnConnect: nothing of the stream is read here; `cat` gets the socket whole
  const server = createServer({ pauseOnConnect: true });
  const accepted = new Promise<Socket>((resolve, reject) => {
    server.once('connection', (sock) => { server.close(); resolve(sock); });
    // closed without a connection (the migration failed first): the copy waiting for it ends too
    server.once('close', () => reject(new VirtkitError('qmp.command-failed', `QEMU never connected to ${path}`, { path })));
  });
  accepted.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  return { server, accepted };
}

/**
 * Writes the guest's migration stream into `file` from `file.offset` on. The CPUs are stopped
 * first (the state on disk is one instant), the bandwidth cap lifted, then `migrate` to the
 * driver's socket; resolves with the stream's length once QEMU reports `completed` and every
 * byte is written (the caller fsyncs the file once its header is final). QEMU is left in
 * `postmigrate`; the caller quits it.
 */
export async function saveToFile(qmp: QmpClient, runDir: string, file: StreamFile, onProgress?: ProgressListener): Promise<number> {
  const sockPath = join(runDir, 'save.sock');
  const { server, accepted } = await listenOnce(sockPath);
  let written = 0;
  let copying: Promise<void> | undefined;
  let ended: MigrationEnd | undefined;
  try {
    await qmp.executeUntyped('migrate-set-parameters', { 'max-bandwidth': UnlimitedBandwidth });
    await enableMigrationEvents(qmp);
    ended = migrationEnded(qmp);
    const out = await open(file.path, 'r+');
    copying = (async () => {
      try {
        await seekTo(out, file.offset);
        const sock = await accepted;
        try {
          await copyWithCat(sock, out.fd, `the save into ${file.path}`).done;
        } finally {
          sock.destroy();
        }
        written = (await out.stat()).size - file.offset;
      } finally {
        await out.close();
      }
    })();
    copying.catch(() => undefined);
    await qmp.executeUntyped('migrate', { uri: `unix:${sockPath}` });
    // QEMU's own count of the RAM it sent, of its total (the source side reports both)
    await waitMigration(qmp, ended.status, 'save', onProgress, async (info) => ({ done: info.ram?.transferred ?? 0, total: info.ram?.total ?? 0 }));
    await copying;
    return written;
  } catch (err) {
    server.close();
    // QEMU may still be sending: cancelling makes it close its side, which ends the copy
    await qmp.executeUntyped('migrate_cancel').catch(() => undefined);
    await copying?.catch(() => undefined);
    throw err;
  } finally {
    ended?.dispose();
    server.close();
    await rm(sockPath, { force: true });
  }
}

/**
 * Feeds a QEMU started with `-incoming defer` the stream saved in `file` after `file.offset`,
 * and waits until QEMU has loaded it (`completed`). The guest is then paused (QEMU runs with -S).
 */
export async function restoreFromFile(qmp: QmpClient, runDir: string, file: StreamFile, onProgress?: ProgressListener): Promise<void> {
  const sockPath = join(runDir, 'restore.sock');
  await rm(sockPath, { force: true });
  await enableMigrationEvents(qmp);
  const ended = migrationEnded(qmp);
  try {
    await qmp.executeUntyped('migrate-incoming', { uri: `unix:${sockPath}` });
    await feedIncoming(qmp, sockPath, file, ended.status, onProgress);
  } finally {
    ended.dispose();
    await rm(sockPath, { force: true });
  }
}

/**
 * A failed restore, told with QEMU's own reason: a QEMU that refuses the stream exits (the
 * client sees only qmp.disconnected) after writing why to qemu.log, e.g. `Unknown ramblock
 * "...", cannot accept migration`. The save file is only read, so it stays as it was.
 */
export async function restoreFailure(err: unknown, runDir: string, file: StreamFile): Promise<VirtkitError> {
  const log = await readFile(join(runDir, 'qemu.log'), 'utf8').catch(() => '');
  const last = lastQemuError(log);
  const reason = last === undefined ? errorMessage(err) : `${errorMessage(err)}; QEMU said: ${last}`;
  const message = `the restore from ${file.path} failed: ${reason} (the save file is unchanged)`;
  return err instanceof VirtkitError ? new VirtkitError(err.code, message, { ...err.data, file: file.path }, { cause: err })
    : new VirtkitError('qmp.command-failed', message, { command: 'migrate-incoming', file: file.path }, { cause: err });
}

/**
 * QEMU's last two log lines that read as errors (`qemu-system-x86_64: ...`: the cause, then
 * "load of migration failed"), else its last non-empty line; at most 500 characters.
 */
export function lastQemuError(log: string): string | undefined {
  const lines = log.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const errors = lines.filter((l) => /^qemu-system-[^:]*:/.test(l)).slice(-2);
  const text = errors.length > 0 ? errors.join('; ') : lines.at(-1);
  return text?.slice(0, 500);
}

async function feedIncoming(qmp: QmpClient, sockPath: string, file: StreamFile, ended: Promise<string>, onProgress?: ProgressListener): Promise<void> {
  const input = await open(file.path, 'r');
  let copy: StreamCopy | undefined;
  let sock: Socket | undefined;
  try {
    await seekTo(input, file.offset);
    sock = await connected(sockPath);
    copy = copyWithCat(input.fd, sock, `the restore from ${file.path}`);
    const total = (await input.stat()).size - file.offset;
    const pid = copy.pid;
    // the incoming side of a migration reports no byte counts: how far cat has read the file is the progress
    let done = 0;
    await waitMigration(qmp, ended, 'restore', onProgress, async () => {
      const pos = pid === undefined ? undefined : await filePosition(pid, 0);
      if (pos !== undefined) done = Math.max(done, pos - file.offset);
      return { done, total };
    });
    // QEMU read the stream's end marker; cat has written everything it is going to
    await copy.done.catch(() => undefined);
  } catch (err) {
    copy?.stop();
    throw err;
  } finally {
    sock?.destroy();
    await input.close();
  }
}

/** A connection to QEMU's incoming socket, paused: QEMU sends nothing back, `cat` writes to it. */
function connected(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(path);
    sock.pause();
    sock.once('error', reject);
    sock.once('connect', () => { sock.off('error', reject); resolve(sock); });
  });
}

/** QEMU announces each migration state change as a MIGRATION event (the end is what is waited for). */
async function enableMigrationEvents(qmp: QmpClient): Promise<void> {
  await qmp.executeUntyped('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
}

const EndStates = new Set(['completed', 'failed', 'cancelled']);

interface MigrationEnd {
  /** The end state, once QEMU's MIGRATION event says it. */
  status: Promise<string>;
  dispose: () => void;
}

/** The first MIGRATION event with an end state from now on; `dispose` stops listening. */
function migrationEnded(qmp: QmpClient): MigrationEnd {
  let off: () => void = () => undefined;
  const status = new Promise<string>((resolve) => {
    off = qmp.on('MIGRATION', (ev) => {
      const s = ev.data['status'];
      if (typeof s === 'string' && EndStates.has(s)) resolve(s);
    });
  });
  return { status, dispose: () => off() };
}

/**
 * Until the migration ends: woken by the MIGRATION event, with `query-migrate` every
 * MigrationProgressMs for the progress (and as the fallback). Throws on failed/cancelled,
 * and when no byte moved for StallMs.
 */
async function waitMigration(qmp: QmpClient, ended: Promise<string>, what: 'save' | 'restore', onProgress: ProgressListener | undefined,
  measure: (info: MigrationInfo) => Promise<JobProgress>): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const info = await queryMigrate(qmp);
      const status = info.status ?? 'none';
      if (status === 'completed') return;
      if (status === 'failed' || status === 'cancelled') {
        throw new VirtkitError('qmp.command-failed', `${what}: QEMU's migration ${status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`,
          { command: 'migrate', status, desc: info['error-desc'] });
      }
      const progress = await measure(info);
      const done = progress.done;
      onProgress?.(progress);
      if (done !== last) {
        last = done;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > StallMs) {
        throw new VirtkitError('operation.timeout', `${what}: no progress for ${StallMs / 1000} s (status ${status})`, { status });
      }
      // the event ends the wait at once; query-migrate then gives the final status and error text
      await Promise.race([ended, new Promise<void>((resolve) => { timer = setTimeout(resolve, MigrationProgressMs); })]);
      clearTimeout(timer);
    }
  } finally {
    clearTimeout(timer);
  }
}

// ---- internal snapshots (QMP snapshot-save / snapshot-load / snapshot-delete jobs) ------

interface JobInfo {
  id: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}

let jobCounter = 0;

async function runJob(qmp: QmpClient, command: string, args: Record<string, unknown>, onProgress?: ProgressListener): Promise<void> {
  const id = `virtkit-${command}-${process.pid}-${++jobCounter}`;
  await qmp.executeUntyped(command, { 'job-id': id, ...args });
  for (;;) {
    const jobs = (await qmp.executeUntyped('query-jobs')) as JobInfo[];
    const job = jobs.find((j) => j.id === id);
    if (!job) throw new VirtkitError('qmp.command-failed', `${command}: job ${id} vanished`, { command });
    onProgress?.({ done: job['current-progress'], total: job['total-progress'] });
    if (job.status === 'concluded' || job.status === 'null') {
      await qmp.executeUntyped('job-dismiss', { id }).catch(() => undefined);
      if (job.error) throw new VirtkitError('qmp.command-failed', `${command}: ${job.error}`, { command, desc: job.error });
      return;
    }
    await sleep(PollMs);
  }
}

interface BlockInfo {
  device: string;
  qdev?: string;
  inserted?: { 'node-name'?: string; ro: boolean; file: string; drv: string };
}

/**
 * The device id behind query-block's `qdev`: QEMU gives the device's id when the block backend
 * hangs off the device itself (scsi-hd: `sdb`), its QOM path otherwise (virtio-blk's backend:
 * `/machine/peripheral/vda/virtio-backend`).
 */
export function deviceIdOfQdev(qdev: string | undefined): string | undefined {
  if (qdev === undefined || qdev === '') return undefined;
  if (!qdev.startsWith('/')) return qdev;
  return /^\/machine\/peripheral\/([^/]+)/.exec(qdev)?.[1];
}

/** The top block node of each disk (by the disk's device id), as QEMU has them now. */
export async function topNodes(qmp: QmpClient): Promise<Map<string, { node: string; readonly: boolean; file: string; format: string }>> {
  const blocks = (await qmp.executeUntyped('query-block')) as BlockInfo[];
  const out = new Map<string, { node: string; readonly: boolean; file: string; format: string }>();
  for (const b of blocks) {
    const id = deviceIdOfQdev(b.qdev);
    const node = b.inserted?.['node-name'];
    if (id && node && b.inserted) out.set(id, { node, readonly: b.inserted.ro, file: b.inserted.file, format: b.inserted.drv });
  }
  return out;
}

/** Nodes an internal snapshot covers: every writable disk's top node (read-only disks are left out). */
async function snapshotNodes(qmp: QmpClient): Promise<string[]> {
  const nodes = [...(await topNodes(qmp)).values()].filter((n) => !n.readonly).map((n) => n.node);
  if (nodes.length === 0) throw new VirtkitError('operation.unsupported', 'an internal snapshot needs at least one writable qcow2 disk to hold the memory state', {});
  return nodes;
}

/** Disks and RAM into each writable disk's qcow2, under `tag` (the guest pauses meanwhile, then runs on). */
export async function internalSnapshotSave(qmp: QmpClient, tag: string, onProgress?: ProgressListener): Promise<void> {
  const devices = await snapshotNodes(qmp);
  await runJob(qmp, 'snapshot-save', { tag, vmstate: devices[0], devices }, onProgress);
}

/** Back to `tag`: disks and RAM; a running guest runs on from there. */
export async function internalSnapshotLoad(qmp: QmpClient, tag: string, onProgress?: ProgressListener): Promise<void> {
  const devices = await snapshotNodes(qmp);
  await runJob(qmp, 'snapshot-load', { tag, vmstate: devices[0], devices }, onProgress);
}

export async function internalSnapshotDelete(qmp: QmpClient, tag: string): Promise<void> {
  const devices = await snapshotNodes(qmp);
  await runJob(qmp, 'snapshot-delete', { tag, devices });
}

/**
 * External disk-only snapshot: each disk's new overlay (created by the caller with qemu-img,
 * backed by the disk's current image) is added as a node and made the disk's top with
 * `blockdev-snapshot`. All disks are switched inside one QMP `transaction`: all or none.
 */
export async function externalSnapshot(qmp: QmpClient, overlays: readonly { id: string; overlay: string }[], tag: string): Promise<void> {
  const tops = await topNodes(qmp);
  const added: string[] = [];
  const actions: { type: string; data: Record<string, unknown> }[] = [];
  try {
    for (const [i, o] of overlays.entries()) {
      const top = tops.get(o.id);
      if (!top) throw new VirtkitError('operation.unsupported', `disk ${o.id} has no block node in QEMU`, { disk: o.id });
      const base = `ov${i}-${tag}-${Date.now().toString(36)}`.slice(0, 26);
      await qmp.executeUntyped('blockdev-add', { driver: 'file', filename: o.overlay, 'node-name': `${base}-f` });
      added.push(`${base}-f`);
      await qmp.executeUntyped('blockdev-add', { driver: 'qcow2', file: `${base}-f`, 'node-name': `${base}-q`, backing: null });
      added.push(`${base}-q`);
      actions.push({ type: 'blockdev-snapshot', data: { node: top.node, overlay: `${base}-q` } });
    }
    await qmp.executeUntyped('transaction', { actions });
  } catch (err) {
    for (const node of added.reverse()) await qmp.executeUntyped('blockdev-del', { 'node-name': node }).catch(() => undefined);
    throw err;
  }
}

// ---- memory dumps -----------------------------------------------------------------------

export type DumpFormat = 'elf' | 'kdump-zlib';

interface DumpQuery {
  status: 'none' | 'active' | 'completed' | 'failed';
  completed: number;
  total: number;
}

/**
 * `dump-guest-memory` to `path` (QEMU writes the file itself), detached, polled with
 * `query-dump` until done. Works on a paused or hung guest: QEMU reads guest RAM without the
 * guest's help. `paging: false`: the physical memory as it is, nothing read from guest page tables.
 */
export async function dumpGuestMemory(qmp: QmpClient, path: string, format: DumpFormat, onProgress?: ProgressListener): Promise<void> {
  await qmp.executeUntyped('dump-guest-memory', { paging: false, protocol: `file:${path}`, detach: true, format });
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const q = (await qmp.executeUntyped('query-dump')) as DumpQuery;
    onProgress?.({ done: q.completed, total: q.total });
    if (q.status === 'completed') return;
    if (q.status === 'failed') throw new VirtkitError('qmp.command-failed', `dump-guest-memory to ${path} failed (see the domain's qemu.log)`, { command: 'dump-guest-memory', path });
    if (q.completed !== last) {
      last = q.completed;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > StallMs) {
      throw new VirtkitError('operation.timeout', `dump-guest-memory: no progress for ${StallMs / 1000} s`, { path });
    }
    await sleep(PollMs);
  }
}
