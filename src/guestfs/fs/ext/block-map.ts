/**
 * Logical-to-physical block mapping of ext files: the ext4 extent tree and the classic
 * direct/indirect/double/triple block pointers. Both treat their on-disk input as hostile:
 * extent trees are depth-limited, every child must sit exactly one level below its parent
 * and no tree block may appear twice (so cycles and shared subtrees end in `fs.corrupt`);
 * every block number is checked against the filesystem's size.
 */
import { ByteView, corrupt } from '../../bytes.js';
import { I_BLOCK_OFFSET, InodeFlags, type ExtInode } from './inode.js';
import type { Superblock } from './superblock.js';

export const EXTENT_MAGIC = 0xf30a;
/** The kernel's own limit (EXT4_MAX_EXTENT_DEPTH). */
export const MAX_EXTENT_DEPTH = 5;
/** Bounds memory per file: a file with more extents than this is refused. */
export const MAX_EXTENTS_PER_FILE = 1 << 22;
const UNINIT_LEN = 32768;

/** What block mapping needs from the filesystem: geometry and cached metadata blocks. */
export interface MetadataIo {
  readonly sb: Superblock;
  readMetaBlock(block: number, structure: string): Promise<ByteView>;
}

export interface Extent {
  readonly logical: number;
  readonly physical: number;
  readonly length: number;
  /** Preallocated but unwritten: reads as zeros. */
  readonly uninit: boolean;
}

/** A run of logical blocks: mapped to `physical..physical+length`, or a hole (null). */
export interface BlockRun {
  readonly logical: number;
  readonly physical: number | null;
  readonly length: number;
}

function checkBlockRange(sb: Superblock, structure: string, offset: number, block: number, count: number): void {
  if (block < 1 || block + count > sb.blocksCount) {
    throw corrupt(structure, offset, `block ${block}+${count} is outside the filesystem (${sb.blocksCount} blocks)`, { block });
  }
}

/** What reading one extent tree has gathered so far. */
interface ExtentWalk {
  readonly io: MetadataIo;
  readonly inode: ExtInode;
  readonly out: Extent[];
  readonly visited: Set<number>;
  nextLogical: number;
}

/**
 * Checks one extent tree node and takes its leaves (depth 0) into `w.out`; for an index node,
 * gives the child blocks to read next, in order, each at `depth - 1`.
 */
function parseExtentNode(w: ExtentWalk, node: ByteView, expectedDepth: number | undefined): { children: number[]; depth: number } {
  const { inode, out } = w;
  const at = node.baseOffset;
  if (node.u16(0) !== EXTENT_MAGIC) throw corrupt('ext extent header', at, 'bad magic', { ino: inode.ino });
  const entries = node.u16(2);
  const max = node.u16(4);
  const depth = node.u16(6);
  if (12 + max * 12 > node.length || entries > max) {
    throw corrupt('ext extent header', at, `${entries}/${max} entries do not fit in ${node.length} bytes`, { ino: inode.ino });
  }
  if (expectedDepth === undefined ? depth > MAX_EXTENT_DEPTH : depth !== expectedDepth) {
    throw corrupt('ext extent header', at, `depth ${depth} is invalid here (expected ${expectedDepth ?? `<= ${MAX_EXTENT_DEPTH}`})`, { ino: inode.ino });
  }
  const children: number[] = [];
  let previous = -1;
  for (let i = 0; i < entries; i++) {
    const e = 12 + i * 12;
    const logical = node.u32(e);
    if (logical < previous) throw corrupt('ext extent', at + e, 'entries are not sorted', { ino: inode.ino });
    previous = logical;
    if (depth === 0) {
      const rawLen = node.u16(e + 4);
      const uninit = rawLen > UNINIT_LEN;
      const length = uninit ? rawLen - UNINIT_LEN : rawLen;
      const physical = ByteView.join(node.u32(e + 8), node.u16(e + 6));
      if (length === 0) throw corrupt('ext extent', at + e, 'zero length', { ino: inode.ino });
      if (logical < w.nextLogical) throw corrupt('ext extent', at + e, `logical block ${logical} overlaps the previous extent`, { ino: inode.ino });
      if (logical + length > 0x1_0000_0000) throw corrupt('ext extent', at + e, 'extends past logical block 2^32', { ino: inode.ino });
      checkBlockRange(w.io.sb, 'ext extent', at + e, physical, length);
      if (out.length >= MAX_EXTENTS_PER_FILE) throw corrupt('ext extent', at + e, `more than ${MAX_EXTENTS_PER_FILE} extents`, { ino: inode.ino });
      out.push({ logical, physical, length, uninit });
      w.nextLogical = logical + length;
    } else {
      const child = ByteView.join(node.u32(e + 4), node.u16(e + 8));
      checkBlockRange(w.io.sb, 'ext extent index', at + e, child, 1);
      if (w.visited.has(child)) throw corrupt('ext extent index', at + e, `tree block ${child} is referenced twice (a cycle)`, { ino: inode.ino });
      w.visited.add(child);
      children.push(child);
    }
  }
  return { children, depth };
}

