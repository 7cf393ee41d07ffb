/**
 * The ISO 9660 reader as a FilesystemDriver. One tree is read, chosen once at open: the
 * primary tree with Rock Ridge when the root carries the SUSP `SP` entry (POSIX names,
 * modes, owners, times, symlinks), else the Joliet tree (UCS-2 names), else the primary
 * tree with its plain names (`;1` versions and a trailing `.` dropped, case as recorded;
 * lookups in plain and Joliet trees fall back to case-insensitive matching).
 * Listings are cached in a bounded LRU; every extent is checked against the device.
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { VirtkitError } from '../../../util/errors.js';
import { ByteView, corrupt } from '../../bytes.js';
import { LruCache } from '../../lru.js';
import { MAX_PATH_BYTES, type DirEntry, type FileStat, type FileType, type FilesystemDriver, type FilesystemInfo, type FsNode } from '../types.js';
import { decodeUcs2, readDescriptors, volumeLabel, volumeUuid, type VolumeDescriptor } from './descriptors.js';
import { FileFlags, isSelfOrParent, parseRecord, parseRecords, type DirRecord } from './records.js';
import { DIRECTORY_CONTINUATION_BUDGET, parseRockRidge, suspSkipBytes, type RockRidge } from './rock-ridge.js';
import { readZisofs, type Zisofs } from './zisofs.js';

export const IsoNamings = ['rock-ridge', 'joliet', 'plain'] as const;
export type IsoNaming = (typeof IsoNamings)[number];

/** A directory larger than this is refused (100,000 entries with long Rock Ridge names take ~16 MiB). */
export const MAX_DIRECTORY_BYTES = 32 << 20;
/** Extents of one multi-extent file (each up to 4 GiB). */
const MAX_FILE_EXTENTS = 1024;
const DIR_CACHE_ENTRIES = 1 << 18;
const DIR_READ_CHUNK = 1 << 20;

interface Extent {
  /** Device offset of the data. */
  readonly start: number;
  readonly length: number;
}

export interface IsoNode extends FsNode {
  readonly ino: number;
  /** Device offset of the record that describes the node (for errors). */
  readonly recordOffset: number;
  readonly extents: readonly Extent[];
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  readonly symlink?: string;
  /** zisofs-compressed data (`size` is the uncompressed size). */
  readonly zisofs?: Zisofs;
  /** Data that cannot be read (interleaved, unknown compression): reading it is `fs.unsupported`. */
  readonly unreadable?: string;
}

interface Listing {
  readonly entries: readonly { name: string; node: IsoNode }[];
  byName?: Map<string, IsoNode>;
  /** Upper-cased names (plain and Joliet trees only), for lookups that miss the exact name. */
  byFoldedName?: Map<string, IsoNode>;
}

const S_IFMT = 0o170000;
const MODE_TYPES: Record<number, FileType> = {
  0o040000: 'directory', 0o100000: 'file', 0o120000: 'symlink', 0o020000: 'chardev',
  0o060000: 'blockdev', 0o010000: 'fifo', 0o140000: 'socket',
};

/** `NAME.EXT;1` -> `NAME.EXT`, `NAME.;1` -> `NAME`. */
export function stripVersion(name: string): string {
  const semi = name.lastIndexOf(';');
  let base = semi >= 0 && /^\d*$/.test(name.slice(semi + 1)) ? name.slice(0, semi) : name;
  if (base.endsWith('.') && base.length > 1 && base !== '..') base = base.slice(0, -1);
  return base;
}

export class IsoDriver implements FilesystemDriver<IsoNode> {
  readonly info: FilesystemInfo;
  private readonly dirs = new LruCache<number, Listing>(DIR_CACHE_ENTRIES, (l) => l.entries.length + 1);

  /** Set once by `open`, after the tree is chosen and its root read. */
  private rootNode: IsoNode | undefined;

  private constructor(
    private readonly dev: BlockDevice,
    private readonly volume: VolumeDescriptor,
    readonly naming: IsoNaming,
    /** SUSP skip bytes when Rock Ridge is read. */
    private readonly suspSkip: number,
    info: FilesystemInfo,
  ) {
    this.info = info;
  }

