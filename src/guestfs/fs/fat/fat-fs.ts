/**
 * The FAT12/16/32 reader as a FilesystemDriver. FAT keeps no owners or permissions: every
 * node is uid/gid 0, directories 0755, files 0644 (0444 with the read-only attribute).
 * Times are the local time the writer recorded, reported as if it were UTC (FAT stores no
 * zone). Lookups match the exact name first, then case-insensitively on long names and 8.3
 * aliases, as Windows and Linux vfat do. Directory listings and cluster chains are cached in
 * bounded LRUs.
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { VirtkitError } from '../../../util/errors.js';
import { ByteView, corrupt } from '../../bytes.js';
import { LruCache } from '../../lru.js';
import type { DirEntry, FileStat, FilesystemDriver, FilesystemInfo, FsNode } from '../types.js';
import { BOOT_SECTOR_SIZE, formatSerial, parseBootSector, type BootSector } from './boot-sector.js';
import { Attr, ENTRY_SIZE, parseDirectory, type FatDirEntry } from './directory.js';
import { FatTable } from './table.js';

/** FAT allows 65,536 entries of 32 bytes in a directory. */
export const MAX_DIRECTORY_BYTES = 65536 * ENTRY_SIZE;
/** Node numbers of files sit above every cluster number (at most 2^28), so they never meet a directory's. */
const FILE_INO_BASE = 2 ** 32;
const ROOT_INO = 1;
const DIR_CACHE_ENTRIES = 1 << 18;
const CHAIN_CACHE_CLUSTERS = 1 << 20;

export interface FatNode extends FsNode {
  readonly ino: number;
  readonly root: boolean;
  readonly entry?: FatDirEntry;
}

interface Listing {
  readonly entries: readonly FatDirEntry[];
  byName?: Map<string, FatDirEntry>;
  /** Upper-cased long and 8.3 names, for lookups that miss the exact name. */
  byFoldedName?: Map<string, FatDirEntry>;
}

export class FatDriver implements FilesystemDriver<FatNode> {
  readonly info: FilesystemInfo;
  private readonly fat: FatTable;
  private readonly dirs = new LruCache<number, Listing>(DIR_CACHE_ENTRIES, (l) => l.entries.length + 1);
  private readonly chains = new LruCache<number, number[]>(CHAIN_CACHE_CLUSTERS, (c) => c.length + 1);

  private constructor(private readonly dev: BlockDevice, readonly bs: BootSector, info: FilesystemInfo) {
    this.fat = new FatTable(dev, bs);
    this.info = info;
  }

  /** Throws `fs.corrupt` for a bad boot sector or metadata beyond the device. */
  static async open(dev: BlockDevice): Promise<FatDriver> {
    if (dev.size < BOOT_SECTOR_SIZE) throw new VirtkitError('fs.unsupported', `device of ${dev.size} bytes is too small for FAT`, { size: dev.size });
    const bs = parseBootSector(await dev.read(0, BOOT_SECTOR_SIZE));
    if (bs.dataOffset > dev.size) {
      throw corrupt('fat boot sector', 0, `the FATs and root directory (${bs.dataOffset} bytes) lie beyond the end of the device (${dev.size} bytes)`);
    }
    const warnings: string[] = [];
    const size = bs.totalSectors * bs.bytesPerSector;
    if (size > dev.size) warnings.push(`the filesystem (${size} bytes) is larger than its device (${dev.size} bytes): the image may be truncated`);
    const info: FilesystemInfo = { type: 'vfat', label: bs.label, uuid: formatSerial(bs.serial), size, warnings };
    const driver = new FatDriver(dev, bs, info);
    // The label in the root directory wins over the BPB's, as with libblkid.
    const labels: string[] = [];
    try {
      await driver.listing(driver.rootNode(), labels);
    } catch (err) {
      if (!(err instanceof VirtkitError) || err.code !== 'fs.corrupt') throw err;
      warnings.push(`the root directory is damaged: ${err.message}`);
    }
    const rootLabel = labels.find((l) => l !== '' && l !== 'NO NAME');
    return rootLabel === undefined ? driver : new FatDriver(dev, bs, { ...info, label: rootLabel });
  }

  private rootNode(): FatNode {
    return { type: 'directory', size: 0, ino: this.bs.type === 'fat32' ? this.bs.rootCluster : ROOT_INO, root: true };
  }

  private clusterOffset(cluster: number): number {
    return this.bs.dataOffset + (cluster - 2) * this.bs.clusterSize;
  }

  private async chainOf(first: number, count: number, untilEnd: boolean, structure: string, at: number): Promise<number[]> {
    // Whole chains (directories) and size-bounded prefixes (files) are cached apart.
    const key = untilEnd ? -first : first;
    const hit = this.chains.get(key);
    // Callers slice what they need: a cached chain is returned as is, never copied whole.
    if (hit !== undefined && (untilEnd || hit.length >= count)) return hit;
    const clusters = await this.fat.chain(first, { count, untilEnd, structure, at });
    this.chains.set(key, clusters);
    return clusters;
  }

  /** Reads whole clusters, coalescing contiguous runs into one device read each. */
  private async readClusters(clusters: readonly number[], structure: string, at: number, onRun: (bytes: Uint8Array, index: number) => boolean | void): Promise<void> {
    const cs = this.bs.clusterSize;
    for (let i = 0; i < clusters.length;) {
      let n = 1;
      while (i + n < clusters.length && clusters[i + n] === clusters[i]! + n && n * cs < 1 << 20) n++;
      const offset = this.clusterOffset(clusters[i]!);
      if (offset + n * cs > this.dev.size) {
        throw corrupt(structure, at, `cluster ${clusters[i]} lies beyond the end of the device`, { cluster: clusters[i] });
      }
      if (onRun(await this.dev.read(offset, n * cs), i) === true) return;
      i += n;
    }
  }

