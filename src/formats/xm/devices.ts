/**
 * The strings inside `disk = [...]` and `vif = [...]`: Xen's device specs, split into their
 * parts. Mapping them onto definition fields happens in mapping.ts; this module only knows
 * the two spellings of each.
 *
 * Disks, xm style: `PREFIX:PATH,VDEV[:cdrom],MODE` (`tap:aio:/img/root.img,xvda1,w`);
 * xl style: `KEY=VALUE` pairs (`format=raw, vdev=xvda, access=rw, target=/img/root.img`), or
 * four positional fields `TARGET,FORMAT,VDEV,ACCESS`.
 * Interfaces: `KEY=VALUE` pairs (`mac=00:16:3e:22:15:51,bridge=xenbr0`), any of them optional.
 */

export type ImageFormat = 'raw' | 'qcow2';

/** Xen's disk prefixes and the image format each implies; `null`: known, but virtkit cannot read that format. */
export const DiskPrefixes: Readonly<Record<string, ImageFormat | null>> = {
  'file:': 'raw',
  'phy:': 'raw',
  'tap:aio:': 'raw',
  'tap:sync:': 'raw',
  'tap:raw:': 'raw',
  'tap:qcow2:': 'qcow2',
  'tap2:aio:': 'raw',
  'tap2:qcow2:': 'qcow2',
  'aio:': 'raw',
  'raw:': 'raw',
  'qcow2:': 'qcow2',
  'tap:qcow:': null,
  'tap:vhd:': null,
  'tap:vmdk:': null,
  'tap2:vhd:': null,
  'vhd:': null,
  'qcow:': null,
};

/** Formats xl's `format=` names. */
const XlFormats: Readonly<Record<string, ImageFormat | null>> = { raw: 'raw', qcow2: 'qcow2', qcow: null, vhd: null, qed: null, empty: null };

export interface DiskSpec {
  /** The host path, as written after the prefix (empty for an empty CD-ROM drive). */
  path: string;
  /** The prefix as written (`tap:aio:`), or `format=raw` for xl's form. */
  how: string;
  /** null: a format virtkit cannot read (qcow, vhd, vmdk). */
  format: ImageFormat | null;
  /** Whether `path` names a host block device (`phy:`). */
  physical: boolean;
  /** Xen's guest device name without `ioemu:` and `:cdrom`: `xvda1`, `hdc`. */
  vdev: string;
  cdrom: boolean;
  /** `r` read-only, `w` read-write, `w!` read-write and shared with other guests. */
  access: 'r' | 'w' | 'w!';
}

/** A problem with one spec: the message, said of the spec. */
export class SpecError extends Error {}

const XlDiskKeys = new Set(['target', 'format', 'vdev', 'access', 'devtype', 'backendtype', 'script', 'discard', 'no-discard', 'cdrom', 'backend', 'direct-io-safe', 'colo', 'trusted', 'untrusted', 'specification']);

function access(text: string): DiskSpec['access'] {
  const t = text.trim().toLowerCase();
  if (t === 'r' || t === 'ro') return 'r';
  if (t === 'w' || t === 'rw') return 'w';
  if (t === 'w!' || t === 'rw!') return 'w!';
  throw new SpecError(`access "${text}" must be r, ro, w, rw or w!`);
}

/** `ioemu:hdc:cdrom` -> { vdev: 'hdc', cdrom: true }. */
function splitVdev(text: string): { vdev: string; cdrom: boolean } {
  let v = text.trim();
  if (v.startsWith('ioemu:')) v = v.slice('ioemu:'.length);
  let cdrom = false;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    const kind = v.slice(colon + 1);
    if (kind !== 'cdrom' && kind !== 'disk') throw new SpecError(`device type "${kind}" after ${v.slice(0, colon)} must be cdrom or disk`);
    cdrom = kind === 'cdrom';
    v = v.slice(0, colon);
  }
  if (v === '') throw new SpecError('the guest device (xvda, hda, sda...) is missing');
  return { vdev: v, cdrom };
}

/** `tap:aio:/img/root.img` -> the prefix and the path. */
function splitPrefix(target: string): { how: string; path: string; format: ImageFormat | null; physical: boolean } {
  const t = target.trim();
  // Longest first, so `tap:qcow2:` wins over a shorter `tap:` reading.
  const prefixes = Object.keys(DiskPrefixes).sort((a, b) => b.length - a.length);
  const prefix = prefixes.find((p) => t.startsWith(p));
  if (prefix === undefined) {
    const shown = /^([A-Za-z0-9_]+:)+/.exec(t)?.[0];
    if (shown !== undefined) throw new SpecError(`unknown prefix "${shown}" (known: ${Object.keys(DiskPrefixes).join(', ')})`);
    // No prefix at all: xl reads a plain path as a raw file.
    return { how: '', path: t, format: 'raw', physical: false };
  }
  return { how: prefix, path: t.slice(prefix.length), format: DiskPrefixes[prefix]!, physical: prefix === 'phy:' };
}