function extentRoot(inode: ExtInode): ByteView {
  return inode.raw.view(I_BLOCK_OFFSET, 60, 'ext extent header');
}

/** Reads the whole extent tree of `inode` into a sorted, non-overlapping extent list. */
export async function loadExtents(io: MetadataIo, inode: ExtInode): Promise<Extent[]> {
  const w: ExtentWalk = { io, inode, out: [], visited: new Set(), nextLogical: 0 };
  const walk = async (node: ByteView, expectedDepth: number | undefined): Promise<void> => {
    const { children, depth } = parseExtentNode(w, node, expectedDepth);
    for (const child of children) await walk(await io.readMetaBlock(child, 'ext extent node'), depth - 1);
  };
  await walk(extentRoot(inode), undefined);
  return w.out;
}

/**
 * The extents of `inode` when its whole tree is the root in the inode (depth 0: small files
 * and most directories), without a promise; undefined when it has index nodes to read, which
 * loadExtents does. Faults are the same errors loadExtents gives.
 */
export function inodeLeafExtents(io: MetadataIo, inode: ExtInode): Extent[] | undefined {
  const root = extentRoot(inode);
  if (root.length >= 8 && root.u16(0) === EXTENT_MAGIC && root.u16(6) !== 0) return undefined;
  const w: ExtentWalk = { io, inode, out: [], visited: new Set(), nextLogical: 0 };
  parseExtentNode(w, root, undefined);
  return w.out;
}

/** Runs covering logical blocks [first, first+count) from a sorted extent list. */
export function extentRuns(extents: readonly Extent[], first: number, count: number): BlockRun[] {
  const runs: BlockRun[] = [];
  const end = first + count;
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const e = extents[mid]!;
    if (e.logical + e.length <= first) lo = mid + 1;
    else hi = mid;
  }
  let pos = first;
  for (let i = lo; i < extents.length && pos < end; i++) {
    const e = extents[i]!;
    if (e.logical >= end) break;
    if (e.logical > pos) {
      runs.push({ logical: pos, physical: null, length: e.logical - pos });
      pos = e.logical;
    }
    const stop = Math.min(end, e.logical + e.length);
    runs.push({ logical: pos, physical: e.uninit ? null : e.physical + (pos - e.logical), length: stop - pos });
    pos = stop;
  }
  if (pos < end) runs.push({ logical: pos, physical: null, length: end - pos });
  return runs;
}

/** Largest file the mapping of `inode` can address, in bytes. */
export function maxFileSize(sb: Superblock, flags: number): number {
  if ((flags & InodeFlags.extents) !== 0) return 0x1_0000_0000 * sb.blockSize;
  const p = sb.blockSize / 4;
  return Math.min(Number.MAX_SAFE_INTEGER, (12 + p + p * p + p * p * p) * sb.blockSize);
}

/** Physical block of logical block `logical` through direct and indirect pointers; 0 for a hole. */
export async function indirectBlock(io: MetadataIo, inode: ExtInode, logical: number): Promise<number> {
  const p = io.sb.blockSize / 4;
  const direct = new ByteView(inode.iBlock, 'ext block pointers', inode.offset + I_BLOCK_OFFSET);
  let path: number[];
  let slot: number;
  if (logical < 12) return checkedPointer(io, direct, logical * 4);
  const rest = logical - 12;
  if (rest < p) {
    slot = 12;
    path = [rest];
  } else if (rest < p + p * p) {
    const r = rest - p;
    slot = 13;
    path = [Math.floor(r / p), r % p];
  } else if (rest < p + p * p + p * p * p) {
    const r = rest - p - p * p;
    slot = 14;
    path = [Math.floor(r / (p * p)), Math.floor(r / p) % p, r % p];
  } else {
    throw corrupt('ext block pointers', inode.offset, `logical block ${logical} is beyond triple-indirect range`, { ino: inode.ino });
  }
  let block = checkedPointer(io, direct, slot * 4);
  for (const index of path) {
    if (block === 0) return 0;
    const table = await io.readMetaBlock(block, 'ext indirect block');
    block = checkedPointer(io, table, index * 4);
  }
  return block;
}

function checkedPointer(io: MetadataIo, table: ByteView, off: number): number {
  const block = table.u32(off);
  if (block !== 0) checkBlockRange(io.sb, table.structure, table.baseOffset + off, block, 1);
  return block;
}

/** Runs covering [first, first+count) for a file mapped by indirect pointers. */
export async function indirectRuns(io: MetadataIo, inode: ExtInode, first: number, count: number): Promise<BlockRun[]> {
  const runs: BlockRun[] = [];
  for (let lb = first; lb < first + count; lb++) {
    const pb = await indirectBlock(io, inode, lb);
    const last = runs[runs.length - 1];
    const physical = pb === 0 ? null : pb;
    if (last !== undefined && (physical === null ? last.physical === null
      : last.physical !== null && last.physical + last.length === physical)) {
      runs[runs.length - 1] = { ...last, length: last.length + 1 };
    } else {
      runs.push({ logical: lb, physical, length: 1 });
    }
  }
  return runs;
}
