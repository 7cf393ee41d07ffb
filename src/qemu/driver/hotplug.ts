/**
 * Hot-plug, ballooning and vCPUs over QMP: the sequences QemuGuest delegates to. Devices are
 * built by the same props builders as the command line (disk-props.ts, net-props.ts), so a
 * disk plugged at run time has the same node names, device id and placement as one given at
 * start, and a later start of the saved definition recreates it identically.
 *
 * An unplug is a request to the guest: `device_del` returns at once and QEMU reports the end
 * with DEVICE_DELETED once the guest released the device (ACPI eject). Only then are the
 * back ends (block nodes, netdev) removed; a guest that does not release the device in time
 * gets `device.detach-timeout` and keeps it.
 */
import { readFile } from 'node:fs/promises';
import type { DiskDefinition, DomainDefinition, NicDefinition } from '../../conf/index.js';
import { VirtkitError, isVirtkitError } from '../../util/errors.js';
import { BalloonId, BalloonStatsIntervalSeconds } from '../command/balloon-cpus.js';
import { blockdevProps, diskDeviceProps, diskNodeNames } from '../command/disk-props.js';
import type { JsonProps } from '../command/escape.js';
import { netdevId, netdevProps, nicDeviceProps } from '../command/net-props.js';
import type { QmpClient } from '../qmp/client.js';
import type { QmpEvent } from '../qmp/events.js';
import { MemoryStatNames, type MemoryStatName, type MemoryStats, type VcpuInfo } from './types.js';

/** What the sequences need of a QEMU process (QemuProcess has it). */
export interface HotplugTarget {
  readonly pid: number;
  readonly qmp: QmpClient;
  /** Every QMP event, across reconnections. */
  onQmpEvent(fn: (ev: QmpEvent) => void): () => void;
}

function exec(p: HotplugTarget, command: string, args: JsonProps): Promise<unknown> {
  return p.qmp.executeUntyped(command, args);
}

/** Runs the undo steps of a half-done plug, newest first; their own failures are not the caller's news. */
async function rollBack(undo: (() => Promise<unknown>)[]): Promise<void> {
  for (const step of undo.reverse()) await step().catch(() => undefined);
}

// ---- disks and NICs --------------------------------------------------------------------------

/** Block nodes (file, then format), then the device; on a failure the nodes added are deleted again. */
export async function plugDisk(p: HotplugTarget, machine: string, disk: DiskDefinition, hostPath: string): Promise<void> {
  const nodes = blockdevProps(disk, hostPath);
  const names = diskNodeNames(disk);
  const undo: (() => Promise<unknown>)[] = [];
  try {
    await exec(p, 'blockdev-add', nodes.file);
    undo.push(() => exec(p, 'blockdev-del', { 'node-name': names.file }));
    await exec(p, 'blockdev-add', nodes.format);
    undo.push(() => exec(p, 'blockdev-del', { 'node-name': names.format }));
    await exec(p, 'device_add', diskDeviceProps(disk, { machine }));
  } catch (err) {
    await rollBack(undo);
    throw err;
  }
}

export async function unplugDisk(p: HotplugTarget, id: string, timeoutMs: number): Promise<void> {
  await unplugDevice(p, id, timeoutMs);
  const names = diskNodeNames({ id });
  await removeBackEnd(p, 'blockdev-del', { 'node-name': names.format });
  await removeBackEnd(p, 'blockdev-del', { 'node-name': names.file });
}

/**
 * Deletes a back end whose device is gone. One already gone (an earlier detach that timed out
 * and was repeated after the guest let go) is what was asked for.
 */
async function removeBackEnd(p: HotplugTarget, command: 'blockdev-del' | 'netdev_del', args: JsonProps): Promise<void> {
  try {
    await exec(p, command, args);
  } catch (err) {
    if (qmpClass(err) === 'DeviceNotFound' || /failed to find node|not found/i.test(qmpDesc(err))) return;
    throw err;
  }
}

/** The netdev, then the device; on a failure the netdev is deleted again. */
/** `domain` names the tap of a NIC on a virtkit network (made by the manager before this). */
export async function plugNic(p: HotplugTarget, nic: NicDefinition, domain?: string): Promise<void> {
  await exec(p, 'netdev_add', netdevProps(nic, domain));
  try {
    await exec(p, 'device_add', nicDeviceProps(nic));
  } catch (err) {
    await rollBack([() => exec(p, 'netdev_del', { id: netdevId(nic) })]);
    throw err;
  }
}

export async function unplugNic(p: HotplugTarget, id: string, timeoutMs: number): Promise<void> {
  await unplugDevice(p, id, timeoutMs);
  await removeBackEnd(p, 'netdev_del', { id: netdevId({ id }) });
}

