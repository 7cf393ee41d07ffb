/**
 * xm/xl settings -> definition fields, through one table: every key virtkit reads, what it
 * becomes, and the keys it knows but cannot honour (with the reason). docs/xm.md renders the
 * table (a test keeps the page in sync), so the documentation cannot drift from the reader.
 *
 * Three outcomes for a setting: mapped; mapped with a change the user should know about (a
 * warning, kept in the definition's `notes`); or not honoured (`unsupported`: the import
 * fails listing them, unless lenient, which keeps them in `notes` too).
 */
import type { ImportWarning } from './index.js';
import { parseDiskSpec, parseVifSpec, SpecError, xenTarget, type DiskSpec } from './devices.js';
import type { XmPosition } from './errors.js';
import type { XmAssignment, XmValue } from './parser.js';
import { kindName, ValueReader } from './values.js';
import { escapeForTerminal } from '../../util/terminal-text.js';

export interface MapState {
  readonly read: ValueReader;
  readonly settings: ReadonlyMap<string, XmAssignment>;
  readonly def: Record<string, unknown>;
  readonly warnings: ImportWarning[];
  readonly unsupported: ImportWarning[];
  /** Xen device name -> the guest's name for it under virtkit (`xvda1` -> `vda`), for root=. */
  readonly renamedDevices: Map<string, string>;
}

/** Values quoted from the file have their control characters shown as escapes (errors.ts says why). */
function note(list: ImportWarning[], path: string, at: XmPosition, message: string): void {
  list.push({ path: escapeForTerminal(path), message: `line ${at.line}: ${escapeForTerminal(message)}` });
}
export function warn(s: MapState, path: string, at: XmPosition, message: string): void {
  note(s.warnings, path, at, message);
}
export function unsupported(s: MapState, path: string, at: XmPosition, message: string): void {
  note(s.unsupported, path, at, message);
}

export interface KeyRule {
  /** The definition field(s), or `-` when nothing is kept. */
  readonly field: string;
  /** How, for docs/xm.md. */
  readonly how: string;
  /** Called once per key present; absent for keys read together by `composeBoot`. */
  readonly map?: (s: MapState, a: XmAssignment) => void;
  /** Known to Xen, not honoured by virtkit: the reason (the key is reported as unsupported). */
  readonly unsupported?: string;
}

const LifecycleMap: Readonly<Record<string, { action: string; change?: string }>> = {
  destroy: { action: 'destroy' },
  restart: { action: 'restart' },
  preserve: { action: 'preserve' },
  'rename-restart': { action: 'restart', change: 'the old domain is not kept under another name' },
  'coredump-destroy': { action: 'destroy', change: 'no core dump is written (use `virtkit dump` before destroying)' },
  'coredump-restart': { action: 'restart', change: 'no core dump is written' },
  'soft-reset': { action: 'restart', change: 'a full restart, not a soft reset' },
};

function lifecycle(key: string): KeyRule {
  return {
    field: key,
    how: '`destroy`, `restart`, `preserve` as they are; `rename-restart`, `coredump-restart` and `soft-reset` become `restart`, `coredump-destroy` `destroy`, with a warning',
    map: (s, a) => {
      const value = s.read.string(a);
      const mapped = LifecycleMap[value];
      if (mapped === undefined) return s.read.fail(a.value, a.name, `must be one of ${Object.keys(LifecycleMap).join(', ')}, got "${value}"`);
      s.def[key] = mapped.action;
      if (mapped.change !== undefined) warn(s, a.name, a.at, `"${value}" is read as "${mapped.action}": ${mapped.change}`);
    },
  };
}

/** A flag virtkit always has on (ACPI, APIC, PAE): 1 matches, 0 cannot be honoured. */
function alwaysOn(what: string): KeyRule {
  return {
    field: '-', how: `1: matches (virtkit guests always have ${what}); 0 is not supported`,
    map: (s, a) => { if (!s.read.boolean(a)) unsupported(s, a.name, a.at, `virtkit guests always have ${what}; turning it off is not supported`); },
  };
}

