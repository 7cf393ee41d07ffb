/**
 * The guest kit: builds a small bootable Linux guest from host packages (the kernel from
 * /boot, busybox-static, a handful of kernel modules) into a directory, with a definition
 * that boots it:
 *
 *   DIR/vmlinuz        the host kernel: the uncompressed ELF inside its bzImage when that
 *                      boots through PVH (much faster under TCG), else the bzImage itself
 *   DIR/initramfs.img  gzip'd newc cpio: busybox, the modules, /init
 *   DIR/guest.yaml     the definition (relative paths, so the directory can move)
 *
 * The guest prints READY_MARKER on ttyS0 once it takes commands, then offers a shell there.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { stringify } from 'yaml';
import { validateDefinition } from '../conf/index.js';
import { VirtkitError } from '../util/errors.js';
import { findStaticBusybox } from './busybox.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { parseCpioSpec } from './cpio-spec.js';
import { POWER_BUTTON_HANDLER, READY_MARKER, UDHCPC_SCRIPT, renderInitScript, renderPowerButtonHandler, renderProfile, renderUdhcpcScript } from './init-script.js';
import { findHostKernel, type HostKernel } from './kernel.js';
import { readModule, resolveModules } from './modules.js';
import { extractPvhKernel } from './vmlinux.js';

export { READY_MARKER } from './init-script.js';
export { writeCpio, cpioToBuffer, type CpioEntry } from './cpio.js';
export { parseCpioSpec, formatCpioSpec } from './cpio-spec.js';

/**
 * Drivers the guest loads. virtio for disks, NICs and consoles; ext4 (and crc32c, which
 * modules.softdep asks for, for metadata_csum file systems); the ACPI button and evdev,
 * because busybox acpid hears the power button only through /dev/input/event*; pvpanic
 * (the ACPI-enumerated ISA device QEMU's `pvpanic` is), so a kernel panic reaches QEMU as
 * GUEST_PANICKED and on_crash can be tested (`echo c > /proc/sysrq-trigger`); virtio_balloon,
 * so `setmem` moves the guest's MemTotal; virtiofs and 9p, so a shared folder named on the
 * kernel command line (`virtkit.mount=TAG[:DIR]`) is mounted before the ready marker.
 */
export const GUEST_MODULES = [
  'virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtio_scsi',
  'crc32c_generic', 'ext4', 'button', 'evdev', 'pvpanic_mmio', 'virtio_balloon',
  // shared folders (docs/shared-folders.md): virtio-fs, and 9p over virtio
  'virtiofs', '9pnet_virtio', '9p',
] as const;

/**
 * console=ttyS0: everything on the serial port. panic=-1: reboot at once on a panic instead
 * of hanging. quiet: no kernel log on the console, so the ready marker and the shell are
 * what a reader sees. The rest shortens a TCG boot, where every emulated instruction counts:
 * trust the TSC instead of calibrating it; skip the i8042 keyboard controller probe (a
 * serial guest has no keyboard); register one UART instead of four; no speculative-execution
 * mitigations and no crypto self-tests; rodata=off skips write-protecting the kernel and the
 * W+X page-table walk that follows it (CONFIG_DEBUG_WX), and the blacklisted initcall is the
 * SP800-108 KDF self-test, which runs even with cryptomgr.notests and is used only by keyctl.
 */
export const GUEST_CMDLINE = [
  'console=ttyS0', 'panic=-1', 'quiet',
  'tsc=reliable', 'no_timer_check', 'i8042.noaux', 'i8042.nopnp', 'i8042.dumbkbd',
  '8250.nr_uarts=1', 'mitigations=off', 'cryptomgr.notests', 'rodata=off', 'initcall_blacklist=crypto_kdf108_init',
].join(' ');

export const GUEST_FILES = { kernel: 'vmlinuz', initrd: 'initramfs.img', definition: 'guest.yaml' } as const;

export interface BuildGuestOptions {
  dir: string;
  /** Definition name; default `demo`. */
  name?: string;
  /** Start acpid so the ACPI power button (QMP system_powerdown) powers the guest off. Default true. */
  acpi?: boolean;
  /** A specific /boot/vmlinuz-<version>; default the newest with installed modules. */
  kernel?: string;
  /** gzip level of the initramfs (1-9); small archives unpack faster under TCG than they compress. */
  compressionLevel?: number;
}

export interface BuiltGuest {
  dir: string;
  definitionPath: string;
  kernelPath: string;
  initrdPath: string;
  kernel: HostKernel;
  /** `pvh`: DIR/vmlinuz is the uncompressed ELF kernel; `bzimage`: a copy of the host's image. */
  kernelFormat: 'pvh' | 'bzimage';
  busybox: string;
  /** Module names in load order. */
  modules: string[];
  /** Wanted modules the kernel has built in. */
  builtinModules: string[];
}

/**
 * Directories, device nodes and links of the guest's root, in the kernel's gen_init_cpio
 * format. The console nodes exist before devtmpfs is mounted because the kernel opens
 * /dev/console for PID 1's stdio straight after unpacking.
 */
