/**
 * The FAT boot sector and BIOS Parameter Block (Microsoft's fatgen103): geometry checks,
 * the FAT type decided by the cluster count alone (Microsoft's rule), and where the FATs,
 * the FAT12/16 root directory and the data region lie.
 */
import { ByteView, corrupt } from '../../bytes.js';

export const FatTypes = ['fat12', 'fat16', 'fat32'] as const;
export type FatType = (typeof FatTypes)[number];

export const BOOT_SECTOR_SIZE = 512;

export interface BootSector {
  readonly type: FatType;
  readonly bytesPerSector: number;
  readonly sectorsPerCluster: number;
  readonly clusterSize: number;
  readonly reservedSectors: number;
  readonly fatCount: number;
  readonly fatSectors: number;
  /** The FAT in use: 0, or the one FAT32 names when mirroring is off. */
  readonly activeFat: number;
  readonly rootEntries: number;
  readonly totalSectors: number;
  /** Clusters in the data region; valid cluster numbers are 2..clusterCount+1. */
  readonly clusterCount: number;
  /** Byte offsets. */
  readonly fatOffset: number;
  readonly rootDirOffset: number;
  readonly dataOffset: number;
  /** FAT32: first cluster of the root directory. */
  readonly rootCluster: number;
  /** The volume serial number, when the extended boot signature is present. */
  readonly serial?: number;
  /** The BPB's 11-byte label, trailing spaces dropped ('' for `NO NAME`). */
  readonly label: string;
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** The fields every FAT boot sector has, read without throwing (the probe must not throw). */
function rawFields(s: Uint8Array): {
  bps: number; spc: number; reserved: number; fats: number; rootEntries: number; total16: number; media: number;
  fat16: number; total32: number; fat32: number;
} {
  const v = new DataView(s.buffer, s.byteOffset, s.byteLength);
  return {
    bps: v.getUint16(0x0b, true), spc: v.getUint8(0x0d), reserved: v.getUint16(0x0e, true), fats: v.getUint8(0x10),
    rootEntries: v.getUint16(0x11, true), total16: v.getUint16(0x13, true), media: v.getUint8(0x15),
    fat16: v.getUint16(0x16, true), total32: v.getUint32(0x20, true), fat32: v.getUint32(0x24, true),
  };
}

/**
 * True for a boot sector that is a plausible FAT BPB: the 55 AA signature, a jump
 * instruction, sane geometry. An MBR (no BPB: zero geometry), NTFS and exFAT (`NTFS    `,
 * `EXFAT   ` OEM names with zero FAT fields) are rejected.
 */
export function looksLikeFat(s: Uint8Array): boolean {
  if (s.length < BOOT_SECTOR_SIZE || s[510] !== 0x55 || s[511] !== 0xaa) return false;
  if (!((s[0] === 0xeb && s[2] === 0x90) || s[0] === 0xe9)) return false;
  const oem = Buffer.from(s.subarray(3, 11)).toString('latin1');
  if (oem === 'NTFS    ' || oem === 'EXFAT   ') return false;
  const f = rawFields(s);
  if (f.bps < 512 || f.bps > 4096 || !isPowerOfTwo(f.bps)) return false;
  if (!isPowerOfTwo(f.spc) || f.reserved === 0 || f.fats === 0 || f.fats > 4) return false;
  if (f.media !== 0xf0 && f.media < 0xf8) return false;
  if ((f.total16 === 0 ? f.total32 : f.total16) === 0) return false;
  const fat32Layout = f.fat16 === 0;
  if (fat32Layout) return f.fat32 !== 0 && f.rootEntries === 0;
  return f.rootEntries !== 0;
}

/** Bytes the FAT needs for clusters 0..count+1. */
function fatBytesNeeded(type: FatType, clusterCount: number): number {
  const entries = clusterCount + 2;
  return type === 'fat12' ? Math.ceil(entries * 1.5) : entries * (type === 'fat16' ? 2 : 4);
}

function trimLabel(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('latin1').replace(/[ \0]+$/, '');
  return text === 'NO NAME' ? '' : text;
}

/** Parses and validates the boot sector; throws `fs.corrupt` naming the field at fault. */
export function parseBootSector(sector: Uint8Array): BootSector {
  const v = new ByteView(sector, 'fat boot sector', 0);
  const bad = (off: number, message: string): Error => corrupt('fat boot sector', off, message);
  if (!looksLikeFat(sector)) throw bad(0, 'not a FAT boot sector (signature, jump or BPB geometry)');
  const f = rawFields(sector);
  const totalSectors = f.total16 === 0 ? f.total32 : f.total16;
  const fatSectors = f.fat16 === 0 ? f.fat32 : f.fat16;
  const rootDirSectors = Math.ceil((f.rootEntries * 32) / f.bps);
  const metaSectors = f.reserved + f.fats * fatSectors + rootDirSectors;
  if (metaSectors >= totalSectors) throw bad(0x13, `${totalSectors} sectors leave no data region after ${metaSectors} metadata sectors`);
  const clusterCount = Math.floor((totalSectors - metaSectors) / f.spc);
  // Microsoft's rule: the type follows from the cluster count, nothing else.
  const type: FatType = clusterCount < 4085 ? 'fat12' : clusterCount < 65525 ? 'fat16' : 'fat32';
  if ((type === 'fat32') !== (f.fat16 === 0)) {
    throw bad(0x16, `${clusterCount} clusters make ${type} but the BPB has the ${f.fat16 === 0 ? 'FAT32' : 'FAT12/16'} layout`);
  }
  if (fatBytesNeeded(type, clusterCount) > fatSectors * f.bps) {
    throw bad(0x16, `a FAT of ${fatSectors} sectors cannot map ${clusterCount} clusters`);
  }
  let activeFat = 0;
  let rootCluster = 0;
  let extended = 0x24;
  if (type === 'fat32') {
    const flags = v.u16(0x28);
    if ((flags & 0x80) !== 0) activeFat = flags & 0x0f;
    if (activeFat >= f.fats) throw bad(0x28, `active FAT ${activeFat} of ${f.fats}`);
    if (v.u16(0x2a) !== 0) throw bad(0x2a, `FAT32 version ${v.u16(0x2a)} is not 0.0`);
    rootCluster = v.u32(0x2c);
    if (rootCluster < 2 || rootCluster > clusterCount + 1) throw bad(0x2c, `root cluster ${rootCluster} is out of range`);
    extended = 0x40;
  }
  const signature = v.u8(extended + 2);
  const hasExtended = signature === 0x29 || signature === 0x28;
  const fatOffset = f.reserved * f.bps;
  const rootDirOffset = (f.reserved + f.fats * fatSectors) * f.bps;
  return {
    type, bytesPerSector: f.bps, sectorsPerCluster: f.spc, clusterSize: f.bps * f.spc, reservedSectors: f.reserved,
    fatCount: f.fats, fatSectors, activeFat, rootEntries: f.rootEntries, totalSectors, clusterCount,
    fatOffset, rootDirOffset, dataOffset: metaSectors * f.bps, rootCluster,
    ...(hasExtended ? { serial: v.u32(extended + 3) } : {}),
    label: signature === 0x29 ? trimLabel(v.slice(extended + 7, 11)) : '',
  };
}

/** The volume serial as libblkid prints it: `XXXX-XXXX`. */
export function formatSerial(serial: number | undefined): string {
  if (serial === undefined) return '';
  const hex = serial.toString(16).toUpperCase().padStart(8, '0');
  return `${hex.slice(0, 4)}-${hex.slice(4)}`;
}
