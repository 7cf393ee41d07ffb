/**
 * Finds the boot menus on a disk: every filesystem (each partition, or the whole disk) is
 * searched for GRUB, BLS and extlinux configurations; their entries are listed in one
 * numbered list, each with where its kernel and initrds are found, and the entry that would
 * boot is marked. Which menu boots: the first with a kernel-loading entry, GRUB before BLS
 * before extlinux, partitions in order (pygrub's preference as well).
 */
import { SliceBlockDevice, type BlockDevice } from '../../storage/block/index.js';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import { detectFilesystem, type Filesystem } from '../fs/index.js';
import { dataPartitions, openPartition, readPartitionTable, type PartitionTable } from '../partition/index.js';
import { buildBlsMenu, parseBlsEntry, parseLoaderConf, type BlsEntry } from './bls.js';
import { parseExtlinuxConfig } from './extlinux.js';
import { readGrubConfig } from './grub.js';
import { MAX_BLS_FILES, MAX_CONFIG_BYTES, MAX_ENTRIES, type BootLoaderKind, type BootMenu, type MenuEntry } from './types.js';

const GRUB_CONFIGS = ['/boot/grub/grub.cfg', '/boot/grub2/grub.cfg', '/grub/grub.cfg', '/grub2/grub.cfg'];
const BLS_ROOTS = ['/boot/loader', '/loader'];
const EXTLINUX_CONFIGS = [
  '/boot/extlinux/extlinux.conf', '/extlinux/extlinux.conf', '/boot/syslinux/syslinux.cfg', '/syslinux/syslinux.cfg',
  '/boot/extlinux.conf', '/extlinux.conf', '/syslinux.cfg',
];
/** Most filesystems searched on one disk. */
const MAX_FILESYSTEMS = 128;
/** Most distinct kernel and initrd paths looked up for one disk's entries. */
const MAX_FILE_LOOKUPS = 4096;

/** Where a file an entry names was found. */
export interface FileLocation {
  /** Partition holding it, undefined for a filesystem on the whole disk. */
  readonly partition?: number;
  /** Its path inside that filesystem. */
  readonly path: string;
  readonly size: number;
}

export interface BootEntry extends MenuEntry {
  /** Position in the disk's list of entries: what `boot.entry: N` and `virtkit bootinfo` count. */
  readonly index: number;
  readonly loader: BootLoaderKind;
  /** Configuration file the entry comes from (for BLS, the entry file). */
  readonly source: string;
  /** Partition holding the configuration, undefined for the whole disk. */
  readonly partition?: number;
  /** Where the kernel is, when the entry names one and it exists. */
  readonly kernelFile?: FileLocation;
  readonly initrdFiles: readonly FileLocation[];
  /** Files the entry names that do not exist (or are not regular files). */
  readonly missing: readonly string[];
}

export interface MenuSummary {
  readonly loader: BootLoaderKind;
  readonly source: string;
  readonly partition?: number;
  readonly timeout?: number;
  readonly warnings: readonly string[];
}

export interface BootInfo {
  readonly entries: readonly BootEntry[];
  /** Index (in `entries`) of the entry that would boot, absent when nothing can. */
  readonly defaultIndex?: number;
  readonly menus: readonly MenuSummary[];
  /** Filesystems or configurations that could not be read, with their typed error. */
  readonly errors: readonly { readonly partition?: number; readonly source?: string; readonly code: string; readonly message: string }[];
}

export interface ScannedFilesystem {
  readonly partition?: number;
  readonly fs: Filesystem;
}

/** Every readable filesystem of a disk, in partition order. */
export async function openFilesystems(disk: BlockDevice, table: PartitionTable, errors: BootInfo['errors'][number][] = []): Promise<ScannedFilesystem[]> {
  const devices: { partition?: number; dev: BlockDevice }[] = table.type === 'none'
    // A slice, so closing the filesystem leaves the disk open for its owner.
    ? [{ dev: new SliceBlockDevice(disk, 0, disk.size) }]
    : dataPartitions(table).slice(0, MAX_FILESYSTEMS).map((p) => ({ partition: p.number, dev: openPartition(disk, table, p.number) }));
  const out: ScannedFilesystem[] = [];
  for (const { partition, dev } of devices) {
    try {
      const type = await detectFilesystem(dev);
      if (type === undefined) continue;
      out.push({ ...(partition === undefined ? {} : { partition }), fs: await type.open(dev) });
    } catch (err) {
      if (!isVirtkitError(err)) throw err;
      errors.push({ ...(partition === undefined ? {} : { partition }), code: err.code, message: err.message });
    }
  }
  return out;
}

