/**
 * FAT directory entries: 8.3 short entries (with the NT lowercase flags) and the VFAT long
 * name entries before them. A long name is used only when its ordinals run N..1 without a
 * gap and every part carries the checksum of the short name it belongs to; otherwise the
 * short name stands, as Windows and Linux do.
 */
import { corrupt, type ByteView } from '../../bytes.js';

export const ENTRY_SIZE = 32;

export const Attr = {
  readOnly: 0x01,
  hidden: 0x02,
  system: 0x04,
  volumeId: 0x08,
  directory: 0x10,
  archive: 0x20,
  longName: 0x0f,
} as const;

const NT_LOWER_BASE = 0x08;
const NT_LOWER_EXT = 0x10;
const MAX_LFN_PARTS = 20;
const CHARS_PER_PART = 13;
/** Byte offsets of the 13 UCS-2 characters in a long name entry. */
const LFN_CHAR_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** Code page 437 for bytes 0x80..0xff, Linux's default for short names. */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

export function decodeCp437(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80]!;
  return s;
}

export interface FatDirEntry {
  /** The long name when valid, else the 8.3 name with the NT case flags applied. */
  readonly name: string;
  /** The 8.3 alias (`LONGFI~1.TXT`) as stored. */
  readonly shortName: string;
  /** Device offset of the 8.3 entry. */
  readonly offset: number;
  readonly attr: number;
  readonly firstCluster: number;
  readonly size: number;
  readonly mtime: Date;
  readonly atime: Date;
  /** The creation time (Linux's ctime for vfat), or mtime when none is recorded. */
  readonly ctime: Date;
}

export interface DirParseResult {
  /** A 0x00 first byte was met: no entries follow. */
  ended: boolean;
}

/** The 8.3 name's checksum that each long name part repeats. */
export function shortNameChecksum(name11: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name11[i]!) & 0xff;
  return sum;
}

/** FAT date and time fields (local time as written, taken as UTC) as a Date; date 0 is the epoch. */
export function fatTime(date: number, time: number, centiseconds = 0): Date {
  if (date === 0) return new Date(0);
  const year = 1980 + (date >> 9);
  const month = ((date >> 5) & 0x0f) - 1;
  const day = date & 0x1f;
  return new Date(Date.UTC(year, month, day, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2) + centiseconds * 10);
}

function shortName(raw: Uint8Array, ntFlags: number): string {
  const bytes = Uint8Array.from(raw);
  if (bytes[0] === 0x05) bytes[0] = 0xe5; // 0xe5 as a first character is stored as 0x05.
  let base = decodeCp437(bytes.subarray(0, 8)).replace(/ +$/, '');
  let ext = decodeCp437(bytes.subarray(8, 11)).replace(/ +$/, '');
  if ((ntFlags & NT_LOWER_BASE) !== 0) base = base.toLowerCase();
  if ((ntFlags & NT_LOWER_EXT) !== 0) ext = ext.toLowerCase();
  return ext === '' ? base : `${base}.${ext}`;
}

interface LongNameState {
  parts: string[];
  /** Ordinal expected next (counting down to 1); 0 when no long name is being collected. */
  expect: number;
  checksum: number;
}

function decodeLongNamePart(e: ByteView): string {
  const units: number[] = [];
  for (const off of LFN_CHAR_OFFSETS) {
    const u = e.u16(off);
    if (u === 0x0000) break;
    units.push(u);
  }
  return String.fromCharCode(...units);
}

function validName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

export interface DirParseOptions {
  /** FAT32 keeps the high 16 bits of the first cluster at +20; FAT12/16 use that word for other things. */
  readonly fat32: boolean;
  /** Receives volume label entries. */
  readonly labels?: string[];
}

/**
 * Parses the entries of a directory's runs of clusters (in chain order) into `out`: deleted
 * entries, `.`, `..`, volume labels and orphan long name parts are skipped.
 */
export function parseDirectory(runs: readonly ByteView[], out: FatDirEntry[], opts: DirParseOptions): DirParseResult {
  const lfn: LongNameState = { parts: [], expect: 0, checksum: 0 };
  for (const dir of runs) {
    const ended = parseRun(dir, lfn, out, opts);
    if (ended) return { ended };
  }
  return { ended: false };
}

function parseRun(dir: ByteView, lfn: LongNameState, out: FatDirEntry[], opts: DirParseOptions): boolean {
  for (let off = 0; off + ENTRY_SIZE <= dir.length; off += ENTRY_SIZE) {
    const e = dir.view(off, ENTRY_SIZE, 'fat directory entry');
    const first = e.u8(0);
    if (first === 0x00) return true;
    const attr = e.u8(11);
    if (first === 0xe5) {
      lfn.expect = 0;
      continue;
    }
    if ((attr & 0x3f) === Attr.longName) {
      collectLongName(e, lfn);
      continue;
    }
    const name11 = e.slice(0, 11);
    const haveLong = lfn.expect === 1 && lfn.checksum === shortNameChecksum(name11);
    lfn.expect = 0;
    if ((attr & Attr.volumeId) !== 0 && (attr & Attr.directory) === 0) {
      opts.labels?.push(decodeCp437(name11).replace(/ +$/, ''));
      continue;
    }
    if (first === 0x2e && (name11[1] === 0x20 || (name11[1] === 0x2e && name11[2] === 0x20))) continue; // `.` and `..`
    const longName = haveLong ? lfn.parts.join('') : undefined;
    const alias = shortName(name11, 0);
    const name = longName !== undefined && validName(longName) ? longName : shortName(name11, e.u8(12));
    if (!validName(name)) {
      throw corrupt('fat directory entry', e.baseOffset, `invalid file name ${JSON.stringify(name)}`);
    }
    const mtime = fatTime(e.u16(24), e.u16(22));
    const created = e.u16(16);
    out.push({
      name, shortName: alias, offset: e.baseOffset, attr,
      firstCluster: (opts.fat32 ? e.u16(20) * 0x10000 : 0) + e.u16(26),
      size: e.u32(28),
      mtime,
      atime: fatTime(e.u16(18), 0),
      ctime: created === 0 ? mtime : fatTime(created, e.u16(14), e.u8(13)),
    });
  }
  return false;
}

function collectLongName(e: ByteView, lfn: LongNameState): void {
  const ord = e.u8(0);
  const seq = ord & 0x1f;
  const checksum = e.u8(13);
  if ((ord & 0x40) !== 0) {
    if (seq === 0 || seq > MAX_LFN_PARTS) {
      lfn.expect = 0;
      return;
    }
    lfn.parts = new Array<string>(seq).fill('');
    lfn.checksum = checksum;
    lfn.expect = seq + 1;
  }
  if (lfn.expect === 0 || seq !== lfn.expect - 1 || checksum !== lfn.checksum || e.u16(26) !== 0) {
    lfn.expect = 0;
    return;
  }
  lfn.parts[seq - 1] = decodeLongNamePart(e);
  lfn.expect = seq;
  if (lfn.parts[seq - 1]!.length < CHARS_PER_PART && seq !== lfn.parts.length) {
    // Only the last part (highest ordinal) may be short: a terminator inside a middle part is invalid.
    lfn.expect = 0;
  }
}