/** Read by composeBoot, together with the other boot keys. */
function bootKey(field: string, how: string): KeyRule {
  return { field, how };
}

/** A feature virtkit guests never have: 0 (or False) matches, anything else cannot be honoured. */
function offOnly(reason: string): KeyRule {
  return {
    field: '-', how: `0: matches; otherwise not supported: ${reason}`,
    map: (s, a) => { if (s.read.boolean(a)) unsupported(s, a.name, a.at, reason); },
  };
}

/** A setting about Xen's own machinery, meaningless under virtkit: ignored with a warning. */
function ignored(reason: string): KeyRule {
  return { field: '-', how: `ignored with a warning: ${reason}`, map: (s, a) => warn(s, a.name, a.at, `ignored: ${reason}`) };
}

function notHonoured(reason: string): KeyRule {
  return { field: '-', how: `not supported: ${reason}`, unsupported: reason };
}

function mapDisks(s: MapState, a: XmAssignment): void {
  const disks: Record<string, unknown>[] = [];
  const taken = new Set<string>();
  const pending: { spec: DiskSpec; path: string; at: XmPosition; bus: string; target: string; partition?: number }[] = [];
  s.read.strings(a).forEach((item, i) => {
    const path = `${a.name}[${i}]`;
    let spec: DiskSpec;
    let t: ReturnType<typeof xenTarget>;
    try {
      spec = parseDiskSpec(item.text);
      t = xenTarget(spec.vdev);
    } catch (err) {
      if (err instanceof SpecError) s.read.fail({ kind: 'string', value: item.text, at: item.at }, path, err.message);
      throw err;
    }
    if (spec.cdrom) {
      unsupported(s, path, item.at, `${spec.vdev} is a CD-ROM drive; virtkit has no CD-ROM devices yet (the drive is left out)`);
      return;
    }
    if (spec.format === null) {
      unsupported(s, path, item.at, `"${spec.how}" is a format virtkit does not read (raw and qcow2 only; \`virtkit img convert\` turns it into qcow2); the disk is left out`);
      return;
    }
    if (spec.path === '') s.read.fail({ kind: 'string', value: item.text, at: item.at }, path, 'the image path is missing');
    pending.push({ spec, path, at: item.at, ...t });
  });
  // Whole-disk names first, so a partition (xvda1) gets its disk's name only when it is free.
  for (const p of pending) {
    if (p.partition === undefined) {
      if (taken.has(p.target)) s.read.fail({ kind: 'string', value: p.spec.vdev, at: p.at }, p.path, `duplicate target: ${p.spec.vdev} is already used by another disk`);
      taken.add(p.target);
    }
  }
  for (const p of pending) {
    let { bus, target } = p;
    const readonly = p.spec.access === 'r';
    if (readonly && bus === 'ide') {
      // QEMU's IDE disks cannot be read-only; a writable disk the user meant read-only would be unsafe.
      bus = 'scsi';
      target = freeTarget(taken, 'sd', target.slice(2));
      warn(s, p.path, p.at, `${p.spec.vdev} is read-only, which the ide bus cannot do: attached as scsi ${target}`);
    } else if (p.partition !== undefined) {
      const whole = target;
      if (taken.has(whole)) target = freeTarget(taken, whole.slice(0, 2), whole.slice(2));
      warn(s, p.path, p.at, `${p.spec.vdev} names a partition: the image is attached as the whole disk ${target} (the guest sees /dev/${target}, not /dev/${p.spec.vdev}; its /etc/fstab may need the new name)`);
    } else if (bus === 'virtio' && p.spec.vdev !== target) {
      warn(s, p.path, p.at, `${p.spec.vdev} is attached as the virtio disk ${target} (the guest sees /dev/${target})`);
    }
    if (p.partition !== undefined || readonly) taken.add(target);
    s.renamedDevices.set(p.spec.vdev, target);
    if (p.spec.access === 'w!') warn(s, p.path, p.at, 'w! (shared writable) is read as w: virtkit does not share writable disks between guests');
    // `tap:aio://var/...` is a common spelling of /var/...: collapse the leading slashes.
    const source = p.spec.physical && !p.spec.path.startsWith('/') ? `/dev/${p.spec.path}` : p.spec.path.replace(/^\/{2,}/, '/');
    disks.push({ source, format: p.spec.format, bus, target, ...(readonly ? { readonly: true } : {}) });
  }
  s.def['disks'] = disks;
}