  static async open(dev: BlockDevice): Promise<IsoDriver> {
    const set = await readDescriptors((o, l) => dev.read(o, l), dev.size);
    const warnings: string[] = [];
    const size = set.primary.volumeBlocks * set.primary.blockSize;
    if (size > dev.size) warnings.push(`the volume (${size} bytes) is larger than its device (${dev.size} bytes): the image may be truncated`);
    const info = { type: 'iso9660', label: volumeLabel(set), uuid: volumeUuid(set.primary), size, warnings };

    // Rock Ridge: the SP entry opens the System Use area of the root's own `.` record.
    const primary = new IsoDriver(dev, set.primary, 'plain', 0, info);
    const rootRecord = parseRecord(set.primary.rootRecord, 0);
    const rootSelf = await primary.selfRecord(rootRecord.extent + rootRecord.earBlocks, rootRecord.offset);
    const skip = rootSelf === undefined ? undefined : suspSkipBytes(rootSelf.systemUse);
    let driver: IsoDriver;
    let root: IsoNode;
    if (rootSelf !== undefined && skip !== undefined) {
      driver = new IsoDriver(dev, set.primary, 'rock-ridge', skip, info);
      root = driver.nodeFor(rootRecord, await driver.rockRidge(rootSelf, 0));
    } else if (set.joliet !== undefined) {
      driver = new IsoDriver(dev, set.joliet, 'joliet', 0, info);
      root = driver.nodeFor(parseRecord(set.joliet.rootRecord, 0), undefined);
    } else {
      driver = primary;
      root = driver.nodeFor(rootRecord, undefined);
    }
    if (root.type !== 'directory') throw corrupt('iso9660 root directory record', root.recordOffset, 'the root is not a directory');
    driver.rootNode = root;
    return driver;
  }

  private get blockSize(): number {
    return this.volume.blockSize;
  }

  /** Checks that [start, start+length) lies on the device; `structure` names it in the error. */
  private checkExtent(start: number, length: number, structure: string, at: number): void {
    if (!Number.isSafeInteger(start) || start + length > this.dev.size) {
      throw corrupt(structure, at, `extent of ${length} bytes at ${start} lies beyond the end of the device (${this.dev.size} bytes)`);
    }
  }

  /** The `.` record at the start of the directory extent at `block`, if it is one. */
  private async selfRecord(block: number, at: number): Promise<DirRecord | undefined> {
    const start = block * this.blockSize;
    const length = Math.min(2048, Math.max(0, this.dev.size - start));
    this.checkExtent(start, 34, 'iso9660 directory', at);
    const head = new ByteView(await this.dev.read(start, length), 'iso9660 directory', start);
    if (head.u8(0) === 0) return undefined;
    const r = parseRecord(head, 0);
    return isSelfOrParent(r) ? r : undefined;
  }

  private async rockRidge(r: DirRecord, skip: number, budget?: { remaining: number }): Promise<RockRidge> {
    return parseRockRidge(r.systemUse, skip, async (block, offset, length) => {
      const start = block * this.blockSize + offset;
      this.checkExtent(start, length, 'iso9660 continuation area', r.offset);
      return new ByteView(await this.dev.read(start, length), 'iso9660 continuation area', start);
    }, budget);
  }

  private nodeFor(r: DirRecord, rr: RockRidge | undefined, extents?: Extent[]): IsoNode {
    const isDir = (r.flags & FileFlags.directory) !== 0;
    const start = (r.extent + r.earBlocks) * this.blockSize;
    const data = extents ?? [{ start, length: r.size }];
    const compression = rr?.compression;
    const zisofs = compression?.algorithm === 'pz' && !isDir ? { realSize: compression.realSize } : undefined;
    const size = zisofs?.realSize ?? data.reduce((n, e) => n + e.length, 0);
    let type: FileType = isDir ? 'directory' : 'file';
    if (!isDir && rr?.mode !== undefined) {
      const fromMode = MODE_TYPES[rr.mode & S_IFMT] ?? 'unknown';
      type = fromMode === 'directory' ? 'file' : fromMode;
    }
    if (type === 'symlink' && rr?.symlink === undefined) type = 'file';
    const times = { atime: rr?.atime ?? r.recorded, mtime: rr?.mtime ?? r.recorded, ctime: rr?.ctime ?? r.recorded };
    const unreadable = r.interleaved ? 'interleaved file data'
      : compression !== undefined && zisofs === undefined && !isDir ? `data compressed with '${compression.algorithm}'` : undefined;
    const ino = isDir ? start / this.blockSize : rr?.ino !== undefined && rr.ino !== 0 ? rr.ino : r.offset;
    return {
      type, size, ino, recordOffset: r.offset, extents: data,
      mode: rr?.mode !== undefined ? rr.mode & 0o7777 : isDir ? 0o555 : 0o444,
      uid: rr?.uid ?? 0, gid: rr?.gid ?? 0, nlink: rr?.nlink ?? (isDir ? 2 : 1), ...times,
      ...(rr?.symlink === undefined || type !== 'symlink' ? {} : { symlink: rr.symlink }),
      ...(unreadable === undefined ? {} : { unreadable }),
      ...(zisofs === undefined ? {} : { zisofs }),
    };
  }

