/**
 * The one table of how libvirt domain XML maps onto a virtkit definition: every element and
 * attribute the importer reads, the field it becomes, and, for what virtkit cannot honour,
 * why. The importer may read only paths listed here with a field (its test checks every path
 * it reads against the table), the report of what was not honoured takes its reasons from
 * here, and docs/formats.md renders it (`renderMappingTable`), so the three cannot drift.
 *
 * Paths are XPaths without indices; `@name` is an attribute, `text()` an element's text.
 */

export interface MappingRow {
  /** `/domain/devices/disk/target/@dev` */
  readonly xpath: string;
  /** The definition field (`disks[].target`), or `-` when honoured without a field of its own. */
  readonly field?: string;
  /** How values map, when not one to one. */
  readonly how?: string;
  /** Why virtkit cannot honour it: such an element is reported (an error without --lenient). */
  readonly unsupported?: string;
}

const D = '/domain';
const Dev = `${D}/devices`;

export const LibvirtMapping: readonly MappingRow[] = [
  { xpath: D, field: '-', how: 'the root element' },
  { xpath: `${D}/@type`, field: 'accel', how: '`kvm` -> `auto` (KVM where it works, else TCG), `qemu` -> `tcg`; other hypervisors refused' },
  { xpath: `${D}/@id`, field: '-', how: 'a running domain\'s number in live XML: ignored' },
  { xpath: `${D}/name`, field: 'name' },
  { xpath: `${D}/uuid`, field: 'uuid' },
  { xpath: `${D}/title`, field: 'title' },
  { xpath: `${D}/description`, field: 'description' },
  { xpath: `${D}/metadata`, field: '-', how: 'virtkit\'s own `<virtkit:definition xmlns:virtkit="https://virtkit.dev/xmlns/domain/1">` is read back (what libvirt XML has no element for); application metadata in other namespaces is not kept' },
  { xpath: `${D}/metadata/virtkit:definition`, field: '-', how: 'written by `dumpxml`; the prefix `virtkit` bound to virtkit\'s namespace' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:hostfwd`, field: 'nics[].hostfwd', how: 'one port forward of the NIC whose MAC is `nic`' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:hostfwd/@nic`, field: 'nics[].hostfwd' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:hostfwd/@rule`, field: 'nics[].hostfwd' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:boot`, field: 'boot', how: 'a guest loader\'s menu entry (`entry`, or `entry-index`), kernel, initrd, cmdline' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:boot/@entry`, field: 'boot.entry' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:boot/@entry-index`, field: 'boot.entry' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:boot/@kernel`, field: 'boot.kernel' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:boot/@initrd`, field: 'boot.initrd' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:boot/@cmdline`, field: 'boot.cmdline' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:disk`, field: 'disks[].id', how: 'the id of the disk whose target is `target`, where it differs' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:disk/@target`, field: 'disks[].id' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:disk/@id`, field: 'disks[].id' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:host-shutdown`, field: 'on_host_shutdown', how: 'the manager\'s policy (libvirt\'s is libvirt-guests)' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:host-shutdown/@action`, field: 'on_host_shutdown' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:host-shutdown/@timeout`, field: 'shutdown_timeout' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:vnc`, field: 'vnc_password' },
  { xpath: `${D}/metadata/virtkit:definition/virtkit:vnc/@password`, field: 'vnc_password', how: '`required`' },
  { xpath: `${D}/memory`, field: 'memory', how: 'in `unit` (default KiB); every libvirt unit' },
  { xpath: `${D}/memory/@unit`, field: 'memory' },
  { xpath: `${D}/currentMemory`, field: '-', how: 'must equal `memory`: the guest boots with all of it (`setmem` moves the balloon once it runs)' },
  { xpath: `${D}/currentMemory/@unit`, field: '-' },
  { xpath: `${D}/maxMemory`, unsupported: 'memory hot-plug (DIMM slots) is not supported' },
  { xpath: `${D}/memtune`, field: '-' },
  { xpath: `${D}/memtune/hard_limit`, field: 'memory_limit', how: 'in `unit` (default KiB)' },
  { xpath: `${D}/memtune/hard_limit/@unit`, field: 'memory_limit' },
  { xpath: `${D}/memtune/soft_limit`, unsupported: 'only a hard limit is enforced' },
  { xpath: `${D}/memtune/swap_hard_limit`, unsupported: 'only a hard limit is enforced' },
  { xpath: `${D}/memoryBacking`, unsupported: 'virtkit chooses the RAM backend itself (shared memfd with virtio-fs)' },
  { xpath: `${D}/vcpu`, field: 'vcpus', how: 'with `current`: `maxvcpus` is this number and `vcpus` is `current`' },
  { xpath: `${D}/vcpu/@current`, field: 'vcpus' },
  { xpath: `${D}/vcpu/@placement`, field: '-', how: '`static` (no pinning) only; `auto` (numad) is not supported' },
  { xpath: `${D}/vcpu/@cpuset`, unsupported: 'vCPU pinning is not supported' },
  { xpath: `${D}/vcpus`, unsupported: 'per-vCPU state is not supported' },
  { xpath: `${D}/cputune`, field: '-' },
  { xpath: `${D}/cputune/shares`, field: 'cpu_shares' },
  { xpath: `${D}/cputune/period`, field: 'cpu_quota', how: 'with `quota`: `cpu_quota` = quota / period in percent (period default 100000)' },
  { xpath: `${D}/cputune/quota`, field: 'cpu_quota', how: '`-1` (or any negative): unlimited, `cpu_quota` absent' },
  { xpath: `${D}/cputune/vcpupin`, unsupported: 'vCPU pinning is not supported' },
  { xpath: `${D}/cputune/emulatorpin`, unsupported: 'pinning is not supported' },
  { xpath: `${D}/resource`, unsupported: 'virtkit places each QEMU in its own cgroup under virtkit/' },
  { xpath: `${D}/os`, field: 'boot' },
  { xpath: `${D}/os/@firmware`, field: 'firmware', how: '`efi` -> `uefi`, `bios` -> `bios`' },
  { xpath: `${D}/os/type`, field: '-', how: '`hvm` only' },
  { xpath: `${D}/os/type/@arch`, field: '-', how: '`x86_64` only (virtkit runs qemu-system-x86_64)' },
  { xpath: `${D}/os/type/@machine`, field: 'machine' },
  { xpath: `${D}/os/kernel`, field: 'boot.kernel', how: 'selects `loader: direct`' },
  { xpath: `${D}/os/initrd`, field: 'boot.initrd' },
  { xpath: `${D}/os/cmdline`, field: 'boot.cmdline' },
  { xpath: `${D}/os/boot`, field: 'boot.loader', how: 'boot order by device type' },
  { xpath: `${D}/os/boot/@dev`, field: 'boot.loader', how: '`hd` -> `loader: disk`; `cdrom`, `network`, `fd` are not supported' },
  { xpath: `${D}/os/loader`, field: 'firmware', how: 'an OVMF/pflash loader -> `uefi`; virtkit uses Debian\'s OVMF_CODE_4M.fd (a warning names a different path)' },
  { xpath: `${D}/os/loader/@readonly`, field: 'firmware' },
  { xpath: `${D}/os/loader/@type`, field: 'firmware', how: '`pflash` -> `uefi`, `rom` -> `bios`' },
  { xpath: `${D}/os/loader/@secure`, field: '-', how: '`no` only: Secure Boot is not supported' },
  { xpath: `${D}/os/nvram`, field: 'firmware', how: 'virtkit keeps the domain\'s own variable store beside its state (a warning says so)' },
  { xpath: `${D}/os/nvram/@template`, field: '-', how: 'virtkit\'s store starts from Debian\'s OVMF_VARS_4M.fd' },
  { xpath: `${D}/os/firmware`, field: 'firmware', how: 'firmware features, as virt-install writes them' },
  { xpath: `${D}/os/firmware/feature`, field: 'firmware' },
  { xpath: `${D}/os/firmware/feature/@name`, field: 'firmware', how: '`secure-boot`, `enrolled-keys`' },
  { xpath: `${D}/os/firmware/feature/@enabled`, field: 'firmware', how: '`no` only: virtkit\'s OVMF has no Secure Boot and no enrolled keys' },
  { xpath: `${D}/os/bootmenu`, unsupported: 'the firmware boot menu is not configurable' },
  { xpath: `${D}/os/smbios`, unsupported: 'SMBIOS tables are not configurable' },
  { xpath: `${D}/bootloader`, field: 'boot.loader', how: 'any (pygrub...) -> `loader: guest`: virtkit reads the guest\'s own boot configuration' },
  { xpath: `${D}/bootloader_args`, unsupported: 'bootloader arguments are not read; use `boot.entry` / `boot.cmdline`' },
  { xpath: `${D}/features/acpi`, field: '-', how: 'every virtkit guest has ACPI (without it, a warning)' },
  { xpath: `${D}/features/apic`, field: '-', how: 'every virtkit guest has an APIC' },
  { xpath: `${D}/features/pae`, field: '-', how: 'x86_64 guests always have PAE' },
  { xpath: `${D}/features`, field: '-' },
  ...['hyperv', 'kvm', 'vmport', 'smm', 'ioapic', 'pmu', 'vmcoreinfo', 'hap', 'viridian', 'privnet', 'pvspinlock', 'gic', 'msrs', 'tseg', 'htm', 'nested-hv', 'ccf-assist', 'async-teardown', 'ras', 'tcg'].map((feature) => ({
    xpath: `${D}/features/${feature}`, unsupported: 'QEMU\'s default for the machine is used; the feature is not configurable',
  })),
  { xpath: `${D}/cpu`, field: 'cpu' },
  { xpath: `${D}/cpu/@mode`, field: 'cpu', how: '`host-passthrough` -> `host`; `host-model` -> absent (the accelerator\'s default, with a warning); `custom` -> the model' },
  { xpath: `${D}/cpu/@match`, field: '-', how: '`exact` only' },
  { xpath: `${D}/cpu/@check`, field: '-', how: '`none` or `partial`: virtkit checks no CPU features' },
  { xpath: `${D}/cpu/@migratable`, field: '-', how: '`on` only' },
  { xpath: `${D}/cpu/model`, field: 'cpu' },
  { xpath: `${D}/cpu/model/@fallback`, field: '-', how: '`allow` or `forbid`: QEMU refuses an unknown model either way' },
  { xpath: `${D}/cpu/topology`, unsupported: 'CPU topology is not configurable (QEMU\'s default: one socket per vCPU)' },
  { xpath: `${D}/cpu/feature`, unsupported: 'CPU feature flags are not configurable' },
  { xpath: `${D}/cpu/numa`, unsupported: 'guest NUMA is not supported' },
  { xpath: `${D}/clock`, field: '-' },
  { xpath: `${D}/clock/@offset`, field: '-', how: '`utc` only (QEMU\'s RTC default)' },
  { xpath: `${D}/clock/timer`, unsupported: 'timer policies are QEMU\'s defaults' },
  { xpath: `${D}/on_poweroff`, field: 'on_poweroff', how: '`destroy`, `restart`, `preserve`; `rename-restart` is not supported' },
  { xpath: `${D}/on_reboot`, field: 'on_reboot', how: 'as on_poweroff' },
  { xpath: `${D}/on_crash`, field: 'on_crash', how: 'as on_poweroff; `coredump-*` are not supported' },
  { xpath: `${D}/pm`, unsupported: 'guest suspend states are not configurable' },
  { xpath: `${D}/numatune`, unsupported: 'NUMA memory placement is not supported' },
  { xpath: `${D}/blkiotune`, unsupported: 'block I/O weights are not supported' },
  { xpath: `${D}/iothreads`, unsupported: 'I/O threads are not configurable' },
  { xpath: `${D}/sysinfo`, unsupported: 'SMBIOS system information is not configurable' },
  { xpath: `${D}/genid`, unsupported: 'VM generation ids are not supported' },
  { xpath: `${D}/on_lockfailure`, unsupported: 'there is no lock manager' },
  { xpath: `${D}/idmap`, unsupported: 'for containers, not QEMU' },
  { xpath: `${D}/keywrap`, unsupported: 's390 only' },
  { xpath: `${D}/launchSecurity`, unsupported: 'confidential guests (SEV, TDX) are not supported' },
  { xpath: `${D}/seclabel`, unsupported: 'security labels (SELinux, AppArmor) are not applied' },
  { xpath: `${D}/devices`, field: '-' },
  { xpath: `${Dev}/emulator`, field: '-', how: 'a qemu-system-x86_64 (or qemu-kvm) path is honoured by the host\'s own; another emulator is not supported' },

  { xpath: `${Dev}/disk`, field: 'disks[]' },
  { xpath: `${Dev}/disk/@type`, field: 'disks[].source', how: '`file` and `block` -> `source`, `volume` -> `volume`; `network`, `dir`, `nvme` are not supported' },
  { xpath: `${Dev}/disk/@device`, field: '-', how: '`disk` only; `cdrom`, `floppy`, `lun` are not supported' },
  { xpath: `${Dev}/disk/driver`, field: '-' },
  { xpath: `${Dev}/disk/driver/@name`, field: '-', how: '`qemu` only' },
  { xpath: `${Dev}/disk/driver/@type`, field: 'disks[].format', how: '`raw` or `qcow2`; required (virtkit never guesses a format)' },
  { xpath: `${Dev}/disk/driver/@cache`, field: 'disks[].cache', how: '`default` -> `writeback`' },
  { xpath: `${Dev}/disk/source`, field: 'disks[].source' },
  { xpath: `${Dev}/disk/source/@file`, field: 'disks[].source' },
  { xpath: `${Dev}/disk/source/@dev`, field: 'disks[].source' },
  { xpath: `${Dev}/disk/source/@pool`, field: 'disks[].volume', how: '`pool/volume`' },
  { xpath: `${Dev}/disk/source/@volume`, field: 'disks[].volume' },
  { xpath: `${Dev}/disk/target`, field: 'disks[].target' },
  { xpath: `${Dev}/disk/target/@dev`, field: 'disks[].target', how: 'also the disk\'s `id`' },
  { xpath: `${Dev}/disk/target/@bus`, field: 'disks[].bus', how: '`virtio`, `ide`, `scsi` (absent: from the name\'s prefix); `sata` becomes `ide` (AHCI on q35) with the name `sdX` read as `hdX`, and a warning; `usb`, `xen`, `sd` are not supported' },
  { xpath: `${Dev}/disk/readonly`, field: 'disks[].readonly' },
  { xpath: `${Dev}/disk/shareable`, field: 'disks[].shareable', how: 'QEMU\'s `share-rw`: other guests may write the image too' },
  { xpath: `${Dev}/disk/boot`, field: 'boot.disk' },
  { xpath: `${Dev}/disk/boot/@order`, field: 'boot.disk', how: 'the disk with the lowest order is `boot.disk` (`loader: disk`); other orders are not kept' },
  { xpath: `${Dev}/disk/serial`, unsupported: 'disk serial numbers are not configurable' },
  { xpath: `${Dev}/disk/backingStore`, field: '-', how: 'live XML\'s view of the backing chain: ignored (QEMU follows the image\'s own)' },
  { xpath: `${Dev}/disk/driver/@io`, unsupported: 'QEMU\'s default I/O mode is used' },
  { xpath: `${Dev}/disk/driver/@discard`, unsupported: 'discard requests are QEMU\'s default (ignored)' },
  { xpath: `${Dev}/disk/driver/@detect_zeroes`, unsupported: 'QEMU\'s default is used' },
  { xpath: `${Dev}/disk/iotune`, unsupported: 'I/O throttling is not supported' },
  { xpath: `${Dev}/disk/encryption`, unsupported: 'encrypted images are not supported' },
  { xpath: `${Dev}/disk/auth`, unsupported: 'network disks are not supported' },
  { xpath: `${Dev}/disk/address`, unsupported: 'virtkit places devices on the bus itself' },
  { xpath: `${Dev}/disk/alias`, field: '-', how: 'live XML\'s device name: ignored (virtkit names devices by `id`)' },

  { xpath: `${Dev}/controller`, field: 'controllers.scsi' },
  { xpath: `${Dev}/controller/@type`, field: 'controllers.scsi', how: '`scsi` (model `virtio-scsi`) -> `scsi: auto`; the machine\'s own `pci` root, `ide` (pc), `sata` (q35) and a `usb` of model `none` are honoured as they are; others are not supported' },
  { xpath: `${Dev}/controller/@index`, field: '-', how: '`0` only' },
  { xpath: `${Dev}/controller/@model`, field: 'controllers.scsi' },
  { xpath: `${Dev}/controller/address`, unsupported: 'virtkit places devices on the bus itself' },
  { xpath: `${Dev}/controller/driver`, unsupported: 'controller queues and threads are QEMU\'s defaults' },
  { xpath: `${Dev}/controller/alias`, field: '-', how: 'ignored' },

  { xpath: `${Dev}/interface`, field: 'nics[]' },
  { xpath: `${Dev}/interface/@type`, field: 'nics[].network', how: '`user` -> `network: user`; `network` -> the virtkit network named by `source/@network`; `bridge` -> `network:` the bridge\'s name, with a warning: a virtkit network of that name with `mode: bridge` must be defined (docs/networks.md); others are not supported' },
  { xpath: `${Dev}/interface/mac`, field: 'nics[].mac' },
  { xpath: `${Dev}/interface/mac/@address`, field: 'nics[].mac' },
  { xpath: `${Dev}/interface/model`, field: 'nics[].model' },
  { xpath: `${Dev}/interface/model/@type`, field: 'nics[].model', how: '`virtio`, `e1000`, `rtl8139`' },
  { xpath: `${Dev}/interface/source`, field: 'nics[].network' },
  { xpath: `${Dev}/interface/source/@network`, field: 'nics[].network', how: 'the virtkit network\'s name (libvirt\'s `default` is a nat network there too, once defined)' },
  { xpath: `${Dev}/interface/source/@bridge`, field: 'nics[].network', how: 'the name of a virtkit `bridge` network' },
  { xpath: `${Dev}/interface/address`, unsupported: 'virtkit places devices on the bus itself' },
  { xpath: `${Dev}/interface/boot`, unsupported: 'network boot (PXE) is not supported' },
  { xpath: `${Dev}/interface/driver`, unsupported: 'the NIC back end\'s tuning is QEMU\'s default' },
  { xpath: `${Dev}/interface/link`, unsupported: 'a NIC is always up at start' },
  { xpath: `${Dev}/interface/bandwidth`, unsupported: 'bandwidth limits are not supported' },
  { xpath: `${Dev}/interface/filterref`, unsupported: 'network filters are not supported' },
  { xpath: `${Dev}/interface/portForward`, unsupported: 'write port forwards as `nics[].hostfwd`' },
  { xpath: `${Dev}/interface/alias`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/interface/target`, field: '-', how: 'live XML\'s host device name: ignored' },

  { xpath: `${Dev}/serial`, field: 'serial', how: 'the first serial port (port 0) -> `serial: true`; no serial and no console -> `serial: false`' },
  { xpath: `${Dev}/serial/@type`, field: 'serial', how: '`pty`: virtkit\'s console socket serves it (`virtkit console`)' },
  { xpath: `${Dev}/serial/target`, field: 'serial' },
  { xpath: `${Dev}/serial/target/@port`, field: 'serial', how: '`0` only' },
  { xpath: `${Dev}/serial/target/@type`, field: '-', how: '`isa-serial` only' },
  { xpath: `${Dev}/serial/target/model`, field: '-', how: '`isa-serial` only' },
  { xpath: `${Dev}/serial/target/model/@name`, field: '-' },
  { xpath: `${Dev}/serial/source`, field: '-', how: 'live XML\'s pty path: ignored' },
  { xpath: `${Dev}/serial/source/@path`, field: '-' },
  { xpath: `${Dev}/serial/alias`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/serial/log`, unsupported: 'the console is always logged to the run directory\'s console.log' },
  { xpath: `${Dev}/console`, field: 'serial', how: 'a console on serial port 0 is that serial port' },
  { xpath: `${Dev}/console/@type`, field: 'serial', how: '`pty`' },
  { xpath: `${Dev}/console/@tty`, field: '-', how: 'live XML\'s pty path: ignored' },
  { xpath: `${Dev}/console/target`, field: 'serial' },
  { xpath: `${Dev}/console/target/@type`, field: 'serial', how: '`serial` only; `virtio` consoles are not supported' },
  { xpath: `${Dev}/console/target/@port`, field: 'serial', how: '`0` only' },
  { xpath: `${Dev}/console/source`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/console/source/@path`, field: '-' },
  { xpath: `${Dev}/console/alias`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/channel`, unsupported: 'no guest agent or other virtio-serial channels yet' },
  { xpath: `${Dev}/input`, field: '-', how: 'PS/2 `mouse` and `keyboard` are the machine\'s own; other inputs (tablet, USB) are not supported' },
  { xpath: `${Dev}/input/@type`, field: '-' },
  { xpath: `${Dev}/input/@bus`, field: '-', how: '`ps2` only' },
  { xpath: `${Dev}/input/alias`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/graphics`, field: 'graphics' },
  { xpath: `${Dev}/graphics/@type`, field: 'graphics', how: '`vnc`; `spice`, `sdl`, `rdp`... are not supported' },
  { xpath: `${Dev}/graphics/@port`, field: '-', how: 'virtkit serves VNC on the run directory\'s vnc.sock, never a TCP port (a TCP listener is a warning)' },
  { xpath: `${Dev}/graphics/@autoport`, field: '-' },
  { xpath: `${Dev}/graphics/@listen`, field: '-', how: 'as `port`' },
  { xpath: `${Dev}/graphics/@socket`, field: '-', how: 'virtkit\'s own socket path is used' },
  { xpath: `${Dev}/graphics/listen`, field: '-', how: 'type `socket`; type `address`/`network` is a warning (as `port`)' },
  { xpath: `${Dev}/graphics/listen/@type`, field: '-' },
  { xpath: `${Dev}/graphics/listen/@address`, field: '-' },
  { xpath: `${Dev}/graphics/listen/@socket`, field: '-' },
  { xpath: `${Dev}/graphics/@passwd`, field: 'vnc_password', how: 'any value -> `vnc_password: true`, with a warning: the password itself is not kept (set it with `virtkit vncdisplay NAME --password` once it runs; a password never goes in a definition)' },
  { xpath: `${Dev}/graphics/@keymap`, unsupported: 'keymaps are not configurable' },
  { xpath: `${Dev}/graphics/image`, unsupported: 'SPICE image compression has no meaning for VNC' },
  { xpath: `${Dev}/audio`, unsupported: 'no sound devices' },
  { xpath: `${Dev}/video/model/acceleration`, unsupported: 'no 3D acceleration' },
  { xpath: `${Dev}/video`, field: 'video' },
  { xpath: `${Dev}/video/model`, field: 'video' },
  { xpath: `${Dev}/video/model/@type`, field: 'video', how: '`vga`, `bochs`, `virtio`, `none`; `cirrus`, `qxl` are not supported' },
  { xpath: `${Dev}/video/model/@vram`, field: '-', how: 'QEMU\'s default size is used' },
  { xpath: `${Dev}/video/model/@heads`, field: '-', how: '`1` only' },
  { xpath: `${Dev}/video/model/@primary`, field: '-' },
  { xpath: `${Dev}/video/address`, unsupported: 'virtkit places devices on the bus itself' },
  { xpath: `${Dev}/video/alias`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/memballoon`, field: 'balloon' },
  { xpath: `${Dev}/memballoon/@model`, field: 'balloon', how: '`virtio` -> `true`, `none` -> `false`' },
  { xpath: `${Dev}/memballoon/stats`, field: '-', how: 'virtkit polls balloon statistics every 2 s' },
  { xpath: `${Dev}/memballoon/stats/@period`, field: '-' },
  { xpath: `${Dev}/memballoon/address`, unsupported: 'virtkit places devices on the bus itself' },
  { xpath: `${Dev}/memballoon/alias`, field: '-', how: 'ignored' },
  { xpath: `${Dev}/rng`, unsupported: 'no random number generator device yet' },
  { xpath: `${Dev}/filesystem`, field: 'filesystems[]' },
  { xpath: `${Dev}/filesystem/@type`, field: '-', how: '`mount` only' },
  { xpath: `${Dev}/filesystem/@accessmode`, field: '-', how: '`passthrough` only' },
  { xpath: `${Dev}/filesystem/driver`, field: 'filesystems[].driver' },
  { xpath: `${Dev}/filesystem/driver/@type`, field: 'filesystems[].driver', how: '`virtiofs` -> `virtiofs`, `path` -> `9p`, absent -> `auto`' },
  { xpath: `${Dev}/filesystem/source`, field: 'filesystems[].source' },
  { xpath: `${Dev}/filesystem/source/@dir`, field: 'filesystems[].source' },
  { xpath: `${Dev}/filesystem/target`, field: 'filesystems[].target' },
  { xpath: `${Dev}/filesystem/target/@dir`, field: 'filesystems[].target', how: 'the mount tag' },
  { xpath: `${Dev}/filesystem/readonly`, field: 'filesystems[].readonly' },
  { xpath: `${Dev}/filesystem/address`, unsupported: 'virtkit places devices on the bus itself' },
  { xpath: `${Dev}/watchdog`, unsupported: 'no watchdog device yet' },
  { xpath: `${Dev}/panic`, field: '-', how: 'model `isa`: every virtkit guest has a pvpanic device (`on_crash`)' },
  { xpath: `${Dev}/panic/@model`, field: '-', how: '`isa` only' },
  { xpath: `${Dev}/sound`, unsupported: 'no sound devices' },
  { xpath: `${Dev}/hostdev`, unsupported: 'no device assignment (PCI/USB passthrough)' },
  { xpath: `${Dev}/redirdev`, unsupported: 'no USB redirection' },
  { xpath: `${Dev}/smartcard`, unsupported: 'no smartcards' },
  { xpath: `${Dev}/tpm`, unsupported: 'no TPM yet' },
  { xpath: `${Dev}/hub`, unsupported: 'no USB hubs' },
  { xpath: `${Dev}/parallel`, unsupported: 'no parallel ports' },
  { xpath: `${Dev}/shmem`, unsupported: 'no shared memory devices' },
  { xpath: `${Dev}/iommu`, unsupported: 'no IOMMU' },
  { xpath: `${Dev}/vsock`, unsupported: 'no vsock yet' },
  { xpath: `${Dev}/lease`, unsupported: 'no lock manager' },
  // Live XML (`virsh dumpxml` of a running domain) names each device; virtkit's names are its ids.
  ...['disk', 'controller', 'interface', 'serial', 'console', 'input', 'video', 'memballoon'].map((device) => ({
    xpath: `${Dev}/${device}/alias/@name`, field: '-', how: 'ignored',
  })),
  { xpath: `${Dev}/interface/target/@dev`, field: '-', how: 'ignored' },
  { xpath: `${D}/qemu:commandline`, field: 'qemu' },
  { xpath: `${D}/qemu:commandline/qemu:arg`, field: 'qemu.args[]' },
  { xpath: `${D}/qemu:commandline/qemu:arg/@value`, field: 'qemu.args[]', how: 'appended in order after virtkit\'s own arguments (the guest is tainted)' },
  { xpath: `${D}/qemu:commandline/qemu:env`, field: 'qemu.env' },
  { xpath: `${D}/qemu:commandline/qemu:env/@name`, field: 'qemu.env', how: 'the variable\'s name; unique' },
  { xpath: `${D}/qemu:commandline/qemu:env/@value`, field: 'qemu.env', how: 'its value (absent: empty)' },
];

