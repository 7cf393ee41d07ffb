/**
 * ISO 9660 (ECMA-119) volume descriptors: the set that starts at sector 16 (byte 32768) and
 * ends with a terminator. The primary descriptor gives the plain tree; a supplementary one
 * whose escape sequence names UCS-2 (`%/@`, `%/C`, `%/E`) gives the Joliet tree.
 */
import { ByteView, corrupt } from '../../bytes.js';

/** Descriptors are 2048-byte sectors from here on, whatever the logical block size. */
export const DESCRIPTOR_AREA = 16 * 2048;
export const DESCRIPTOR_SIZE = 2048;
/** A real set holds a handful (boot, primary, Joliet, terminator); a longer scan is garbage. */
export const MAX_DESCRIPTORS = 64;

const STANDARD_ID = 'CD001';
const TYPE_PRIMARY = 1;
const TYPE_SUPPLEMENTARY = 2;
const TYPE_TERMINATOR = 255;
const JOLIET_ESCAPES = ['%/@', '%/C', '%/E'];

/** Offset of the root directory record inside a primary or supplementary descriptor. */
export const ROOT_RECORD_OFFSET = 156;
export const ROOT_RECORD_SIZE = 34;

export interface VolumeDescriptor {
  /** Device offset of the descriptor. */
  readonly offset: number;
  readonly volumeId: string;
  /** Logical blocks in the volume. */
  readonly volumeBlocks: number;
  readonly blockSize: number;
  /** The 34-byte root directory record. */
  readonly rootRecord: ByteView;
  /** `YYYYMMDDHHMMSScc` digits, or '' when unset. */
  readonly created: string;
  readonly modified: string;
}

export interface DescriptorSet {
  readonly primary: VolumeDescriptor;
  readonly joliet?: VolumeDescriptor;
}

/** True when the sector at 32 KiB carries the `CD001` standard identifier. */
export function hasIsoSignature(sector: Uint8Array): boolean {
  return sector.length >= 6 && Buffer.from(sector.subarray(1, 6)).toString('latin1') === STANDARD_ID;
}

/** The 16-digit date of a descriptor, '' when all zeros or not digits (unset). */
function descriptorDate(v: ByteView, off: number): string {
  const text = Buffer.from(v.slice(off, 16)).toString('latin1');
  return /^\d{16}$/.test(text) && !/^0+$/.test(text) ? text : '';
}

function decodeId(bytes: Uint8Array, ucs2: boolean): string {
  const text = ucs2 ? decodeUcs2(bytes) : Buffer.from(bytes).toString('latin1');
  return text.replace(/[\s\0]+$/, '');
}

/** UCS-2 big-endian (Joliet); an odd trailing byte is dropped. */
export function decodeUcs2(bytes: Uint8Array): string {
  const even = bytes.subarray(0, bytes.length & ~1);
  const swapped = Buffer.from(even);
  swapped.swap16();
  return swapped.toString('utf16le');
}

function parseDescriptor(v: ByteView, ucs2: boolean): VolumeDescriptor {
  const blockSize = v.u16(128);
  if (blockSize < 512 || blockSize > 2048 || (blockSize & (blockSize - 1)) !== 0) {
    throw corrupt(v.structure, v.baseOffset + 128, `logical block size ${blockSize} is not 512, 1024 or 2048`);
  }
  return {
    offset: v.baseOffset,
    volumeId: decodeId(v.slice(40, 32), ucs2),
    volumeBlocks: v.u32(80),
    blockSize,
    rootRecord: v.view(ROOT_RECORD_OFFSET, ROOT_RECORD_SIZE, 'iso9660 root directory record'),
    created: descriptorDate(v, 813),
    modified: descriptorDate(v, 830),
  };
}

/**
 * Reads descriptors from sector 16 until the terminator, a sector without `CD001`, at most
 * MAX_DESCRIPTORS or the end of the device. Throws `fs.corrupt` without a primary descriptor.
 */
export async function readDescriptors(read: (offset: number, length: number) => Promise<Uint8Array>, deviceSize: number): Promise<DescriptorSet> {
  let primary: VolumeDescriptor | undefined;
  let joliet: VolumeDescriptor | undefined;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const offset = DESCRIPTOR_AREA + i * DESCRIPTOR_SIZE;
    if (offset + DESCRIPTOR_SIZE > deviceSize) break;
    const v = new ByteView(await read(offset, DESCRIPTOR_SIZE), 'iso9660 volume descriptor', offset);
    // A set without its terminator ends at the first sector that is no descriptor.
    if (!hasIsoSignature(v.bytes)) break;
    const type = v.u8(0);
    if (type === TYPE_TERMINATOR) break;
    if (type === TYPE_PRIMARY && primary === undefined) {
      primary = parseDescriptor(v, false);
    } else if (type === TYPE_SUPPLEMENTARY && joliet === undefined) {
      const escapes = Buffer.from(v.slice(88, 32)).toString('latin1');
      if (JOLIET_ESCAPES.some((e) => escapes.startsWith(e))) joliet = parseDescriptor(v, true);
    }
    // Boot records, further supplementary and volume partition descriptors are ignored.
  }
  if (primary === undefined) throw corrupt('iso9660 volume descriptor', DESCRIPTOR_AREA, 'no primary volume descriptor');
  return joliet === undefined ? { primary } : { primary, joliet };
}

/** libblkid's UUID: the modification date (else the creation date) as `YYYY-MM-DD-HH-MM-SS-CC`. */
export function volumeUuid(d: VolumeDescriptor): string {
  const date = d.modified !== '' ? d.modified : d.created;
  if (date === '') return '';
  return [0, 4, 6, 8, 10, 12, 14].map((at, i) => date.slice(at, i === 0 ? 4 : at + 2)).join('-');
}

/**
 * The label: the primary volume identifier, or the Joliet one when it extends it (Joliet may
 * keep lowercase and length the primary's d-characters lose), as libblkid merges them.
 */
export function volumeLabel(set: DescriptorSet): string {
  const plain = set.primary.volumeId;
  const wide = set.joliet?.volumeId ?? '';
  return wide.length >= plain.length && wide.toUpperCase().startsWith(plain.toUpperCase()) && wide !== '' ? wide : plain;
}
