/**
 * Hot-plug, memory and CPUs in the manager (docs/hotplug.md, docs/memory-cpus.md). The manager
 * takes the domain's lock and hands over a DeviceContext; this module checks the request
 * against the live and saved definitions, asks the driver for the live change, and records
 * both definitions and the event in ONE store transaction, so they never disagree silently:
 * a change made to one of them only (`--live` or `--config`) shows as `definitionDiffers`.
 *
 * Every refusal happens before anything changes: a target, id or MAC in use (device.exists),
 * a device that is not there (device.not-found), an image that is missing (image.not-found)
 * or not in the format given (image.format-mismatch), a definition the change would make
 * invalid (definition.invalid). A QMP failure halfway is rolled back by the driver.
 */
import { open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type {
  AttachDiskBody, AttachInterfaceBody, BlockList, DeviceChange, DeviceMethods, DeviceTargetParams, InactiveQuery, InterfaceList,
  MemorySizeBody, MemoryStatsResult, ScopeQuery, SetMaxMemoryResult, SetMemoryResult, SetVcpusBody, SetVcpusResult, VcpuInfoList,
} from '../api/index.js';
import {
  DiskBuses, MinMemoryBytes, TargetPrefixes, randomMac, validateDefinition, formatSize,
  type DiskBus, type DiskDefinition, type DomainDefinition, type NicDefinition,
} from '../conf/index.js';
import { diskPlacementProblem, hasBalloon, type GuestHandle } from '../qemu/index.js';
import type { Origin, Transaction } from '../store/index.js';
import { VirtkitError } from '../util/errors.js';
import { domainPath, requireDomain, visibleState, writeLive, type DomainRecord } from './domain-records.js';
import { recordEvent } from './event-log.js';

/** What the manager hands over, under the domain's lock. */
export interface DeviceContext {
  rec: DomainRecord;
  /** The driver's handle when the guest runs (or is paused); undefined when it is stopped. */
  handle: GuestHandle | undefined;
  /** One store transaction as the caller (conflicts retried). */
  commit<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Host paths of a definition's `pool/volume` disks. */
  volumePaths(def: DomainDefinition): Promise<Record<string, string>>;
  /** The tap of a NIC on a virtkit network, made before it is plugged (daemon/networks.ts); the NIC as QEMU gets it. */
  prepareNic?(nic: NicDefinition): Promise<NicDefinition>;
  /** Removes the tap of a NIC that was unplugged (or whose plug failed). */
  releaseNic?(nicId: string): Promise<void>;
}

/** How long an unplug waits for the guest to release the device (ACPI eject under TCG takes well under a second). */
export const DetachTimeoutMs = 15_000;
/** How long setmem waits for the balloon to reach its target, and how often it looks. */
export const BalloonSettleMs = 20_000;
const BalloonPollMs = 250;
/** setmem's floor: at least this much, and at least a quarter of the maximum (docs/memory-cpus.md). */
export const BalloonFloorBytes = 64 * 1024 * 1024;
const MiB = 1024 * 1024;

/** The lowest balloon target setmem accepts for a guest whose maximum is `max`. */
export function memoryFloor(max: number): number {
  const quarter = Math.ceil(max / 4 / MiB) * MiB;
  return Math.min(max, Math.max(BalloonFloorBytes, quarter));
}

interface Scope { live: boolean; config: boolean }

/**
 * Which definitions a change applies to. Neither flag: both for a running guest, the saved one
 * for a stopped guest; `live` on a stopped guest is refused.
 */
export function resolveScope(ctx: Pick<DeviceContext, 'rec' | 'handle'>, flags: { live?: boolean | undefined; config?: boolean | undefined }): Scope {
  const running = ctx.handle !== undefined;
  if (ctx.rec.status.state === 'starting') {
    throw new VirtkitError('domain.invalid-state', `"${ctx.rec.name}" is starting; try again once it runs`, { name: ctx.rec.name, state: 'running' });
  }
  if (flags.live !== true && flags.config !== true) return { live: running, config: true };
  if (flags.live === true && !running) {
    throw new VirtkitError('domain.invalid-state', `"${ctx.rec.name}" is not running: --live needs a running guest (use --config to change the saved definition)`,
      { name: ctx.rec.name, state: visibleState(ctx.rec.status), allowed: ['running', 'paused'] });
  }
  return { live: flags.live === true, config: flags.config === true };
}

/**
 * An unplug needs the guest to act (ACPI eject): a paused guest cannot, so it is refused at
 * once rather than timing out with the device half-way.
 */
function requireGuestRunning(ctx: DeviceContext, what: string): void {
  if (ctx.rec.status.state === 'paused') {
    throw new VirtkitError('domain.invalid-state', `"${ctx.rec.name}" is paused: the guest cannot release ${what}; resume it first, or use --config`,
      { name: ctx.rec.name, state: 'paused', allowed: ['running'] });
  }
}

function liveDef(ctx: DeviceContext): DomainDefinition {
  return ctx.handle?.liveDefinition() ?? ctx.rec.live ?? ctx.rec.definition;
}

function requireHandle(ctx: DeviceContext): GuestHandle {
  if (ctx.handle === undefined) {
    throw new VirtkitError('domain.invalid-state', `"${ctx.rec.name}" is not running`, { name: ctx.rec.name, state: visibleState(ctx.rec.status), allowed: ['running', 'paused'] });
  }
  return ctx.handle;
}

/** The definitions a scope touches, by name, for messages. */
function scopeDefs(ctx: DeviceContext, scope: Scope): [string, DomainDefinition][] {
  const out: [string, DomainDefinition][] = [];
  if (scope.live) out.push(['the running guest', liveDef(ctx)]);
  if (scope.config) out.push(['the saved definition', ctx.rec.definition]);
  return out;
}

/** Validates a changed definition as a new document: every rule (unique names, bus prefixes, controllers, boot disk) applies. */
function revalidate(def: DomainDefinition): DomainDefinition {
  return validateDefinition(def);
}

/**
 * Writes what changed and the event, in one transaction: the saved definition (config), the
 * live one as the driver now has it (live).
 */
async function record(ctx: DeviceContext, scope: Scope, change: { saved?: DomainDefinition; event: 'device-attached' | 'device-detached' | 'memory-changed' | 'vcpus-changed'; reason: string }): Promise<void> {
  await ctx.commit(async (tx) => {
    const cur = await requireDomain(tx, ctx.rec.name);
    if (scope.config && change.saved !== undefined) await tx.write(domainPath(ctx.rec.name, 'definition'), JSON.stringify(change.saved));
    if (scope.live && ctx.handle !== undefined) await writeLive(tx, ctx.rec.name, ctx.handle.liveDefinition());
    await recordEvent(tx, change.event, cur, change.reason);
  });
}

function scopeWords(scope: Scope): string {
  return [scope.live ? 'live' : '', scope.config ? 'config' : ''].filter(Boolean).join(',');
}

// ---- disks -------------------------------------------------------------------------------------

const VolumeRefPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

/** The bus a target's prefix names (vd: virtio, sd: scsi, hd: ide). */
function busOfTarget(target: string): DiskBus | undefined {
  return DiskBuses.find((bus) => target.startsWith(TargetPrefixes[bus]));
}

const Qcow2Magic = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/**
 * Refuses an image that is missing or not in the format given: a qcow2 file attached as raw
 * would show the guest its qcow2 header (and let it write a backing file name into it).
 */
async function checkImage(path: string, format: DiskDefinition['format']): Promise<void> {
  let head: Buffer;
  try {
    const file = await open(path, 'r');
    try {
      head = Buffer.alloc(4);
      const { bytesRead } = await file.read(head, 0, 4, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new VirtkitError('image.not-found', `${path}: no such file`, { path });
    if (code === 'EISDIR') throw new VirtkitError('image.format-mismatch', `${path} is a directory, not an image`, { path });
    throw new VirtkitError('image.io', `${path}: ${(err as Error).message}`, { path });
  }
  const isQcow2 = head.equals(Qcow2Magic);
  if (format === 'qcow2' && !isQcow2) throw new VirtkitError('image.format-mismatch', `${path} is not a qcow2 image (no QFI\\xfb magic); attach it with --format raw`, { path, format });
  if (format === 'raw' && isQcow2) throw new VirtkitError('image.format-mismatch', `${path} is a qcow2 image; attach it with --format qcow2`, { path, format });
}

/** The disk a request describes, checked against the definitions it goes into. */
function newDisk(ctx: DeviceContext, scope: Scope, body: AttachDiskBody): DiskDefinition {
  const bus = body.bus ?? busOfTarget(body.target) ?? 'virtio';
  if ((body.source === undefined) === (body.volume === undefined)) {
    throw new VirtkitError('argument.invalid', 'give exactly one of source (a host path) and volume (pool/volume)', { field: 'source' });
  }
  if (body.source !== undefined && !isAbsolute(body.source)) {
    throw new VirtkitError('argument.invalid', `source must be an absolute path, got ${JSON.stringify(body.source)}`, { field: 'source' });
  }
  if (body.volume !== undefined && !VolumeRefPattern.test(body.volume)) {
    throw new VirtkitError('volume.invalid-name', `"${body.volume}" is not a volume reference: write it as pool/volume`, { volume: body.volume });
  }
  const disk: DiskDefinition = {
    id: body.target, target: body.target, bus, format: body.format ?? 'raw', readonly: body.readonly === true, cache: 'writeback',
    ...(body.source !== undefined ? { source: body.source } : { volume: body.volume! }),
  };
  for (const [where, def] of scopeDefs(ctx, scope)) {
    const taken = def.disks.find((d) => d.target === disk.target || d.id === disk.id) ?? def.nics.find((n) => n.id === disk.id);
    if (taken !== undefined) {
      throw new VirtkitError('device.exists', `${where} of "${ctx.rec.name}" already has a device named ${disk.target}`, { name: ctx.rec.name, target: disk.target });
    }
  }
  return disk;
}

/**
 * An image is used by one disk of a guest unless every use is read-only: QEMU takes a write
 * lock on a writable image, and a second disk on it fails (`Failed to get "write" lock`).
 */
function assertImageFree(ctx: DeviceContext, scope: Scope, disk: DiskDefinition, hostPath: string): void {
  for (const [where, def] of scopeDefs(ctx, scope)) {
    const holder = def.disks.find((d) => (d.source !== undefined ? d.source === hostPath : d.volume === disk.volume) && !(d.readonly && disk.readonly));
    if (holder !== undefined) {
      throw new VirtkitError('device.exists', `${where} of "${ctx.rec.name}" already has ${hostPath} as disk ${holder.target}; an image can be attached twice only read-only both times`,
        { name: ctx.rec.name, target: holder.target, path: hostPath });
    }
  }
}

export async function attachDisk(ctx: DeviceContext, body: AttachDiskBody): Promise<DeviceChange> {
  const scope = resolveScope(ctx, body);
  const disk = newDisk(ctx, scope, body);
  // Every check first: the new definitions must be valid, the image there and in its format.
  const saved = scope.config ? revalidate({ ...ctx.rec.definition, disks: [...ctx.rec.definition.disks, disk] }) : undefined;
  if (scope.live) {
    revalidate({ ...liveDef(ctx), disks: [...liveDef(ctx).disks, disk] });
    if (disk.bus === 'ide') throw new VirtkitError('operation.unsupported', 'ide disks cannot be hot-plugged (QEMU\'s IDE has no hot-plug): use --bus virtio or scsi, or --config', { bus: 'ide' });
    const problem = diskPlacementProblem(disk, liveDef(ctx).machine);
    if (problem !== undefined) throw new VirtkitError('definition.invalid', `target ${disk.target} ${problem}`, { path: 'target', rule: 'placement' });
  }
  const hostPath = disk.source ?? (await ctx.volumePaths({ ...ctx.rec.definition, disks: [disk] }))[disk.volume!];
  if (hostPath === undefined) throw new VirtkitError('volume.not-found', `no host path for volume ${disk.volume ?? ''}`, { volume: disk.volume });
  await checkImage(hostPath, disk.format);
  assertImageFree(ctx, scope, disk, hostPath);
  if (scope.live) await requireHandle(ctx).attachDisk(disk, hostPath);
  await recordOrUndo(ctx, scope, { ...(saved ? { saved } : {}), event: 'device-attached', reason: `disk ${disk.target} (${scopeWords(scope)})` },
    () => requireHandle(ctx).detachDisk(disk.id, { timeoutMs: DetachTimeoutMs }));
  return { kind: 'disk', id: disk.id, target: disk.target, live: scope.live, config: scope.config };
}

/**
 * Records a change; when the store refuses it after the guest was changed, the live change is
 * undone (best effort) so the running guest and the records do not part silently.
 */
async function recordOrUndo(ctx: DeviceContext, scope: Scope, change: Parameters<typeof record>[2], undo: () => Promise<void>): Promise<void> {
  try {
    await record(ctx, scope, change);
  } catch (err) {
    if (scope.live) await undo().catch(() => undefined);
    throw err;
  }
}

/** Finds a device by a scope's rule: explicit flags need it in each definition named, the default in at least one. */
function findIn<T>(ctx: DeviceContext, scope: Scope, explicit: boolean, what: string, key: string, pick: (def: DomainDefinition) => T | undefined): { scope: Scope; found: T } {
  const inLive = scope.live ? pick(liveDef(ctx)) : undefined;
  const inSaved = scope.config ? pick(ctx.rec.definition) : undefined;
  const missing = (where: string, verb = 'has'): VirtkitError => new VirtkitError('device.not-found', `${where} of "${ctx.rec.name}" ${verb} no ${what} ${key}`, { name: ctx.rec.name, device: key });
  if (explicit) {
    if (scope.live && inLive === undefined) throw missing('the running guest');
    if (scope.config && inSaved === undefined) throw missing('the saved definition');
  }
  const found = inLive ?? inSaved;
  if (found === undefined) throw missing(scope.live ? 'the running guest and the saved definition' : 'the saved definition', scope.live ? 'have' : 'has');
  return { scope: { live: inLive !== undefined, config: inSaved !== undefined }, found };
}

export async function detachDisk(ctx: DeviceContext, device: string, flags: ScopeQuery): Promise<DeviceChange> {
  const asked = resolveScope(ctx, flags);
  const explicit = flags.live === true || flags.config === true;
  const { scope, found } = findIn(ctx, asked, explicit, 'disk', device, (def) => def.disks.find((d) => d.target === device || d.id === device));
  const saved = scope.config ? revalidate({ ...ctx.rec.definition, disks: ctx.rec.definition.disks.filter((d) => d.id !== found.id) }) : undefined;
  if (scope.live) {
    requireGuestRunning(ctx, `disk ${found.target}`);
    await requireHandle(ctx).detachDisk(found.id, { timeoutMs: DetachTimeoutMs });
  }
  await record(ctx, scope, { ...(saved ? { saved } : {}), event: 'device-detached', reason: `disk ${found.target} (${scopeWords(scope)})` });
  return { kind: 'disk', id: found.id, target: found.target, live: scope.live, config: scope.config };
}

export function blockList(ctx: DeviceContext, query: InactiveQuery): BlockList {
  const def = query.inactive === true || ctx.handle === undefined ? ctx.rec.definition : liveDef(ctx);
  return {
    disks: def.disks.map((d) => ({ target: d.target, id: d.id, bus: d.bus, format: d.format, source: d.source ?? d.volume ?? '', readonly: d.readonly })),
  };
}

// ---- network interfaces ------------------------------------------------------------------------

const MacPattern = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** The first `netN` no device of any of the definitions uses, so the id is the same in both. */
function nextNicId(defs: DomainDefinition[]): string {
  const taken = new Set(defs.flatMap((def) => [...def.disks.flatMap((d) => [d.id, d.target]), ...def.nics.map((n) => n.id)]));
  let n = 0;
  while (taken.has(`net${n}`)) n++;
  return `net${n}`;
}

export async function attachInterface(ctx: DeviceContext, body: AttachInterfaceBody): Promise<DeviceChange> {
  const scope = resolveScope(ctx, body);
  const defs = scopeDefs(ctx, scope);
  if (body.mac !== undefined && !MacPattern.test(body.mac)) {
    throw new VirtkitError('argument.invalid', `--mac must be a MAC address like 52:54:00:12:34:56, got ${JSON.stringify(body.mac)}`, { field: 'mac' });
  }
  const used = new Set(defs.flatMap(([, def]) => def.nics.map((n) => n.mac)));
  let mac = body.mac?.toLowerCase();
  if (mac !== undefined && used.has(mac)) {
    const where = defs.find(([, def]) => def.nics.some((n) => n.mac === mac))![0];
    throw new VirtkitError('device.exists', `${where} of "${ctx.rec.name}" already has an interface with MAC ${mac}`, { name: ctx.rec.name, mac });
  }
  if (mac === undefined) {
    mac = randomMac();
    while (used.has(mac)) mac = randomMac();
  }
  const nic: NicDefinition = { id: nextNicId(defs.map(([, def]) => def)), model: body.model ?? 'virtio', mac, network: body.network ?? 'user', hostfwd: [] };
  const saved = scope.config ? revalidate({ ...ctx.rec.definition, nics: [...ctx.rec.definition.nics, nic] }) : undefined;
  if (scope.live) {
    revalidate({ ...liveDef(ctx), nics: [...liveDef(ctx).nics, nic] });
    // A NIC on a virtkit network gets its tap first (docs/networks.md); it goes again if the plug fails.
    const plugged = nic.network !== 'user' && ctx.prepareNic ? await ctx.prepareNic(nic) : nic;
    try {
      await requireHandle(ctx).attachNic(plugged);
    } catch (err) {
      if (plugged !== nic) await ctx.releaseNic?.(nic.id);
      throw err;
    }
  }
  await recordOrUndo(ctx, scope, { ...(saved ? { saved } : {}), event: 'device-attached', reason: `interface ${nic.id} ${nic.mac} (${scopeWords(scope)})` },
    async () => { await requireHandle(ctx).detachNic(nic.id, { timeoutMs: DetachTimeoutMs }); await ctx.releaseNic?.(nic.id); });
  return { kind: 'interface', id: nic.id, mac: nic.mac, live: scope.live, config: scope.config };
}

export async function detachInterface(ctx: DeviceContext, device: string, flags: ScopeQuery): Promise<DeviceChange> {
  const asked = resolveScope(ctx, flags);
  const explicit = flags.live === true || flags.config === true;
  const key = MacPattern.test(device) ? device.toLowerCase() : device;
  const { scope, found } = findIn(ctx, asked, explicit, 'interface', key, (def) => def.nics.find((n) => n.mac === key || n.id === key));
  const saved = scope.config ? revalidate({ ...ctx.rec.definition, nics: ctx.rec.definition.nics.filter((n) => n.id !== found.id) }) : undefined;
  if (scope.live) {
    requireGuestRunning(ctx, `interface ${found.id}`);
    await requireHandle(ctx).detachNic(found.id, { timeoutMs: DetachTimeoutMs });
    if (found.network !== 'user') await ctx.releaseNic?.(found.id);
  }
  await record(ctx, scope, { ...(saved ? { saved } : {}), event: 'device-detached', reason: `interface ${found.id} ${found.mac} (${scopeWords(scope)})` });
  return { kind: 'interface', id: found.id, mac: found.mac, live: scope.live, config: scope.config };
}

export function interfaceList(ctx: DeviceContext, query: InactiveQuery): InterfaceList {
  const def = query.inactive === true || ctx.handle === undefined ? ctx.rec.definition : liveDef(ctx);
  return { interfaces: def.nics.map((n) => ({ id: n.id, type: n.network, model: n.model, mac: n.mac })) };
}

// ---- memory ------------------------------------------------------------------------------------

function requireBalloon(ctx: DeviceContext): GuestHandle {
  const handle = requireHandle(ctx);
  if (!hasBalloon(handle.liveDefinition())) {
    throw new VirtkitError('operation.unsupported', `"${ctx.rec.name}" has no balloon device (balloon: false, or a machine without PCI): its memory cannot change while it runs`, { name: ctx.rec.name });
  }
  return handle;
}

export async function setMemory(ctx: DeviceContext, body: MemorySizeBody, opts: { settleMs?: number } = {}): Promise<SetMemoryResult> {
  const handle = requireBalloon(ctx);
  const max = handle.liveDefinition().memory;
  const floor = memoryFloor(max);
  const size = body.size;
  if (size > max) {
    throw new VirtkitError('memory.out-of-range', `${formatSize(size)} is above the maximum of "${ctx.rec.name}", ${formatSize(max)} (its boot memory; setmaxmem raises it for the next start)`, { size, max, floor });
  }
  if (size < floor) {
    // in bytes too: a virsh user's plain number (KiB there, bytes here) shows what it was read as
    throw new VirtkitError('memory.out-of-range', `${formatSize(size)} (${size} bytes) is below the floor of "${ctx.rec.name}", ${formatSize(floor)} (64 MiB or a quarter of the maximum, whichever is more)`, { size, max, floor });
  }
  // the range first, so that a size far off is told as such rather than as a fraction of a MiB
  if (size % MiB !== 0) throw new VirtkitError('argument.invalid', `the memory size must be a whole number of MiB, got ${size} bytes`, { field: 'size', size });
  await handle.setMemory(size);
  // A paused guest's balloon driver cannot move until it runs again: answer at once.
  const waitMs = ctx.rec.status.state === 'paused' ? 0 : opts.settleMs ?? BalloonSettleMs;
  const { actual, settled } = await waitForBalloon(handle, size, waitMs);
  await record(ctx, { live: true, config: false }, { event: 'memory-changed', reason: `target ${formatSize(size)}, actual ${formatSize(actual)}` });
  return { target: size, actual, settled };
}

/**
 * Polls the balloon until it reaches the target, or stops moving for 2 s after it moved (a guest
 * that cannot give more back), or the wait ends.
 */
async function waitForBalloon(handle: GuestHandle, target: number, waitMs: number): Promise<{ actual: number; settled: boolean }> {
  const deadline = Date.now() + waitMs;
  let last = (await handle.memoryStats()).actual;
  let stillSince = Date.now();
  const first = last;
  while (last !== target && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, BalloonPollMs));
    const now = (await handle.memoryStats()).actual;
    if (now !== last) stillSince = Date.now();
    last = now;
    if (last !== first && Date.now() - stillSince >= 2000) break;
  }
  return { actual: last, settled: last === target };
}

export async function setMaxMemory(ctx: DeviceContext, body: MemorySizeBody): Promise<SetMaxMemoryResult> {
  resolveScope(ctx, {});
  if (body.size < MinMemoryBytes || body.size % MiB !== 0) {
    throw new VirtkitError('memory.out-of-range', `the maximum memory must be at least ${formatSize(MinMemoryBytes)} and a whole number of MiB, got ${body.size} bytes`, { size: body.size });
  }
  const saved = revalidate({ ...ctx.rec.definition, memory: body.size });
  await record(ctx, { live: false, config: true }, { saved, event: 'memory-changed', reason: `maximum ${formatSize(body.size)} (next start)` });
  return { memory: body.size, ...(ctx.handle ? { liveMemory: ctx.handle.liveDefinition().memory } : {}) };
}

export async function memoryStats(ctx: DeviceContext): Promise<MemoryStatsResult> {
  const stats = await requireBalloon(ctx).memoryStats();
  return { actual: stats.actual, pollIntervalSeconds: stats.pollIntervalSeconds, ...(stats.lastUpdate !== undefined ? { lastUpdate: stats.lastUpdate } : {}), stats: { ...stats.stats } };
}

// ---- vCPUs -------------------------------------------------------------------------------------

export async function setVcpus(ctx: DeviceContext, body: SetVcpusBody): Promise<SetVcpusResult> {
  const scope = resolveScope(ctx, body);
  const { count } = body;
  if (count < 1) throw new VirtkitError('vcpus.out-of-range', `a guest needs at least 1 vCPU, got ${count}`, { count });
  let saved: DomainDefinition | undefined;
  if (scope.config) {
    const def = ctx.rec.definition;
    if (def.maxvcpus !== undefined && count > def.maxvcpus) {
      throw new VirtkitError('vcpus.out-of-range', `${count} vCPUs is above maxvcpus (${def.maxvcpus}) of the saved definition of "${ctx.rec.name}"`, { count, max: def.maxvcpus });
    }
    saved = revalidate({ ...def, vcpus: count });
  }
  if (scope.live) {
    const live = liveDef(ctx);
    if (count !== live.vcpus && live.maxvcpus === undefined) {
      throw new VirtkitError('operation.unsupported',
        `"${ctx.rec.name}" was started without maxvcpus, so it has no room for CPU hot-plug: set maxvcpus in the definition and restart it, or use --config`,
        { name: ctx.rec.name, vcpus: live.vcpus });
    }
    if (live.maxvcpus !== undefined && count > live.maxvcpus) {
      throw new VirtkitError('vcpus.out-of-range', `${count} vCPUs is above maxvcpus (${live.maxvcpus}) of the running "${ctx.rec.name}"`, { count, max: live.maxvcpus });
    }
    if (count < live.vcpus) requireGuestRunning(ctx, 'a vCPU');
    if (count !== live.vcpus) await requireHandle(ctx).setVcpus(count, { timeoutMs: DetachTimeoutMs });
  }
  await record(ctx, scope, { ...(saved ? { saved } : {}), event: 'vcpus-changed', reason: `${count} (${scopeWords(scope)})` });
  return { ...(scope.live ? { live: requireHandle(ctx).liveDefinition().vcpus } : {}), ...(scope.config ? { config: count } : {}) };
}

export async function vcpuInfo(ctx: DeviceContext): Promise<VcpuInfoList> {
  return { vcpus: await requireHandle(ctx).vcpuInfo() };
}

// ---- the daemon's handlers ---------------------------------------------------------------------

/** The manager's side, as the handlers need it (Manager implements it). */
export interface DeviceManager {
  withDevices<T>(origin: Origin, name: string, fn: (ctx: DeviceContext) => Promise<T>): Promise<T>;
}

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

export function deviceHandlers(m: DeviceManager): Record<keyof typeof DeviceMethods, Handler> {
  const name = (req: FastifyRequest): string => (req.params as { name: string }).name;
  const device = (req: FastifyRequest): string => (req.params as DeviceTargetParams).device;
  const on = <T>(req: FastifyRequest, o: Origin, fn: (ctx: DeviceContext) => Promise<T> | T): Promise<T> =>
    m.withDevices(o, name(req), async (ctx) => fn(ctx));
  return {
    'domain.attachDisk': (req, o) => on(req, o, (ctx) => attachDisk(ctx, req.body as AttachDiskBody)),
    'domain.detachDisk': (req, o) => on(req, o, (ctx) => detachDisk(ctx, device(req), req.query as ScopeQuery)),
    'domain.blockList': (req, o) => on(req, o, (ctx) => blockList(ctx, req.query as InactiveQuery)),
    'domain.attachInterface': (req, o) => on(req, o, (ctx) => attachInterface(ctx, req.body as AttachInterfaceBody)),
    'domain.detachInterface': (req, o) => on(req, o, (ctx) => detachInterface(ctx, device(req), req.query as ScopeQuery)),
    'domain.interfaceList': (req, o) => on(req, o, (ctx) => interfaceList(ctx, req.query as InactiveQuery)),
    'domain.setMemory': (req, o) => on(req, o, (ctx) => setMemory(ctx, req.body as MemorySizeBody)),
    'domain.setMaxMemory': (req, o) => on(req, o, (ctx) => setMaxMemory(ctx, req.body as MemorySizeBody)),
    'domain.memoryStats': (req, o) => on(req, o, (ctx) => memoryStats(ctx)),
    'domain.setVcpus': (req, o) => on(req, o, (ctx) => setVcpus(ctx, req.body as SetVcpusBody)),
    'domain.vcpuInfo': (req, o) => on(req, o, (ctx) => vcpuInfo(ctx)),
  };
}
