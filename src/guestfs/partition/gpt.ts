/**
 * GUID Partition Tables. The primary header sits at LBA 1 with its entry array after it; a
 * backup header at the disk's last LBA points at a backup entry array. Both carry CRC32s
 * (over the header with its CRC field zeroed, and over the entry array). A primary that
 * fails any check is replaced by the backup, with a warning; when both fail the table is
 * corrupt.
 */
import type * as Zlib from 'node:zlib';
import type { BlockDevice } from '../../storage/block/index.js';
import { ByteView, corrupt, formatGuid } from '../bytes.js';
import type { Partition } from './types.js';

/** node:zlib is loaded by the first GPT check: a command reading a disk without one never needs it. */
let zlib: typeof Zlib | undefined;
async function crc32(bytes: Uint8Array): Promise<number> {
  zlib ??= await import('node:zlib');
  return zlib.crc32(bytes);
}

const SIGNATURE = 'EFI PART';
const MIN_HEADER_SIZE = 92;
const MAX_ENTRIES_BYTES = 1 << 20;

const GPT_TYPE_NAMES: Record<string, string> = {
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'efi-system',
  '21686148-6449-6E6F-744E-656564454649': 'bios-boot',
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'linux',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'linux-root-x86-64',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'linux-swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'linux-lvm',
  'A19D880F-05FC-4D3B-A006-743F0F84911E': 'linux-raid',
  'BC13C2FF-59E6-4262-A352-B275FD6F7172': 'linux-extended-boot',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'microsoft-basic-data',
};

interface GptHeader {
  readonly lba: number;
  readonly backupLba: number;
  readonly diskGuid: string;
  readonly entriesLba: number;
  readonly entryCount: number;
  readonly entrySize: number;
  readonly entriesCrc: number;
}

export interface GptResult {
  readonly partitions: Partition[];
  readonly diskId: string;
  readonly sectorSize: number;
}

/** The sector size whose LBA 1 holds a GPT signature, trying 512 then 4096; undefined if none. */
export async function findGptSectorSize(dev: BlockDevice): Promise<number | undefined> {
  for (const ss of [512, 4096]) {
    if (dev.size < ss * 2) continue;
    const sig = Buffer.from(await dev.read(ss, 8)).toString('latin1');
    if (sig === SIGNATURE) return ss;
  }
  return undefined;
}

async function readHeader(dev: BlockDevice, lba: number, ss: number): Promise<GptHeader> {
  const offset = lba * ss;
  if (lba < 1 || offset + ss > dev.size) throw corrupt('gpt header', offset, 'lies outside the disk');
  const bytes = Uint8Array.from(await dev.read(offset, ss));
  const v = new ByteView(bytes, 'gpt header', offset);
  if (Buffer.from(v.slice(0, 8)).toString('latin1') !== SIGNATURE) throw corrupt('gpt header', offset, 'bad signature');
  const headerSize = v.u32(12);
  if (headerSize < MIN_HEADER_SIZE || headerSize > ss) throw corrupt('gpt header', offset, `header size ${headerSize} is invalid`);
  const storedCrc = v.u32(16);
  bytes.fill(0, 16, 20);
  if ((await crc32(bytes.subarray(0, headerSize))) !== storedCrc) throw corrupt('gpt header', offset, 'header CRC32 mismatch');
  const header: GptHeader = {
    lba: v.u64(24), backupLba: v.u64(32), diskGuid: formatGuid(v.slice(56, 16)),
    entriesLba: v.u64(72), entryCount: v.u32(80), entrySize: v.u32(84), entriesCrc: v.u32(88),
  };
  if (header.lba !== lba) throw corrupt('gpt header', offset, `claims to be at LBA ${header.lba}`);
  if (header.entrySize < 128 || header.entrySize % 8 !== 0 || header.entrySize * header.entryCount > MAX_ENTRIES_BYTES) {
    throw corrupt('gpt header', offset, `entry array of ${header.entryCount} x ${header.entrySize} bytes is invalid`);
  }
  return header;
}

async function readEntries(dev: BlockDevice, h: GptHeader, ss: number): Promise<Partition[]> {
  const offset = h.entriesLba * ss;
  const length = h.entryCount * h.entrySize;
  if (h.entriesLba < 1 || offset + length > dev.size) throw corrupt('gpt entries', offset, 'lie outside the disk');
  const bytes = await dev.read(offset, length);
  if ((await crc32(bytes)) !== h.entriesCrc) throw corrupt('gpt entries', offset, 'entry array CRC32 mismatch');
  const out: Partition[] = [];
  for (let i = 0; i < h.entryCount; i++) {
    const e = new ByteView(bytes, 'gpt entry', offset).view(i * h.entrySize, h.entrySize);
    const typeBytes = e.slice(0, 16);
    if (typeBytes.every((b) => b === 0)) continue;
    const first = e.u64(32);
    const last = e.u64(40);
    if (last < first) throw corrupt('gpt entry', e.baseOffset, `last LBA ${last} is before first LBA ${first}`);
    const type = formatGuid(typeBytes);
    const typeName = GPT_TYPE_NAMES[type];
    const start = first * ss;
    const size = (last - first + 1) * ss;
    if (start + size > dev.size) throw corrupt('gpt entry', e.baseOffset, `partition ${i + 1} reaches past the end of the disk`);
    out.push({
      number: i + 1, kind: 'gpt', start, size, type,
      ...(typeName === undefined ? {} : { typeName }),
      name: decodeName(e.slice(56, Math.min(72, h.entrySize - 56))),
      uuid: formatGuid(e.slice(16, 16)),
    });
  }
  return out;
}

function decodeName(b: Uint8Array): string {
  const s = Buffer.from(b.subarray(0, b.length & ~1)).toString('utf16le');
  const end = s.indexOf('\0');
  return end < 0 ? s : s.slice(0, end);
}

async function readCopy(dev: BlockDevice, lba: number, ss: number): Promise<GptResult> {
  const h = await readHeader(dev, lba, ss);
  return { partitions: await readEntries(dev, h, ss), diskId: h.diskGuid, sectorSize: ss };
}

/** Reads the primary table, falling back to the backup at the last LBA (with a warning). */
export async function readGpt(dev: BlockDevice, ss: number, warnings: string[]): Promise<GptResult> {
  try {
    return await readCopy(dev, 1, ss);
  } catch (primaryErr) {
    const lastLba = Math.floor(dev.size / ss) - 1;
    try {
      const backup = await readCopy(dev, lastLba, ss);
      warnings.push(`primary GPT is damaged (${(primaryErr as Error).message}); using the backup at LBA ${lastLba}`);
      return backup;
    } catch {
      throw primaryErr;
    }
  }
}
