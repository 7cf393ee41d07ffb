/**
 * The ext2/3/4 reader as a FilesystemDriver: inodes by number, directories read linearly,
 * file data through extents or indirect blocks, inline data, symlinks. Read-only; the
 * journal is never replayed. Metadata caches are bounded LRUs.
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { VirtkitError } from '../../../util/errors.js';
import { ByteView, corrupt } from '../../bytes.js';
import { LruCache } from '../../lru.js';
import {
  MAX_PATH_BYTES, type DirEntry, type DirScan, type FileStat, type FilesystemDriver, type FilesystemInfo, type FsNode, type ReadPolicy,
} from '../types.js';
import {
  extentRuns, indirectRuns, loadExtents, maxFileSize, type BlockRun, type Extent, type MetadataIo,
} from './block-map.js';
import { dirBlockChecksum, parseDirBlock, type DirParseOptions, type RawDirEntry } from './directory.js';
import { inlineDataTail } from './inline-data.js';
import { I_BLOCK_SIZE, InodeFlags, ROOT_INO, inodeChecksumMatches, inodeSeed, parseInode, type ExtInode } from './inode.js';
import {
  Incompat, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, descriptorBlock, parseSuperblock, type Superblock,
} from './superblock.js';

export interface ExtNode extends FsNode {
  readonly ino: number;
  readonly inode: ExtInode;
}

interface DirListing {
  readonly entries: readonly RawDirEntry[];
  /** Typed errors of the parts that could not be read (never set under a strict policy: it throws). */
  readonly damaged: readonly VirtkitError[];
  byName?: Map<string, RawDirEntry>;
}

/** Cache bounds: metadata blocks by bytes, inodes and extents by count, listings by entries. */
const BLOCK_CACHE_BYTES = 16 << 20;
const INODE_CACHE_ENTRIES = 16384;
const EXTENT_CACHE_ENTRIES = 1 << 20;
const DIR_CACHE_ENTRIES = 1 << 18;
/**
 * Refuse (fs.too-large) directories with more entries than this: a hostile directory can map
 * the same blocks again and again, and a listing is held in memory.
 */
export const MAX_DIR_ENTRIES = 1 << 21;
/** Directory blocks are read in runs of at most this many bytes. */
const DIR_READ_CHUNK = 1 << 20;

export class ExtDriver implements FilesystemDriver<ExtNode>, MetadataIo {
  readonly info: FilesystemInfo;
  private readonly blocks = new LruCache<number, ByteView>(BLOCK_CACHE_BYTES, (b) => b.length);
  private readonly inodes = new LruCache<number, ExtInode>(INODE_CACHE_ENTRIES);
  private readonly extents = new LruCache<number, Extent[]>(EXTENT_CACHE_ENTRIES, (e) => e.length + 1);
  private readonly dirs = new LruCache<number, DirListing>(DIR_CACHE_ENTRIES, (d) => d.entries.length + 1);
  private readonly dirOptions: DirParseOptions;
  private readonly warned = new Set<string>();

  private constructor(private readonly dev: BlockDevice, readonly sb: Superblock, private readonly policy: ReadPolicy) {
    const warnings = [...sb.warnings];
    const fsBytes = sb.blocksCount * sb.blockSize;
    if (fsBytes > dev.size) warnings.push(`the filesystem (${fsBytes} bytes) is larger than its device (${dev.size} bytes): the image may be truncated`);
    this.info = { type: sb.type, label: sb.label, uuid: sb.uuid, size: fsBytes, warnings };
    this.dirOptions = { hasFileType: (sb.incompat & Incompat.filetype) !== 0, inodesCount: sb.inodesCount, blockSize: sb.blockSize };
  }

