/**
 * Disk props: the same objects feed `-blockdev`/`-device` at start and QMP `blockdev-add` /
 * `device_add` at hot-plug. Every name comes from the disk's stable id (device `vda`, nodes
 * `vda-file` and `vda-format`) and its placement from its target, never from its position in
 * the definition, so adding or removing a disk changes no other disk.
 */
import {
  BuiltinDeviceIds, targetIndex, type CacheMode, type DiskBus, type DiskDefinition, type DomainDefinition,
} from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import type { JsonProps } from './escape.js';
import { hasPciBus, ideLayout } from './machine.js';

/** QEMU's cache modes spelled out (qemu-system(1), "-drive cache="). */
export const CacheFlags: Readonly<Record<CacheMode, { direct: boolean; noFlush: boolean; writeCache: boolean }>> = {
  writeback: { direct: false, noFlush: false, writeCache: true },
  none: { direct: true, noFlush: false, writeCache: true },
  writethrough: { direct: false, noFlush: false, writeCache: false },
  directsync: { direct: true, noFlush: false, writeCache: false },
  unsafe: { direct: false, noFlush: true, writeCache: true },
};

export const DiskDrivers: Readonly<Record<DiskBus, string>> = {
  virtio: 'virtio-blk-pci',
  ide: 'ide-hd',
  scsi: 'scsi-hd',
};

/** The virtio-scsi controller scsi disks hang on (`controllers.scsi`). */
export const ScsiControllerId = BuiltinDeviceIds.scsiController;

/** virtio-scsi addresses targets 0 to 255 (QEMU: "bad scsi device id" beyond). */
export const MaxScsiTarget = 255;

/** The disk fields its QEMU names and placement come from. */
export type DiskNaming = Pick<DiskDefinition, 'id' | 'target' | 'bus'>;

/** The guest-visible device's id: the disk's id. */
export function diskDeviceId(disk: Pick<DiskDefinition, 'id'>): string {
  return disk.id;
}

/**
 * The block nodes' names. Node names and device ids are separate namespaces in QEMU 7.2 (a node
 * may even be named like a device), but distinct names keep query-block and errors readable.
 * QEMU caps node names at 31 characters, which the id's 24-character limit leaves room for.
 */
export function diskNodeNames(disk: Pick<DiskDefinition, 'id'>): { file: string; format: string } {
  return { file: `${disk.id}-file`, format: `${disk.id}-format` };
}

export interface BlockdevNodes {
  /** The protocol node: the host file. */
  file: JsonProps;
  /** The format node (raw or qcow2) on top of it; devices attach to this one. */
  format: JsonProps;
}

/** The two block nodes of a disk whose image is `hostPath` on the host. */
export function blockdevProps(disk: Pick<DiskDefinition, 'id' | 'format' | 'readonly' | 'cache'>, hostPath: string): BlockdevNodes {
  const names = diskNodeNames(disk);
  const flags = CacheFlags[disk.cache];
  const cache = { direct: flags.direct, 'no-flush': flags.noFlush };
  return {
    file: { driver: 'file', filename: hostPath, 'node-name': names.file, 'read-only': disk.readonly, cache },
    format: { driver: disk.format, 'node-name': names.format, file: names.file, 'read-only': disk.readonly, cache },
  };
}

/**
 * Whether the command line carries the scsi controller: with `controllers.scsi: auto`, on
 * every machine with PCI (so a scsi disk can be hot-plugged into any guest), and on any
 * machine with a scsi disk. A guest without it needs one added before a scsi disk is plugged.
 */
export function hasScsiController(def: Pick<DomainDefinition, 'controllers' | 'machine' | 'disks'>): boolean {
  if (def.controllers.scsi === 'none') return false;
  return hasPciBus(def.machine) || def.disks.some((disk) => disk.bus === 'scsi');
}

/** The scsi controller, for `-device` at start or `device_add` on demand. */
export function scsiControllerProps(): JsonProps {
  return { driver: 'virtio-scsi-pci', id: ScsiControllerId };
}

export interface DiskPlacement {
  /** Machine type, which decides the IDE bus layout. */
  machine: string;
  /** Firmware boot priority, when this disk boots. */
  bootindex?: number;
  /** How errors name the disk: `disks[2]` (default: `disk "<id>"`). */
  path?: string;
}

/**
 * Why a disk's target has no place on this machine (too many ide slots asked, a scsi target
 * beyond 255), or undefined when it fits.
 */
export function diskPlacementProblem(disk: DiskNaming, machine: string): string | undefined {
  const index = targetIndex(disk.target);
  if (disk.bus === 'ide') {
    const layout = ideLayout(machine);
    if (layout.slots === 0) return `ide disks need machine pc or q35, not ${machine}`;
    if (index >= layout.slots) {
      return `is beyond the ${layout.slots} ide slots of machine ${machine} (hda to hd${String.fromCharCode(96 + layout.slots)})`;
    }
  } else if (disk.bus === 'scsi' && index > MaxScsiTarget) {
    return `is beyond the ${MaxScsiTarget + 1} targets of the scsi controller (sda to sdiv)`;
  }
  return undefined;
}

/** The guest-visible device of a disk, attached to its format node, placed by its target. */
export function diskDeviceProps(disk: DiskNaming & Pick<DiskDefinition, 'cache' | 'shareable'>, placement: DiskPlacement): JsonProps {
  const problem = diskPlacementProblem(disk, placement.machine);
  if (problem !== undefined) {
    const where = placement.path ?? `disk ${JSON.stringify(disk.id)}`;
    throw new VirtkitError('definition.invalid', `${where}.target: ${problem}, got ${JSON.stringify(disk.target)}`,
      { path: `${where}.target`, rule: 'placement' });
  }
  const props: JsonProps = { driver: DiskDrivers[disk.bus], id: diskDeviceId(disk), drive: diskNodeNames(disk).format };
  if (disk.bus === 'ide') {
    const slot = ideLayout(placement.machine).slot(targetIndex(disk.target));
    props['bus'] = slot.bus;
    props['unit'] = slot.unit;
  } else if (disk.bus === 'scsi') {
    Object.assign(props, { bus: `${ScsiControllerId}.0`, channel: 0, 'scsi-id': targetIndex(disk.target), lun: 0 });
  }
  props['write-cache'] = CacheFlags[disk.cache].writeCache ? 'on' : 'off';
  // libvirt's <shareable/>: the device tells the image lock that other writers are welcome.
  if (disk.shareable === true) props['share-rw'] = true;
  if (placement.bootindex !== undefined) props['bootindex'] = placement.bootindex;
  return props;
}
