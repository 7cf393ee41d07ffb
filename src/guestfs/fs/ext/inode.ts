/** The ext inode: type, ownership, size, times and the 60-byte i_block area. */
import { ByteView, corrupt } from '../../bytes.js';
import type { FileType } from '../types.js';
import { crc32cUpdate } from './crc32c.js';
import { wideText } from './superblock.js';

export const InodeFlags = { index: 0x1000, hugeFile: 0x40000, extents: 0x80000, eaInode: 0x200000, inlineData: 0x10000000 } as const;
export const ROOT_INO = 2;
export const I_BLOCK_OFFSET = 0x28;
export const I_BLOCK_SIZE = 60;

export interface ExtInode {
  readonly ino: number;
  /** Device offset of the on-disk inode, for error reports. */
  readonly offset: number;
  readonly type: FileType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly flags: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  /** Data blocks in 512-byte units (i_blocks, as the kernel counts without huge_file). */
  readonly sectors: number;
  readonly fileAcl: number;
  /** i_block: extent root, block pointers, a fast symlink or inline data. */
  readonly iBlock: Uint8Array;
  /** The whole on-disk inode, for in-inode extended attributes. */
  readonly raw: ByteView;
  /** Where in-inode extended attributes start (128 + i_extra_isize), or 0 for none. */
  readonly xattrStart: number;
}

const TYPE_BITS: Record<number, FileType> = {
  0x1000: 'fifo', 0x2000: 'chardev', 0x4000: 'directory', 0x6000: 'blockdev', 0x8000: 'file', 0xa000: 'symlink', 0xc000: 'socket',
};

export function fileTypeOfMode(mode: number): FileType {
  return TYPE_BITS[mode & 0xf000] ?? 'unknown';
}

/** Decodes seconds plus the optional `_extra` word (2 epoch bits, 30 nanosecond bits). */
function decodeTime(v: ByteView, secOff: number, extraOff: number | undefined): Date {
  const sec = v.u32(secOff) | 0;
  if (extraOff === undefined) return new Date(sec * 1000);
  const extra = v.u32(extraOff);
  const epoch = extra & 3;
  const nsec = extra >>> 2;
  return new Date((sec + epoch * 0x1_0000_0000) * 1000 + Math.floor(nsec / 1e6));
}

/**
 * Parses an on-disk inode. `maxSize` bounds i_size (the largest file the block mapping can
 * address); beyond it the inode is corrupt.
 */
export function parseInode(ino: number, raw: ByteView, maxSize: number): ExtInode {
  const mode = raw.u16(0x0);
  // A directory entry led here, so the inode must be in use: an all-zero inode (an inode
  // table never written, or zeroed) or one without a file type is damage, not a file.
  if (fileTypeOfMode(mode) === 'unknown') {
    throw corrupt('ext inode', raw.baseOffset, `inode ${ino} has no valid file type (mode 0o${mode.toString(8)}${raw.bytes.every((b) => b === 0) ? ', all zeros' : ''})`, { ino });
  }
  const size = ByteView.join(raw.u32(0x4), raw.u32(0x6c));
  if (size > maxSize) {
    throw corrupt('ext inode', raw.baseOffset, `inode ${ino} size ${wideText(raw.u32(0x4), raw.u32(0x6c))} exceeds the filesystem's limit ${maxSize}`, { ino });
  }
  const extraIsize = raw.length > 128 ? raw.u16(0x80) : 0;
  if (raw.length > 128 && (128 + extraIsize > raw.length || extraIsize % 4 !== 0)) {
    throw corrupt('ext inode', raw.baseOffset + 0x80, `inode ${ino} i_extra_isize ${extraIsize} is invalid`, { ino });
  }
  return new InodeRecord(ino, raw, mode, size, extraIsize);
}

/**
 * A parsed inode. What is validated is checked when it is made; the times and the i_block
 * bytes are made when asked for, as a tree walk reads tens of thousands of directory inodes
 * for their size and extents only.
 */