/** The first name `prefix` + letter(s) not taken, starting at `from`. */
function freeTarget(taken: ReadonlySet<string>, prefix: string, from: string): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const start = from.length === 1 ? letters.indexOf(from) : 0;
  for (let i = Math.max(0, start); i < letters.length; i += 1) {
    const name = `${prefix}${letters[i]!}`;
    if (!taken.has(name)) return name;
  }
  for (const a of letters) for (const b of letters) if (!taken.has(`${prefix}${a}${b}`)) return `${prefix}${a}${b}`;
  return `${prefix}${from}`;
}

const NicModelMap: Readonly<Record<string, string>> = { virtio: 'virtio', 'virtio-net': 'virtio', 'virtio-net-pci': 'virtio', e1000: 'e1000', rtl8139: 'rtl8139' };
/** vif keys about Xen's host side that have no meaning for a user-mode NIC. */
const VifIgnored: Readonly<Record<string, string>> = {
  script: 'virtkit runs no vif scripts',
  vifname: 'a user-mode NIC has no host interface to name',
  ip: 'QEMU\'s user-mode network gives the guest its address by DHCP',
  gatewaydev: 'QEMU\'s user-mode network routes by itself',
  backend: 'QEMU is the back end',
};

function mapVifs(s: MapState, a: XmAssignment): void {
  const nics: Record<string, unknown>[] = [];
  s.read.strings(a).forEach((item, i) => {
    const path = `${a.name}[${i}]`;
    let settings: ReadonlyMap<string, string>;
    try {
      settings = parseVifSpec(item.text).settings;
    } catch (err) {
      if (err instanceof SpecError) s.read.fail({ kind: 'string', value: item.text, at: item.at }, path, err.message);
      throw err;
    }
    const nic: Record<string, unknown> = {};
    for (const [key, value] of settings) {
      if (key === 'mac') nic['mac'] = value;
      else if (key === 'model') {
        const model = NicModelMap[value.toLowerCase()];
        if (model === undefined) unsupported(s, `${path}.model`, item.at, `model "${value}" is not one virtkit offers (virtio, e1000, rtl8139); the default (virtio) is used`);
        else nic['model'] = model;
      } else if (key === 'bridge') {
        // The bridge becomes the virtkit network of that name, as libvirt's <interface type='bridge'> does.
        nic['network'] = value;
        warn(s, `${path}.bridge`, item.at, `bridge ${value} became network: ${value}: define a virtkit network of that name with mode: bridge and bridge: ${value} (virtkit net-define) before the guest starts`);
      } else if (key === 'type') {
        // ioemu / vif / netfront: which Xen back end; QEMU emulates the one NIC.
      } else if (VifIgnored[key] !== undefined) {
        warn(s, `${path}.${key}`, item.at, `${key}=${value} is ignored: ${VifIgnored[key]!}`);
      } else {
        unsupported(s, `${path}.${key}`, item.at, `${key}=${value} is not a vif setting virtkit reads`);
      }
    }
    nics.push(nic);
  });
  s.def['nics'] = nics;
}

