/**
 * ext directory blocks. Linear directories and the leaf blocks of htree (dir_index)
 * directories hold the same records, so every directory is read linearly: the htree root's
 * `..` record spans the rest of its block (hiding the dx_root), interior dx blocks look like
 * one unused record (inode 0) spanning the block, and the metadata_csum tail is an inode-0
 * record too. Records with inode 0 are skipped.
 */
import type { VirtkitError } from '../../../util/errors.js';
import { corrupt, type ByteView } from '../../bytes.js';
import { decodeNameAt } from '../name-bytes.js';
import type { DirEntry, FileType } from '../types.js';
import { crc32cUpdate } from './crc32c.js';

/** ext2 directory file_type values (with the filetype feature). */
const DIRENT_TYPES: readonly (FileType | undefined)[] = [undefined, 'file', 'directory', 'chardev', 'blockdev', 'fifo', 'socket', 'symlink'];

export interface RawDirEntry extends DirEntry {
  readonly inode: number;
  /** The type byte in the record was absent or unknown: the inode must be read. */
  readonly typeFromInode: boolean;
}

export interface DirParseOptions {
  readonly hasFileType: boolean;
  readonly inodesCount: number;
  /** ext4 stores rec_len 65536 as 0 or 65535 only in 64 KiB blocks. */
  readonly blockSize: number;
}

function decodeRecLen(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  if (raw === 65535 || raw === 0) return 65536;
  return (raw & 65532) | ((raw & 3) << 16);
}

/** Why the record at `off` is not a valid record, or undefined when it is. */
function recordFault(block: ByteView, off: number, opts: DirParseOptions): { message: string; extra?: Record<string, unknown> } | undefined {
  if (block.length - off < 8) return { message: 'truncated record' };
  const inode = block.u32(off);
  const recLen = decodeRecLen(block.u16(off + 4), opts.blockSize);
  const nameLen = opts.hasFileType ? block.u8(off + 6) : block.u16(off + 6);
  if (recLen < 8 || recLen % 4 !== 0 || off + recLen > block.length) return { message: `rec_len ${recLen} is invalid` };
  if (inode === 0) return undefined;
  if (8 + nameLen > recLen) return { message: `name_len ${nameLen} exceeds rec_len ${recLen}` };
  if (inode > opts.inodesCount) return { message: `inode ${inode} is out of range`, extra: { inode } };
  if (nameLen === 0) return { message: 'empty name' };
  return undefined;
}

/** Whether the records from `off` chain validly to the end of the block (a place to resume after damage). */
function chainsToEnd(block: ByteView, off: number, opts: DirParseOptions): boolean {
  let p = off;
  while (p < block.length) {
    if (recordFault(block, p, opts) !== undefined || block.u32(p) === 0 && p === off) return false;
    p += decodeRecLen(block.u16(p + 4), opts.blockSize);
  }
  return p === block.length;
}

/**
 * Parses the records of one directory block (or an inline-data area) into `out`. A bad
 * record throws, unless `onDamage` is given: then it is reported there and the parse
 * resumes at the first later 4-byte boundary from which valid records chain to the end of
 * the block (as e2fsck salvages a directory), so names after the damage are still found.
 */
export function parseDirBlock(block: ByteView, opts: DirParseOptions, out: RawDirEntry[], onDamage?: (err: VirtkitError) => void): void {
  let off = 0;
  while (off < block.length) {
    const fault = recordFault(block, off, opts);
    if (fault !== undefined) {
      const err = corrupt('ext directory entry', block.baseOffset + off, fault.message, fault.extra);
      if (onDamage === undefined) throw err;
      onDamage(err);
      let next = off + 4;
      while (next < block.length && !chainsToEnd(block, next, opts)) next += 4;
      off = next;
      continue;
    }
    const inode = block.u32(off);
    const recLen = decodeRecLen(block.u16(off + 4), opts.blockSize);
    if (inode !== 0) {
      const nameLen = opts.hasFileType ? block.u8(off + 6) : block.u16(off + 6);
      // recordFault checked that the name lies inside its record, and the record inside the block.
      const name = decodeNameAt(block.bytes, off + 8, off + 8 + nameLen);
      if (name !== '.' && name !== '..') {
        const type = opts.hasFileType ? DIRENT_TYPES[block.u8(off + 7)] : undefined;
        out.push({ name, inode, type: type ?? 'unknown', typeFromInode: type === undefined });
      }
    }
    off += recLen;
  }
}

/** ext4_dir_entry_tail: a 12-byte inode-0 record with file type 0xDE at the end of a leaf block. */
const TAIL_SIZE = 12;
const TAIL_FILE_TYPE = 0xde;

/**
 * The metadata_csum state of a directory block: `none` when it has no checksum tail (htree
 * index blocks, inline directories), else whether crc32c(inode seed, block before the tail)
 * matches the tail's checksum.
 */
export function dirBlockChecksum(inodeSeed: number, block: ByteView): 'none' | 'ok' | 'mismatch' {
  const at = block.length - TAIL_SIZE;
  if (at < 0 || block.u32(at) !== 0 || block.u16(at + 4) !== TAIL_SIZE || block.u8(at + 6) !== 0 || block.u8(at + 7) !== TAIL_FILE_TYPE) {
    return 'none';
  }
  return crc32cUpdate(inodeSeed, block.bytes, 0, at) === block.u32(at + 8) ? 'ok' : 'mismatch';
}
