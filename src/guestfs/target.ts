/**
 * What the `fs`, `inspect` and `bootinfo` commands read: an image file (its format from the
 * option, else from its name, never from the content: chooseImageFormat), `FILE:N` for partition N, or, through a resolver the
 * manager supplies, a defined guest's disk. Opening a target gives its disk, partition table
 * and the chosen filesystem.
 */
import { access } from 'node:fs/promises';
import type { BlockDevice } from '../storage/block/index.js';
import { chooseImageFormat, openImage } from '../storage/image/index.js';
import { VirtkitError } from '../util/errors.js';
import { detectFilesystem, openFilesystem, type Filesystem } from './fs/index.js';
import { dataPartitions, openPartition, readPartitionTable, type Partition, type PartitionTable } from './partition/index.js';

export interface TargetOptions {
  /** Image format, as the user named it; absent: the file's name states it, or the guest's definition. */
  readonly format?: string;
  /** For a guest name: which of its disks (0-based), default the first. */
  readonly disk?: number;
  /** Reading a running guest's disk is allowed only when the caller accepts an inconsistent view. */
  readonly readOnly?: boolean;
  /** Finds a defined guest's disk by name; absent when no manager is reachable. */
  readonly resolveGuest?: GuestDiskResolver;
  /** Told about conditions the user should know (a running guest, a damaged GPT, a checksum read through). */
  readonly warn?: (message: string) => void;
  /** Damage is an error at the first one (`--strict`): docs/guestfs.md, "Damaged images". */
  readonly strict?: boolean;
  /** Read the image file on the calling thread (a command that does nothing else meanwhile): HostFileOptions.blockingReads. */
  readonly blockingReads?: boolean;
}

/** The manager's answer for a guest name: its disk image, and whether the guest is running. */
export type GuestDiskResolver = (name: string, disk: number) => Promise<{ path: string; format: string; running: boolean } | undefined>;

export interface ResolvedTarget {
  readonly path: string;
  readonly format: string;
  /** Partition number from `FILE:N`, if given. */
  readonly partition?: number;
  /** The file is named `.iso`: its ISO 9660 filesystem is read whole, whatever partitions it also has. */
  readonly iso?: boolean;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/**
 * Turns TARGET into an image path, format and optional partition. A path that exists is a
 * file even if it ends in `:N`. Throws `image.not-found` when nothing matches.
 */
export async function resolveTarget(target: string, options: TargetOptions = {}): Promise<ResolvedTarget> {
  const file = (path: string): { path: string; format: string; iso: boolean } => {
    const choice = chooseImageFormat(path, { explicit: options.format });
    return { path, format: choice.format, iso: choice.iso };
  };
  if (await exists(target)) return file(target);
  const m = /^(.+):(\d+)$/.exec(target);
  if (m !== null && (await exists(m[1]!))) return { ...file(m[1]!), partition: Number(m[2]) };
  const guestName = m === null ? target : m[1]!;
  if (options.resolveGuest !== undefined && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(guestName)) {
    const disk = await options.resolveGuest(guestName, options.disk ?? 0);
    if (disk !== undefined) {
      if (disk.running) {
        if (options.readOnly !== true) {
          throw new VirtkitError('domain.invalid-state', `guest '${guestName}' is running: pass --ro to read its disk anyway (the view may be inconsistent)`, { name: guestName });
        }
        options.warn?.(`guest '${guestName}' is running: what is read may be inconsistent`);
      }
      return { path: disk.path, format: options.format ?? disk.format, ...(m === null ? {} : { partition: Number(m[2]) }) };
    }
  }
  throw new VirtkitError('image.not-found', `no image file '${target}'${options.resolveGuest === undefined ? ' (guest names need a reachable manager)' : ''}`, { target });
}

export interface OpenedDisk {
  readonly disk: BlockDevice;
  readonly table: PartitionTable;
  close(): Promise<void>;
}

export async function openDisk(resolved: ResolvedTarget, options: Pick<TargetOptions, 'blockingReads'> = {}): Promise<OpenedDisk> {
  const disk = await openImage(resolved.path, { format: resolved.format, blockingReads: options.blockingReads === true });
  try {
    const table = await readPartitionTable(disk);
    return { disk, table, close: () => disk.close() };
  } catch (err) {
    await disk.close();
    throw err;
  }
}

export interface OpenedFilesystem {
  readonly fs: Filesystem;
  readonly partition?: Partition;
  close(): Promise<void>;
}

/**
 * The filesystem of a target: partition N when given; the whole disk when there is no
 * partition table; otherwise the only partition holding a known filesystem (several: an
 * `argument.invalid` listing them, so the user picks `FILE:N`).
 */
export async function openTargetFilesystem(target: string, options: TargetOptions = {}): Promise<OpenedFilesystem> {
  const resolved = await resolveTarget(target, options);
  const opened = await openDisk(resolved, options);
  try {
    for (const w of opened.table.warnings) options.warn?.(w);
    const { disk, table } = opened;
    let partition: Partition | undefined;
    let device: BlockDevice = disk;
    if (resolved.partition !== undefined) {
      device = openPartition(disk, table, resolved.partition);
      partition = table.partitions.find((p) => p.number === resolved.partition);
    } else if (table.type !== 'none' && resolved.iso !== true && (await detectFilesystem(disk))?.name !== 'iso9660') {
      // A hybrid install ISO also carries an MBR/GPT (for USB boot) whose partitions point into
      // the ISO; like blkid, the whole-disk ISO 9660 wins when no partition is named.
      const candidates: Partition[] = [];
      for (const p of dataPartitions(table)) {
        if ((await detectFilesystem(openPartition(disk, table, p.number))) !== undefined) candidates.push(p);
      }
      if (candidates.length !== 1) {
        const list = dataPartitions(table).map((p) => `${p.number} (${p.typeName ?? p.type})`).join(', ');
        throw new VirtkitError('argument.invalid',
          `${resolved.path} has ${candidates.length === 0 ? 'no partition with a known filesystem' : 'several filesystems'}: pick one as ${resolved.path}:N (partitions: ${list})`,
          { path: resolved.path, partitions: table.partitions.map((p) => p.number) });
      }
      partition = candidates[0]!;
      device = openPartition(disk, table, partition.number);
    }
    const policy = { ...(options.strict === undefined ? {} : { strict: options.strict }), ...(options.warn === undefined ? {} : { warn: options.warn }) };
    const fs = await openFilesystem(device, policy).catch(async (err: unknown) => {
      if (err instanceof VirtkitError && err.code === 'fs.unsupported' && resolved.format === 'raw' && (await looksLikeQcow2(disk))) {
        throw new VirtkitError('fs.unsupported', `${resolved.path} looks like a qcow2 image: pass --format qcow2 (formats are never guessed)`, { path: resolved.path });
      }
      throw err;
    });
    return { fs, ...(partition === undefined ? {} : { partition }), close: () => opened.close() };
  } catch (err) {
    await opened.close();
    throw err;
  }
}

/** Only for a better error message: the format itself is never taken from content. */
async function looksLikeQcow2(disk: BlockDevice): Promise<boolean> {
  if (disk.size < 4) return false;
  const magic = await disk.read(0, 4);
  return magic[0] === 0x51 && magic[1] === 0x46 && magic[2] === 0x49 && magic[3] === 0xfb;
}