/**
 * `device_del`, then DEVICE_DELETED for that id within `timeoutMs`. A device already gone
 * (released after an earlier timeout) counts as unplugged; one whose unplug is still pending
 * from an earlier request is waited for again.
 */
export async function unplugDevice(p: HotplugTarget, id: string, timeoutMs: number, opts: { byChild?: boolean } = {}): Promise<void> {
  let released!: () => void;
  const deleted = new Promise<void>((r) => { released = r; });
  const childPrefix = `/machine/peripheral/${id}/`;
  // Subscribed before the request: the event may come before device_del's answer.
  const off = p.onQmpEvent((ev) => {
    if (ev.event !== 'DEVICE_DELETED') return;
    const data = ev.data as { device?: string; path?: string } | undefined;
    if (data?.device === id || (opts.byChild === true && data?.path?.startsWith(childPrefix) === true)) released();
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    try {
      await exec(p, 'device_del', { id });
    } catch (err) {
      if (qmpClass(err) === 'DeviceNotFound') return;
      if (!/already in the process of unplug/i.test(qmpDesc(err))) throw err;
    }
    const timedOut = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    if (await Promise.race([deleted.then(() => 'deleted' as const), timedOut]) === 'timeout') {
      throw new VirtkitError('device.detach-timeout',
        `the guest did not release device "${id}" within ${timeoutMs / 1000} s; it stays attached (is its driver loaded, does it handle ACPI hot-unplug?)`,
        { device: id, timeoutMs });
    }
  } finally {
    clearTimeout(timer);
    off();
  }
}

function qmpClass(err: unknown): string | undefined {
  return isVirtkitError(err, 'qmp.command-failed') ? (err.data['class'] as string | undefined) : undefined;
}

function qmpDesc(err: unknown): string {
  return isVirtkitError(err, 'qmp.command-failed') ? String(err.data['desc'] ?? err.message) : '';
}

/** The live definition with a device added or removed (ids are unique across disks and NICs). */
export function withDisk(def: DomainDefinition, disk: DiskDefinition): DomainDefinition {
  return { ...def, disks: [...def.disks, disk] };
}
export function withNic(def: DomainDefinition, nic: NicDefinition): DomainDefinition {
  return { ...def, nics: [...def.nics, nic] };
}
export function withoutDevice(def: DomainDefinition, id: string): DomainDefinition {
  return { ...def, disks: def.disks.filter((d) => d.id !== id), nics: def.nics.filter((n) => n.id !== id) };
}

// ---- the balloon -------------------------------------------------------------------------------

const BalloonPath = `/machine/peripheral/${BalloonId}`;

/** A QMP failure that says the guest has no balloon, in the contract's words. */
function noBalloon(err: unknown): unknown {
  if (qmpClass(err) === 'DeviceNotActive' || qmpClass(err) === 'DeviceNotFound') {
    return new VirtkitError('operation.unsupported', 'the guest has no balloon device (balloon: false, or a machine without PCI)', { device: BalloonId });
  }
  return err;
}

export async function setBalloonTarget(p: HotplugTarget, bytes: number): Promise<void> {
  await exec(p, 'balloon', { value: bytes }).catch((err: unknown) => { throw noBalloon(err); });
}

/** QEMU's stat names (qom `guest-stats`) by the names virsh dommemstat prints. */
const QemuStatNames: Readonly<Record<MemoryStatName, string>> = {
  swap_in: 'stat-swap-in', swap_out: 'stat-swap-out', major_fault: 'stat-major-faults', minor_fault: 'stat-minor-faults',
  unused: 'stat-free-memory', available: 'stat-total-memory', usable: 'stat-available-memory', disk_caches: 'stat-disk-caches',
  hugetlb_pgalloc: 'stat-htlb-pgalloc', hugetlb_pgfail: 'stat-htlb-pgfail',
};

/**
 * The balloon's `guest-stats` as the guest reported them (guest data: anything that is not a
 * non-negative safe integer is left out; QEMU reports -1 for a figure the guest never sent).
 */
export function parseGuestStats(value: unknown): { lastUpdate?: number; stats: MemoryStats['stats'] } {
  const out: { lastUpdate?: number; stats: MemoryStats['stats'] } = { stats: {} };
  if (value === null || typeof value !== 'object') return out;
  const v = value as Record<string, unknown>;
  const last = v['last-update'];
  if (typeof last === 'number' && Number.isSafeInteger(last) && last > 0) out.lastUpdate = last;
  const stats = v['stats'];
  if (stats === null || typeof stats !== 'object') return out;
  for (const name of MemoryStatNames) {
    const n = (stats as Record<string, unknown>)[QemuStatNames[name]];
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) out.stats[name] = n;
  }
  return out;
}

