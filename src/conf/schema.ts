/**
 * The domain definition schema: the single source of truth for the `DomainDefinition` type,
 * runtime validation (validate.ts derives the accepted input form from it) and the field
 * reference in docs/definition.md (docs.ts renders it).
 *
 * This schema describes the NORMALIZED definition: every default applied, uuid and MACs
 * generated, memory in bytes, host paths resolved. Besides `default` and `description`, it
 * carries extension keywords (`x-` prefixed, so JSON Schema and OpenAPI tools ignore them),
 * read through annotations():
 * - `x-generated`: how a missing value is made up (the field is optional in input);
 * - `x-input-size`: input may also be a size string such as `256MiB` (see size.ts);
 * - `x-rule`: the message shown when a string does not match its `pattern`;
 * - `x-discriminator`: the property that selects the variant of a union;
 * - `x-key-rule`: the message shown when a map key does not match its pattern.
 * A field with a `default` or `x-generated` is optional in input.
 */
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';

// Enumerations: `as const` tables, reused by the builder and the docs.
export const Accels = ['auto', 'kvm', 'tcg'] as const;
export type Accel = (typeof Accels)[number];
export const DiskFormats = ['raw', 'qcow2'] as const;
export type DiskFormat = (typeof DiskFormats)[number];
export const DiskBuses = ['virtio', 'ide', 'scsi'] as const;
export type DiskBus = (typeof DiskBuses)[number];
export const CacheModes = ['none', 'writeback', 'writethrough', 'directsync', 'unsafe'] as const;
export type CacheMode = (typeof CacheModes)[number];
export const NicModels = ['virtio', 'e1000', 'rtl8139'] as const;
export type NicModel = (typeof NicModels)[number];
export const GraphicsModes = ['none', 'vnc'] as const;
export type GraphicsMode = (typeof GraphicsModes)[number];
export const LifecycleActions = ['destroy', 'restart', 'preserve'] as const;
export type LifecycleAction = (typeof LifecycleActions)[number];
export const HostShutdownPolicies = ['shutdown', 'destroy', 'none'] as const;
export type HostShutdownPolicy = (typeof HostShutdownPolicies)[number];
export const BootLoaders = ['direct', 'disk', 'guest'] as const;
export type BootLoader = (typeof BootLoaders)[number];
export const ScsiControllerModes = ['auto', 'none'] as const;
export type ScsiControllerMode = (typeof ScsiControllerModes)[number];

export const VideoModels = ['vga', 'bochs', 'virtio', 'none'] as const;
export type VideoModel = (typeof VideoModels)[number];
export const FirmwareKinds = ['bios', 'uefi'] as const;
export type FirmwareKind = (typeof FirmwareKinds)[number];
export const FilesystemDrivers = ['auto', 'virtiofs', '9p'] as const;
export type FilesystemDriver = (typeof FilesystemDrivers)[number];

export const MiB = 1024 * 1024;
/** Smallest memory a definition may ask for. */
export const MinMemoryBytes = 16 * MiB;
/** Memory is given to QEMU in MiB, so it must be a whole number of them. */
export const MemoryGranularityBytes = MiB;

/** Newline, carriage return and NUL could split a QEMU option or a log line: never allowed. */
const NoLineBreakOrNul = '^[^\\n\\r\\x00]*$';

type LiteralTuple<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

/** A string enumeration as a union of literals (its Static type is the union of the values). */
function oneOf<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}): TUnion<LiteralTuple<T>> {
  return Type.Union(values.map((v) => Type.Literal(v)), options) as unknown as TUnion<LiteralTuple<T>>;
}

function hostPath(description: string) {
  return Type.String({
    minLength: 1, maxLength: 4096, pattern: NoLineBreakOrNul,
    'x-rule': 'must be a path without newline or NUL', description,
  });
}

function guestPath(description: string) {
  return Type.String({
    maxLength: 4096, pattern: '^/[^\\n\\r\\x00]*$',
    'x-rule': 'must be an absolute path inside the guest, without newline or NUL', description,
  });
}

function commandLine(description: string) {
  return Type.String({ maxLength: 65536, pattern: NoLineBreakOrNul, 'x-rule': 'must not contain newline or NUL', description });
}

export const DomainNamePattern = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

/**
 * A device id: QEMU's device id as is, and the stem of the names derived from it (block nodes
 * `<id>-file` and `<id>-format`, netdev `<id>-netdev`). QEMU accepts letters, digits, "-", "."
 * and "_" after a leading letter, and node names of at most 31 characters: 24 + "-format".
 */
