/**
 * MBR (DOS) partition tables: four primary entries at byte 446 of sector 0, and a chain of
 * extended boot records (EBRs) for logical partitions inside one extended partition. The
 * chain is untrusted: loops and runaway chains end with a typed error.
 */
import type { BlockDevice } from '../../storage/block/index.js';
import { ByteView, corrupt } from '../bytes.js';
import type { Partition } from './types.js';

const SECTOR = 512;
const ENTRY_OFFSET = 446;
/** Linux stops at a few hundred logicals; nothing sane has more. */
export const MAX_LOGICAL_PARTITIONS = 256;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);

const MBR_TYPE_NAMES: Record<number, string> = {
  0x01: 'fat12', 0x04: 'fat16', 0x05: 'extended', 0x06: 'fat16', 0x07: 'ntfs', 0x0b: 'fat32', 0x0c: 'fat32',
  0x0e: 'fat16', 0x0f: 'extended', 0x82: 'linux-swap', 0x83: 'linux', 0x85: 'extended', 0x8e: 'linux-lvm',
  0xa5: 'freebsd', 0xee: 'gpt-protective', 0xef: 'efi-system', 0xfd: 'linux-raid',
};

interface RawEntry {
  readonly bootable: boolean;
  readonly type: number;
  readonly lbaStart: number;
  readonly sectors: number;
}

export function hasBootSignature(sector0: Uint8Array): boolean {
  return sector0.length >= 512 && sector0[510] === 0x55 && sector0[511] === 0xaa;
}

function readEntries(sector: ByteView): RawEntry[] {
  const entries: RawEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const off = ENTRY_OFFSET + i * 16;
    entries.push({
      bootable: sector.u8(off) === 0x80,
      type: sector.u8(off + 4),
      lbaStart: sector.u32(off + 8),
      sectors: sector.u32(off + 12),
    });
  }
  return entries;
}

/** True when sector 0 carries a protective MBR entry (type 0xEE): the disk is GPT. */
export function isProtectiveMbr(sector0: Uint8Array): boolean {
  return hasBootSignature(sector0)
    && readEntries(new ByteView(sector0, 'mbr', 0)).some((e) => e.type === 0xee);
}

/**
 * A plausible MBR: boot signature, every entry's status byte 0x00 or 0x80, and at least one
 * used entry. FAT boot sectors also end in 55 AA; their status bytes are usually not 0/0x80.
 */
export function looksLikeMbr(sector0: Uint8Array): boolean {
  if (!hasBootSignature(sector0) || looksLikeFatBootSector(sector0)) return false;
  const view = new ByteView(sector0, 'mbr', 0);
  let used = 0;
  for (let i = 0; i < 4; i++) {
    const status = view.u8(ENTRY_OFFSET + i * 16);
    if (status !== 0 && status !== 0x80) return false;
    if (view.u8(ENTRY_OFFSET + i * 16 + 4) !== 0) used++;
  }
  return used > 0;
}

/** A FAT volume boot record (whole-disk FAT) also ends in 55 AA: jump opcode plus a FAT type string. */
function looksLikeFatBootSector(s: Uint8Array): boolean {
  const jump = s[0] === 0xeb || s[0] === 0xe9;
  const text = (off: number): string => Buffer.from(s.subarray(off, off + 3)).toString('latin1');
  return jump && (text(0x36) === 'FAT' || text(0x52) === 'FAT');
}

function mbrPartition(number: number, kind: Partition['kind'], e: RawEntry, base: number): Partition {
  const typeName = MBR_TYPE_NAMES[e.type];
  return {
    number, kind, start: (base + e.lbaStart) * SECTOR, size: e.sectors * SECTOR,
    type: `0x${e.type.toString(16).padStart(2, '0')}`,
    ...(typeName === undefined ? {} : { typeName }),
    bootable: e.bootable,
  };
}

/**
 * Reads the primaries and the logical chain. Partitions reaching past the end of the disk
 * are dropped with a warning (a truncated image), not fatal.
 */
export async function readMbr(dev: BlockDevice, sector0: Uint8Array, warnings: string[]): Promise<Partition[]> {
  const view = new ByteView(sector0, 'mbr', 0);
  const out: Partition[] = [];
  const keep = (p: Partition): void => {
    if (p.start + p.size > dev.size) {
      warnings.push(`partition ${p.number} (${p.start}+${p.size}) reaches past the end of the disk (${dev.size}); ignored`);
    } else {
      out.push(p);
    }
  };
  let extended: RawEntry | undefined;
  readEntries(view).forEach((e, i) => {
    if (e.type === 0 || e.sectors === 0) return;
    const isExtended = EXTENDED_TYPES.has(e.type);
    keep(mbrPartition(i + 1, isExtended ? 'extended' : 'primary', e, 0));
    if (isExtended && extended === undefined) extended = e;
  });
  if (extended !== undefined) await readLogicals(dev, extended, keep);
  return out;
}

async function readLogicals(dev: BlockDevice, extended: RawEntry, keep: (p: Partition) => void): Promise<void> {
  const extStart = extended.lbaStart;
  const extEnd = extStart + extended.sectors;
  const seen = new Set<number>();
  let ebrLba = extStart;
  let number = 5;
  for (;;) {
    if (seen.has(ebrLba)) throw corrupt('mbr extended boot record', ebrLba * SECTOR, 'the logical partition chain loops');
    if (seen.size >= MAX_LOGICAL_PARTITIONS) {
      throw corrupt('mbr extended boot record', ebrLba * SECTOR, `more than ${MAX_LOGICAL_PARTITIONS} logical partitions`);
    }
    seen.add(ebrLba);
    if (ebrLba < extStart || ebrLba >= extEnd || (ebrLba + 1) * SECTOR > dev.size) {
      throw corrupt('mbr extended boot record', ebrLba * SECTOR, 'lies outside the extended partition or the disk');
    }
    const sector = await dev.read(ebrLba * SECTOR, SECTOR);
    if (!hasBootSignature(sector)) throw corrupt('mbr extended boot record', ebrLba * SECTOR, 'missing 55 AA signature');
    const [logical, next] = readEntries(new ByteView(sector, 'mbr extended boot record', ebrLba * SECTOR));
    if (logical !== undefined && logical.type !== 0 && logical.sectors !== 0) {
      keep(mbrPartition(number++, 'logical', logical, ebrLba));
    }
    if (next === undefined || next.type === 0 || next.lbaStart === 0) return;
    ebrLba = extStart + next.lbaStart;
  }
}

export function mbrDiskId(sector0: Uint8Array): string {
  return new ByteView(sector0, 'mbr', 0).u32(440).toString(16).padStart(8, '0');
}
