/**
 * Inspection of a disk: its partitions, the filesystems on them, and what an operating
 * system root and a /boot hold (os-release, hostname, architecture from an ELF header,
 * kernels, initrds, bootloader configuration), read without mounting anything.
 */
import type { BlockDevice } from '../storage/block/index.js';
import { isVirtkitError } from '../util/errors.js';
import { detectFilesystem, type Filesystem, type FilesystemInfo } from './fs/index.js';
import { dataPartitions, openPartition, type Partition, type PartitionTable } from './partition/index.js';

export interface FilesystemReport extends FilesystemInfo {
  /** Partition number, or undefined for a filesystem on the whole disk. */
  readonly partition?: number;
}

export interface BootReport {
  readonly kernels: KernelReport[];
  readonly initrds: FileReport[];
  /** Bootloader configuration files found (paths inside this filesystem). */
  readonly bootloaderConfigs: string[];
}

export interface FileReport {
  /** The file itself: symlinks such as /vmlinuz are resolved and listed in `links`. */
  readonly path: string;
  readonly size: number;
  /** Symlinks among the names looked at that lead to this file (`/vmlinuz`, `/boot/initrd.img.old`). */
  readonly links?: string[];
}

export interface KernelReport extends FileReport {
  /** The release, from the file name (`vmlinuz-6.1.0-18-amd64`), else from the image's version string. */
  readonly version?: string;
  /** The version string the kernel image carries (x86 boot header), as it is. */
  readonly versionString?: string;
  /** The initrd of the same release, when there is one. */
  readonly initrd?: string;
}

export interface OperatingSystemReport {
  readonly partition?: number;
  readonly name?: string;
  readonly versionId?: string;
  readonly id?: string;
  readonly prettyName?: string;
  readonly hostname?: string;
  /** `x86_64`, `aarch64`, ... from the ELF header of /bin/sh or /usr/bin/ls. */
  readonly architecture?: string;
}

export interface InspectionReport {
  readonly size: number;
  readonly format: string;
  readonly partitionTable: { readonly type: PartitionTable['type']; readonly diskId?: string; readonly warnings: readonly string[] };
  readonly partitions: readonly Partition[];
  readonly filesystems: FilesystemReport[];
  readonly operatingSystems: OperatingSystemReport[];
  /** Kernels, initrds and bootloader configs per filesystem that has any. */
  readonly boot: (BootReport & { readonly partition?: number })[];
  /** Filesystems that could not be read, with the typed error. */
  readonly errors: { readonly partition?: number; readonly code: string; readonly message: string }[];
}

const ELF_MACHINES: Record<number, [string, string]> = {
  0x03: ['i386', 'i386'], 0x08: ['mips', 'mips64'], 0x14: ['ppc', 'ppc'], 0x15: ['ppc64', 'ppc64'],
  0x16: ['s390', 's390x'], 0x28: ['arm', 'arm'], 0x2b: ['sparc64', 'sparc64'], 0x3e: ['x86_64', 'x86_64'],
  0xb7: ['aarch64', 'aarch64'], 0xf3: ['riscv32', 'riscv64'], 0x102: ['loongarch32', 'loongarch64'],
};

const BOOTLOADER_CONFIGS = [
  '/boot/grub/grub.cfg', '/boot/grub2/grub.cfg', '/grub/grub.cfg', '/grub2/grub.cfg',
  '/boot/extlinux/extlinux.conf', '/extlinux/extlinux.conf', '/boot/syslinux/syslinux.cfg', '/syslinux/syslinux.cfg',
  '/boot/efi/EFI/debian/grub.cfg', '/EFI/BOOT/grub.cfg',
];
const BLS_DIRS = ['/boot/loader/entries', '/loader/entries'];
const KERNEL_NAME = /^(vmlinuz|vmlinux|bzImage|kernel)([-.].*)?$/;
const INITRD_NAME = /^(initrd|initramfs)([-.].*)?$/;

/**
 * Parses os-release's KEY=value lines (values optionally quoted, with backslash escapes). A
 * quoted value may not span lines in os-release (os-release(5)): a quote left open takes the
 * rest of its line, without the stray quote, and the lines after it count only when they are
 * KEY=value lines themselves.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*?)\s*$/.exec(line);
    if (m === null) continue;
    let value = m[2]!;
    const q = value[0];
    if (q === '"' || q === "'") {
      const closed = value.length >= 2 && value.endsWith(q);
      value = value.slice(1, closed ? -1 : undefined);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    out[m[1]!] = value;
  }
  return out;
}

/** The architecture an ELF header names, or undefined for anything else. */
export function elfArchitecture(header: Uint8Array): string | undefined {
  if (header.length < 20 || header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) return undefined;
  const is64 = header[4] === 2;
  const little = header[5] !== 2;
  const machine = little ? header[18]! | (header[19]! << 8) : (header[18]! << 8) | header[19]!;
  const names = ELF_MACHINES[machine];
  if (names === undefined) return `elf-machine-${machine}`;
  const name = is64 ? names[1] : names[0];
  return name === 'ppc64' && little ? 'ppc64le' : name;
}

