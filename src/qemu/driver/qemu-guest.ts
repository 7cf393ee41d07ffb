/**
 * QemuGuest: the GuestHandle of one QEMU, launched or attached by QemuDomainDriver. The
 * low-level mechanics (spawn, QMP, the power button, forced stops, resets under
 * `reboot=shutdown`, exit classification) are QemuProcess's; this handle adds the typed
 * lifecycle events and the on_* policy (events.ts), the monitor passthrough, devices by id
 * and the live definition.
 */
import type { Duplex } from 'node:stream';
import type { DiskDefinition, DomainDefinition, LifecycleAction, NicDefinition } from '../../conf/index.js';
import type { Accel } from '../caps.js';
import { NicDrivers, DiskDrivers, ScsiControllerId } from '../command/index.js';
import { openConsole } from '../console.js';
import type { QemuProcess } from '../process.js';
import type { RunState } from '../qmp/commands.js';
import { LifecycleTracker, type GuestStop } from './events.js';
import * as hotplug from './hotplug.js';
import * as guestState from './guest-state.js';
import { assertMigratable, diskAndNicIdsOfCommandLine, GuestResources, type ResourceLimits, type ResourceLimitsInfo, type Screenshot } from './host-resources.js';
import { monitorCommand, type MonitorCommand } from './monitor.js';
import type { DeviceInfo, ExitInfo, GuestHandle, GuestRunState, LifecycleEvent, LifecycleListener, StopOptions } from './types.js';
import type { DetachOptions, MemoryStats, VcpuInfo } from './types.js';

export interface QemuGuestOptions {
  /** The definition QEMU was launched (or is believed to have been launched) with. */
  definition: DomainDefinition;
  accel: Accel | 'unknown';
  /** Called when a policy action fails (restart, ending a kept guest). */
  onActionError?: (err: unknown, what: GuestStop, action: LifecycleAction) => void;
  /** Run once QEMU is gone, before the `exited` event (its virtiofsd and cgroup: host-resources.ts). */
  release?: () => Promise<void>;
}

/** Events held for a first subscriber, at most (the first, `started`, always among them). */
const HELD_EVENTS_MAX = 64;

export class QemuGuest implements GuestHandle {
  readonly exited: Promise<ExitInfo>;
  readonly accel: Accel | 'unknown';
  private readonly tracker: LifecycleTracker;
  private readonly listeners = new Set<LifecycleListener>();
  /** Events emitted before anyone subscribed (`started` during launch): handed to the first subscriber. */
  private held: LifecycleEvent[] | undefined = [];
  /**
   * The definition QEMU runs now: the one the guest was launched or adopted with, plus what
   * hot-plug changed since (attachDisk... below update it here, device by device, keeping the ids).
   */
  private live: DomainDefinition;
  /** The disk and NIC ids on QEMU's command line: what a restore would recreate (assertMigratable). */
  private readonly started: ReadonlySet<string>;
  private readonly resources: GuestResources;

