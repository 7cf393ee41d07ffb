/**
 * Disk props: the same objects feed `-blockdev`/`-device` at start and QMP `blockdev-add` /
 * `device_add` at hotplug. Names are derived from the disk's index in the definition, so the
 * command line is stable: nodes `disk0-file` and `disk0-format`, device `disk0`.
 */
import type { CacheMode, DiskBus, DiskDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import type { JsonProps } from './escape.js';

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

/** The one virtio-scsi controller every scsi disk hangs on. */
export const ScsiControllerId = 'scsi0';

export function diskDeviceId(index: number): string {
  return `disk${index}`;
}

export function diskNodeNames(index: number): { file: string; format: string } {
  return { file: `disk${index}-file`, format: `disk${index}-format` };
}

export interface BlockdevNodes {
  /** The protocol node: the host file. */
  file: JsonProps;
  /** The format node (raw or qcow2) on top of it; devices attach to this one. */
  format: JsonProps;
}

/** The two block nodes of a disk whose image is `hostPath` on the host. */
export function blockdevProps(disk: DiskDefinition, index: number, hostPath: string): BlockdevNodes {
  const names = diskNodeNames(index);
  const flags = CacheFlags[disk.cache];
  const cache = { direct: flags.direct, 'no-flush': flags.noFlush };
  return {
    file: { driver: 'file', filename: hostPath, 'node-name': names.file, 'read-only': disk.readonly, cache },
    format: { driver: disk.format, 'node-name': names.format, file: names.file, 'read-only': disk.readonly, cache },
  };
}

/** The scsi controller, added once before the first scsi disk. */
export function scsiControllerProps(): JsonProps {
  return { driver: 'virtio-scsi-pci', id: ScsiControllerId };
}

export interface DiskPlacement {
  /** Machine type, which decides the IDE bus layout. */
  machine: string;
  /** Position of the disk among the disks on the same bus (0 for the first ide disk...). */
  busIndex: number;
  /** Firmware boot priority, when this disk boots. */
  bootindex?: number;
}

/** pc (i440fx) has two IDE buses with two units each; q35 has six AHCI ports of one unit. */
function ideSlot(machine: string, busIndex: number, index: number): { bus: string; unit: number } {
  const q35 = machine === 'q35' || machine.startsWith('pc-q35');
  const i440fx = machine === 'pc' || machine.startsWith('pc-i440fx') || /^pc-[0-9]/.test(machine);
  const max = q35 ? 6 : i440fx ? 4 : 0;
  if (busIndex >= max) {
    const rule = max === 0 ? `ide disks need machine pc or q35, not ${machine}` : `at most ${max} ide disks fit machine ${machine}`;
    throw new VirtkitError('definition.invalid', `disks[${index}].bus: ${rule}, got "ide"`, { path: `disks[${index}].bus`, rule: 'ide-slots' });
  }
  return q35 ? { bus: `ide.${busIndex}`, unit: 0 } : { bus: `ide.${busIndex >> 1}`, unit: busIndex & 1 };
}

/** The guest-visible device of a disk, attached to its format node. */
export function diskDeviceProps(disk: DiskDefinition, index: number, placement: DiskPlacement): JsonProps {
  const props: JsonProps = { driver: DiskDrivers[disk.bus], id: diskDeviceId(index), drive: diskNodeNames(index).format };
  if (disk.bus === 'ide') {
    const slot = ideSlot(placement.machine, placement.busIndex, index);
    props['bus'] = slot.bus;
    props['unit'] = slot.unit;
  } else if (disk.bus === 'scsi') {
    Object.assign(props, { bus: `${ScsiControllerId}.0`, channel: 0, 'scsi-id': placement.busIndex, lun: 0 });
  }
  props['write-cache'] = CacheFlags[disk.cache].writeCache ? 'on' : 'off';
  if (placement.bootindex !== undefined) props['bootindex'] = placement.bootindex;
  return props;
}