/** Runs `fn`, turning the errors a guest filesystem may give for a missing or odd file into undefined. */
async function tolerate<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (isVirtkitError(err) && (err.code.startsWith('fs.') || err.code === 'argument.invalid')) return undefined;
    throw err;
  }
}

async function isFile(fs: Filesystem, path: string): Promise<{ size: number } | undefined> {
  const st = await tolerate(() => fs.stat(path));
  return st?.type === 'file' ? { size: st.size } : undefined;
}

async function readConfig(fs: Filesystem, path: string): Promise<string> {
  return Buffer.from(await fs.readFile(path, { maxBytes: MAX_CONFIG_BYTES })).toString('utf8');
}

/** The paths a bootloader path may mean: as written, and with or without a /boot prefix (a separate /boot partition). */
export function candidatePaths(path: string): string[] {
  const abs = path.startsWith('/') ? path : `/${path}`;
  const out = [abs];
  if (abs.startsWith('/boot/')) out.push(abs.slice('/boot'.length));
  else out.push(`/boot${abs}`);
  return out;
}

/**
 * Finds a file an entry names: in the entry's own filesystem first, then in the others of
 * the disk, trying each candidate path. Undefined when it is nowhere.
 */
export async function locateFile(filesystems: readonly ScannedFilesystem[], preferred: number | undefined, path: string): Promise<(FileLocation & { fs: Filesystem }) | undefined> {
  const ordered = [...filesystems].sort((a, b) => Number(b.partition === preferred) - Number(a.partition === preferred));
  for (const { fs, partition } of ordered) {
    for (const candidate of candidatePaths(path)) {
      const file = await isFile(fs, candidate);
      if (file !== undefined) return { ...(partition === undefined ? {} : { partition }), path: candidate, size: file.size, fs };
    }
  }
  return undefined;
}

interface FoundMenu { menu: BootMenu; source: string; partition?: number }

/** Most file tests (`[ -f ... ]`) answered for one grub.cfg. */
const MAX_FILE_TESTS = 256;

/**
 * A grub.cfg read as GRUB reads it: `$config_directory`/`$prefix` its own directory, and its
 * `[ -f … ]` tests answered from the same filesystem (stock Debian's 41_custom sources
 * custom.cfg only when it exists).
 */
async function grubMenu(fs: Filesystem, path: string): Promise<BootMenu> {
  const text = await readConfig(fs, path);
  const configDirectory = path.slice(0, path.lastIndexOf('/')) || '/';
  const first = readGrubConfig(text, path, { configDirectory });
  if (first.pendingFileTests.length === 0) return first.menu;
  const fileTests = new Map<string, boolean>();
  for (const key of first.pendingFileTests.slice(0, MAX_FILE_TESTS)) {
    const test = key.slice(0, 2);
    const target = key.slice(3);
    const st = target.startsWith('/') ? await tolerate(() => fs.stat(target)) : undefined;
    fileTests.set(key, st !== undefined && (test === '-e' || st.type === (test === '-d' ? 'directory' : 'file')));
  }
  return readGrubConfig(text, path, { configDirectory, fileTests }).menu;
}

async function menusOf(fs: Filesystem, partition: number | undefined, errors: BootInfo['errors'][number][]): Promise<FoundMenu[]> {
  const where = partition === undefined ? {} : { partition };
  const seen = new Set<string>();
  const found: FoundMenu[] = [];
  /** A configuration reached twice (a `boot -> .` symlink) is read once. */
  const firstVisit = async (path: string): Promise<boolean> => {
    const real = (await tolerate(() => fs.realpath(path))) ?? path;
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  };
  const attempt = async (source: string, parse: () => Promise<BootMenu>): Promise<void> => {
    try {
      found.push({ menu: await parse(), source, ...where });
    } catch (err) {
      if (!isVirtkitError(err)) throw err;
      errors.push({ ...where, source, code: err.code, message: err.message });
    }
  };
  for (const path of GRUB_CONFIGS) {
    if ((await isFile(fs, path)) === undefined || !(await firstVisit(path))) continue;
    await attempt(path, async () => grubMenu(fs, path));
  }
  for (const root of BLS_ROOTS) {
    const dir = `${root}/entries`;
    const names = (await tolerate(() => fs.readdir(dir)))?.filter((e) => e.name.endsWith('.conf') && e.type !== 'directory').map((e) => e.name);
    if (names === undefined || names.length === 0 || !(await firstVisit(dir))) continue;
    names.sort();
    await attempt(dir, async () => {
      const files: BlsEntry[] = [];
      for (const name of names.slice(0, MAX_BLS_FILES)) {
        const path = `${dir}/${name}`;
        try {
          files.push(parseBlsEntry(await readConfig(fs, path), name));
        } catch (err) {
          if (!isVirtkitError(err)) throw err;
          errors.push({ ...where, source: path, code: err.code, message: err.message });
        }
      }
      const loaderText = (await isFile(fs, `${root}/loader.conf`)) === undefined ? undefined : await readConfig(fs, `${root}/loader.conf`);
      return buildBlsMenu(files, loaderText === undefined ? {} : parseLoaderConf(loaderText, `${root}/loader.conf`));
    });
  }
  for (const path of EXTLINUX_CONFIGS) {
    if ((await isFile(fs, path)) === undefined || !(await firstVisit(path))) continue;
    await attempt(path, async () => parseExtlinuxConfig(await readConfig(fs, path), path));
  }
  return found;
}

