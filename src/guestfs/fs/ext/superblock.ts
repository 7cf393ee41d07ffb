/**
 * The ext2/3/4 superblock (1024 bytes at byte 1024) and the derived geometry. Fields and
 * feature bits follow the kernel's "ext4 Data Structures and Algorithms" documentation.
 */
import { VirtkitError } from '../../../util/errors.js';
import { ByteView, cString, corrupt, formatUuid } from '../../bytes.js';
import { crc32cUpdate } from './crc32c.js';

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT_MAGIC = 0xef53;

export const Compat = { hasJournal: 0x4, resizeInode: 0x10, dirIndex: 0x20 } as const;
export const Incompat = {
  compression: 0x1, filetype: 0x2, recover: 0x4, journalDev: 0x8, metaBg: 0x10, extents: 0x40, bit64: 0x80,
  mmp: 0x100, flexBg: 0x200, eaInode: 0x400, dirdata: 0x1000, csumSeed: 0x2000, largedir: 0x4000,
  inlineData: 0x8000, encrypt: 0x10000, casefold: 0x20000,
} as const;
export const RoCompat = {
  sparseSuper: 0x1, largeFile: 0x2, btreeDir: 0x4, hugeFile: 0x8, gdtCsum: 0x10, dirNlink: 0x20,
  extraIsize: 0x40, quota: 0x100, bigalloc: 0x200, metadataCsum: 0x400,
} as const;

/** Incompatible features this reader understands; any other incompat bit makes the fs unreadable. */
const SUPPORTED_INCOMPAT = Incompat.filetype | Incompat.recover | Incompat.metaBg | Incompat.extents | Incompat.bit64
  | Incompat.mmp | Incompat.flexBg | Incompat.eaInode | Incompat.csumSeed | Incompat.largedir | Incompat.inlineData
  | Incompat.casefold | Incompat.encrypt;
/** Features ext3 knows; anything beyond makes it ext4 (blkid's rule). */
const EXT3_INCOMPAT = Incompat.filetype | Incompat.recover | Incompat.metaBg;
const EXT3_RO_COMPAT = RoCompat.sparseSuper | RoCompat.largeFile | RoCompat.btreeDir;

export interface Superblock {
  readonly inodesCount: number;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly blockSize: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly groupCount: number;
  readonly inodeSize: number;
  readonly descSize: number;
  readonly firstMetaBg: number;
  /** Seed of the metadata checksums (crc32c of the UUID, or s_checksum_seed); undefined without metadata_csum. */
  readonly csumSeed: number | undefined;
  readonly compat: number;
  readonly incompat: number;
  readonly roCompat: number;
  readonly uuid: string;
  readonly label: string;
  readonly type: 'ext2' | 'ext3' | 'ext4';
  readonly warnings: string[];
}

export function hasExtMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 0x3a && bytes[0x38] === 0x53 && bytes[0x39] === 0xef;
}