  private async listing(dir: FatNode, labels?: string[]): Promise<Listing> {
    const hit = labels === undefined ? this.dirs.get(dir.ino) : undefined;
    if (hit !== undefined) return hit;
    const entries: FatDirEntry[] = [];
    if (dir.root && this.bs.type !== 'fat32') {
      const bytes = await this.dev.read(this.bs.rootDirOffset, this.bs.rootEntries * ENTRY_SIZE);
      parseDirectory([new ByteView(bytes, 'fat directory entry', this.bs.rootDirOffset)], entries, { fat32: false, ...(labels === undefined ? {} : { labels }) });
    } else {
      const first = dir.root ? this.bs.rootCluster : dir.entry!.firstCluster;
      const at = dir.entry?.offset ?? 0;
      const clusters = await this.chainOf(first, Math.floor(MAX_DIRECTORY_BYTES / this.bs.clusterSize), true, 'fat directory', at);
      // A long name may straddle clusters that are not contiguous: parse the clusters as one run.
      const parts: { bytes: Uint8Array; cluster: number }[] = [];
      await this.readClusters(clusters, 'fat directory', at, (bytes, index) => {
        parts.push({ bytes, cluster: clusters[index]! });
      });
      parseDirectory(parts.map((p) => new ByteView(p.bytes, 'fat directory entry', this.clusterOffset(p.cluster))), entries, { fat32: this.bs.type === 'fat32', ...(labels === undefined ? {} : { labels }) });
    }
    const listing: Listing = { entries };
    this.dirs.set(dir.ino, listing);
    return listing;
  }

  private nodeOf(e: FatDirEntry): FatNode {
    const isDir = (e.attr & Attr.directory) !== 0;
    if (isDir && (e.firstCluster < 2 || e.firstCluster > this.fat.maxCluster)) {
      throw corrupt('fat directory entry', e.offset, `directory's first cluster ${e.firstCluster} is outside 2..${this.fat.maxCluster}`);
    }
    return {
      type: isDir ? 'directory' : 'file',
      size: isDir ? 0 : e.size,
      ino: isDir ? e.firstCluster : FILE_INO_BASE + e.offset / ENTRY_SIZE,
      root: false,
      entry: e,
    };
  }

  async root(): Promise<FatNode> {
    return this.rootNode();
  }

  async list(dir: FatNode): Promise<DirEntry[]> {
    const { entries } = await this.listing(dir);
    return entries.map((e) => {
      const isDir = (e.attr & Attr.directory) !== 0;
      return { name: e.name, type: isDir ? 'directory' : 'file', inode: isDir ? e.firstCluster : FILE_INO_BASE + e.offset / ENTRY_SIZE };
    });
  }

  async lookup(dir: FatNode, name: string): Promise<FatNode | undefined> {
    const listing = await this.listing(dir);
    if (listing.byName === undefined) {
      listing.byName = new Map();
      for (const e of listing.entries) if (!listing.byName.has(e.name)) listing.byName.set(e.name, e);
    }
    let e = listing.byName.get(name);
    if (e === undefined) {
      // FAT names are case-insensitive, and every file answers to its 8.3 alias too.
      if (listing.byFoldedName === undefined) {
        listing.byFoldedName = new Map();
        for (const x of listing.entries) {
          for (const key of [x.name.toUpperCase(), x.shortName.toUpperCase()]) {
            if (!listing.byFoldedName.has(key)) listing.byFoldedName.set(key, x);
          }
        }
      }
      e = listing.byFoldedName.get(name.toUpperCase());
    }
    return e === undefined ? undefined : this.nodeOf(e);
  }

  async stat(node: FatNode): Promise<FileStat> {
    const e = node.entry;
    const epoch = new Date(0);
    const mode = node.type === 'directory' ? 0o755 : (e!.attr & Attr.readOnly) !== 0 ? 0o444 : 0o644;
    return {
      type: node.type, mode, uid: 0, gid: 0, size: node.size,
      atime: e?.atime ?? epoch, mtime: e?.mtime ?? epoch, ctime: e?.ctime ?? epoch,
      nlink: node.type === 'directory' ? 2 : 1, ino: node.ino,
    };
  }

  async readlink(node: FatNode): Promise<string> {
    throw new VirtkitError('argument.invalid', 'FAT has no symbolic links', { ino: node.ino });
  }

  async read(node: FatNode, offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(node.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const e = node.entry!;
    const cs = this.bs.clusterSize;
    const needed = Math.ceil(node.size / cs);
    if (needed > this.bs.clusterCount) {
      throw corrupt('fat directory entry', e.offset, `size ${node.size} exceeds the ${this.bs.clusterCount} clusters of the volume`);
    }
    const lastWanted = Math.floor((end - 1) / cs);
    const clusters = (await this.chainOf(e.firstCluster, needed, false, 'fat file', e.offset)).slice(Math.floor(offset / cs), lastWanted + 1);
    const out = Buffer.alloc(end - offset);
    const firstByte = Math.floor(offset / cs) * cs;
    await this.readClusters(clusters, 'fat file', e.offset, (bytes, index) => {
      const runStart = firstByte + index * cs;
      const from = Math.max(offset, runStart);
      const to = Math.min(end, runStart + bytes.length);
      if (from < to) out.set(bytes.subarray(from - runStart, to - runStart), from - offset);
    });
    return out;
  }

  close(): Promise<void> {
    return this.dev.close();
  }
}
