/**
 * Stable device names. Every disk and NIC has an `id` (the hypervisor's device id, and the
 * stem of the names derived from it) and every disk a `target`, its libvirt-style guest name
 * (`vda`, `sdb`, `hdc`). Missing ones are generated into the normalized definition, so they
 * are stored with it: removing one device from a definition never renames another.
 */
import { definitionError } from './errors.js';
import type { DiskBus, DomainDefinition } from './schema.js';

/** The prefix of a disk target on each bus, as libvirt spells them. */
export const TargetPrefixes: Readonly<Record<DiskBus, string>> = { virtio: 'vd', scsi: 'sd', ide: 'hd' };

/**
 * Ids of the devices the domain gets without listing them (the command-line builder uses
 * these); no disk or NIC may take them.
 */
export const BuiltinDeviceIds = { scsiController: 'scsi0', video: 'video0', panic: 'pvpanic0', balloon: 'balloon0' } as const;

const builtinDeviceRoles: Readonly<Record<string, string>> = {
  [BuiltinDeviceIds.scsiController]: 'the scsi controller',
  [BuiltinDeviceIds.video]: 'the VGA card',
  [BuiltinDeviceIds.panic]: 'the panic device',
  [BuiltinDeviceIds.balloon]: 'the memory balloon',
};

/** `vd` + 0 -> `vda`, 25 -> `vdz`, 26 -> `vdaa` (libvirt's order). */
export function targetName(bus: DiskBus, index: number): string {
  let letters = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) letters = String.fromCharCode(97 + ((n - 1) % 26)) + letters;
  return `${TargetPrefixes[bus]}${letters}`;
}

/** The position a target names on its bus: `vda` -> 0, `sdc` -> 2, `hdaa` -> 26. */
export function targetIndex(target: string): number {
  let n = 0;
  for (const letter of target.slice(2)) n = n * 26 + (letter.charCodeAt(0) - 96);
  return n - 1;
}

type Draft = Record<string, unknown>;

function stringField(item: Draft, key: string): string | undefined {
  const value = item[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Fill in missing disk targets and device ids of a definition being normalized (schema
 * checked, defaults applied). A disk's target is the first name on its bus, in order, that
 * no device uses as a target or id; its id is its target; a NIC's id is the first `netN` no
 * device uses. Given names are never changed; conflicts among them are left for
 * checkDeviceNames to report.
 */
export function assignDeviceNames(disks: Draft[], nics: Draft[]): void {
  const taken = new Set<string>();
  for (const item of [...disks, ...nics]) {
    for (const key of ['id', 'target']) {
      const name = stringField(item, key);
      if (name !== undefined) taken.add(name);
    }
  }
  for (const disk of disks) {
    if (stringField(disk, 'target') === undefined) {
      const bus = disk['bus'] as DiskBus;
      let index = 0;
      while (taken.has(targetName(bus, index))) index++;
      const target = targetName(bus, index);
      disk['target'] = target;
      taken.add(target);
    }
    disk['id'] ??= disk['target'];
  }
  let next = 0;
  for (const nic of nics) {
    if (stringField(nic, 'id') !== undefined) continue;
    while (taken.has(`net${next}`)) next++;
    const id = `net${next}`;
    nic['id'] = id;
    taken.add(id);
  }
}

/**
 * Names that must agree across devices: a target's prefix matches its bus, targets are
 * unique, ids are unique across disks and NICs and leave the built-in devices' ids alone.
 * @throws definition.invalid naming the later of two devices that share a name.
 */
export function checkDeviceNames(def: Pick<DomainDefinition, 'disks' | 'nics'>): void {
  const idOwners = new Map<string, string>();
  const targetOwners = new Map<string, string>();
  const claimId = (id: string, path: [string, number]): void => {
    const role = builtinDeviceRoles[id];
    if (role !== undefined) throw definitionError([...path, 'id'], 'reserved', `"${id}" is reserved for ${role}`, undefined, false);
    const owner = idOwners.get(id);
    if (owner !== undefined) throw definitionError([...path, 'id'], 'unique', `"${id}" is already used by ${owner}`, undefined, false);
    idOwners.set(id, `${path[0]}[${path[1]}]`);
  };
  def.disks.forEach((disk, i) => {
    const prefix = TargetPrefixes[disk.bus];
    if (!disk.target.startsWith(prefix)) {
      throw definitionError(['disks', i, 'target'], 'bus-prefix', `must start with "${prefix}" on the ${disk.bus} bus`, disk.target);
    }
    const owner = targetOwners.get(disk.target);
    if (owner !== undefined) throw definitionError(['disks', i, 'target'], 'unique', `"${disk.target}" is already used by ${owner}`, undefined, false);
    targetOwners.set(disk.target, `disks[${i}]`);
    claimId(disk.id, ['disks', i]);
  });
  def.nics.forEach((nic, i) => claimId(nic.id, ['nics', i]));
}

/**
 * `boot.disk` given as an index becomes that disk's id, so the boot disk stays the same disk
 * when another one is removed. An index out of range is left for the cross-field check.
 */
export function bootDiskToId(boot: Draft, disks: Draft[]): void {
  if (boot['loader'] !== 'disk' || typeof boot['disk'] !== 'number') return;
  const id = disks[boot['disk']]?.['id'];
  if (typeof id === 'string') boot['disk'] = id;
}

/** Position in `disks` of the disk `boot.disk` names (an id or an index), or undefined. */
export function bootDiskIndex(def: Pick<DomainDefinition, 'boot' | 'disks'>): number | undefined {
  const boot = def.boot;
  if (boot.loader !== 'disk' || boot.disk === undefined) return undefined;
  const chosen = boot.disk;
  if (typeof chosen === 'number') return chosen < def.disks.length ? chosen : undefined;
  const index = def.disks.findIndex((disk) => disk.id === chosen);
  return index < 0 ? undefined : index;
}