class InodeRecord implements ExtInode {
  readonly offset: number;
  readonly type: FileType;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly flags: number;
  readonly sectors: number;
  readonly fileAcl: number;
  readonly xattrStart: number;

  constructor(readonly ino: number, readonly raw: ByteView, readonly mode: number, readonly size: number, private readonly extraIsize: number) {
    this.offset = raw.baseOffset;
    this.type = fileTypeOfMode(mode);
    this.uid = raw.u16(0x2) + raw.u16(0x78) * 0x10000;
    this.gid = raw.u16(0x18) + raw.u16(0x7a) * 0x10000;
    this.nlink = raw.u16(0x1a);
    this.flags = raw.u32(0x20);
    this.sectors = ByteView.join(raw.u32(0x1c), raw.u16(0x74));
    this.fileAcl = ByteView.join(raw.u32(0x68), raw.u16(0x76));
    this.xattrStart = raw.length > 128 ? 128 + extraIsize : 0;
  }

  private has(fieldEnd: number): boolean {
    return this.raw.length > 128 && 128 + this.extraIsize >= fieldEnd;
  }

  get ctime(): Date {
    return decodeTime(this.raw, 0xc, this.has(0x88) ? 0x84 : undefined);
  }

  get mtime(): Date {
    return decodeTime(this.raw, 0x10, this.has(0x8c) ? 0x88 : undefined);
  }

  get atime(): Date {
    return decodeTime(this.raw, 0x8, this.has(0x90) ? 0x8c : undefined);
  }

  get iBlock(): Uint8Array {
    return this.raw.slice(I_BLOCK_OFFSET, I_BLOCK_SIZE);
  }
}

/** Scratch for le32: one 4-byte buffer reused, as the checksums run once per inode read. */
const LE32 = new Uint8Array(4);
const LE32_VIEW = new DataView(LE32.buffer);
const ZEROS2 = new Uint8Array(2);

function le32(n: number): Uint8Array {
  LE32_VIEW.setUint32(0, n >>> 0, true);
  return LE32;
}

/**
 * Whether the metadata_csum checksum of inode `ino` matches (ext4_inode_csum: crc32c of the
 * inode number, its generation and the inode with its checksum fields zeroed, from the
 * filesystem's seed). Only the low 16 bits are stored in a 128-byte inode. The inode is
 * checksummed in place, its checksum fields standing in as zeros (no copy per inode).
 */
export function inodeChecksumMatches(seed: number, ino: number, raw: ByteView): boolean {
  const bytes = raw.bytes;
  const hasHi = raw.length > 128 && raw.u16(0x80) >= 4;
  const storedLo = raw.u16(0x7c);
  const storedHi = hasHi ? raw.u16(0x82) : 0;
  let crc = crc32cUpdate(seed, le32(ino));
  crc = crc32cUpdate(crc, le32(raw.u32(0x64)));
  crc = crc32cUpdate(crc, bytes, 0, 0x7c);
  crc = crc32cUpdate(crc, ZEROS2);
  if (hasHi) {
    crc = crc32cUpdate(crc, bytes, 0x7e, 0x82);
    crc = crc32cUpdate(crc, ZEROS2);
    crc = crc32cUpdate(crc, bytes, 0x84, bytes.length);
  } else {
    crc = crc32cUpdate(crc, bytes, 0x7e, bytes.length);
  }
  return hasHi ? crc === ((storedHi << 16) | storedLo) >>> 0 : (crc & 0xffff) === storedLo;
}

/** Seed for an inode's own structures (directory blocks, extent blocks): crc32c of its number and generation. */
export function inodeSeed(seed: number, inode: ExtInode): number {
  return crc32cUpdate(crc32cUpdate(seed, le32(inode.ino)), le32(inode.raw.u32(0x64)));
}