/** Tolerates what a guest may simply not have; other errors propagate. */
async function optional<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (isVirtkitError(err) && err.code.startsWith('fs.')) return undefined;
    throw err;
  }
}

const SMALL_FILE = 64 * 1024;

async function readText(fs: Filesystem, path: string): Promise<string | undefined> {
  return optional(async () => Buffer.from(await fs.readFile(path, { maxBytes: SMALL_FILE })).toString('utf8'));
}

export async function inspectOperatingSystem(fs: Filesystem): Promise<Omit<OperatingSystemReport, 'partition'> | undefined> {
  const osRelease = (await readText(fs, '/etc/os-release')) ?? (await readText(fs, '/usr/lib/os-release'));
  if (osRelease === undefined) return undefined;
  const fields = parseOsRelease(osRelease);
  const hostname = (await readText(fs, '/etc/hostname'))?.trim();
  let architecture: string | undefined;
  for (const path of ['/bin/sh', '/usr/bin/ls', '/bin/ls', '/bin/busybox']) {
    const header = await optional(() => fs.readRange(path, 0, 64));
    architecture = header === undefined ? undefined : elfArchitecture(header);
    if (architecture !== undefined) break;
  }
  const pick = (k: string): Record<string, string> => (fields[k] === undefined ? {} : { [k]: fields[k] });
  const { NAME, VERSION_ID, ID, PRETTY_NAME } = { ...pick('NAME'), ...pick('VERSION_ID'), ...pick('ID'), ...pick('PRETTY_NAME') };
  return {
    ...(NAME === undefined ? {} : { name: NAME }),
    ...(VERSION_ID === undefined ? {} : { versionId: VERSION_ID }),
    ...(ID === undefined ? {} : { id: ID }),
    ...(PRETTY_NAME === undefined ? {} : { prettyName: PRETTY_NAME }),
    ...(hostname === undefined || hostname === '' ? {} : { hostname }),
    ...(architecture === undefined ? {} : { architecture }),
  };
}

/** The release in a kernel or initrd file name: `vmlinuz-6.1.0-18-amd64`, `initramfs-6.5.6-300.fc39.x86_64.img`. */
export function releaseOfName(name: string): string | undefined {
  const m = /^(?:vmlinuz|vmlinux|bzImage|kernel|initrd\.img|initrd|initramfs)-(.+?)(?:\.img)?$/.exec(name);
  return m === null || m[1] === 'old' ? undefined : m[1];
}

/**
 * A kernel's version: the release its file name carries (`vmlinuz-6.1.0-18-amd64`), else the
 * first word of the image's own version string. A name suffix that is no version (Arch's
 * `vmlinuz-linux`, `vmlinuz-linux-lts` name a flavour; releases start with a digit) is not one;
 * the flavour still pairs the kernel with its initrd (`initramfs-linux.img`).
 */
export function kernelVersion(path: string, versionString: string | undefined): string | undefined {
  const suffix = releaseOfName(path.slice(path.lastIndexOf('/') + 1));
  if (suffix !== undefined && /^[0-9]/.test(suffix)) return suffix;
  const word = versionString?.split(' ')[0];
  return word === '' ? undefined : word;
}

/**
 * The version string of an x86 kernel image: the boot protocol header ("HdrS" at 0x202,
 * protocol 2.00 or later) points at it with kernel_version (0x20e), relative to 0x200.
 */
export function kernelVersionString(header: Uint8Array, readAt: (offset: number) => Promise<Uint8Array>): Promise<string | undefined> | undefined {
  if (header.length < 0x210 || header[0x202] !== 0x48 || header[0x203] !== 0x64 || header[0x204] !== 0x72 || header[0x205] !== 0x53) return undefined;
  const protocol = header[0x206]! | (header[0x207]! << 8);
  const pointer = header[0x20e]! | (header[0x20f]! << 8);
  if (protocol < 0x200 || pointer === 0) return undefined;
  return readAt(0x200 + pointer).then((bytes) => {
    const end = bytes.indexOf(0);
    const text = Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('utf8').trim();
    return /^[0-9]/.test(text) ? text : undefined;
  });
}

