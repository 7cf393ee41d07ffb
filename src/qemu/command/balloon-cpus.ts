/**
 * Memory balloon and CPU topology on the command line. The balloon carries the stats polling
 * interval from the start, so `dommemstat` has figures without a first call that only turns
 * polling on; the CPU count carries `maxcpus` when the definition allows hot-plug, so QEMU
 * reserves the slots `setvcpus` fills with `device_add` (docs/memory-cpus.md).
 */
import { BuiltinDeviceIds, type DomainDefinition } from '../../conf/index.js';
import type { JsonProps } from './escape.js';
import { hasPciBus } from './machine.js';

/** The balloon's device id. */
export const BalloonId = BuiltinDeviceIds.balloon;

/** Seconds between the guest's balloon statistics reports (QEMU's `guest-stats-polling-interval`). */
export const BalloonStatsIntervalSeconds = 2;

/** `-smp` value: `N`, or `N,maxcpus=M` when CPUs may be hot-plugged. */
export function smpOption(def: Pick<DomainDefinition, 'vcpus' | 'maxvcpus'>): string {
  return def.maxvcpus !== undefined && def.maxvcpus > def.vcpus ? `${def.vcpus},maxcpus=${def.maxvcpus}` : String(def.vcpus);
}

/**
 * Whether the guest gets a balloon: asked for (`balloon`, the default) on a machine with PCI.
 * Machines without PCI would need virtio-balloon-device on a virtio-mmio bus, which virtkit
 * does not lay out yet.
 */
export function hasBalloon(def: Pick<DomainDefinition, 'balloon' | 'machine'>): boolean {
  return def.balloon && hasPciBus(def.machine);
}

/** The balloon device. deflate-on-oom stays off (QEMU's default), so a smaller target shows as a smaller MemTotal. */
export function balloonProps(): JsonProps {
  return { driver: 'virtio-balloon-pci', id: BalloonId, 'guest-stats-polling-interval': BalloonStatsIntervalSeconds };
}

export function balloonArgs(def: Pick<DomainDefinition, 'balloon' | 'machine'>): JsonProps[] {
  return hasBalloon(def) ? [balloonProps()] : [];
}
