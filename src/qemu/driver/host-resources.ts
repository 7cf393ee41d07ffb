/**
 * The QEMU driver's side of resource limits, shared folders, screens and firmware
 * (docs/resource-limits.md, shared-folders.md, screens.md, firmware.md):
 * - prepare: the shared folders' drivers (and checks that each source is a directory), the
 *   UEFI images with the domain's own variable store;
 * - launch: virtiofsd started before QEMU, QEMU moved into its cgroup right after spawn (still
 *   under -S: no guest code has run) with the definition's limits;
 * - every exit path: virtiofsd stopped, the cgroup removed (releaseGuestResources);
 * - while it runs: limits changed, screenshots, keys, the VNC password (GuestResources).
 */
import { stat } from 'node:fs/promises';
import type { DomainDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { detectCgroupLayout, GuestCgroup, removeStaleCgroups, type CgroupLayout, type ResourceLimits } from '../cgroup/index.js';
import { resolveFsDrivers, type FirmwareFiles, type ResolvedFsDriver } from '../command/index.js';
import { prepareUefi } from '../firmware/index.js';
import { parseKeys, randomVncPassword, sendKeys, setVncPassword, takeScreenshot, type Screenshot, type UntypedQmp } from '../screens/index.js';
import { startVirtiofsd, stopVirtiofsds, virtiofsdInstalled } from '../virtiofs/index.js';

export type { ResourceLimits } from '../cgroup/index.js';
export type { Screenshot } from '../screens/index.js';

/** What the argv builder needs from the host for these features (CommandContext's fields). */
export interface HostResourceContext {
  firmware?: FirmwareFiles;
  filesystemDrivers?: ResolvedFsDriver[];
}

export function limitsOf(def: Pick<DomainDefinition, 'cpu_shares' | 'cpu_quota' | 'memory_limit'>): ResourceLimits {
  return { cpu_shares: def.cpu_shares, cpu_quota: def.cpu_quota, memory_limit: def.memory_limit };
}

/** The definition asks for cgroup limits (cpu_shares, cpu_quota, memory_limit). */
export function hasLimits(def: DomainDefinition): boolean {
  return def.cpu_shares !== undefined || def.cpu_quota !== undefined || def.memory_limit !== undefined;
}

/**
 * Host-side preparation: each shared folder's source must be a directory now
 * ('definition.invalid' naming `filesystems[i].source`), `auto` drivers resolved, a read-only
 * virtio-fs share refused (QEMU 7.2's virtiofsd cannot enforce it), the UEFI images located.
 */
export async function prepareHostResources(def: DomainDefinition, dirs: { stateDir: string }): Promise<HostResourceContext> {
  const out: HostResourceContext = {};
  const filesystems = def.filesystems ?? [];
  if (filesystems.length > 0) {
    await checkFilesystemSources(def);
    const installed = await virtiofsdInstalled();
    const drivers = resolveFsDrivers(def, installed);
    const missing = drivers.findIndex((d, i) => d === 'virtiofs' && filesystems[i]?.driver === 'virtiofs' && !installed);
    if (missing >= 0) {
      throw new VirtkitError('operation.unsupported', `filesystems[${missing}].driver: virtiofs needs virtiofsd (/usr/lib/qemu/virtiofsd, Debian's qemu-system-common); use driver: 9p or auto`,
        { path: `filesystems[${missing}].driver` });
    }
    out.filesystemDrivers = drivers;
  }
  if (def.firmware === 'uefi') out.firmware = await prepareUefi(dirs.stateDir);
  return out;
}

/** Each shared folder's source is a directory, and no read-only share asks for virtio-fs. */
export async function checkFilesystemSources(def: DomainDefinition): Promise<void> {
  for (const [i, fs] of (def.filesystems ?? []).entries()) {
    const st = await stat(fs.source).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) {
      throw new VirtkitError('definition.invalid', `filesystems[${i}].source: must be a directory on the host, got ${JSON.stringify(fs.source)} (${st === undefined ? 'not found' : 'not a directory'})`,
        { path: `filesystems[${i}].source`, rule: 'directory' });
    }
    if (fs.driver === 'virtiofs' && fs.readonly) {
      throw new VirtkitError('definition.invalid', `filesystems[${i}].readonly: QEMU 7.2's virtiofsd cannot share read-only; use driver: 9p (or auto, which picks 9p for read-only shares)`,
        { path: `filesystems[${i}].readonly`, rule: 'virtiofs-readonly' });
    }
  }
}