const VERSION_STRING_BYTES = 256;

async function kernelVersionOf(fs: Filesystem, path: string): Promise<string | undefined> {
  const header = await optional(() => fs.readRange(path, 0, 0x210));
  if (header === undefined) return undefined;
  return optional(async () => kernelVersionString(header, (offset) => fs.readRange(path, offset, VERSION_STRING_BYTES)));
}

/** Kernels and initrds in /boot (or at the top of a separate boot filesystem) and bootloader configs. */
export async function inspectBoot(fs: Filesystem): Promise<BootReport> {
  // Keyed by the file's real path: /vmlinuz -> boot/vmlinuz-6.1.0-18-amd64 is that kernel, once.
  const kernelFiles = new Map<string, FileReport & { links: string[] }>();
  const initrdFiles = new Map<string, FileReport & { links: string[] }>();
  for (const dir of ['/boot', '/']) {
    const entries = (await optional(() => fs.readdir(dir))) ?? [];
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const isKernel = KERNEL_NAME.test(e.name);
      const isInitrd = INITRD_NAME.test(e.name);
      if (!isKernel && !isInitrd) continue;
      const path = `${dir === '/' ? '' : dir}/${e.name}`;
      const st = await optional(() => fs.stat(path));
      if (st?.type !== 'file') continue;
      const real = (await optional(() => fs.realpath(path))) ?? path;
      const files = isKernel ? kernelFiles : initrdFiles;
      const known = files.get(real) ?? { path: real, size: st.size, links: [] };
      if (real !== path) known.links.push(path);
      files.set(real, known);
    }
  }
  const withLinks = (f: FileReport & { links: string[] }): FileReport => (f.links.length === 0 ? { path: f.path, size: f.size } : f);
  const initrds = [...initrdFiles.values()].map(withLinks);
  const kernels: KernelReport[] = [];
  for (const k of kernelFiles.values()) {
    const versionString = await kernelVersionOf(fs, k.path);
    const suffix = releaseOfName(k.path.slice(k.path.lastIndexOf('/') + 1));
    const version = kernelVersion(k.path, versionString);
    const pairsWith = new Set<string | undefined>([suffix, version].filter((x) => x !== undefined));
    const initrd = initrds.find((i) => pairsWith.has(releaseOfName(i.path.slice(i.path.lastIndexOf('/') + 1))))?.path;
    kernels.push({
      ...withLinks(k),
      ...(version === undefined ? {} : { version }),
      ...(versionString === undefined ? {} : { versionString }),
      ...(initrd === undefined ? {} : { initrd }),
    });
  }
  const bootloaderConfigs: string[] = [];
  for (const path of BOOTLOADER_CONFIGS) {
    if ((await optional(() => fs.stat(path)))?.type === 'file') bootloaderConfigs.push(path);
  }
  for (const dir of BLS_DIRS) {
    for (const e of (await optional(() => fs.readdir(dir))) ?? []) {
      if (e.name.endsWith('.conf')) bootloaderConfigs.push(`${dir}/${e.name}`);
    }
  }
  return { kernels, initrds, bootloaderConfigs };
}

/** Inspects every filesystem of `disk` (the whole disk when `table` has no partitions). */
export async function inspectDisk(disk: BlockDevice, table: PartitionTable): Promise<InspectionReport> {
  const report: InspectionReport = {
    size: disk.size, format: disk.format,
    partitionTable: { type: table.type, ...(table.diskId === undefined ? {} : { diskId: table.diskId }), warnings: table.warnings },
    partitions: table.partitions, filesystems: [], operatingSystems: [], boot: [], errors: [],
  };
  const devices: { partition?: number; dev: BlockDevice }[] = table.type === 'none'
    ? [{ dev: disk }]
    : dataPartitions(table).map((p) => ({ partition: p.number, dev: openPartition(disk, table, p.number) }));
  for (const { partition, dev } of devices) {
    const where = partition === undefined ? {} : { partition };
    try {
      const type = await detectFilesystem(dev);
      if (type === undefined) continue;
      const fs = await type.open(dev);
      report.filesystems.push({ ...where, ...fs.info });
      const os = await inspectOperatingSystem(fs);
      if (os !== undefined) report.operatingSystems.push({ ...where, ...os });
      const boot = await inspectBoot(fs);
      if (boot.kernels.length + boot.initrds.length + boot.bootloaderConfigs.length > 0) report.boot.push({ ...where, ...boot });
    } catch (err) {
      if (!isVirtkitError(err)) throw err;
      report.errors.push({ ...where, code: err.code, message: err.message });
    }
  }
  return report;
}