function mapVfb(s: MapState, a: XmAssignment): void {
  s.read.strings(a).forEach((item, i) => {
    const path = `${a.name}[${i}]`;
    let settings: ReadonlyMap<string, string>;
    try {
      settings = parseVifSpec(item.text).settings;
    } catch (err) {
      if (err instanceof SpecError) s.read.fail({ kind: 'string', value: item.text, at: item.at }, path, err.message);
      throw err;
    }
    const type = settings.get('type') ?? (settings.get('vnc') === '1' ? 'vnc' : settings.get('sdl') === '1' ? 'sdl' : 'vnc');
    if (type !== 'vnc') {
      unsupported(s, path, item.at, `a ${type} frame buffer is not supported (vnc only)`);
      return;
    }
    s.def['graphics'] = 'vnc';
    for (const [key, value] of settings) vncDetail(s, `${path}.${key}`, item.at, key, value);
  });
}

/** vnclisten, vncdisplay and the like: virtkit's VNC server is on a unix socket of the run directory. */
function vncDetail(s: MapState, path: string, at: XmPosition, key: string, value: string): void {
  switch (key) {
    case 'type': case 'vnc': return;
    case 'vncpasswd': case 'passwd':
      s.def['vnc_password'] = true;
      warn(s, path, at, 'the password is not carried over: the VNC server asks for one, set it with `virtkit vncdisplay NAME --password`');
      return;
    case 'vnclisten': case 'vncdisplay': case 'vncunused': case 'keymap':
      warn(s, path, at, `${key}=${value} is ignored: virtkit's VNC server listens on the run directory's vnc.sock (\`virtkit vncdisplay\`)`);
      return;
    default:
      unsupported(s, path, at, `${key}=${value} is not a frame buffer setting virtkit reads`);
  }
}

/** Keys read together by composeBoot (their order matters: cmdline overrides root and extra). */
export const BootKeys = ['kernel', 'ramdisk', 'root', 'extra', 'cmdline', 'bootloader', 'bootloader_args', 'bootargs', 'builder', 'type', 'boot'] as const;

