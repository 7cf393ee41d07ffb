/**
 * inline_data: small files and directories stored in the inode itself, the first 60 bytes in
 * i_block and the rest in the in-inode extended attribute `system.data`.
 */
import { corrupt, type ByteView } from '../../bytes.js';
import type { ExtInode } from './inode.js';

const XATTR_MAGIC = 0xea020000;
const XATTR_INDEX_SYSTEM = 7;

/** The value of in-inode xattr system.data, or an empty array when absent. */
export function inlineDataTail(inode: ExtInode): Uint8Array {
  const raw: ByteView = inode.raw;
  const start = inode.xattrStart;
  if (start === 0 || start + 4 > raw.length || raw.u32(start) !== XATTR_MAGIC) return new Uint8Array(0);
  const base = start + 4;
  let off = base;
  while (off + 4 <= raw.length && raw.u32(off) !== 0) {
    const nameLen = raw.u8(off);
    const nameIndex = raw.u8(off + 1);
    const valueOffs = raw.u16(off + 2);
    const valueInum = raw.u32(off + 4);
    const valueSize = raw.u32(off + 8);
    const name = Buffer.from(raw.slice(off + 16, nameLen)).toString('latin1');
    if (nameIndex === XATTR_INDEX_SYSTEM && name === 'data') {
      if (valueInum !== 0) throw corrupt('ext inline data', raw.baseOffset + off, 'system.data stored in an EA inode', { ino: inode.ino });
      if (base + valueOffs + valueSize > raw.length) {
        throw corrupt('ext inline data', raw.baseOffset + off, `value ${valueOffs}+${valueSize} is outside the inode`, { ino: inode.ino });
      }
      return raw.slice(base + valueOffs, valueSize);
    }
    off += (16 + nameLen + 3) & ~3;
  }
  return new Uint8Array(0);
}