function baseLayoutSpec(busybox: string, acpi: boolean): string {
  const lines = [
    'dir /bin 0755 0 0',
    `file /bin/busybox ${busybox} 0755 0 0`,
    'slink /bin/sh busybox 0777 0 0',
    'dir /sbin 0755 0 0',
    'dir /usr 0755 0 0',
    'dir /usr/bin 0755 0 0',
    'dir /usr/sbin 0755 0 0',
    'dir /usr/share 0755 0 0',
    'dir /usr/share/udhcpc 0755 0 0',
    'dir /dev 0755 0 0',
    'nod /dev/console 0600 0 0 c 5 1',
    'nod /dev/ttyS0 0600 0 0 c 4 64',
    'nod /dev/null 0666 0 0 c 1 3',
    'dir /proc 0555 0 0',
    'dir /sys 0555 0 0',
    'dir /run 0755 0 0',
    'dir /tmp 1777 0 0',
    'dir /root 0700 0 0',
    'dir /var 0755 0 0',
    'dir /var/log 0755 0 0',
    'slink /var/run /run 0777 0 0',
    'dir /etc 0755 0 0',
    'dir /lib 0755 0 0',
    'dir /lib/modules 0755 0 0',
  ];
  if (acpi) lines.push('dir /etc/acpi 0755 0 0', 'dir /etc/acpi/PWRF 0755 0 0');
  return lines.join('\n') + '\n';
}

function textFile(name: string, mode: number, text: string): CpioEntry {
  return { kind: 'file', name, mode, uid: 0, gid: 0, content: Buffer.from(text) };
}

/** Writes to a temporary sibling and renames, so a reader never sees a half-written file. */
async function replaceFile(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function guestDefinition(name: string, acpi: boolean): Record<string, unknown> {
  return {
    name,
    memory: '128MiB',
    vcpus: 1,
    accel: 'auto',
    boot: { loader: 'direct', kernel: GUEST_FILES.kernel, initrd: GUEST_FILES.initrd, cmdline: GUEST_CMDLINE },
    serial: true,
    graphics: 'none',
    // A guest that ignores the power button gains nothing from a long wait before the forced stop.
    shutdown_timeout: acpi ? 30 : 5,
  };
}

export async function buildGuest(options: BuildGuestOptions): Promise<BuiltGuest> {
  const dir = resolve(options.dir);
  const name = options.name ?? 'demo';
  const acpi = options.acpi ?? true;
  const level = options.compressionLevel ?? 6;
  const definition = guestDefinition(name, acpi);
  // Checked before anything is built, so a bad --name fails at once (definition.invalid: name: ...).
  validateDefinition(definition, { baseDir: dir });
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new VirtkitError('argument.invalid', `compression level must be 1-9, got ${level}`, { level });
  }

  const kernel = await findHostKernel(options.kernel === undefined ? {} : { image: options.kernel });
  const busybox = await findStaticBusybox();
  const modules = await resolveModules(kernel.modulesDir, GUEST_MODULES);
  const guestModulePath = (moduleName: string): string => `/lib/modules/${moduleName}.ko`;

  async function* entries(): AsyncGenerator<CpioEntry> {
    yield* parseCpioSpec(baseLayoutSpec(busybox, acpi));
    yield textFile('/init', 0o755, renderInitScript({ hostname: name, acpi, modules: modules.load.map((m) => guestModulePath(m.name)) }));
    yield textFile('/etc/hostname', 0o644, `${name}\n`);
    yield textFile('/etc/profile', 0o644, renderProfile());
    yield textFile(UDHCPC_SCRIPT, 0o755, renderUdhcpcScript());
    if (acpi) yield textFile(POWER_BUTTON_HANDLER, 0o755, renderPowerButtonHandler());
    // One module in memory at a time: read (and decompress) each as the archive reaches it.
    for (const mod of modules.load) {
      yield { kind: 'file', name: guestModulePath(mod.name), mode: 0o644, uid: 0, gid: 0, content: await readModule(kernel.modulesDir, mod) };
    }
  }

  await mkdir(dir, { recursive: true });
  const initrdPath = join(dir, GUEST_FILES.initrd);
  const kernelPath = join(dir, GUEST_FILES.kernel);
  const definitionPath = join(dir, GUEST_FILES.definition);
  await replaceFile(initrdPath, (tmp) => pipeline(Readable.from(writeCpio(entries())), createGzip({ level }), createWriteStream(tmp)));
  const bzImage = await readFile(kernel.imagePath);
  const pvhKernel = await extractPvhKernel(bzImage);
  await replaceFile(kernelPath, (tmp) => writeFile(tmp, pvhKernel ?? bzImage));
  // Written last: a guest.yaml newer than its inputs means the directory is complete.
  const yaml = `# Built by \`virtkit guestkit\`: kernel ${kernel.version}, ${acpi ? 'powers off on the ACPI power button' : 'ignores the ACPI power button'}.\n`
    + `# The guest prints "${READY_MARKER}" on its serial console once it takes commands.\n`
    + stringify(definition);
  await replaceFile(definitionPath, (tmp) => writeFile(tmp, yaml));
  return {
    dir, definitionPath, kernelPath, initrdPath, kernel, busybox,
    kernelFormat: pvhKernel === undefined ? 'bzimage' : 'pvh',
    modules: modules.load.map((m) => m.name),
    builtinModules: modules.builtin,
  };
}