function xlKeyed(text: string): DiskSpec {
  const spec: Partial<DiskSpec> & { access: DiskSpec['access'] } = { access: 'w', cdrom: false, physical: false };
  let rest = text;
  const positional: string[] = [];
  while (rest.length > 0) {
    // target= takes the rest of the spec: a path may contain commas.
    const m = /^\s*target\s*=/.exec(rest);
    if (m !== null) {
      spec.path = rest.slice(m[0].length).trim();
      break;
    }
    const comma = rest.indexOf(',');
    const item = (comma === -1 ? rest : rest.slice(0, comma)).trim();
    rest = comma === -1 ? '' : rest.slice(comma + 1);
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq === -1) {
      if (item === 'cdrom') spec.cdrom = true;
      else positional.push(item);
      continue;
    }
    const key = item.slice(0, eq).trim().toLowerCase();
    const value = item.slice(eq + 1).trim();
    if (!XlDiskKeys.has(key)) throw new SpecError(`unknown key "${key}" (known: ${[...XlDiskKeys].join(', ')})`);
    if (key === 'format') {
      if (!(value in XlFormats)) throw new SpecError(`format "${value}" must be one of ${Object.keys(XlFormats).join(', ')}`);
      spec.format = XlFormats[value]!;
      spec.how = `format=${value}`;
    } else if (key === 'vdev') Object.assign(spec, splitVdev(value));
    else if (key === 'access') spec.access = access(value);
    else if (key === 'devtype') {
      if (value !== 'cdrom' && value !== 'disk') throw new SpecError(`devtype "${value}" must be disk or cdrom`);
      spec.cdrom = value === 'cdrom';
    } else if (key === 'backendtype' && value === 'phy') spec.physical = true;
  }
  // Positional fields fill what the keys left: target, format, vdev, access.
  for (const item of positional) {
    if (spec.path === undefined && !(item in XlFormats)) spec.path = item;
    else if (spec.format === undefined && item in XlFormats) { spec.format = XlFormats[item]!; spec.how = `format=${item}`; }
    else if (spec.vdev === undefined) Object.assign(spec, splitVdev(item));
    else spec.access = access(item);
  }
  if (spec.vdev === undefined) throw new SpecError('vdev= (the guest device: xvda, hda, sda...) is missing');
  return {
    path: spec.path ?? '', how: spec.how ?? 'format=raw', format: spec.format === undefined ? 'raw' : spec.format,
    physical: spec.physical ?? false, vdev: spec.vdev, cdrom: spec.cdrom ?? false, access: spec.access,
  };
}

/**
 * One disk spec, either spelling.
 * @throws SpecError naming what is wrong with it.
 */
export function parseDiskSpec(text: string): DiskSpec {
  if (text.trim() === '') throw new SpecError('an empty disk spec');
  const parts = text.split(',');
  if (parts.some((p) => p.includes('=')) && !/^[^,=]*:/.test(text.trim())) return xlKeyed(text);
  if (parts.length === 4 && (parts[1] ?? '').trim() in XlFormats) return xlKeyed(text);
  if (parts.length !== 3) {
    throw new SpecError(`expected PREFIX:PATH,DEVICE,MODE (like tap:aio:/images/root.img,xvda1,w) or xl's key=value form, got ${parts.length} comma-separated fields`);
  }
  const target = splitPrefix(parts[0]!);
  return { ...target, ...splitVdev(parts[1]!), access: access(parts[2]!) };
}

/** The target, bus and partition of a Xen guest device name. */
export interface XenTarget {
  bus: 'virtio' | 'ide' | 'scsi';
  /** The whole disk's name in virtkit's terms: xvda -> vda, hda -> hda, sdb -> sdb. */
  target: string;
  /** The partition number of `xvda1`, when one was written. */
  partition?: number;
}

/** `xvda1` -> virtio vda partition 1; `hdc` -> ide hdc; `sdb` -> scsi sdb. */
export function xenTarget(vdev: string): XenTarget {
  const m = /^(xvd|hd|sd)([a-z]{1,2})([0-9]{1,3})?$/.exec(vdev);
  if (m === null) throw new SpecError(`guest device "${vdev}" must be a name like xvda, xvda1, hda or sdb (Xen's device numbers are not read)`);
  const bus = m[1] === 'xvd' ? 'virtio' : m[1] === 'hd' ? 'ide' : 'scsi';
  const prefix = bus === 'virtio' ? 'vd' : m[1]!;
  return { bus, target: `${prefix}${m[2]!}`, ...(m[3] === undefined ? {} : { partition: Number(m[3]) }) };
}

export interface VifSpec {
  /** key -> value, keys lower-cased, in the order written. */
  readonly settings: ReadonlyMap<string, string>;
}

/** `mac=00:16:3e:22:15:51, bridge=xenbr0` -> its settings. @throws SpecError for an item without `=`. */
export function parseVifSpec(text: string): VifSpec {
  const settings = new Map<string, string>();
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new SpecError(`"${item}" must be KEY=VALUE (mac=..., bridge=..., model=...)`);
    const key = item.slice(0, eq).trim().toLowerCase();
    if (settings.has(key)) throw new SpecError(`${key}= is given twice`);
    settings.set(key, item.slice(eq + 1).trim());
  }
  return { settings };
}