/** `lo + hi * 2^32` as exact decimal text (a Number rounds beyond 2^53). */
export function wideText(lo: number, hi: number): string {
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/**
 * Parses and validates the superblock bytes. Throws `fs.corrupt` or `fs.unsupported`; a
 * superblock checksum mismatch is a warning, or `fs.corrupt` when `strict`.
 */
export function parseSuperblock(bytes: Uint8Array, strict = false): Superblock {
  const v = new ByteView(bytes, 'ext superblock', SUPERBLOCK_OFFSET);
  const bad = (field: string, off: number, why: string): never => {
    throw corrupt('ext superblock', SUPERBLOCK_OFFSET + off, `${field} ${why}`);
  };
  if (v.u16(0x38) !== EXT_MAGIC) bad('magic', 0x38, 'is not 0xEF53');
  const logBlockSize = v.u32(0x18);
  if (logBlockSize > 6) bad('s_log_block_size', 0x18, `${logBlockSize} is out of range`);
  const blockSize = 1024 << logBlockSize;
  const revLevel = v.u32(0x4c);
  const incompat = revLevel >= 1 ? v.u32(0x60) : 0;
  const compat = revLevel >= 1 ? v.u32(0x5c) : 0;
  const roCompat = revLevel >= 1 ? v.u32(0x64) : 0;
  // Features first: a bigalloc geometry (blocks per group counted in clusters) is not
  // corrupt, only unsupported, and must be reported as such.
  const unsupported = (incompat & ~SUPPORTED_INCOMPAT) >>> 0;
  if (unsupported !== 0) {
    throw new VirtkitError('fs.unsupported', `ext filesystem uses unsupported incompatible features 0x${unsupported.toString(16)}`,
      { incompat, unsupported });
  }
  if ((roCompat & RoCompat.bigalloc) !== 0) {
    throw new VirtkitError('fs.unsupported', 'ext4 bigalloc (cluster allocation) is not supported', { roCompat });
  }
  const is64 = (incompat & Incompat.bit64) !== 0;
  const blocksCount = ByteView.join(v.u32(0x4), is64 ? v.u32(0x150) : 0);
  const firstDataBlock = v.u32(0x14);
  const blocksPerGroup = v.u32(0x20);
  const inodesPerGroup = v.u32(0x28);
  const inodesCount = v.u32(0x0);
  const inodeSize = revLevel >= 1 ? v.u16(0x58) : 128;
  const descSize = is64 ? v.u16(0xfe) : 32;
  if (blocksCount === 0 || firstDataBlock >= blocksCount || !Number.isSafeInteger(blocksCount * blockSize)) {
    bad('s_blocks_count', 0x4, `${wideText(v.u32(0x4), is64 ? v.u32(0x150) : 0)} is invalid`);
  }
  if (firstDataBlock > 1) bad('s_first_data_block', 0x14, `${firstDataBlock} is invalid`);
  if (blocksPerGroup === 0 || blocksPerGroup > blockSize * 8) bad('s_blocks_per_group', 0x20, `${blocksPerGroup} is invalid`);
  if (inodesPerGroup === 0 || inodesPerGroup > blockSize * 8) bad('s_inodes_per_group', 0x28, `${inodesPerGroup} is invalid`);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) bad('s_inode_size', 0x58, `${inodeSize} is invalid`);
  if (is64 && (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0)) bad('s_desc_size', 0xfe, `${descSize} is invalid`);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (inodesCount === 0 || inodesCount > groupCount * inodesPerGroup) bad('s_inodes_count', 0x0, `${inodesCount} is invalid`);
  const firstMetaBg = v.u32(0x104);
  const descBlocks = Math.ceil(groupCount / (blockSize / descSize));
  if ((incompat & Incompat.metaBg) !== 0 && firstMetaBg > descBlocks) {
    // libext2fs refuses this superblock (EXT2_ET_CORRUPT_SUPERBLOCK), as the kernel does.
    bad('s_first_meta_bg', 0x104, `${firstMetaBg} is beyond the ${descBlocks} group descriptor blocks`);
  }
  const warnings: string[] = [];
  if ((incompat & Incompat.recover) !== 0) {
    warnings.push('the journal needs recovery (not cleanly unmounted); it is not replayed, so the newest changes may be missing');
  }
  if ((incompat & Incompat.encrypt) !== 0) warnings.push('encrypted directories are listed with their on-disk (encrypted) names');
  const metadataCsum = (roCompat & RoCompat.metadataCsum) !== 0;
  if (metadataCsum && v.u8(0x175) === 1) {
    const stored = v.u32(0x3fc);
    if (crc32cUpdate(0xffffffff, v.slice(0, 0x3fc)) !== stored) {
      if (strict) bad('s_checksum', 0x3fc, 'does not match the superblock (metadata_csum)');
      warnings.push('superblock checksum mismatch (read through; --strict refuses it)');
    }
  }
  const csumSeed = !metadataCsum ? undefined
    : (incompat & Incompat.csumSeed) !== 0 ? v.u32(0x270) : crc32cUpdate(0xffffffff, v.slice(0x68, 16));
  const ext4 = (incompat & ~EXT3_INCOMPAT) !== 0 || (roCompat & ~EXT3_RO_COMPAT) !== 0;
  return {
    inodesCount, blocksCount, firstDataBlock, blockSize, blocksPerGroup, inodesPerGroup, groupCount, inodeSize,
    descSize, firstMetaBg, csumSeed, compat, incompat, roCompat,
    uuid: formatUuid(v.slice(0x68, 16)), label: cString(v.slice(0x78, 16)),
    type: ext4 ? 'ext4' : (compat & Compat.hasJournal) !== 0 ? 'ext3' : 'ext2',
    warnings,
  };
}

/** Whether group `g` holds a superblock backup (and so a descriptor table copy). */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g <= 1 || (sb.roCompat & RoCompat.sparseSuper) === 0) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

/** Block number holding the group descriptor of group `g`, honouring meta_bg. */
export function descriptorBlock(sb: Superblock, g: number): { block: number; index: number } {
  const perBlock = sb.blockSize / sb.descSize;
  const di = Math.floor(g / perBlock);
  const index = g % perBlock;
  if ((sb.incompat & Incompat.metaBg) === 0 || di < sb.firstMetaBg) {
    return { block: sb.firstDataBlock + 1 + di, index };
  }
  const firstGroup = di * perBlock;
  const block = sb.firstDataBlock + firstGroup * sb.blocksPerGroup + (groupHasSuper(sb, firstGroup) ? 1 : 0);
  return { block, index };
}