export const XmKeys: Readonly<Record<string, KeyRule>> = {
  name: { field: 'name', how: 'as is', map: (s, a) => { s.def['name'] = s.read.string(a); } },
  uuid: { field: 'uuid', how: 'as is', map: (s, a) => { s.def['uuid'] = s.read.string(a); } },
  description: { field: 'description', how: 'as is', map: (s, a) => { s.def['description'] = s.read.string(a); } },
  memory: { field: 'memory', how: 'MiB', map: (s, a) => { s.def['memory'] = `${s.read.integer(a, 1, 16 * 1024 * 1024)}MiB`; } },
  maxmem: {
    field: 'memory',
    how: 'above `memory`: the guest\'s RAM (virtkit has no boot-time balloon target; `virtkit setmem` lowers it after start), with a warning',
    map: () => undefined, // read with memory in composeMemory
  },
  vcpus: { field: 'vcpus', how: 'as is', map: (s, a) => { s.def['vcpus'] = s.read.integer(a, 1, 255); } },
  maxvcpus: { field: 'maxvcpus', how: 'as is (CPUs beyond `vcpus` can be hot-plugged)', map: (s, a) => { s.def['maxvcpus'] = s.read.integer(a, 1, 255); } },
  kernel: bootKey('boot.kernel', '`boot: {loader: direct}`, host path; Xen\'s `hvmloader` (an HVM guest\'s firmware) is dropped with a warning: the guest boots through SeaBIOS from its disk'),
  ramdisk: bootKey('boot.initrd', 'host path'),
  root: bootKey('boot.cmdline', '`root=VALUE` first on the command line; `/dev/xvdXN` becomes the virtio disk\'s name (`/dev/vdX`), with a warning'),
  extra: bootKey('boot.cmdline', 'appended after `root=`'),
  cmdline: bootKey('boot.cmdline', 'the whole command line (xl); `root` and `extra` are then ignored, with a warning'),
  bootloader: bootKey('boot.loader', '`pygrub` (any path ending in it) becomes `boot: {loader: guest}`: virtkit reads the kernel out of the guest\'s disk itself; other boot loaders are not supported'),
  bootloader_args: bootKey('boot.entry, boot.kernel, boot.initrd, boot.cmdline', 'pygrub\'s `--entry=`, `--kernel=`, `--ramdisk=`, `--args=`; others not supported'),
  bootargs: bootKey('boot.entry, boot.kernel, boot.initrd, boot.cmdline', 'the same as `bootloader_args`'),
  builder: bootKey('boot.loader', '`hvm`: firmware boot from disk unless a kernel is given; `linux`/`generic`: paravirtual, needs `kernel` or `bootloader`'),
  type: bootKey('boot.loader', 'xl\'s `hvm`, `pv`, `pvh`: as `builder`'),
  boot: bootKey('boot.disk', 'HVM boot order: `c` (the first disk) is the firmware default; `d` (CD-ROM) and `n` (network) are not supported'),
  disk: {
    field: 'disks',
    how: 'xm `PREFIX:PATH,VDEV,MODE` or xl `key=value` specs: `file:`, `phy:` (a bare name is under /dev), `tap:aio:`, `tap:sync:`, `aio:`, `raw:` are raw, `tap:qcow2:` and `qcow2:` qcow2; `xvdX` becomes virtio `vdX`, `hdX` ide, `sdX` scsi; a partition (`xvda1`) the whole disk, with a warning; `r` read-only (ide read-only disks move to scsi, with a warning); CD-ROM drives and vhd/vmdk/qcow images are not supported',
    map: mapDisks,
  },
  vif: {
    field: 'nics',
    how: 'one NIC each: `mac=` kept, `model=` virtio/e1000/rtl8139, `bridge=NAME` -> `network: NAME` with a warning (a virtkit network of that name with `mode: bridge` must be defined; without `bridge=` a user-mode NIC), `script=`/`ip=`/`vifname=` ignored with a warning',
    map: mapVifs,
  },
  on_poweroff: lifecycle('on_poweroff'),
  on_reboot: lifecycle('on_reboot'),
  on_crash: lifecycle('on_crash'),
  vnc: {
    field: 'graphics', how: '1: `graphics: vnc`; 0: `none`',
    map: (s, a) => { s.def['graphics'] = s.read.boolean(a) ? 'vnc' : (s.def['graphics'] ?? 'none'); },
  },
  vfb: { field: 'graphics', how: '`type=vnc`: `graphics: vnc` (`vncpasswd=` sets `vnc_password: true`, the password itself is not carried over); `type=sdl` not supported', map: mapVfb },
  vnclisten: { field: '-', how: 'ignored with a warning: the VNC server is on the run directory\'s vnc.sock', map: (s, a) => vncDetail(s, a.name, a.at, a.name, valueText(a.value)) },
  vncdisplay: { field: '-', how: 'ignored with a warning, as `vnclisten`', map: (s, a) => vncDetail(s, a.name, a.at, a.name, valueText(a.value)) },
  vncunused: { field: '-', how: 'ignored with a warning, as `vnclisten`', map: (s, a) => vncDetail(s, a.name, a.at, a.name, valueText(a.value)) },
  vncpasswd: { field: 'vnc_password', how: '`true`; the password itself is not carried over (`virtkit vncdisplay NAME --password` sets one), with a warning', map: (s, a) => vncDetail(s, a.name, a.at, a.name, valueText(a.value)) },
  vncconsole: { field: '-', how: 'ignored (no viewer is started)', map: () => undefined },
  sdl: { field: '-', how: '0: matches; 1 not supported', map: (s, a) => { if (s.read.boolean(a)) unsupported(s, a.name, a.at, 'an SDL window is not supported (vnc only)'); } },
  nographic: { field: 'graphics', how: '1: `graphics: none`', map: (s, a) => { if (s.read.boolean(a)) s.def['graphics'] = 'none'; } },
  stdvga: { field: 'video', how: '1: `video: vga`', map: (s, a) => { if (s.read.boolean(a)) s.def['video'] = 'vga'; } },
  serial: {
    field: 'serial', how: '`pty`: `serial: true` (the console); `none`: `false`; others not supported',
    map: (s, a) => {
      const v = a.value.kind === 'list' && a.value.items.length === 1 && a.value.items[0]!.kind === 'string' ? a.value.items[0]!.value : s.read.string(a);
      if (v === 'pty') s.def['serial'] = true;
      else if (v === 'none') s.def['serial'] = false;
      else unsupported(s, a.name, a.at, `serial "${v}" is not supported: the serial console is the run directory's console.sock`);
    },
  },
  acpi: alwaysOn('ACPI'),
  apic: alwaysOn('an APIC'),
  pae: alwaysOn('PAE'),
  cpu_cap: {
    field: 'cpu_quota', how: 'as is (percent of one CPU; 0 is no cap)',
    map: (s, a) => { const cap = s.read.integer(a, 0, 25500); if (cap > 0) s.def['cpu_quota'] = cap; },
  },
  cpu_weight: {
    field: 'cpu_shares', how: 'times 4 (Xen\'s default weight 256 is the cgroup default 1024), with a warning',
    map: (s, a) => weight(s, a),
  },
  weight: { field: 'cpu_shares', how: 'as `cpu_weight`', map: (s, a) => weight(s, a) },
  device_model_args: {
    field: 'qemu.args', how: 'appended to QEMU\'s arguments (the guest is then "tainted"), with a warning',
    map: (s, a) => {
      s.def['qemu'] = { args: s.read.strings(a).map((x) => x.text) };
      warn(s, a.name, a.at, 'passed to QEMU as they are (qemu.args): they were written for Xen\'s device model, check them');
    },
  },
  // Known to Xen, not honoured (yet)
  cpus: notHonoured('CPU pinning is not supported'),
  vcpu_avail: notHonoured('a bitmap of online CPUs is not supported (use maxvcpus and `virtkit setvcpus`)'),
  pci: notHonoured('PCI passthrough is not supported'),
  usb: offOnly('USB devices are not supported'),
  usbdevice: notHonoured('USB devices are not supported'),
  soundhw: notHonoured('sound devices are not supported'),
  localtime: offOnly('the clock is always UTC'),
  rtc_timeoffset: notHonoured('the clock is always UTC'),
  keymap: notHonoured('the VNC keymap is not set'),
  viridian: offOnly('Hyper-V enlightenments are not supported'),
  hap: notHonoured('paging mode is QEMU\'s choice'),
  nestedhvm: offOnly('nested virtualization is not supported'),
  shadow_memory: notHonoured('Xen\'s shadow page table memory has no QEMU counterpart'),
  timer_mode: notHonoured('Xen\'s timer modes have no QEMU counterpart'),
  device_model: ignored('virtkit runs its own QEMU, not Xen\'s device model'),
  device_model_version: ignored('virtkit runs its own QEMU, not Xen\'s device model'),
  device_model_override: ignored('virtkit runs its own QEMU, not Xen\'s device model'),
  on_watchdog: notHonoured('watchdog devices are not supported'),
  vtpm: notHonoured('TPM devices are not supported'),
  vscsi: notHonoured('PV SCSI passthrough is not supported'),
  videoram: notHonoured('the video memory size is QEMU\'s default'),
  extid: notHonoured('Xen\'s extended interfaces have no QEMU counterpart'),
};

function weight(s: MapState, a: XmAssignment): void {
  const w = s.read.integer(a, 1, 65535);
  s.def['cpu_shares'] = Math.max(2, Math.min(262144, w * 4));
  warn(s, a.name, a.at, `weight ${w} is read as cpu_shares ${w * 4} (Xen's default 256 is the cgroup default 1024)`);
}

function valueText(v: XmValue): string {
  if (v.kind === 'string') return v.value;
  if (v.kind === 'number') return String(v.value);
  if (v.kind === 'bool') return v.value ? '1' : '0';
  return kindName(v);
}