const byPath = new Map(LibvirtMapping.map((row) => [row.xpath, row]));

/** The row of a path without indices, if the table has one. */
export function mappingRow(genericXpath: string): MappingRow | undefined {
  return byPath.get(genericXpath);
}

/** `/domain/devices/disk[2]/target/@dev` -> `/domain/devices/disk/target/@dev` */
export function genericXpath(xpath: string): string {
  return xpath.replace(/\[\d+\]/g, '');
}

/**
 * Why a path is not honoured: its own row's reason (or the values its row accepts), else the
 * reason of the nearest ancestor that is not supported as a whole, else "not known".
 */
export function unsupportedReason(xpath: string): string {
  const generic = genericXpath(xpath);
  if (generic === '/domain/metadata' || generic.startsWith('/domain/metadata/') && !generic.startsWith('/domain/metadata/virtkit:definition')) return 'not supported: application metadata in other namespaces is not kept';
  const own = byPath.get(generic);
  if (own?.unsupported !== undefined) return `not supported: ${own.unsupported}`;
  if (own?.how !== undefined) return `not supported here (${own.how})`;
  if (own !== undefined) {
    return generic.includes('/@') ? 'not read here: it has no meaning with the other attributes given' : 'not read here: a repeat of an element read once, or without meaning in this place';
  }
  for (let up = generic.replace(/\/[^/]*$/, ''); up !== ''; up = up.replace(/\/[^/]*$/, '')) {
    const row = byPath.get(up);
    if (row?.unsupported !== undefined) return `not supported: ${row.unsupported}`;
  }
  return 'not known to virtkit';
}

function cell(text: string | undefined): string {
  return (text ?? '').replace(/\|/g, '\\|');
}

/** The element-by-element table of docs/formats.md. */
export function renderMappingTable(): string {
  const lines = ['| libvirt XML | virtkit definition | how |', '|---|---|---|'];
  for (const row of LibvirtMapping) {
    const field = row.unsupported !== undefined ? '*not supported*' : row.field === '-' ? '(honoured, no field)' : `\`${cell(row.field)}\``;
    const how = row.unsupported ?? row.how;
    lines.push(`| \`${cell(row.xpath)}\` | ${field} | ${cell(how)} |`);
  }
  return `${lines.join('\n')}\n`;
}