export async function balloonStats(p: HotplugTarget): Promise<MemoryStats> {
  const balloon = await exec(p, 'query-balloon', {}).catch((err: unknown) => { throw noBalloon(err); }) as { actual: number };
  const guest = await exec(p, 'qom-get', { path: BalloonPath, property: 'guest-stats' }).catch(() => undefined);
  return { actual: balloon.actual, pollIntervalSeconds: BalloonStatsIntervalSeconds, ...parseGuestStats(guest) };
}

// ---- vCPUs -----------------------------------------------------------------------------------

interface HotpluggableCpu {
  type: string;
  'vcpus-count': number;
  props: Record<string, number>;
  'qom-path'?: string;
}

/** Device ids of hot-plugged CPUs: `vcpu<slot>`, the slot's position in QEMU's topology order. */
const HotpluggedCpuPrefix = 'vcpu';

function slotOrder(a: HotpluggableCpu, b: HotpluggableCpu): number {
  const key = (c: HotpluggableCpu): number[] => ['node-id', 'socket-id', 'die-id', 'core-id', 'thread-id'].map((k) => c.props[k] ?? 0);
  const ka = key(a);
  const kb = key(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return 0;
}

async function cpuSlots(p: HotplugTarget): Promise<HotpluggableCpu[]> {
  try {
    return (await exec(p, 'query-hotpluggable-cpus', {}) as HotpluggableCpu[]).sort(slotOrder);
  } catch (err) {
    if (qmpClass(err) !== undefined) {
      throw new VirtkitError('operation.unsupported', `this machine type does not hot-plug CPUs (${qmpDesc(err)})`, { desc: qmpDesc(err) });
    }
    throw err;
  }
}

/**
 * Plugs CPUs into free slots (in topology order) or unplugs hot-plugged ones (newest first)
 * until `count` are present; resolves with the count present at the end.
 */
export async function setCpuCount(p: HotplugTarget, count: number, timeoutMs: number): Promise<number> {
  const slots = await cpuSlots(p);
  const present = slots.filter((s) => s['qom-path'] !== undefined);
  if (count > slots.length) {
    throw new VirtkitError('vcpus.out-of-range', `${count} vCPUs asked, the machine was started with room for ${slots.length} (maxvcpus)`, { count, max: slots.length });
  }
  if (count > present.length) {
    for (const [slot, cpu] of slots.entries()) {
      if (present.length >= count) break;
      if (cpu['qom-path'] !== undefined) continue;
      await exec(p, 'device_add', { driver: cpu.type, id: `${HotpluggedCpuPrefix}${slot}`, ...cpu.props });
      present.push(cpu);
    }
    return present.length;
  }
  const removable = present
    .map((cpu) => cpu['qom-path']!.match(/^\/machine\/peripheral\/(vcpu[0-9]+)$/)?.[1])
    .filter((id): id is string => id !== undefined)
    .reverse();
  const toRemove = present.length - count;
  if (toRemove > removable.length) {
    throw new VirtkitError('operation.unsupported',
      `only hot-plugged vCPUs can be unplugged: ${present.length - removable.length} were there at start, ${count} asked`,
      { count, boot: present.length - removable.length });
  }
  // QEMU 7.2 reports a CPU's removal only by its lapic child's DEVICE_DELETED (no event names the CPU itself).
  for (const id of removable.slice(0, toRemove)) await unplugDevice(p, id, timeoutMs, { byChild: true });
  return count;
}

interface CpuFast {
  'cpu-index': number;
  'thread-id': number;
  'qom-path': string;
}

/** Clock ticks per second of /proc's CPU times: USER_HZ, 100 on every Linux architecture virtkit runs on. */
const UserHz = 100;

/**
 * utime + stime, in seconds, of a /proc/PID/task/TID/stat line. The command name (field 2) may
 * hold spaces and parentheses, so fields are counted after its last ")".
 */
export function parseTaskCpuSeconds(stat: string): number | undefined {
  const end = stat.lastIndexOf(')');
  if (end < 0) return undefined;
  const fields = stat.slice(end + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state): utime is field 14, stime 15
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime) || utime < 0 || stime < 0) return undefined;
  return (utime + stime) / UserHz;
}

export async function vcpuThreads(p: HotplugTarget): Promise<VcpuInfo[]> {
  const cpus = await exec(p, 'query-cpus-fast', {}) as CpuFast[];
  return Promise.all(cpus.map(async (cpu) => {
    const stat = await readFile(`/proc/${p.pid}/task/${cpu['thread-id']}/stat`, 'utf8').catch(() => undefined);
    const seconds = stat === undefined ? undefined : parseTaskCpuSeconds(stat);
    return {
      vcpu: cpu['cpu-index'], threadId: cpu['thread-id'], hotplugged: cpu['qom-path'].startsWith('/machine/peripheral/'),
      ...(seconds !== undefined ? { cpuTimeSeconds: seconds } : {}),
    };
  }));
}