  /** A directory that Rock Ridge relocated (CL): its real extent, size from its `.` record. */
  private async relocatedDirectory(r: DirRecord, rr: RockRidge, block: number): Promise<IsoNode> {
    const self = await this.selfRecord(block, r.offset);
    if (self === undefined || (self.flags & FileFlags.directory) === 0) {
      throw corrupt('iso9660 rock ridge CL', r.offset, `child link to block ${block} does not lead to a directory`);
    }
    const node = this.nodeFor({ ...self, identifier: r.identifier }, rr);
    return { ...node, type: 'directory', ino: block, recordOffset: r.offset };
  }

  private decodeName(r: DirRecord, rr: RockRidge | undefined): string {
    if (rr?.name !== undefined) return rr.name;
    if (this.naming === 'joliet') return stripVersion(decodeUcs2(r.identifier));
    return stripVersion(Buffer.from(r.identifier).toString('latin1'));
  }

  private async listing(dir: IsoNode): Promise<Listing> {
    const key = dir.extents[0]?.start ?? 0;
    const hit = this.dirs.get(key);
    if (hit !== undefined) return hit;
    const records = await this.readDirectory(dir);
    const entries: { name: string; node: IsoNode }[] = [];
    let pending: { first: DirRecord; extents: Extent[] } | undefined;
    const budget = { remaining: DIRECTORY_CONTINUATION_BUDGET };
    for (const r of records) {
      if (isSelfOrParent(r) || (r.flags & FileFlags.associated) !== 0) continue;
      const start = (r.extent + r.earBlocks) * this.blockSize;
      if (pending !== undefined && !Buffer.from(pending.first.identifier).equals(Buffer.from(r.identifier))) {
        throw corrupt('iso9660 directory record', r.offset, 'a multi-extent file ends without its final extent');
      }
      if ((r.flags & FileFlags.multiExtent) !== 0) {
        pending ??= { first: r, extents: [] };
        pending.extents.push({ start, length: r.size });
        if (pending.extents.length > MAX_FILE_EXTENTS) throw corrupt('iso9660 directory record', r.offset, `more than ${MAX_FILE_EXTENTS} extents in one file`);
        continue;
      }
      const first = pending?.first ?? r;
      const extents = pending === undefined ? undefined : [...pending.extents, { start, length: r.size }];
      pending = undefined;
      const rr = this.naming === 'rock-ridge' ? await this.rockRidge(first, this.suspSkip, budget) : undefined;
      if (rr?.relocated === true) continue;
      const node = rr?.childLink !== undefined ? await this.relocatedDirectory(first, rr, rr.childLink) : this.nodeFor(first, rr, extents);
      const name = this.decodeName(first, rr);
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
        throw corrupt('iso9660 directory record', first.offset, `invalid file name ${JSON.stringify(name.slice(0, 64))}`);
      }
      entries.push({ name, node });
    }
    if (pending !== undefined) throw corrupt('iso9660 directory record', pending.first.offset, 'a multi-extent file ends without its final extent');
    const listing: Listing = { entries };
    this.dirs.set(key, listing);
    return listing;
  }

  private async readDirectory(dir: IsoNode): Promise<DirRecord[]> {
    const extent = dir.extents[0];
    if (extent === undefined || dir.extents.length !== 1) throw corrupt('iso9660 directory record', dir.recordOffset, 'a directory must have one extent');
    if (extent.length > MAX_DIRECTORY_BYTES) {
      throw corrupt('iso9660 directory', dir.recordOffset, `directory extent of ${extent.length} bytes exceeds the limit of ${MAX_DIRECTORY_BYTES}`);
    }
    this.checkExtent(extent.start, extent.length, 'iso9660 directory', dir.recordOffset);
    const records: DirRecord[] = [];
    // Records never cross a 2048-byte sector, so chunks of whole sectors parse independently.
    for (let off = 0; off < extent.length; off += DIR_READ_CHUNK) {
      const n = Math.min(DIR_READ_CHUNK, extent.length - off);
      const bytes = await this.dev.read(extent.start + off, n);
      records.push(...parseRecords(new ByteView(bytes, 'iso9660 directory', extent.start + off)));
    }
    return records;
  }

  async root(): Promise<IsoNode> {
    if (this.rootNode === undefined) throw new VirtkitError('internal', 'ISO 9660 driver used before open', {});
    return this.rootNode;
  }

  async list(dir: IsoNode): Promise<DirEntry[]> {
    const { entries } = await this.listing(dir);
    return entries.map((e) => ({ name: e.name, type: e.node.type, inode: e.node.ino }));
  }

  async lookup(dir: IsoNode, name: string): Promise<IsoNode | undefined> {
    const listing = await this.listing(dir);
    if (listing.byName === undefined) {
      listing.byName = new Map();
      for (const e of listing.entries) if (!listing.byName.has(e.name)) listing.byName.set(e.name, e.node);
    }
    const exact = listing.byName.get(name);
    if (exact !== undefined || this.naming === 'rock-ridge') return exact;
    // Plain ISO 9660 names are upper case and Joliet's are case-insensitive on their home
    // systems: `/boot/grub` finds `/BOOT/GRUB`.
    if (listing.byFoldedName === undefined) {
      listing.byFoldedName = new Map();
      for (const e of listing.entries) {
        const key = e.name.toUpperCase();
        if (!listing.byFoldedName.has(key)) listing.byFoldedName.set(key, e.node);
      }
    }
    return listing.byFoldedName.get(name.toUpperCase());
  }

  async stat(node: IsoNode): Promise<FileStat> {
    return {
      type: node.type, mode: node.mode, uid: node.uid, gid: node.gid, size: node.size,
      atime: node.atime, mtime: node.mtime, ctime: node.ctime, nlink: node.nlink, ino: node.ino,
    };
  }

  async readlink(node: IsoNode): Promise<string> {
    if (node.symlink === undefined || node.symlink === '' || Buffer.byteLength(node.symlink) > MAX_PATH_BYTES) {
      throw corrupt('iso9660 rock ridge SL', node.recordOffset, 'symlink without a valid target');
    }
    return node.symlink;
  }

  async read(node: IsoNode, offset: number, length: number): Promise<Uint8Array> {
    if (node.unreadable !== undefined && offset < node.size && length > 0) {
      throw new VirtkitError('fs.unsupported', `${node.unreadable} is not supported`, { offset: node.recordOffset });
    }
    if (node.zisofs !== undefined) {
      const stored = node.extents.reduce((n, e) => n + e.length, 0);
      return readZisofs(node.zisofs, stored, (o, l) => this.readStored(node, stored, o, l), offset, length, node.recordOffset);
    }
    return this.readStored(node, node.size, offset, length);
  }

  /** Bytes of the node's extents as stored, `size` of them in all. */
  private async readStored(node: IsoNode, size: number, offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const out = Buffer.alloc(end - offset);
    let fileOffset = 0;
    for (const e of node.extents) {
      const from = Math.max(offset, fileOffset);
      const to = Math.min(end, fileOffset + e.length);
      if (from < to) {
        const devOffset = e.start + (from - fileOffset);
        this.checkExtent(devOffset, to - from, 'iso9660 file extent', node.recordOffset);
        out.set(await this.dev.read(devOffset, to - from), from - offset);
      }
      fileOffset += e.length;
      if (fileOffset >= end) break;
    }
    return out;
  }

  close(): Promise<void> {
    return this.dev.close();
  }
}
