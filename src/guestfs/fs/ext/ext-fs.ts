/**
 * The ext2/3/4 reader as a FilesystemDriver: inodes by number, directories read linearly,
 * file data through extents or indirect blocks, inline data, symlinks. Read-only; the
 * journal is never replayed. Metadata caches are bounded LRUs.
 */
import { readInto, type BlockDevice } from '../../../storage/block/index.js';
import { VirtkitError } from '../../../util/errors.js';
import { ByteView, corrupt } from '../../bytes.js';
import { LruCache } from '../../lru.js';
import {
  MAX_PATH_BYTES, type DirEntry, type DirScan, type FileStat, type FilesystemDriver, type FilesystemInfo, type FsNode, type ReadPolicy,
} from '../types.js';
import {
  extentRuns, indirectRuns, inodeLeafExtents, loadExtents, maxFileSize, type BlockRun, type Extent, type MetadataIo,
} from './block-map.js';
import { dirBlockChecksum, parseDirBlock, type DirParseOptions, type RawDirEntry } from './directory.js';
import { inlineDataTail } from './inline-data.js';
import { planReads, type BlockWant } from './read-plan.js';
import { I_BLOCK_SIZE, InodeFlags, ROOT_INO, inodeChecksumMatches, inodeSeed, parseInode, type ExtInode } from './inode.js';
import {
  Incompat, RoCompat, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, descriptorBlock, parseSuperblock, type Superblock,
} from './superblock.js';

export interface ExtNode extends FsNode {
  readonly ino: number;
  readonly inode: ExtInode;
}

/** Where a group's inode table starts, and how many of its blocks hold inodes ever used. */
interface InodeTable {
  readonly first: number;
  readonly usedBlocks: number;
}

/** Consecutive blocks of a directory: logical block `logical` onwards, at `physical` on the device. */
interface DirPiece {
  readonly logical: number;
  readonly physical: number;
  readonly count: number;
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
/**
 * Inode tables are read and cached in pieces of this many bytes (1,024 inodes of 256 bytes),
 * not a block per inode: a walk reads the inodes of a group's directories one after another.
 */
const INODE_TABLE_PIECE = 256 << 10;
const INODE_TABLE_CACHE_BYTES = 2 << 20;
const GROUP_CACHE_ENTRIES = 1 << 16;
/** Batched directory reads (scanNumbered): neighbours up to this far apart share a request. */
const MERGE_GAP_BYTES = 64 << 10;

/** Why one directory of a batch could not be listed: its error, or that its inode is not a directory. */
export type NumberedScan = DirScan | VirtkitError;

export class ExtDriver implements FilesystemDriver<ExtNode>, MetadataIo {
  readonly info: FilesystemInfo;
  private readonly blocks = new LruCache<number, ByteView>(BLOCK_CACHE_BYTES, (b) => b.length);
  private readonly inodes = new LruCache<number, ExtInode>(INODE_CACHE_ENTRIES);
  private readonly extents = new LruCache<number, Extent[]>(EXTENT_CACHE_ENTRIES, (e) => e.length + 1);
  private readonly dirs = new LruCache<number, DirListing>(DIR_CACHE_ENTRIES, (d) => d.entries.length + 1);
  private readonly inodeTablePieces = new LruCache<number, ByteView>(INODE_TABLE_CACHE_BYTES, (b) => b.length);
  private readonly inodeTables = new LruCache<number, InodeTable>(GROUP_CACHE_ENTRIES);
  /** Where scanNumbered's reads land (parsed before the next batch reuses it). */
  private scratch = new Uint8Array(0);
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
   * Group `group`'s inode table: its first block, and how many of its blocks hold inodes
   * ever used (bg_itable_unused, kept with uninit_bg or metadata_csum; only a hint of how
   * much to read at once, never a limit on which inodes are read). A pointer of 0, into the
   * superblock, or with a table running past the filesystem is `fs.corrupt` for every inode of
   * the group: reading there would present blocks that are not inodes (block 0 reads as
   * zeros) as inodes.
   */
  private async inodeTableBlock(group: number): Promise<InodeTable> {
    const known = this.inodeTables.get(group);
    if (known !== undefined) return known;
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
    const unusedKept = (sb.roCompat & (RoCompat.gdtCsum | RoCompat.metadataCsum)) !== 0;
    const unused = unusedKept ? Math.min(sb.inodesPerGroup, ByteView.join(d.u16(0x1c), sb.descSize >= 64 ? d.u16(0x32) : 0)) : 0;
    const found: InodeTable = { first: table, usedBlocks: Math.ceil(((sb.inodesPerGroup - unused) * sb.inodeSize) / sb.blockSize) };
    this.inodeTables.set(group, found);
    return found;
  }