  /** Throws `fs.corrupt`/`fs.unsupported` for a bad superblock, `fs.unsupported` for a device too small. */
  static async open(dev: BlockDevice, policy: ReadPolicy = {}): Promise<ExtDriver> {
    if (dev.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
      throw new VirtkitError('fs.unsupported', `device of ${dev.size} bytes is too small for ext`, { size: dev.size });
    }
    const sb = parseSuperblock(await dev.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE), policy.strict === true);
    return new ExtDriver(dev, sb, policy);
  }

  /**
   * The checksum rule (docs/guestfs.md): a metadata checksum that does not match data that
   * is otherwise consistent is read through with a warning (once per structure), as
   * `debugfs -n` does; under a strict policy it is the error.
   */
  private checksumMismatch(err: VirtkitError): void {
    if (this.policy.strict === true) throw err;
    if (this.warned.has(err.message)) return;
    this.warned.add(err.message);
    this.policy.warn?.(`${err.message} (read through; --strict refuses it)`);
  }

  /** A metadata block, cached. Throws `fs.corrupt` for a block outside the filesystem or device. */
  async readMetaBlock(block: number, structure: string): Promise<ByteView> {
    const hit = this.blocks.get(block);
    if (hit !== undefined) return new ByteView(hit.bytes, structure, hit.baseOffset);
    const offset = block * this.sb.blockSize;
    if (!Number.isSafeInteger(block) || block >= this.sb.blocksCount || offset + this.sb.blockSize > this.dev.size) {
      throw corrupt(structure, offset, `block ${block} is outside the filesystem or the device`, { block });
    }
    const view = new ByteView(await this.dev.read(offset, this.sb.blockSize), structure, offset);
    this.blocks.set(block, view);
    return view;
  }

  /**
   * First block of group `group`'s inode table. A pointer of 0, into the superblock, or with a
   * table running past the filesystem is `fs.corrupt` for every inode of the group: reading
   * there would present blocks that are not inodes (block 0 reads as zeros) as inodes.
   */
  private async inodeTableBlock(group: number): Promise<number> {
    const { sb } = this;
    const { block, index } = descriptorBlock(sb, group);
    const descs = await this.readMetaBlock(block, 'ext group descriptor');
    const d = descs.view(index * sb.descSize, sb.descSize);
    const table = ByteView.join(d.u32(0x8), sb.descSize >= 64 ? d.u32(0x28) : 0);
    const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
    if (table <= sb.firstDataBlock || table + tableBlocks > sb.blocksCount) {
      throw corrupt('ext group descriptor', d.baseOffset + 0x8,
        `bg_inode_table ${table} of group ${group} is outside the filesystem (blocks ${sb.firstDataBlock + 1}..${sb.blocksCount - tableBlocks})`, { group, block: table });
    }
    return table;
  }

  /** Inode `ino`, cached. Throws `fs.corrupt` for a number out of range or a bad inode. */
  async readInode(ino: number): Promise<ExtInode> {
    const hit = this.inodes.get(ino);
    if (hit !== undefined) return hit;
    const { sb } = this;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) {
      throw corrupt('ext inode number', SUPERBLOCK_OFFSET, `inode ${ino} is out of range 1..${sb.inodesCount}`, { ino });
    }
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const byteInTable = ((ino - 1) % sb.inodesPerGroup) * sb.inodeSize;
    const table = await this.inodeTableBlock(group);
    const block = await this.readMetaBlock(table + Math.floor(byteInTable / sb.blockSize), 'ext inode table');
    const raw = block.view(byteInTable % sb.blockSize, sb.inodeSize, 'ext inode');
    const flags = raw.u32(0x20);
    const inode = parseInode(ino, raw, maxFileSize(sb, flags));
    if (sb.csumSeed !== undefined && !inodeChecksumMatches(sb.csumSeed, ino, raw)) {
      this.checksumMismatch(corrupt('ext inode', raw.baseOffset, `inode ${ino} checksum mismatch`, { ino }));
    }
    this.inodes.set(ino, inode);
    return inode;
  }

  private async node(ino: number): Promise<ExtNode> {
    const inode = await this.readInode(ino);
    return { ino, inode, type: inode.type, size: inode.size };
  }

  /** Inode numbers run 1..count; `#N` beyond it is an argument error (path.ts), not a corrupt image. */
  get nodeCount(): number {
    return this.sb.inodesCount;
  }

  /** Inode `n` as a node, for `#N` paths. */
  nodeByNumber(n: number): Promise<ExtNode> {
    return this.node(n);
  }

  async root(): Promise<ExtNode> {
    const root = await this.node(ROOT_INO);
    if (root.type !== 'directory') throw corrupt('ext inode', root.inode.offset, 'the root inode is not a directory', { ino: ROOT_INO });
    return root;
  }

  /** Block runs of `node` covering logical blocks [first, first+count). */
  private async runs(node: ExtNode, first: number, count: number): Promise<BlockRun[]> {
    if ((node.inode.flags & InodeFlags.extents) === 0) return indirectRuns(this, node.inode, first, count);
    let extents = this.extents.get(node.ino);
    if (extents === undefined) {
      extents = await loadExtents(this, node.inode);
      this.extents.set(node.ino, extents);
    }
    return extentRuns(extents, first, count);
  }

  private inlineContent(node: ExtNode): Uint8Array {
    const head = node.inode.iBlock;
    const tail = inlineDataTail(node.inode);
    const all = new Uint8Array(I_BLOCK_SIZE + tail.length);
    all.set(head, 0);
    all.set(tail, I_BLOCK_SIZE);
    return all;
  }

  private isInline(node: ExtNode): boolean {
    return (node.inode.flags & InodeFlags.inlineData) !== 0;
  }

  async read(node: ExtNode, offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(node.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    if (this.isInline(node)) {
      const content = this.inlineContent(node);
      if (node.size > content.length) {
        throw corrupt('ext inline data', node.inode.offset, `size ${node.size} exceeds the ${content.length} inline bytes`, { ino: node.ino });
      }
      return content.slice(offset, end);
    }
    const bs = this.sb.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    const out = Buffer.alloc(end - offset);
    for (const run of await this.runs(node, first, last - first + 1)) {
      if (run.physical === null) continue;
      const from = Math.max(offset, run.logical * bs);
      const to = Math.min(end, (run.logical + run.length) * bs);
      const devOffset = run.physical * bs + (from - run.logical * bs);
      if (devOffset + (to - from) > this.dev.size) {
        throw corrupt('ext data block', devOffset, `data of inode ${node.ino} lies beyond the end of the device`, { ino: node.ino });
      }
      out.set(await this.dev.read(devOffset, to - from), from - offset);
    }
    return out;
  }

  private async listing(dir: ExtNode): Promise<DirListing> {
    const hit = this.dirs.get(dir.ino);
    if (hit !== undefined) return hit;
    const entries: RawDirEntry[] = [];
    const damaged: VirtkitError[] = [];
    if (this.isInline(dir)) {
      const content = this.inlineContent(dir);
      const at = dir.inode.offset + 0x28;
      parseDirBlock(new ByteView(content.subarray(4, I_BLOCK_SIZE), 'ext inline directory', at + 4), this.dirOptions, entries);
      if (content.length > I_BLOCK_SIZE) {
        parseDirBlock(new ByteView(content.subarray(I_BLOCK_SIZE), 'ext inline directory', at), this.dirOptions, entries);
      }
    } else {
      await this.readDirBlocks(dir, entries, damaged);
    }
    // Without the filetype feature the type is the inode's. An inode that cannot be read
    // leaves its entry listed by name with type unknown: the name was read, the rest was
    // not, and looking up the other names must not fail because of it.
    const resolved = await Promise.all(entries.map(async (e) => {
      if (!e.typeFromInode) return e;
      try {
        return { ...e, type: (await this.readInode(e.inode)).type };
      } catch (err) {
        if (this.policy.strict === true || !(err instanceof VirtkitError)) throw err;
        return e;
      }
    }));
    const listing: DirListing = { entries: resolved, damaged };
    this.dirs.set(dir.ino, listing);
    return listing;
  }

  /**
   * A damaged part (a hole, a block past the device, a bad record) is recorded in `damaged`
   * and the rest of the directory is still read; under a strict policy it throws.
   */
  private async readDirBlocks(dir: ExtNode, entries: RawDirEntry[], damaged: VirtkitError[]): Promise<void> {
    const skip = (err: VirtkitError): void => {
      if (this.policy.strict === true) throw err;
      damaged.push(err);
    };
    const seed = this.sb.csumSeed === undefined ? undefined : inodeSeed(this.sb.csumSeed, dir.inode);
    const bs = this.sb.blockSize;
    const limit = this.sb.blocksCount * bs;
    if (dir.size > limit) throw corrupt('ext directory', dir.inode.offset, `size ${dir.size} exceeds the filesystem`, { ino: dir.ino });
    const blockCount = Math.ceil(dir.size / bs);
    const perChunk = Math.max(1, Math.floor(DIR_READ_CHUNK / bs));
    for (const run of await this.runs(dir, 0, blockCount)) {
      if (run.physical === null) {
        skip(corrupt('ext directory', dir.inode.offset, `directory ${dir.ino} has a hole at block ${run.logical}`, { ino: dir.ino }));
        continue;
      }
      for (let i = 0; i < run.length; i += perChunk) {
        const n = Math.min(perChunk, run.length - i);
        const devOffset = (run.physical + i) * bs;
        if (devOffset + n * bs > this.dev.size) {
          skip(corrupt('ext directory', devOffset, `directory ${dir.ino} block lies beyond the end of the device`, { ino: dir.ino }));
          continue;
        }
        const bytes = await this.dev.read(devOffset, n * bs);
        for (let b = 0; b < n; b++) {
          const view = new ByteView(bytes.subarray(b * bs, (b + 1) * bs), 'ext directory entry', devOffset + b * bs);
          if (seed !== undefined && dirBlockChecksum(seed, view) === 'mismatch') {
            this.checksumMismatch(corrupt('ext directory block', view.baseOffset, `directory ${dir.ino} block ${run.logical + i + b} checksum mismatch`, { ino: dir.ino }));
          }
          // A bad record is reported (or thrown, strict) and the names around it are still read.
          parseDirBlock(view, this.dirOptions, entries, skip);
        }
        if (entries.length > MAX_DIR_ENTRIES) {
          throw new VirtkitError('fs.too-large', `directory ${dir.ino} has more than ${MAX_DIR_ENTRIES} entries`, { ino: dir.ino, limit: MAX_DIR_ENTRIES });
        }
      }
    }
  }

  async list(dir: ExtNode): Promise<DirEntry[]> {
    const { entries, damaged } = await this.scan(dir);
    if (damaged.length > 0) throw damaged[0]!;
    return entries;
  }

  async scan(dir: ExtNode): Promise<DirScan> {
    const { entries, damaged } = await this.listing(dir);
    return { entries: entries.map((e) => ({ name: e.name, type: e.type, inode: e.inode })), damaged };
  }

  /** A name not found in a partly damaged directory may be in the damaged part: that error, not fs.not-found. */
  async lookup(dir: ExtNode, name: string): Promise<ExtNode | undefined> {
    const listing = await this.listing(dir);
    listing.byName ??= new Map(listing.entries.map((e) => [e.name, e]));
    const entry = listing.byName.get(name);
    if (entry === undefined && listing.damaged.length > 0) throw listing.damaged[0]!;
    return entry === undefined ? undefined : this.node(entry.inode);
  }

  async stat(node: ExtNode): Promise<FileStat> {
    const i = node.inode;
    return {
      type: i.type, mode: i.mode & 0o7777, uid: i.uid, gid: i.gid, size: i.size,
      atime: i.atime, mtime: i.mtime, ctime: i.ctime, nlink: i.nlink, ino: node.ino,
    };
  }

  async readlink(node: ExtNode): Promise<string> {
    const i = node.inode;
    if (i.size === 0 || i.size > MAX_PATH_BYTES) {
      throw corrupt('ext symlink', i.offset, `target length ${i.size} is invalid`, { ino: node.ino });
    }
    const dataSectors = i.sectors - (i.fileAcl !== 0 ? this.sb.blockSize / 512 : 0);
    const fast = !this.isInline(node) && (i.flags & InodeFlags.extents) === 0 && dataSectors <= 0 && i.size < I_BLOCK_SIZE;
    const bytes = fast ? i.iBlock.subarray(0, i.size) : await this.read(node, 0, i.size);
    return Buffer.from(bytes).toString('utf8');
  }

  close(): Promise<void> {
    return this.dev.close();
  }
}