export const DeviceIdPattern = '^[A-Za-z][A-Za-z0-9_-]{0,23}$';
/** A disk's guest name, libvirt style: a bus prefix (vd, sd, hd) and one or two letters. */
export const DiskTargetPattern = '^(vd|sd|hd)[a-z]{1,2}$';

function deviceId(generated: string, description: string) {
  return Type.String({
    pattern: DeviceIdPattern, 'x-rule': 'must be 1-24 letters, digits, "_" or "-", starting with a letter',
    'x-generated': generated, description,
  });
}

const DirectBootSchema = Type.Object({
  loader: Type.Literal('direct', { default: 'direct', description: 'Boot a kernel file of the host directly (QEMU -kernel). The default when `kernel` is given.' }),
  kernel: hostPath('Kernel image on the host; relative paths are resolved against the definition file\'s directory.'),
  initrd: Type.Optional(hostPath('Initial ramdisk on the host; relative paths as for `kernel`.')),
  cmdline: Type.Optional(commandLine('Kernel command line.')),
}, { additionalProperties: false, description: 'Direct kernel boot.' });

const DiskBootSchema = Type.Object({
  loader: Type.Literal('disk', { description: 'Boot through the firmware (SeaBIOS) from a disk. The default when `boot` is absent.' }),
  disk: Type.Optional(Type.Union([
    Type.Integer({ minimum: 0 }),
    Type.String({ pattern: DeviceIdPattern, 'x-rule': 'must be a disk id (letters, digits, "_" or "-", starting with a letter)' }),
  ], { description: 'The disk to boot first: its `id`, or its index in `disks` (stored as its id, so removing another disk does not change it); absent: the firmware\'s own order.' })),
}, { additionalProperties: false, description: 'Firmware boot from a disk.' });

const GuestBootSchema = Type.Object({
  loader: Type.Literal('guest', { description: 'Read the kernel and initrd out of the guest\'s own disk (its GRUB, BLS or extlinux configuration) and boot them directly.' }),
  entry: Type.Optional(Type.Union([
    Type.String({ minLength: 1, maxLength: 1024, pattern: NoLineBreakOrNul, 'x-rule': 'must not contain newline or NUL' }),
    Type.Integer({ minimum: 0 }),
  ], { description: 'Boot menu entry: its title or its index; absent: the configuration\'s default.' })),
  kernel: Type.Optional(guestPath('Kernel path inside the guest, instead of a menu entry.')),
  initrd: Type.Optional(guestPath('Initrd path inside the guest, with `kernel`.')),
  cmdline: Type.Optional(commandLine('Kernel command line; replaces the menu entry\'s.')),
}, { additionalProperties: false, description: 'Boot the guest\'s own kernel (pygrub\'s job).' });

export const BootSchema = Type.Union([DirectBootSchema, DiskBootSchema, GuestBootSchema], {
  'x-discriminator': 'loader',
  default: { loader: 'disk' },
  description: 'How the guest boots; `loader` selects the variant.',
});

export const DiskSchema = Type.Object({
  id: deviceId('its `target`', 'Stable name of the disk: QEMU\'s device id, and the stem of its block node names (`<id>-file`, `<id>-format`). Unique among all devices of the domain.'),
  source: Type.Optional(hostPath('Image file on the host; relative paths are resolved against the definition file\'s directory. Exactly one of `source` and `volume`.')),
  volume: Type.Optional(Type.String({
    maxLength: 256, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.+-]*$',
    // The volume part allows "+" because pool volume names do (src/storage/pool/names.ts).
    'x-rule': 'must be "pool/volume" (letters, digits, "_", "." or "-", and "+" in the volume, each part starting with a letter or digit)',
    description: 'A storage volume, as `pool/volume`, instead of `source`.',
  })),
  format: oneOf(DiskFormats, { description: 'Image format. Required: it is never guessed from the content.' }),
  bus: oneOf(DiskBuses, { default: 'virtio', description: 'virtio (virtio-blk-pci), ide (the machine\'s IDE/AHCI bus, at most 4 on `pc`, 6 on `q35`) or scsi (on the virtio-scsi controller `scsi0`).' }),
  target: Type.String({
    pattern: DiskTargetPattern, 'x-rule': 'must be a disk name like vda, sdb or hdc',
    'x-generated': 'the next free name on its bus, in order: vda, vdb... (virtio), sda... (scsi), hda... (ide)',
    description: 'Guest-side name, libvirt style, unique in the domain; its prefix is the bus\'s (vd, sd, hd). It places ide and scsi disks: on ide the slot (`pc`: hda and hdb on the first bus, hdc and hdd on the second; `q35`: hda to hdf on AHCI ports 0 to 5), on scsi the SCSI target (sda: 0, sdb: 1...). A virtio disk\'s name in the guest follows PCI order instead.',
  }),
  readonly: Type.Boolean({ default: false, description: 'Attach read-only. Not available on the ide bus.' }),
  shareable: Type.Optional(Type.Boolean({ description: 'Other guests may have the image open for writing at the same time (QEMU\'s `share-rw`; libvirt\'s `<shareable/>`): the guests must coordinate, as on a cluster filesystem. Use `cache: none`. Absent: false, and QEMU\'s image locking refuses a second writer.' })),
  cache: oneOf(CacheModes, { default: 'writeback', description: 'Host cache mode, with QEMU\'s meaning (docs/argv-fixtures.md has the mapping).' }),
}, { additionalProperties: false });