  constructor(private readonly proc: QemuProcess, opts: QemuGuestOptions) {
    this.accel = opts.accel;
    this.live = opts.definition;
    this.started = diskAndNicIdsOfCommandLine(proc.commandLine);
    this.tracker = new LifecycleTracker({
      policy: opts.definition,
      actions: proc.actions,
      controls: { restartGuest: () => proc.restartGuest(), endKeptGuest: () => proc.endKeptGuest() },
      emit: (ev) => this.emit(ev),
      ...(opts.onActionError ? { onActionError: opts.onActionError } : {}),
    });
    proc.onQmpEvent((ev) => this.tracker.handle(ev));
    proc.onMonitorChange((change) => this.tracker.monitor(change));
    // through the getter each time: a lost monitor is reconnected with a new client
    this.resources = new GuestResources({ executeUntyped: (command, args) => proc.qmp.executeUntyped(command, args) }, proc.runDir, opts.definition.uuid);
    const release = opts.release;
    this.exited = proc.exited.then(async (exit) => {
      if (release) await release().catch(() => undefined);
      this.tracker.exited(exit);
      return exit;
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  get runDir(): string {
    return this.proc.runDir;
  }

  get consoleLogPath(): string {
    return this.proc.paths.consoleLog;
  }

  onEvent(fn: LifecycleListener): () => void {
    this.listeners.add(fn);
    const held = this.held;
    this.held = undefined;
    for (const ev of held ?? []) fn(ev);
    return () => this.listeners.delete(fn);
  }

  /**
   * Starts the CPUs of a QEMU launched with -S, unless `paused` (one launched without -S runs
   * them already: launch-argv.ts); emits `started`. Only for a launch
   * (QemuDomainDriver.launch), before the handle is returned.
   */
  async start(paused: boolean): Promise<void> {
    if (!paused && this.proc.startedHeld) await this.tracker.own(() => this.proc.resume());
    this.emit({ type: 'started', paused });
  }

  async state(): Promise<GuestRunState> {
    return guestRunState(await this.proc.status());
  }

  stop(opts: StopOptions): Promise<'clean' | 'forced'> {
    // synchronously, before any await: a power-off from here on is ours, no policy answers it
    this.tracker.markStopRequested();
    return this.proc.shutdown({ timeoutMs: opts.timeoutMs, preserve: opts.preserve ?? this.live.on_poweroff === 'preserve' });
  }

  async destroy(): Promise<ExitInfo> {
    this.tracker.markDestroyRequested();
    await this.proc.destroy();
    // after the `exited` event, as the contract says: the release of the guest's host
    // resources (virtiofsd, cgroup) runs between QEMU's end and that event
    return await this.exited;
  }

  async pause(): Promise<void> {
    await this.tracker.own(() => this.proc.pause());
    this.emit({ type: 'paused', by: 'host' });
  }

  async resume(): Promise<void> {
    await this.tracker.own(() => this.proc.resume());
    this.emit({ type: 'resumed', by: 'host' });
  }

  /** Hard reset; the `reset` event (by host) comes from QEMU's RESET. */
  async reset(): Promise<void> {
    await this.tracker.own(() => this.proc.reset());
  }

  /** Clean reboot (see QemuProcess.reboot); one `reset` event by host. */
  async reboot(opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.tracker.reboot(() => this.proc.reboot(opts));
  }

  liveDefinition(): DomainDefinition {
    return this.live;
  }

  /** The devices QEMU has with an id (those of the definition, by the same ids), from /machine/peripheral. */
  async devices(): Promise<DeviceInfo[]> {
    const children = await this.proc.qmp.execute('qom-list', { path: '/machine/peripheral' });
    const out: DeviceInfo[] = [];
    for (const child of children) {
      const type = /^child<(.+)>$/.exec(child.type)?.[1];
      if (type !== undefined) out.push({ id: child.name, kind: deviceKind(child.name, type) });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  // ---- hot-plug, memory and CPUs (QMP sequences in hotplug.ts); each keeps `live` in step

  async attachDisk(disk: DiskDefinition, hostPath: string): Promise<void> {
    await hotplug.plugDisk(this.proc, this.live.machine, disk, hostPath);
    this.live = hotplug.withDisk(this.live, disk);
  }

  async detachDisk(id: string, opts: DetachOptions): Promise<void> {
    await hotplug.unplugDisk(this.proc, id, opts.timeoutMs);
    this.live = hotplug.withoutDevice(this.live, id);
  }

  async attachNic(nic: NicDefinition): Promise<void> {
    await hotplug.plugNic(this.proc, nic, this.live.name);
    this.live = hotplug.withNic(this.live, nic);
  }

  async detachNic(id: string, opts: DetachOptions): Promise<void> {
    await hotplug.unplugNic(this.proc, id, opts.timeoutMs);
    this.live = hotplug.withoutDevice(this.live, id);
  }

  setMemory(bytes: number): Promise<void> {
    return hotplug.setBalloonTarget(this.proc, bytes);
  }

  memoryStats(): Promise<MemoryStats> {
    return hotplug.balloonStats(this.proc);
  }

  async setVcpus(count: number, opts: DetachOptions): Promise<void> {
    const present = await hotplug.setCpuCount(this.proc, count, opts.timeoutMs);
    this.live = { ...this.live, vcpus: present };
  }

  vcpuInfo(): Promise<VcpuInfo[]> {
    return hotplug.vcpuThreads(this.proc);
  }

  monitor(command: MonitorCommand): Promise<unknown> {
    return monitorCommand(this.proc.qmp, command);
  }

  /** The first call after a launch with `consoleFirst` gets the connection made before the guest ran. */
  openConsole(): Promise<Duplex> {
    const held = this.proc.takeConsole();
    return held ? Promise.resolve(held) : openConsole(this.proc.runDir);
  }

  // ---- save/restore, snapshots, memory dumps (QMP sequences in guest-state.ts)

  async saveState(file: guestState.StreamFile, onProgress?: guestState.ProgressListener): Promise<number> {
    assertMigratable(this.live, this.started);
    const wasRunning = (await this.proc.status()) === 'running';
    if (wasRunning) await this.pause();
    let bytes: number;
    try {
      bytes = await guestState.saveToFile(this.proc.qmp, this.proc.runDir, file, onProgress);
    } catch (err) {
      if (wasRunning) await this.resume().catch(() => undefined);
      throw err;
    }
    this.tracker.markDestroyRequested();
    await this.proc.destroy();
    return bytes;
  }

  async internalSnapshot(op: 'save' | 'load' | 'delete', tag: string, onProgress?: guestState.ProgressListener): Promise<void> {
    // the job stops and restarts the CPUs itself: those STOP/RESUME are ours, not the guest's
    if (op === 'save') await this.tracker.own(() => guestState.internalSnapshotSave(this.proc.qmp, tag, onProgress));
    else if (op === 'load') await this.tracker.own(() => guestState.internalSnapshotLoad(this.proc.qmp, tag, onProgress));
    else await guestState.internalSnapshotDelete(this.proc.qmp, tag);
  }

  async externalSnapshot(overlays: readonly { id: string; overlay: string }[], tag: string, live: DomainDefinition): Promise<void> {
    await guestState.externalSnapshot(this.proc.qmp, overlays, tag);
    this.live = live;
  }

  async dumpMemory(path: string, format: guestState.DumpFormat, onProgress?: guestState.ProgressListener): Promise<void> {
    await this.tracker.own(() => guestState.dumpGuestMemory(this.proc.qmp, path, format, onProgress));
  }

  // ---- resource limits, screens and keys (host-resources.ts)

  async setResourceLimits(limits: ResourceLimits): Promise<void> {
    await this.resources.setLimits(limits);
    this.live = { ...this.live, cpu_shares: limits.cpu_shares, cpu_quota: limits.cpu_quota, memory_limit: limits.memory_limit };
    for (const key of ['cpu_shares', 'cpu_quota', 'memory_limit'] as const) if (this.live[key] === undefined) delete this.live[key];
  }

  resourceLimits(): Promise<ResourceLimitsInfo> {
    return this.resources.limits();
  }

  screenshot(): Promise<Screenshot> {
    return this.resources.screenshot();
  }

  sendKeys(keys: readonly string[], holdMs?: number): Promise<void> {
    return this.resources.sendKeys(keys, holdMs);
  }

  setVncPassword(): Promise<string> {
    return this.resources.setVncPassword(this.live);
  }

  /** Test hook: the QMP connection is closed as if lost; the process reconnects (`monitor-lost`, then `monitor-restored`). */
  dropMonitorConnection(): void {
    this.proc.dropMonitorConnection();
  }

  detach(): void {
    this.listeners.clear();
    this.proc.detach();
  }

  private emit(ev: LifecycleEvent): void {
    if (this.held) {
      // bounded: a handle nobody listens to must not grow without end (the last event, exited, is kept)
      if (this.held.length >= HELD_EVENTS_MAX) this.held.splice(1, 1);
      this.held.push(ev);
      return;
    }
    for (const fn of [...this.listeners]) fn(ev);
  }
}

const diskDrivers = new Set<string>([...Object.values(DiskDrivers), 'ide-cd', 'scsi-cd', 'virtio-blk-device', 'usb-storage']);
const nicDrivers = new Set<string>([...Object.values(NicDrivers), 'virtio-net-device', 'e1000e']);
const controllerDrivers = new Set<string>(['virtio-scsi-pci', 'lsi53c895a', 'megasas', 'pcie-root-port', 'pci-bridge']);

/** A device's kind from its QOM type (the driver given to -device / device_add). */
export function deviceKind(id: string, qomType: string): DeviceInfo['kind'] {
  if (diskDrivers.has(qomType)) return 'disk';
  if (nicDrivers.has(qomType)) return 'nic';
  if (controllerDrivers.has(qomType) || id === ScsiControllerId) return 'controller';
  return 'other';
}

/** QEMU's RunState in the contract's words. */
export function guestRunState(status: RunState): GuestRunState {
  switch (status) {
    case 'running':
      return 'running';
    case 'paused':
    case 'suspended':
    case 'io-error':
    case 'watchdog':
    case 'debug':
      return 'paused';
    case 'shutdown':
      return 'shutdown';
    case 'guest-panicked':
      return 'crashed';
    case 'prelaunch':
      return 'prelaunch';
    default:
      return 'other';
  }
}