/** Starts a virtiofsd for each virtio-fs share, before QEMU; on failure the ones started are stopped. */
export async function startFilesystemHelpers(def: DomainDefinition, runDir: string, drivers: readonly ResolvedFsDriver[] | undefined): Promise<void> {
  try {
    for (const [i, fs] of (def.filesystems ?? []).entries()) {
      if (drivers?.[i] === 'virtiofs') await startVirtiofsd(fs, runDir, i);
    }
  } catch (err) {
    await stopVirtiofsds(runDir);
    throw err;
  }
}

let layoutProbe: Promise<CgroupLayout | undefined> | undefined;
/** The host's cgroup layout, read once per process. */
export function cgroupLayout(): Promise<CgroupLayout | undefined> {
  layoutProbe ??= detectCgroupLayout();
  return layoutProbe;
}

/**
 * Puts QEMU `pid` (still stopped by -S) into the domain's group and applies the limits. A host
 * without usable cgroups is only an error when the definition asks for limits.
 */
export async function confineGuest(def: DomainDefinition, pid: number): Promise<void> {
  const layout = await cgroupLayout();
  if (layout === undefined) {
    if (hasLimits(def)) throw new VirtkitError('operation.unsupported', 'cpu_shares, cpu_quota and memory_limit need the cpu and memory cgroup controllers, which this host does not offer', {});
    return;
  }
  const group = GuestCgroup.of(layout, def.uuid);
  try {
    await group.create();
    await group.addProcess(pid);
    await group.apply(limitsOf(def));
  } catch (err) {
    if (hasLimits(def)) throw err;
    // no limits asked: a group we cannot make or fill only costs the accounting
    await group.remove(0);
  }
}

/** After QEMU is gone: its virtiofsd stopped (when proven ours), its cgroup removed. Never throws. */
export async function releaseGuestResources(runDir: string, uuid: string): Promise<void> {
  await stopVirtiofsds(runDir).catch(() => undefined);
  const layout = await cgroupLayout().catch(() => undefined);
  if (layout !== undefined) await GuestCgroup.of(layout, uuid).remove().catch(() => false);
}

/**
 * Daemon start: the helpers and groups of domains that no longer run (`stale`: their run dirs
 * and uuids), left behind when QEMU died while no daemon watched; groups of `running` (uuids)
 * and of domains this daemon does not know are left alone. Only what is proven ours is
 * signalled.
 */
export async function releaseStaleGuestResources(stale: readonly { runDir: string; uuid: string }[], running: readonly string[] = []): Promise<{ cgroupsRemoved: string[]; helpersStopped: number[] }> {
  const helpersStopped: number[] = [];
  for (const { runDir } of stale) helpersStopped.push(...(await stopVirtiofsds(runDir).catch(() => ({ stopped: [] as number[] }))).stopped);
  const layout = await cgroupLayout().catch(() => undefined);
  const cgroupsRemoved = layout === undefined ? [] : (await removeStaleCgroups(layout, stale.map((s) => s.uuid), new Set(running))).removed;
  return { cgroupsRemoved, helpersStopped };
}

/** The limits in force and where the group is. */
export interface ResourceLimitsInfo {
  limits: ResourceLimits;
  cgroup?: { version: 1 | 2; dirs: string[] };
}

/** A running guest's resources: its cgroup, screen, keyboard and VNC server. */
export class GuestResources {
  constructor(private readonly qmp: UntypedQmp, private readonly runDir: string, private readonly uuid: string) {}

  /** Writes the limits into the guest's cgroup (an absent one: no limit). */
  async setLimits(limits: ResourceLimits): Promise<void> {
    const layout = await cgroupLayout();
    const group = layout === undefined ? undefined : GuestCgroup.of(layout, this.uuid);
    if (group === undefined || !(await group.exists())) {
      throw new VirtkitError('operation.unsupported', 'this guest runs without a cgroup (the host offers no writable cpu and memory controllers): its limits cannot change while it runs', {});
    }
    await group.apply(limits);
  }