export const HostFwdPattern = '^(tcp|udp)?:([0-9]{1,3}(\\.[0-9]{1,3}){3})?:[0-9]{1,5}-([0-9]{1,3}(\\.[0-9]{1,3}){3})?:[0-9]{1,5}$';

export const NicSchema = Type.Object({
  id: deviceId('net0, net1... (the next free)', 'Stable name of the interface: QEMU\'s device id, and the stem of its netdev id (`<id>-netdev`). Unique among all devices of the domain.'),
  model: oneOf(NicModels, { default: 'virtio', description: 'virtio (virtio-net-pci), e1000 or rtl8139.' }),
  mac: Type.String({
    pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$', 'x-rule': 'must be a MAC address like 52:54:00:12:34:56',
    'x-generated': 'random 52:54:00:xx:xx:xx',
    description: 'MAC address; lower-cased.',
  }),
  network: Type.String({
    pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$', 'x-rule': 'must be user or a network name (1-32 letters, digits, "_" or "-")',
    default: 'user', description: 'Network back end: `user` (QEMU\'s user-mode NAT), or the name of a virtkit network (docs/networks.md): a tap joined to its bridge.',
  }),
  vhost: Type.Optional(oneOf(['auto', 'on', 'off'] as const, { description: 'On a virtkit network: `auto` (absent) uses vhost-net when /dev/vhost-net exists, `on` requires it, `off` keeps the userspace path.' })),
  bandwidth: Type.Optional(Type.Object({
    inbound: Type.Optional(Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?([kKmMgG]?(bit|bps))$', 'x-rule': 'must be a rate like 10Mbit (bit, kbit, mbit, gbit; bps, kbps... for bytes)', description: 'Limit on what the guest receives.' })),
    outbound: Type.Optional(Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?([kKmMgG]?(bit|bps))$', 'x-rule': 'must be a rate like 10Mbit (bit, kbit, mbit, gbit; bps, kbps... for bytes)', description: 'Limit on what the guest sends.' })),
  }, { additionalProperties: false, description: 'Rate limits on a virtkit network\'s tap (tc), like 10Mbit.' })),
  hostfwd: Type.Array(Type.String({
    pattern: HostFwdPattern, 'x-rule': 'must be a forwarding rule like tcp::2222-:22 (proto:[hostaddr]:hostport-[guestaddr]:guestport)',
  }), { maxItems: 64, default: [], description: 'Port forwards from the host into the guest, in QEMU\'s hostfwd syntax: `tcp::2222-:22`.' }),
}, { additionalProperties: false });

/** A shared folder's tag: what the guest mounts (`mount -t virtiofs TAG DIR`); virtio-fs allows 36 bytes. */
export const FilesystemTagPattern = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,35}$';

export const FilesystemSchema = Type.Object({
  source: hostPath('Host directory to share; relative paths are resolved against the definition file\'s directory. It must be a directory when the guest starts.'),
  target: Type.String({
    pattern: FilesystemTagPattern, 'x-rule': 'must be a tag of 1-36 letters, digits, "_", "." or "-", starting with a letter or digit',
    description: 'The tag the guest mounts it by; unique in the domain.',
  }),
  readonly: Type.Boolean({ default: false, description: 'The guest may read but not change the files.' }),
  driver: oneOf(FilesystemDrivers, { default: 'auto', description: 'virtiofs (virtiofsd, shared guest memory), 9p (virtio-9p, no helper process) or auto: virtiofs when QEMU\'s virtiofsd is installed, else 9p.' }),
}, { additionalProperties: false });

export const ControllersSchema = Type.Object({
  scsi: oneOf(ScsiControllerModes, {
    default: 'auto',
    description: '`auto`: a virtio-scsi controller `scsi0` on every machine with PCI (pc, q35, pc-*), so a SCSI disk can always be hot-plugged, and on any other machine that has a scsi disk. `none`: no SCSI controller (scsi disks are refused), like libvirt\'s `model=\'none\'`.',
  }),
}, { additionalProperties: false, default: { scsi: 'auto' }, description: 'Controllers virtkit adds to the machine\'s built-in ones.' });

export const QemuPassthroughSchema = Type.Object({
  args: Type.Array(Type.String({ maxLength: 65536, pattern: NoLineBreakOrNul, 'x-rule': 'must not contain newline or NUL' }), {
    maxItems: 1024, default: [], description: 'Extra QEMU arguments, appended after everything virtkit generates (libvirt\'s `<qemu:commandline>`).',
  }),
  env: Type.Record(
    Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
    Type.String({ maxLength: 65536, pattern: NoLineBreakOrNul, 'x-rule': 'must not contain newline or NUL' }),
    { additionalProperties: false, maxProperties: 256, 'x-key-rule': 'must be an environment variable name (letters, digits, "_")', default: {}, description: 'Extra environment variables for the QEMU process.' },
  ),
}, { additionalProperties: false, default: { args: [], env: {} }, description: 'Passthrough to QEMU: use it for what the schema does not cover yet. Guests using it are "tainted".' });

export const DomainDefinitionSchema = Type.Object({
  name: Type.String({
    pattern: DomainNamePattern,
    'x-rule': 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit',
    description: 'Name of the guest, unique on the host.',
  }),
  uuid: Type.String({
    pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    'x-rule': 'must be a UUID like 6f1c3a52-3d3e-4c43-9a4e-0d1f2e3c4b5a',
    'x-generated': 'random version 4 UUID',
    description: 'UUID of the guest; lower-cased.',
  }),
  // Words for people (libvirt's <title> and <description>; docs/formats.md)
  title: Type.Optional(Type.String({ maxLength: 256, pattern: NoLineBreakOrNul, 'x-rule': 'must be one line without NUL', description: 'A short title for people, one line.' })),
  description: Type.Optional(Type.String({ maxLength: 65536, pattern: '^[^\\x00]*$', 'x-rule': 'must not contain NUL', description: 'A longer description for people; may span lines.' })),
  memory: Type.Integer({
    minimum: MinMemoryBytes, multipleOf: MemoryGranularityBytes, maximum: 16 * 1024 ** 4, 'x-input-size': true,
    description: 'Guest RAM. A size with a binary unit: `256MiB`, `1GiB` (K, M, G, T mean KiB, MiB, GiB, TiB); a plain number is bytes. At least 16MiB, a whole number of MiB. Stored as bytes.',
  }),
  vcpus: Type.Integer({ minimum: 1, maximum: 255, default: 1, description: 'Number of virtual CPUs.' }),
  maxvcpus: Type.Optional(Type.Integer({
    minimum: 1, maximum: 255,
    description: 'Most virtual CPUs the guest may have: CPUs beyond `vcpus`, up to this many, can be hot-plugged (`setvcpus`). At least `vcpus`. Absent: no CPU hot-plug (docs/memory-cpus.md).',
  })),
  balloon: Type.Boolean({ default: true, description: 'A virtio balloon device `balloon0` (PCI machines), so `setmem` can change the memory the guest may use while it runs and `dommemstat` reports its statistics (docs/memory-cpus.md).' }),
  machine: Type.String({
    maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', 'x-rule': 'must be a machine type name like pc or q35',
    default: 'pc', description: 'QEMU machine type.',
  }),
  cpu: Type.Optional(Type.String({
    maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.+-]*$', 'x-rule': 'must be a CPU model name like qemu64, max or host',
    description: 'CPU model. Absent: `qemu64` under TCG, `host` under KVM. `host` needs KVM: with `accel: auto` that resolves to TCG it runs as `max`; with `accel: tcg` it is refused.',
  })),
  accel: oneOf(Accels, { default: 'auto', description: 'Accelerator; `auto` picks KVM only when it works, else TCG.' }),
  boot: BootSchema,
  disks: Type.Array(DiskSchema, { maxItems: 64, default: [], description: 'Disks, in guest order.' }),
  nics: Type.Array(NicSchema, { maxItems: 32, default: [], description: 'Network interfaces, in guest order.' }),
  controllers: ControllersSchema,
  serial: Type.Boolean({ default: true, description: 'Serial console on ttyS0, on the run directory\'s console.sock and logged to console.log.' }),
  graphics: oneOf(GraphicsModes, { default: 'none', description: '`vnc`: a VGA card and a VNC server on the run directory\'s vnc.sock.' }),
  // Screens, firmware, shared folders and resource limits (docs/screens.md, firmware.md, shared-folders.md, resource-limits.md)
  video: Type.Optional(oneOf(VideoModels, { description: 'The video card: vga (the standard VGA), bochs (bochs-display), virtio (virtio-vga) or none. Absent: vga with `graphics: vnc`, none otherwise. `graphics: vnc` needs one.' })),
  vnc_password: Type.Optional(Type.Boolean({ description: 'The VNC server asks for a password (`graphics: vnc`). None is set at start, so nobody can connect until `virtkit vncdisplay NAME --password` sets one over QMP; a password never appears on the command line.' })),
  firmware: Type.Optional(oneOf(FirmwareKinds, { description: 'bios (SeaBIOS) or uefi (OVMF from Debian\'s ovmf package, with a variable store of the domain\'s own beside its state, removed on undefine). Absent: bios.' })),
  filesystems: Type.Optional(Type.Array(FilesystemSchema, { maxItems: 16, description: 'Host directories shared with the guest (virtio-fs, or 9p), each mounted in the guest by its tag.' })),
  cpu_shares: Type.Optional(Type.Integer({ minimum: 2, maximum: 262144, description: 'Relative CPU weight of the guest\'s QEMU against other guests (cgroup cpu.shares; 1024 is the host\'s default weight). Absent: the default.' })),
  cpu_quota: Type.Optional(Type.Integer({ minimum: 1, maximum: 25500, description: 'CPU time the guest\'s QEMU may use, in percent of one host CPU (50: half a CPU, 200: two CPUs), enforced by the cgroup CPU bandwidth controller. Absent: unlimited.' })),
  memory_limit: Type.Optional(Type.Integer({
    minimum: MinMemoryBytes, maximum: 16 * 1024 ** 4, 'x-input-size': true,
    description: 'Hard limit on the host memory of the guest\'s QEMU (cgroup memory limit), a size like `memory`. It covers guest RAM and QEMU\'s own overhead: set it well above `memory` or the kernel kills QEMU. Absent: unlimited.',
  })),
  on_poweroff: oneOf(LifecycleActions, { default: 'destroy', description: 'When the guest powers off: destroy (QEMU exits), restart, preserve (kept, stopped).' }),
  on_reboot: oneOf(LifecycleActions, { default: 'restart', description: 'When the guest reboots.' }),
  on_crash: oneOf(LifecycleActions, { default: 'destroy', description: 'When the guest kernel panics (seen through a pvpanic device).' }),
  on_host_shutdown: oneOf(HostShutdownPolicies, { default: 'shutdown', description: 'When the host shuts down: shutdown (ACPI, then forced after `shutdown_timeout`), destroy, none.' }),
  shutdown_timeout: Type.Integer({ minimum: 1, maximum: 86400, default: 30, description: 'Seconds a clean shutdown may take before the guest is stopped by force.' }),
  qemu: QemuPassthroughSchema,
  notes: Type.Optional(Type.Array(Type.String({ maxLength: 4096, pattern: '^[^\\x00]*$', 'x-rule': 'must not contain NUL' }), {
    maxItems: 1024, description: 'What an import from another format (libvirt XML, xm) could not honour or changed, one line per item with its XPath or key: kept so the difference stays visible (docs/formats.md).',
  })),
}, { additionalProperties: false, description: 'A virtkit domain definition.' });

