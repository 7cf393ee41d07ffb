/**
 * The fake driver's hot-plug, balloon and vCPUs: what QEMU running a guest kit guest does,
 * refusing what QEMU refuses with the same codes (`qmp.command-failed` with QEMU's class), so
 * the manager's checks and rollbacks are tested against the fake in milliseconds.
 *
 * Test hooks: `holdDevice(id)` makes the guest keep a device on unplug (detach times out),
 * `failNext(command)` makes the next such QMP step fail (a plug failing halfway), `nodes` and
 * `netdevs` show the back ends present (a rollback leaves none behind).
 */
import { existsSync } from 'node:fs';
import type { DiskDefinition, DomainDefinition, NicDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { hasBalloon } from '../command/balloon-cpus.js';
import { diskNodeNames } from '../command/disk-props.js';
import { netdevId } from '../command/net-props.js';
import type { DetachOptions, MemoryStats, VcpuInfo } from './types.js';

/** The QMP steps a test can make fail. */
export type FakeQmpStep = 'blockdev-add' | 'device_add' | 'netdev_add' | 'balloon';

function qmpFailed(command: string, cls: string, desc: string): VirtkitError {
  return new VirtkitError('qmp.command-failed', `${command}: ${desc}`, { command, class: cls, desc });
}

export class FakeHotplug {
  /** Block node names present (two per disk). */
  readonly nodes = new Set<string>();
  /** Netdev ids present (one per NIC). */
  readonly netdevs = new Set<string>();
  /** Devices the guest does not release on unplug. */
  private readonly held = new Set<string>();
  private readonly failing = new Set<FakeQmpStep>();
  private balloonActual: number | undefined;
  /** vCPUs present at start; those beyond were hot-plugged. */
  private readonly bootVcpus: number;

  constructor(private readonly def: { get(): DomainDefinition; set(def: DomainDefinition): void }, private readonly pid: number) {
    const start = def.get();
    for (const disk of start.disks) for (const node of Object.values(diskNodeNames(disk))) this.nodes.add(node);
    for (const nic of start.nics) this.netdevs.add(netdevId(nic));
    this.bootVcpus = start.vcpus;
  }

  // ---- test hooks

  holdDevice(id: string): void { this.held.add(id); }
  releaseDevices(): void { this.held.clear(); }
  failNext(step: FakeQmpStep): void { this.failing.add(step); }

  // ---- what the handle delegates

  attachDisk(disk: DiskDefinition, hostPath: string): void {
    const def = this.def.get();
    const names = diskNodeNames(disk);
    const added: string[] = [];
    const addNode = (name: string): void => {
      this.step('blockdev-add');
      if (this.nodes.has(name)) throw qmpFailed('blockdev-add', 'GenericError', `Duplicate nodes with node-name='${name}'`);
      if (!existsSync(hostPath)) throw qmpFailed('blockdev-add', 'GenericError', `Could not open '${hostPath}': No such file or directory`);
      this.nodes.add(name);
      added.push(name);
    };
    try {
      addNode(names.file);
      addNode(names.format);
      this.step('device_add');
      if (this.hasDevice(def, disk.id)) throw qmpFailed('device_add', 'GenericError', `Duplicate device ID '${disk.id}'`);
    } catch (err) {
      for (const name of added) this.nodes.delete(name);
      throw err;
    }
    this.def.set({ ...def, disks: [...def.disks, disk] });
  }

  detachDisk(id: string, opts: DetachOptions): void {
    this.unplug(id, opts);
    for (const node of Object.values(diskNodeNames({ id }))) this.nodes.delete(node);
    const def = this.def.get();
    this.def.set({ ...def, disks: def.disks.filter((d) => d.id !== id) });
  }

  attachNic(nic: NicDefinition): void {
    const def = this.def.get();
    this.step('netdev_add');
    const netdev = netdevId(nic);
    if (this.netdevs.has(netdev)) throw qmpFailed('netdev_add', 'GenericError', `Duplicate ID '${netdev}' for netdev`);
    this.netdevs.add(netdev);
    try {
      this.step('device_add');
      if (this.hasDevice(def, nic.id)) throw qmpFailed('device_add', 'GenericError', `Duplicate device ID '${nic.id}'`);
    } catch (err) {
      this.netdevs.delete(netdev);
      throw err;
    }
    this.def.set({ ...def, nics: [...def.nics, nic] });
  }

  detachNic(id: string, opts: DetachOptions): void {
    this.unplug(id, opts);
    this.netdevs.delete(netdevId({ id }));
    const def = this.def.get();
    this.def.set({ ...def, nics: def.nics.filter((n) => n.id !== id) });
  }

  /** The guest kit guest loads virtio_balloon, so the balloon reaches its target at once here. */
  setMemory(bytes: number): void {
    this.requireBalloon('balloon');
    this.step('balloon');
    this.balloonActual = bytes;
  }

  memoryStats(): MemoryStats {
    const def = this.requireBalloon('query-balloon');
    const actual = this.balloonActual ?? def.memory;
    return {
      actual, pollIntervalSeconds: 2, lastUpdate: Math.floor(Date.now() / 1000),
      stats: { available: actual - 24 * 1024 * 1024, unused: actual / 2, usable: actual / 2, major_fault: 0, minor_fault: 1000 },
    };
  }

  setVcpus(count: number, opts: DetachOptions): void {
    const def = this.def.get();
    if (def.maxvcpus === undefined || def.maxvcpus <= this.bootVcpus) {
      // QEMU lists only the boot CPUs as slots, all taken
      if (count > def.vcpus) throw new VirtkitError('vcpus.out-of-range', `${count} vCPUs asked, the machine was started with room for ${def.vcpus} (maxvcpus)`, { count, max: def.vcpus });
    }
    if (count > (def.maxvcpus ?? def.vcpus)) {
      throw new VirtkitError('vcpus.out-of-range', `${count} vCPUs asked, the machine was started with room for ${def.maxvcpus ?? def.vcpus} (maxvcpus)`, { count, max: def.maxvcpus });
    }
    if (count < this.bootVcpus) {
      throw new VirtkitError('operation.unsupported', `only hot-plugged vCPUs can be unplugged: ${this.bootVcpus} were there at start, ${count} asked`, { count, boot: this.bootVcpus });
    }
    for (let cpu = def.vcpus - 1; cpu >= count; cpu--) this.unplug(`vcpu${cpu}`, opts, false);
    this.def.set({ ...def, vcpus: count });
  }

  vcpuInfo(): VcpuInfo[] {
    const def = this.def.get();
    return Array.from({ length: def.vcpus }, (_, vcpu) => ({ vcpu, threadId: this.pid * 10 + vcpu, cpuTimeSeconds: 0, hotplugged: vcpu >= this.bootVcpus }));
  }

  // ---- QEMU's behaviour

  private step(step: FakeQmpStep): void {
    if (!this.failing.delete(step)) return;
    throw qmpFailed(step, 'GenericError', `${step} failed (fake failure injected by the test)`);
  }

  private hasDevice(def: DomainDefinition, id: string): boolean {
    return def.disks.some((d) => d.id === id) || def.nics.some((n) => n.id === id);
  }

  private unplug(id: string, opts: DetachOptions, mustExist = true): void {
    if (mustExist && !this.hasDevice(this.def.get(), id)) throw qmpFailed('device_del', 'DeviceNotFound', `Device '${id}' not found`);
    if (this.held.has(id)) {
      // the fake does not wait out the timeout: it answers as the QEMU driver does once it passed
      throw new VirtkitError('device.detach-timeout', `the guest did not release device "${id}" within ${opts.timeoutMs / 1000} s; it stays attached`, { device: id, timeoutMs: opts.timeoutMs });
    }
  }

  private requireBalloon(command: string): DomainDefinition {
    const def = this.def.get();
    if (!hasBalloon(def)) throw new VirtkitError('operation.unsupported', 'the guest has no balloon device (balloon: false, or a machine without PCI)', { command });
    return def;
  }
}