  async limits(): Promise<ResourceLimitsInfo> {
    const layout = await cgroupLayout();
    const group = layout === undefined ? undefined : GuestCgroup.of(layout, this.uuid);
    if (group === undefined || !(await group.exists())) return { limits: {} };
    return { limits: await group.read(), cgroup: { version: group.layout.version, dirs: group.dirs() } };
  }

  screenshot(): Promise<Screenshot> {
    return takeScreenshot(this.qmp, this.runDir);
  }

  sendKeys(keys: readonly string[], holdMs?: number): Promise<void> {
    return sendKeys(this.qmp, parseKeys(keys), holdMs);
  }

  /** A new random password (or the one given), set over QMP; refused unless the definition has vnc_password. */
  async setVncPassword(def: DomainDefinition, password?: string): Promise<string> {
    assertVncPassword(def);
    const chosen = password ?? randomVncPassword();
    await setVncPassword(this.qmp, chosen);
    return chosen;
  }
}

/**
 * Refuses to migrate (save, managedsave) a guest with shared folders before anything is
 * paused: QEMU 7.2 blocks it (vhost-user-fs is unmigratable, a mounted 9p share blocks it).
 */
export function assertMigratable(def: DomainDefinition, started?: ReadonlySet<string>): void {
  if ((def.filesystems ?? []).length > 0) {
    throw new VirtkitError('operation.unsupported', `filesystems: "${def.name}" has shared folders, which QEMU cannot save with the guest's memory (migration blocker); shut it down, or remove them, to save`,
      { field: 'filesystems' });
  }
  const changed = started === undefined ? [] : hotplugChanges(started, def);
  if (changed.length > 0) {
    // The restoring QEMU is started from the definition and places its devices at the PCI slots
    // it picks in order; a device plugged or unplugged since the start moves them, and QEMU
    // refuses the stream ("Unknown ramblock ... cannot accept migration"). Refused before
    // anything is written, so no save exists that cannot be restored.
    throw new VirtkitError('operation.unsupported',
      `"${def.name}" has devices hot-plugged or unplugged since it started (${changed.join(', ')}); a restore could not place them as they are now. ` +
      'Restart the guest (shutdown, then start) to save it, or make such changes with --config only', { devices: changed });
  }
}

/** The disk and NIC device ids of a definition. */
export function diskAndNicIds(def: DomainDefinition): Set<string> {
  return new Set([...def.disks.map((d) => d.id), ...def.nics.map((n) => n.id)]);
}

/**
 * The disk and NIC device ids QEMU was started with, from its command line (`-device` JSON with
 * a `drive` or `netdev`): what a restore would recreate. Read from the command line rather than
 * kept in memory, so a guest adopted after a daemon restart is judged the same.
 */
export function diskAndNicIdsOfCommandLine(argv: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 1 < argv.length; i++) {
    if (argv[i] !== '-device' || !argv[i + 1]!.startsWith('{')) continue;
    try {
      const dev = JSON.parse(argv[i + 1]!) as Record<string, unknown>;
      if (typeof dev['id'] === 'string' && (typeof dev['drive'] === 'string' || typeof dev['netdev'] === 'string')) out.add(dev['id']);
    } catch {
      // not JSON: not a device virtkit's builder wrote
    }
  }
  return out;
}

/** Disk and NIC ids present at the start or now only: the live changes since the start, sorted. */
export function hotplugChanges(started: ReadonlySet<string>, live: DomainDefinition): string[] {
  const now = diskAndNicIds(live);
  return [...[...now].filter((id) => !started.has(id)), ...[...started].filter((id) => !now.has(id))].sort();
}

export function assertVncPassword(def: DomainDefinition): void {
  if (def.graphics !== 'vnc') throw new VirtkitError('operation.unsupported', `graphics: "${def.name}" has no VNC server (graphics: ${def.graphics})`, { field: 'graphics' });
  if (def.vnc_password !== true) {
    throw new VirtkitError('operation.unsupported', `vnc_password: "${def.name}" was started without VNC password authentication; set vnc_password: true and restart it`, { field: 'vnc_password' });
  }
}