export type DomainDefinition = Static<typeof DomainDefinitionSchema>;
export type BootConfig = Static<typeof BootSchema>;
export type DirectBoot = Static<typeof DirectBootSchema>;
export type DiskBoot = Static<typeof DiskBootSchema>;
export type GuestBoot = Static<typeof GuestBootSchema>;
export type DiskDefinition = Static<typeof DiskSchema>;
export type NicDefinition = Static<typeof NicSchema>;
export type ControllersConfig = Static<typeof ControllersSchema>;
export type FilesystemDefinition = Static<typeof FilesystemSchema>;

/** The annotations of a schema node, extension keywords by their short names (see the file comment). */
export interface SchemaAnnotations {
  default?: unknown;
  generated?: string;
  inputSize?: boolean;
  rule?: string;
  discriminator?: string;
  keyRule?: string;
  description?: string;
}

export function annotations(schema: TSchema): SchemaAnnotations {
  const s = schema as Record<string, unknown>;
  return {
    default: s['default'],
    generated: s['x-generated'] as string | undefined,
    inputSize: s['x-input-size'] as boolean | undefined,
    rule: s['x-rule'] as string | undefined,
    discriminator: s['x-discriminator'] as string | undefined,
    keyRule: s['x-key-rule'] as string | undefined,
    description: s['description'] as string | undefined,
  };
}