  /**
   * Inode `ino`, cached (unless `cache` is false: a walk reads each directory's inode once).
   * Throws `fs.corrupt` for a number out of range or a bad inode.
   */
  async readInode(ino: number, cache = true): Promise<ExtInode> {
    const hit = this.inodes.get(ino);
    if (hit !== undefined) return hit;
    const { sb } = this;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) {
      throw corrupt('ext inode number', SUPERBLOCK_OFFSET, `inode ${ino} is out of range 1..${sb.inodesCount}`, { ino });
    }
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const byteInTable = ((ino - 1) % sb.inodesPerGroup) * sb.inodeSize;
    const { first: table, usedBlocks } = await this.inodeTableBlock(group);
    const piece = await this.inodeTablePiece(table, usedBlocks, Math.floor(byteInTable / sb.blockSize));
    return this.inodeIn(ino, piece, table, byteInTable, cache);
  }

  /**
   * Inode `ino` when everything it needs is cached (its group's table position and the piece
   * of table), without a promise; undefined when something must be read (readInode does).
   */
  private inodeNow(ino: number): ExtInode | undefined {
    const { sb } = this;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) return undefined;
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const table = this.inodeTables.get(group);
    if (table === undefined) return undefined;
    const byteInTable = ((ino - 1) % sb.inodesPerGroup) * sb.inodeSize;
    const blockInTable = Math.floor(byteInTable / sb.blockSize);
    const first = table.first + blockInTable - (blockInTable % Math.max(1, Math.floor(INODE_TABLE_PIECE / sb.blockSize)));
    const view = this.inodeTablePieces.get(first);
    if (view === undefined || (table.first + blockInTable - first + 1) * sb.blockSize > view.length) return undefined;
    return this.inodeIn(ino, { first, view }, table.first, byteInTable, false);
  }

  /** Parses inode `ino` out of the piece of inode table that holds it (checksum checked). */
  private inodeIn(ino: number, piece: { first: number; view: ByteView }, table: number, byteInTable: number, cache: boolean): ExtInode {
    const { sb } = this;
    const at = (table + Math.floor(byteInTable / sb.blockSize) - piece.first) * sb.blockSize + (byteInTable % sb.blockSize);
    // A cached inode keeps a copy of its own bytes, not the whole piece it came from; a walk's
    // one-time read takes a view (no allocation per inode).
    const bytes = cache ? piece.view.bytes.slice(at, at + sb.inodeSize) : piece.view.bytes.subarray(at, at + sb.inodeSize);
    const raw = new ByteView(bytes, 'ext inode', piece.view.baseOffset + at);
    const flags = raw.u32(0x20);
    const inode = parseInode(ino, raw, maxFileSize(sb, flags));
    if (sb.csumSeed !== undefined && !inodeChecksumMatches(sb.csumSeed, ino, raw)) {
      this.checksumMismatch(corrupt('ext inode', raw.baseOffset, `inode ${ino} checksum mismatch`, { ino }));
    }
    if (cache) this.inodes.set(ino, inode);
    return inode;
  }

  /**
   * The piece of an inode table holding block `blockInTable` of the table that starts at
   * `table`, cached. A piece stops where the inodes never used start (`usedBlocks`), unless
   * the block asked for lies beyond. The device may end inside the table (a truncated image):
   * a piece is read up to the device's end, and an inode block beyond it is `fs.corrupt`, as a
   * metadata block is.
   */
  private async inodeTablePiece(table: number, usedBlocks: number, blockInTable: number): Promise<{ first: number; view: ByteView }> {
    const { sb } = this;
    const bs = sb.blockSize;
    const perPiece = Math.max(1, Math.floor(INODE_TABLE_PIECE / bs));
    const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / bs);
    const first = table + blockInTable - (blockInTable % perPiece);
    const block = table + blockInTable;
    const deviceBlocks = Math.floor(this.dev.size / bs);
    const hit = this.inodeTablePieces.get(first);
    if (hit !== undefined && (block - first + 1) * bs <= hit.length) return { first, view: hit };
    if (block >= sb.blocksCount || block >= deviceBlocks) {
      throw corrupt('ext inode table', block * bs, `block ${block} is outside the filesystem or the device`, { block });
    }
    const end = table + Math.max(blockInTable + 1, Math.min(usedBlocks, tableBlocks));
    const count = Math.min(perPiece, end - first, deviceBlocks - first);
    const view = new ByteView(await this.dev.read(first * bs, count * bs), 'ext inode table', first * bs);
    this.inodeTablePieces.set(first, view);
    return { first, view };
  }

  private async node(ino: number, cache = true): Promise<ExtNode> {
    const inode = await this.readInode(ino, cache);
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

  /** Block runs of `node` covering logical blocks [first, first+count); `cache` false for a walk's one-time reads. */
  private async runs(node: ExtNode, first: number, count: number, cache = true): Promise<BlockRun[]> {
    if ((node.inode.flags & InodeFlags.extents) === 0) return indirectRuns(this, node.inode, first, count);
    let extents = this.extents.get(node.ino);
    if (extents === undefined) {
      extents = await loadExtents(this, node.inode);
      if (cache) this.extents.set(node.ino, extents);
    }
    return extentRuns(extents, first, count);
  }

  /** `runs` when no block must be read for them (extents cached, or all in the inode); else undefined. */
  private runsNow(node: ExtNode, first: number, count: number): BlockRun[] | undefined {
    if ((node.inode.flags & InodeFlags.extents) === 0) return undefined;
    const extents = this.extents.get(node.ino) ?? inodeLeafExtents(this, node.inode);
    return extents === undefined ? undefined : extentRuns(extents, first, count);
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
    if (this.isInline(dir)) this.parseInlineDir(dir, entries);
    else await this.readDirBlocks(dir, entries, damaged);
    const listing: DirListing = { entries: await this.resolveTypes(entries), damaged };
    this.dirs.set(dir.ino, listing);
    return listing;
  }

  private parseInlineDir(dir: ExtNode, entries: RawDirEntry[]): void {
    const content = this.inlineContent(dir);
    const at = dir.inode.offset + 0x28;
    parseDirBlock(new ByteView(content.subarray(4, I_BLOCK_SIZE), 'ext inline directory', at + 4), this.dirOptions, entries);
    if (content.length > I_BLOCK_SIZE) {
      parseDirBlock(new ByteView(content.subarray(I_BLOCK_SIZE), 'ext inline directory', at), this.dirOptions, entries);
    }
  }

  /**
   * Without the filetype feature the type is the inode's. An inode that cannot be read
   * leaves its entry listed by name with type unknown: the name was read, the rest was
   * not, and looking up the other names must not fail because of it.
   */
  private async resolveTypes(entries: RawDirEntry[]): Promise<RawDirEntry[]> {
    if (!entries.some((e) => e.typeFromInode)) return entries;
    return Promise.all(entries.map(async (e) => {
      if (!e.typeFromInode) return e;
      try {
        return { ...e, type: (await this.readInode(e.inode)).type };
      } catch (err) {
        if (this.policy.strict === true || !(err instanceof VirtkitError)) throw err;
        return e;
      }
    }));
  }

  /** Records `err` as damage of the directory being read; under a strict policy it is thrown. */
  private damageRecorder(damaged: VirtkitError[]): (err: VirtkitError) => void {
    return (err) => {
      if (this.policy.strict === true) throw err;
      damaged.push(err);
    };
  }

  /** Where a directory's blocks are: its runs cut into pieces of at most DIR_READ_CHUNK, each inside the device, in logical order. */
  private async dirPieces(dir: ExtNode, skip: (err: VirtkitError) => void, cache = true): Promise<DirPiece[]> {
    const bs = this.sb.blockSize;
    this.checkDirSize(dir);
    const blocks = Math.ceil(dir.size / bs);
    return this.piecesOf(dir, this.runsNow(dir, 0, blocks) ?? await this.runs(dir, 0, blocks, cache), skip);
  }

  private checkDirSize(dir: ExtNode): void {
    if (dir.size > this.sb.blocksCount * this.sb.blockSize) throw corrupt('ext directory', dir.inode.offset, `size ${dir.size} exceeds the filesystem`, { ino: dir.ino });
  }

  private piecesOf(dir: ExtNode, runs: readonly BlockRun[], skip: (err: VirtkitError) => void): DirPiece[] {
    const bs = this.sb.blockSize;
    const perChunk = Math.max(1, Math.floor(DIR_READ_CHUNK / bs));
    const pieces: DirPiece[] = [];
    for (const run of runs) {
      if (run.physical === null) {
        skip(corrupt('ext directory', dir.inode.offset, `directory ${dir.ino} has a hole at block ${run.logical}`, { ino: dir.ino }));
        continue;
      }
      for (let i = 0; i < run.length; i += perChunk) {
        const count = Math.min(perChunk, run.length - i);
        const devOffset = (run.physical + i) * bs;
        if (devOffset + count * bs > this.dev.size) {
          skip(corrupt('ext directory', devOffset, `directory ${dir.ino} block lies beyond the end of the device`, { ino: dir.ino }));
          continue;
        }
        pieces.push({ logical: run.logical + i, physical: run.physical + i, count });
      }
    }
    return pieces;
  }

  /** The records of `piece` (its bytes read) appended to `entries`; checksums checked, damage to `skip`. */
  private parseDirPiece(dir: ExtNode, seed: number | undefined, piece: DirPiece, bytes: Uint8Array, entries: RawDirEntry[],
    skip: (err: VirtkitError) => void): void {
    const bs = this.sb.blockSize;
    for (let b = 0; b < piece.count; b++) {
      const view = new ByteView(bytes.subarray(b * bs, (b + 1) * bs), 'ext directory entry', (piece.physical + b) * bs);
      if (seed !== undefined && dirBlockChecksum(seed, view) === 'mismatch') {
        this.checksumMismatch(corrupt('ext directory block', view.baseOffset, `directory ${dir.ino} block ${piece.logical + b} checksum mismatch`, { ino: dir.ino }));
      }
      // A bad record is reported (or thrown, strict) and the names around it are still read.
      parseDirBlock(view, this.dirOptions, entries, skip);
    }
    if (entries.length > MAX_DIR_ENTRIES) {
      throw new VirtkitError('fs.too-large', `directory ${dir.ino} has more than ${MAX_DIR_ENTRIES} entries`, { ino: dir.ino, limit: MAX_DIR_ENTRIES });
    }
  }

  private dirSeed(dir: ExtNode): number | undefined {
    return this.sb.csumSeed === undefined ? undefined : inodeSeed(this.sb.csumSeed, dir.inode);
  }

  /**
   * A damaged part (a hole, a block past the device, a bad record) is recorded in `damaged`
   * and the rest of the directory is still read; under a strict policy it throws.
   */
  private async readDirBlocks(dir: ExtNode, entries: RawDirEntry[], damaged: VirtkitError[]): Promise<void> {
    const skip = this.damageRecorder(damaged);
    const seed = this.dirSeed(dir);
    const bs = this.sb.blockSize;
    for (const piece of await this.dirPieces(dir, skip)) {
      this.parseDirPiece(dir, seed, piece, await this.dev.read(piece.physical * bs, piece.count * bs), entries, skip);
    }
  }

  /**
   * For tree walks: the listings of the directories with inode numbers `inos`, as many of the
   * first as fit in `maxBytes` of directory blocks (the first always). Their blocks are read
   * together, sorted by place and merged into few requests (read-plan.ts); listings are not
   * cached, as a walk reads each directory once. Each result is the directory's scan, or the
   * typed error that a scan of it alone would have thrown (`fs.not-a-directory` for an inode
   * that is not a directory). Damage and checksums follow the read policy as `scan` does.
   */
  async scanNumbered(inos: readonly number[], maxBytes: number): Promise<NumberedScan[]> {
    const bs = this.sb.blockSize;
    const results: NumberedScan[] = [];
    interface Pending { readonly index: number; readonly dir: ExtNode; readonly entries: RawDirEntry[]; readonly damaged: VirtkitError[]; readonly pieces: DirPiece[] }
    const pending: Pending[] = [];
    const wants: BlockWant[] = [];
    const wantOwner: { pending: Pending; piece: DirPiece }[] = [];
    let bytes = 0;
    const failed = (index: number, err: unknown): void => {
      if (!(err instanceof VirtkitError)) throw err;
      results[index] = err;
    };
    for (let index = 0; index < inos.length; index++) {
      const ino = inos[index]!;
      try {
        // Most directories of a walk need no read of their own before their blocks: their
        // inode is in a cached piece of table and their extents in the inode (no promise then).
        const inode = this.inodeNow(ino) ?? await this.readInode(ino, false);
        const dir: ExtNode = { ino, inode, type: inode.type, size: inode.size };
        if (dir.type !== 'directory') {
          results[index] = new VirtkitError('fs.not-a-directory', `#${ino} is not a directory`, { path: `#${ino}` });
          continue;
        }
        const cached = this.dirs.get(ino);
        if (cached !== undefined) {
          results[index] = this.scanOf(cached);
          continue;
        }
        if (this.isInline(dir)) {
          const entries: RawDirEntry[] = [];
          this.parseInlineDir(dir, entries);
          results[index] = this.scanOf({ entries: await this.resolveTypes(entries), damaged: [] });
          continue;
        }
        const size = Math.ceil(dir.size / bs) * bs;
        if (index > 0 && bytes + size > maxBytes) break;
        if (size > maxBytes) {
          // Too large to batch: read alone, a chunk at a time, as a scan of it alone would.
          const entries: RawDirEntry[] = [];
          const damaged: VirtkitError[] = [];
          await this.readDirBlocks(dir, entries, damaged);
          results[index] = this.scanOf({ entries: await this.resolveTypes(entries), damaged });
          break;
        }
        bytes += size;
        const p: Pending = { index, dir, entries: [], damaged: [], pieces: [] };
        const skip = this.damageRecorder(p.damaged);
        this.checkDirSize(dir);
        const blocks = Math.ceil(dir.size / bs);
        p.pieces.push(...this.piecesOf(dir, this.runsNow(dir, 0, blocks) ?? await this.runs(dir, 0, blocks, false), skip));
        pending.push(p);
        for (const piece of p.pieces) {
          wants.push({ physical: piece.physical, count: piece.count });
          wantOwner.push({ pending: p, piece });
        }
      } catch (err) {
        failed(index, err);
      }
    }
    const maxBlocks = Math.max(1, Math.floor(Math.max(maxBytes, DIR_READ_CHUNK) / bs));
    const plan = planReads(wants, { maxBlocks, gapBlocks: Math.floor(MERGE_GAP_BYTES / bs), maxGapTotal: maxBlocks });
    // The reads land in one buffer kept from batch to batch: fresh megabytes per batch would
    // be garbage the allocator is slow to give back (the walk's peak RSS).
    const total = plan.reads.reduce((n, r) => n + r.count * bs, 0);
    if (this.scratch.length < total) this.scratch = new Uint8Array(total);
    const readBytes: (Uint8Array | VirtkitError)[] = [];
    let at = 0;
    for (const read of plan.reads) {
      const target = this.scratch.subarray(at, at + read.count * bs);
      at += target.length;
      try {
        await readInto(this.dev, read.first * bs, target);
        readBytes.push(target);
      } catch (err) {
        if (!(err instanceof VirtkitError)) throw err;
        readBytes.push(err);
      }
    }
    // Each directory's pieces are parsed in logical order, whatever order they were read in.
    const bytesOf = new Map<DirPiece, Uint8Array | VirtkitError>();
    wantOwner.forEach((w, i) => {
      const read = plan.reads[plan.readOf[i]!]!;
      const got = readBytes[plan.readOf[i]!]!;
      const start = (w.piece.physical - read.first) * bs;
      bytesOf.set(w.piece, got instanceof VirtkitError ? got : got.subarray(start, start + w.piece.count * bs));
    });
    for (const p of pending) {
      try {
        const seed = this.dirSeed(p.dir);
        const skip = this.damageRecorder(p.damaged);
        for (const piece of p.pieces) {
          const got = bytesOf.get(piece)!;
          if (got instanceof VirtkitError) throw got;
          this.parseDirPiece(p.dir, seed, piece, got, p.entries, skip);
        }
        // The parsed entries as they are (a walk copies them to sort): not cached, nobody else holds them.
        const entries = p.entries.some((e) => e.typeFromInode) ? await this.resolveTypes(p.entries) : p.entries;
        results[p.index] = { entries, damaged: p.damaged };
      } catch (err) {
        failed(p.index, err);
      }
    }
    // The batch ends at the first directory that did not fit; results past it are not given.
    const given = results.length;
    for (let i = 0; i < given; i++) if (!(i in results)) throw new Error(`internal: directory ${inos[i]} of a batch was not scanned`);
    return results;
  }

  private scanOf(listing: { readonly entries: readonly RawDirEntry[]; readonly damaged: readonly VirtkitError[] }): DirScan {
    return { entries: listing.entries.map((e) => ({ name: e.name, type: e.type, inode: e.inode })), damaged: listing.damaged };
  }

  async list(dir: ExtNode): Promise<DirEntry[]> {
    const { entries, damaged } = await this.scan(dir);
    if (damaged.length > 0) throw damaged[0]!;
    return entries;
  }

  async scan(dir: ExtNode): Promise<DirScan> {
    return this.scanOf(await this.listing(dir));
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