const LOADER_PRIORITY: Record<BootLoaderKind, number> = { grub: 0, bls: 1, extlinux: 2 };

/** Boot menus of the filesystems given, entries numbered across all of them. */
export async function bootInfoOf(filesystems: readonly ScannedFilesystem[], errors: BootInfo['errors'][number][] = []): Promise<BootInfo> {
  const menus: FoundMenu[] = [];
  for (const { fs, partition } of filesystems) menus.push(...(await menusOf(fs, partition, errors)));
  // Stable: partitions keep their order within one loader kind.
  menus.sort((a, b) => LOADER_PRIORITY[a.menu.kind] - LOADER_PRIORITY[b.menu.kind]);
  const entries: BootEntry[] = [];
  let defaultIndex: number | undefined;
  // Entries share kernels and initrds: each distinct file is looked up once, and only so many.
  const lookups = new Map<string, Promise<(FileLocation & { fs: Filesystem }) | undefined>>();
  const locate = (preferred: number | undefined, path: string): Promise<(FileLocation & { fs: Filesystem }) | undefined> => {
    const key = `${preferred ?? ''}\0${path}`;
    let found = lookups.get(key);
    if (found === undefined) {
      if (lookups.size >= MAX_FILE_LOOKUPS) {
        throw new VirtkitError('boot.config-corrupt', `boot entries name more than ${MAX_FILE_LOOKUPS} distinct files`, { path });
      }
      found = locateFile(filesystems, preferred, path);
      lookups.set(key, found);
    }
    return found;
  };
  for (const m of menus) {
    const first = entries.length;
    for (const e of m.menu.entries) {
      if (entries.length >= MAX_ENTRIES) {
        throw new VirtkitError('boot.config-corrupt', `more than ${MAX_ENTRIES} boot entries on the disk`, { source: m.source });
      }
      const missing: string[] = [];
      const kernelFile = e.kernel === undefined ? undefined : await locate(m.partition, e.kernel);
      if (e.kernel !== undefined && kernelFile === undefined) missing.push(e.kernel);
      const initrdFiles: FileLocation[] = [];
      for (const p of e.initrds) {
        const f = await locate(kernelFile?.partition ?? m.partition, p);
        if (f === undefined) missing.push(p);
        else initrdFiles.push(withoutFs(f));
      }
      entries.push({
        ...e, index: entries.length, loader: m.menu.kind, source: m.source,
        ...(m.partition === undefined ? {} : { partition: m.partition }),
        ...(kernelFile === undefined ? {} : { kernelFile: withoutFs(kernelFile) }),
        initrdFiles, missing,
      });
    }
    const bootable = m.menu.entries.some((e) => e.kernel !== undefined);
    if (defaultIndex === undefined && bootable && m.menu.defaultIndex !== undefined) defaultIndex = first + m.menu.defaultIndex;
  }
  return {
    entries, ...(defaultIndex === undefined ? {} : { defaultIndex }),
    menus: menus.map((m) => ({
      loader: m.menu.kind, source: m.source, ...(m.partition === undefined ? {} : { partition: m.partition }),
      ...(m.menu.timeout === undefined ? {} : { timeout: m.menu.timeout }), warnings: m.menu.warnings,
    })),
    errors,
  };
}

function withoutFs(f: FileLocation & { fs: Filesystem }): FileLocation {
  return { ...(f.partition === undefined ? {} : { partition: f.partition }), path: f.path, size: f.size };
}

/**
 * The boot entries of a disk (any BlockDevice: open images with their declared format;
 * formats are never guessed). Reads only; the device stays open for the caller to close.
 */
export async function findBootEntries(disk: BlockDevice): Promise<BootInfo> {
  const table = await readPartitionTable(disk);
  const errors: BootInfo['errors'][number][] = [];
  const filesystems = await openFilesystems(disk, table, errors);
  try {
    return await bootInfoOf(filesystems, errors);
  } finally {
    for (const { fs } of filesystems) await fs.close();
  }
}
