/**
 * ext directory blocks. Linear directories and the leaf blocks of htree (dir_index)
 * directories hold the same records, so every directory is read linearly: the htree root's
 * `..` record spans the rest of its block (hiding the dx_root), interior dx blocks look like
 * one unused record (inode 0) spanning the block, and the metadata_csum tail is an inode-0
 * record too. Records with inode 0 are skipped.
 */
import { corrupt, type ByteView } from '../../bytes.js';
import type { DirEntry, FileType } from '../types.js';

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

const decoder = new TextDecoder('utf-8');

/** Parses the records of one directory block (or an inline-data area) into `out`. */
export function parseDirBlock(block: ByteView, opts: DirParseOptions, out: RawDirEntry[]): void {
  let off = 0;
  while (off < block.length) {
    if (block.length - off < 8) throw corrupt('ext directory entry', block.baseOffset + off, 'truncated record');
    const inode = block.u32(off);
    const recLen = decodeRecLen(block.u16(off + 4), opts.blockSize);
    const nameLen = opts.hasFileType ? block.u8(off + 6) : block.u16(off + 6);
    if (recLen < 8 || recLen % 4 !== 0 || off + recLen > block.length) {
      throw corrupt('ext directory entry', block.baseOffset + off, `rec_len ${recLen} is invalid`);
    }
    if (inode !== 0) {
      if (8 + nameLen > recLen) throw corrupt('ext directory entry', block.baseOffset + off, `name_len ${nameLen} exceeds rec_len ${recLen}`);
      if (inode > opts.inodesCount) throw corrupt('ext directory entry', block.baseOffset + off, `inode ${inode} is out of range`, { inode });
      if (nameLen === 0) throw corrupt('ext directory entry', block.baseOffset + off, 'empty name');
      const nameBytes = block.slice(off + 8, nameLen);
      const name = decoder.decode(nameBytes);
      if (name !== '.' && name !== '..') {
        const type = opts.hasFileType ? DIRENT_TYPES[block.u8(off + 7)] : undefined;
        out.push({ name, inode, type: type ?? 'unknown', typeFromInode: type === undefined });
      }
    }
    off += recLen;
  }
}
