/**
 * Domain snapshots (docs/snapshots.md): a tree kept in the store, the images kept by QEMU and
 * qemu-img.
 *
 *   /domain/<name>/snapshots/<snap>   one SnapshotRecord, JSON
 *   /domain/<name>/snapshot-current   the name of the current snapshot (parent of the next one)
 *
 * Internal snapshots live inside the qcow2 disks: of a running or paused guest, disks and RAM
 * (QMP snapshot-save, one job, the guest paused meanwhile); of a stopped guest, disks only
 * (`qemu-img snapshot -c` on each). External snapshots are disk-only: a new qcow2 overlay per
 * writable disk, backed by the image it freezes; a running guest switches to the overlays in
 * one QMP transaction, and the saved (and live) definitions name them from the same store
 * transaction that records the snapshot.
 */
import { rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { DomainStateInfo, SnapshotCreateBody, SnapshotInfo } from '../api/index.js';
import type { DomainDefinition } from '../conf/index.js';
import { runQemuImg } from '../storage/index.js';
import type { Origin, StoreReader, StoreWriter } from '../store/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { domainPath, isActive, requireDomain, visibleState, writeLive, writeStatus, type DomainRecord } from './domain-records.js';
import { recordEvent } from './event-log.js';
import type { GuestStateHost } from './guest-state.js';

export interface SnapshotRecord {
  name: string;
  parent?: string;
  kind: 'internal' | 'external';
  memory: boolean;
  state: 'running' | 'paused' | 'shutoff';
  createdAt: string;
  /** The saved definition when the snapshot was taken: what a revert brings back. */
  definition: DomainDefinition;
  disks: { id: string; path: string; format: string; overlay?: string }[];
}

const SnapshotNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Refuses names that are not plain words: they become tags in qcow2 files and parts of overlay file names. */
export function assertSnapshotName(name: string): void {
  if (!SnapshotNamePattern.test(name)) {
    throw new VirtkitError('snapshot.invalid-name',
      `snapshot name ${JSON.stringify(name.slice(0, 80))}: use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit (no "/" or other path characters)`,
      { name: name.slice(0, 200) });
  }
}

const snapshotsDir = (domain: string): string => domainPath(domain, 'snapshots');
const snapshotPath = (domain: string, snap: string): string => `${snapshotsDir(domain)}/${snap}`;
const currentPath = (domain: string): string => domainPath(domain, 'snapshot-current');

export async function readSnapshots(r: StoreReader, domain: string): Promise<SnapshotRecord[]> {
  const names = (await r.list(snapshotsDir(domain))) ?? [];
  const out: SnapshotRecord[] = [];
  for (const n of names) {
    const text = await r.read(snapshotPath(domain, n));
    if (text !== undefined) out.push(JSON.parse(text) as SnapshotRecord);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}

async function requireSnapshot(r: StoreReader, domain: string, snap: string): Promise<SnapshotRecord> {
  assertSnapshotName(snap);
  const text = await r.read(snapshotPath(domain, snap));
  if (text === undefined) throw new VirtkitError('snapshot.not-found', `domain "${domain}" has no snapshot "${snap}"`, { name: domain, snapshot: snap });
  return JSON.parse(text) as SnapshotRecord;
}

function infoOf(domain: string, rec: SnapshotRecord, all: SnapshotRecord[], current: string | undefined): SnapshotInfo {
  return {
    name: rec.name, domain, kind: rec.kind, memory: rec.memory, state: rec.state,
    ...(rec.parent !== undefined ? { parent: rec.parent } : {}),
    children: all.filter((s) => s.parent === rec.name).map((s) => s.name),
    current: current === rec.name, createdAt: rec.createdAt,
    disks: rec.disks.map((d) => ({ id: d.id, path: d.path, format: d.format, ...(d.overlay ? { overlay: d.overlay } : {}) })),
  };
}

export async function listSnapshots(h: GuestStateHost, origin: Origin, domain: string): Promise<SnapshotInfo[]> {
  const store = h.store.as(origin);
  await requireDomain(store, domain);
  const all = await readSnapshots(store, domain);
  const current = await store.read(currentPath(domain));
  return all.map((s) => infoOf(domain, s, all, current));
}

export async function snapshotInfo(h: GuestStateHost, origin: Origin, domain: string, snap: string): Promise<SnapshotInfo> {
  const store = h.store.as(origin);
  await requireDomain(store, domain);
  const rec = await requireSnapshot(store, domain, snap);
  return infoOf(domain, rec, await readSnapshots(store, domain), await store.read(currentPath(domain)));
}

async function writeSnapshot(w: StoreWriter, domain: string, rec: SnapshotRecord): Promise<void> {
  await w.write(snapshotPath(domain, rec.name), JSON.stringify(rec));
}

/** The overlay file for `image` frozen by snapshot `snap`: beside it, `<stem>.<snap>.qcow2` (a suffix when taken). */
async function overlayPathFor(image: string, snap: string): Promise<string> {
  const stem = basename(image, extname(image));
  for (let i = 0; i < 1000; i++) {
    const candidate = join(dirname(image), `${stem}.${snap}${i === 0 ? '' : `.${i}`}.qcow2`);
    if (!(await stat(candidate).then(() => true, () => false))) return candidate;
  }
  throw new VirtkitError('snapshot.exists', `no free overlay name beside ${image}`, { image });
}

async function virtualSize(image: string, format: string): Promise<number> {
  // -U: the image may be open (and locked) by the running QEMU; only its header is read
  const { stdout } = await runQemuImg(['info', '-U', '--output=json', '-f', format, image]);
  return (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'];
}

/** A new qcow2 overlay backed by `image` (-u: the backing file is not opened, it may be in use). */
async function createOverlay(image: string, format: string, overlay: string): Promise<void> {
  const size = await virtualSize(image, format);
  await runQemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', image, '-F', format, overlay, String(size)]);
}

/** The definition with each listed disk now on its overlay (a qcow2 file). */
function onOverlays(def: DomainDefinition, overlays: readonly { id: string; overlay: string }[]): DomainDefinition {
  const by = new Map(overlays.map((o) => [o.id, o.overlay]));
  return {
    ...def,
    disks: def.disks.map((d) => {
      const overlay = by.get(d.id);
      if (overlay === undefined) return d;
      const { volume: _volume, ...rest } = d;
      return { ...rest, source: overlay, format: 'qcow2' as const };
    }),
  };
}

export async function createSnapshot(h: GuestStateHost, origin: Origin, domain: string, body: SnapshotCreateBody): Promise<SnapshotInfo> {
  const snap = body.name ?? String(Math.floor(Date.now() / 1000));
  assertSnapshotName(snap);
  return h.lock(domain, () => h.jobs.run(domain, 'snapshot', async (progress) => {
    const store = h.store.as(origin);
    const rec = await requireDomain(store, domain);
    if (await store.read(snapshotPath(domain, snap)) !== undefined) {
      throw new VirtkitError('snapshot.exists', `domain "${domain}" already has a snapshot "${snap}"`, { name: domain, snapshot: snap });
    }
    const active = isActive(rec.status);
    const live = active ? h.requireLive(domain, rec, 'domain.save') : undefined;
    const runningDef = rec.live ?? rec.definition;
    const disks = (await h.diskPaths(active ? runningDef : rec.definition)).filter((d) => !d.readonly);
    if (disks.length === 0) throw new VirtkitError('operation.unsupported', `"${domain}" has no writable disk to snapshot`, { name: domain });
    const state: SnapshotRecord['state'] = live ? ((await live.handle.state()) !== 'running' ? 'paused' : 'running') : 'shutoff';
    const base = { name: snap, state, createdAt: new Date().toISOString(), definition: rec.definition };
    let record: SnapshotRecord;
    let newSaved: DomainDefinition | undefined;
    let newLive: DomainDefinition | undefined;
    if (body.diskOnly !== true) {
      const notQcow2 = disks.filter((d) => d.format !== 'qcow2');
      if (notQcow2.length > 0) {
        throw new VirtkitError('operation.unsupported',
          `an internal snapshot needs every writable disk in qcow2 (${notQcow2.map((d) => `${d.id} is ${d.format}`).join(', ')}); take an external one with --disk-only`,
          { disks: notQcow2.map((d) => d.id) });
      }
      if (live) await live.handle.internalSnapshot('save', snap, progress);
      else for (const d of disks) await qemuImgSnapshot('-c', snap, d.path);
      record = { ...base, kind: 'internal', memory: live !== undefined, disks: disks.map((d) => ({ id: d.id, path: d.path, format: d.format })) };
    } else {
      const overlays: { id: string; overlay: string; path: string; format: string }[] = [];
      for (const d of disks) overlays.push({ id: d.id, path: d.path, format: d.format, overlay: await overlayPathFor(d.path, snap) });
      const created: string[] = [];
      try {
        for (const o of overlays) {
          await createOverlay(o.path, o.format, o.overlay);
          created.push(o.overlay);
        }
        newSaved = onOverlays(rec.definition, overlays.filter((o) => rec.definition.disks.some((d) => d.id === o.id)));
        if (live) {
          newLive = onOverlays(runningDef, overlays);
          await live.handle.externalSnapshot(overlays, snap, newLive);
        }
      } catch (err) {
        // nothing half-made: the disks stay on their images (externalSnapshot is all or none), so no overlay is in use
        for (const file of created) await rm(file, { force: true });
        throw err;
      }
      record = { ...base, kind: 'external', memory: false, disks: overlays.map((o) => ({ id: o.id, path: o.path, format: o.format, overlay: o.overlay })) };
    }
    return h.tx(origin, async (tx) => {
      const cur = await requireDomain(tx, domain);
      const parent = await tx.read(currentPath(domain));
      const stored: SnapshotRecord = { ...record, ...(parent !== undefined && (await tx.exists(snapshotPath(domain, parent))) ? { parent } : {}) };
      await writeSnapshot(tx, domain, stored);
      await tx.write(currentPath(domain), snap);
      if (newSaved) await tx.write(domainPath(domain, 'definition'), JSON.stringify(newSaved));
      if (newLive && isActive(cur.status)) await writeLive(tx, domain, newLive);
      await recordEvent(tx, 'snapshot', cur, `created ${snap}`);
      return infoOf(domain, stored, await readSnapshots(tx, domain), snap);
    });
  }));
}

/** `qemu-img snapshot` on a qcow2 image, its format given (--image-opts), never probed. */
async function qemuImgSnapshot(op: '-c' | '-a' | '-d', snap: string, image: string): Promise<void> {
  await runQemuImg(['snapshot', '-q', op, snap, '--image-opts', `driver=qcow2,file.driver=file,file.filename=${image.replace(/,/g, ',,')}`]);
}

/**
 * An internal snapshot lives in images the domain must still use directly: once an external
 * snapshot froze them under an overlay, loading it would write into a backing file that the
 * overlay (and the external snapshot) depend on.
 */
async function assertInternalReachable(h: GuestStateHost, domain: string, rec: DomainRecord, target: SnapshotRecord): Promise<void> {
  const now = new Set((await h.diskPaths(isActive(rec.status) ? rec.live ?? rec.definition : rec.definition)).map((d) => d.path));
  const moved = target.disks.filter((d) => !now.has(d.path));
  if (moved.length > 0) {
    throw new VirtkitError('operation.unsupported',
      `cannot revert "${domain}" to "${target.name}": its image${moved.length === 1 ? '' : 's'} ${moved.map((d) => d.path).join(', ')} ${moved.length === 1 ? 'is' : 'are'} no longer the domain's own disk (an external snapshot since froze ${moved.length === 1 ? 'it' : 'them'} under an overlay)`,
      { name: domain, snapshot: target.name, images: moved.map((d) => d.path) });
  }
}

async function missingFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) if (!(await stat(p).then((s) => s.isFile(), () => false))) out.push(p);
  return out;
}

/**
 * Back to a snapshot. With RAM (internal, taken while it ran): a running guest loads it in
 * place; a stopped one is started paused first; the guest ends in the state it had then.
 * Without RAM: the domain ends shut off (a running guest is stopped at once, as libvirt does),
 * its disks as they were: qemu-img applies an internal snapshot; an external one gets fresh
 * overlays on the images it froze, and the saved definition names them.
 */
export async function revertSnapshot(h: GuestStateHost, origin: Origin, domain: string, snap: string): Promise<DomainStateInfo> {
  const pre = await requireDomain(h.store.as(origin), domain);
  const target = await requireSnapshot(h.store.as(origin), domain, snap);
  const missing = await missingFiles(target.disks.map((d) => d.path));
  if (missing.length > 0) {
    throw new VirtkitError('snapshot.disks-missing', `cannot revert "${domain}" to "${snap}": ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} gone`,
      { name: domain, snapshot: snap, missing });
  }
  if (target.kind === 'internal') await assertInternalReachable(h, domain, pre, target);
  let finalState: 'running' | 'paused' | undefined;
  if (target.memory) {
    if (!isActive(pre.status)) await h.start(origin, domain, { paused: true });
    finalState = await h.lock(domain, () => h.jobs.run(domain, 'snapshot', async (progress) => {
      const rec = await requireDomain(h.store.as(origin), domain);
      const live = h.requireLive(domain, rec, 'domain.save');
      await live.handle.internalSnapshot('load', snap, progress);
      const now = await live.handle.state();
      if (target.state === 'running' && now !== 'running') await live.handle.resume();
      if (target.state === 'paused' && now === 'running') await live.handle.pause();
      return target.state === 'paused' ? 'paused' : 'running';
    }));
  } else {
    if (isActive(pre.status)) await h.destroy(origin, domain);
    await h.lock(domain, async () => {
      const rec = await requireDomain(h.store.as(origin), domain);
      if (isActive(rec.status)) throw new VirtkitError('domain.invalid-state', `"${domain}" was started again during the revert`, { name: domain });
      if (target.kind === 'internal') {
        for (const d of target.disks) await qemuImgSnapshot('-a', snap, d.path);
      } else {
        const overlays: { id: string; overlay: string }[] = [];
        for (const d of target.disks) {
          const overlay = await overlayPathFor(d.path, snap);
          await createOverlay(d.path, d.format, overlay);
          overlays.push({ id: d.id, overlay });
        }
        await h.tx(origin, (tx) => tx.write(domainPath(domain, 'definition'), JSON.stringify(onOverlays(target.definition, overlays))));
      }
    });
  }
  return h.lock(domain, () => h.tx(origin, async (tx) => {
    const cur = await requireDomain(tx, domain);
    if (target.kind === 'internal') await tx.write(domainPath(domain, 'definition'), JSON.stringify(keepDisks(target.definition, cur.definition)));
    await tx.write(currentPath(domain), snap);
    // pause and resume asked of the driver directly are not recorded by the event path: here they are
    if (finalState && (cur.status.state === 'running' || cur.status.state === 'paused')) await writeStatus(tx, domain, { ...cur.status, state: finalState });
    await recordEvent(tx, 'snapshot', cur, `reverted ${snap}`);
    const state = finalState ?? visibleState(cur.status);
    return cur.status.state === 'shutoff' && cur.status.reason && !finalState ? { state, reason: cur.status.reason } : { state };
  }));
}

/** An internal snapshot's definition, but with the disks the domain has now (the same images hold the snapshot). */
function keepDisks(snapDef: DomainDefinition, now: DomainDefinition): DomainDefinition {
  return { ...snapDef, disks: now.disks };
}

/**
 * Deletes a snapshot: its children move to its parent, and the current one becomes its parent
 * if it was current. An internal one is removed from its images (by the running QEMU, or
 * qemu-img); an external one's files stay, as the disks' backing chain may need them.
 */
export async function deleteSnapshot(h: GuestStateHost, origin: Origin, domain: string, snap: string): Promise<void> {
  await h.lock(domain, async () => {
    const rec: DomainRecord = await requireDomain(h.store.as(origin), domain);
    const target = await requireSnapshot(h.store.as(origin), domain, snap);
    if (target.kind === 'internal') {
      const active = isActive(rec.status);
      const running = new Set(active ? (await h.diskPaths(rec.live ?? rec.definition)).map((d) => d.path) : []);
      const inQemu = target.disks.some((d) => running.has(d.path));
      if (active && inQemu) {
        await h.requireLive(domain, rec, 'domain.save').handle.internalSnapshot('delete', snap);
      } else {
        for (const d of target.disks) {
          if (!(await stat(d.path).then(() => true, () => false))) continue;
          try {
            await qemuImgSnapshot('-d', snap, d.path);
          } catch (err) {
            // the running QEMU holds the image (a backing file under an external snapshot's overlay)
            if (active && isVirtkitError(err, 'qemu-img.failed') && /lock/i.test(err.message)) {
              throw new VirtkitError('domain.invalid-state',
                `cannot delete "${snap}" while "${domain}" runs: its image ${d.path} is in use by the guest (a backing file under an overlay); shut it down first`,
                { name: domain, snapshot: snap, image: d.path, state: 'running', allowed: ['shutoff', 'crashed'] });
            }
            throw err;
          }
        }
      }
    }
    await h.tx(origin, async (tx) => {
      const cur = await requireDomain(tx, domain);
      for (const s of await readSnapshots(tx, domain)) {
        if (s.parent !== snap) continue;
        const { parent: _p, ...rest } = s;
        await writeSnapshot(tx, domain, target.parent !== undefined ? { ...rest, parent: target.parent } : rest);
      }
      await tx.rm(snapshotPath(domain, snap));
      if ((await tx.read(currentPath(domain))) === snap) {
        if (target.parent !== undefined) await tx.write(currentPath(domain), target.parent);
        else await tx.rm(currentPath(domain));
      }
      await recordEvent(tx, 'snapshot', cur, `deleted ${snap}`);
    });
  });
}
