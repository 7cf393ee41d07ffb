/**
 * ISO 9660 directory records (ECMA-119 9.1) and their dates. A directory's extent is a run
 * of records that never cross a 2048-byte sector; a zero length byte pads to the next one.
 */
import { corrupt, type ByteView } from '../../bytes.js';

export const SECTOR = 2048;
const MIN_RECORD = 34;

export const FileFlags = {
  hidden: 0x01,
  directory: 0x02,
  associated: 0x04,
  multiExtent: 0x80,
} as const;

export interface DirRecord {
  /** Device offset of the record. */
  readonly offset: number;
  /** Logical block of the extent (after `earBlocks` of extended attributes). */
  readonly extent: number;
  readonly earBlocks: number;
  readonly size: number;
  readonly recorded: Date;
  readonly flags: number;
  /** Interleaved files (unit size or gap non-zero) are not read. */
  readonly interleaved: boolean;
  readonly identifier: Uint8Array;
  /** The System Use field after the identifier: SUSP / Rock Ridge entries. */
  readonly systemUse: ByteView;
}

/** The 7-byte recording date: years since 1900, month, day, hour, minute, second, GMT offset in 15 min. */
export function shortDate(b: Uint8Array): Date {
  if (b.every((x) => x === 0)) return new Date(0);
  const offset = (b[6]! << 24) >> 24;
  return new Date(Date.UTC(1900 + b[0]!, b[1]! - 1, b[2]!, b[3]!, b[4]!, b[5]!) - offset * 15 * 60_000);
}

/** The 17-byte date: `YYYYMMDDHHMMSScc` digits and a GMT offset byte; unset (zeros) gives the epoch. */
export function longDate(b: Uint8Array): Date {
  const text = Buffer.from(b.subarray(0, 16)).toString('latin1');
  if (!/^\d{16}$/.test(text) || /^0+$/.test(text)) return new Date(0);
  const n = (at: number, len: number): number => Number(text.slice(at, at + len));
  const offset = (b[16]! << 24) >> 24;
  return new Date(Date.UTC(n(0, 4), n(4, 2) - 1, n(6, 2), n(8, 2), n(10, 2), n(12, 2), n(14, 2) * 10) - offset * 15 * 60_000);
}

/** Parses the record at `off` of `v`, whose length byte is `length` (already checked non-zero). */
export function parseRecord(v: ByteView, off: number): DirRecord {
  const length = v.u8(off);
  const at = v.baseOffset + off;
  if (length < MIN_RECORD) throw corrupt('iso9660 directory record', at, `record length ${length} is below ${MIN_RECORD}`);
  const r = v.view(off, length, 'iso9660 directory record');
  const idLength = r.u8(32);
  if (idLength === 0 || 33 + idLength > length) {
    throw corrupt('iso9660 directory record', at, `identifier length ${idLength} does not fit the ${length}-byte record`);
  }
  const suStart = 33 + idLength + ((idLength & 1) === 0 ? 1 : 0);
  return {
    offset: at,
    extent: r.u32(2),
    earBlocks: r.u8(1),
    size: r.u32(10),
    recorded: shortDate(r.slice(18, 7)),
    flags: r.u8(25),
    interleaved: r.u8(26) !== 0 || r.u8(27) !== 0,
    identifier: r.slice(33, idLength),
    systemUse: suStart >= length ? r.view(length, 0, 'iso9660 system use area') : r.view(suStart, length - suStart, 'iso9660 system use area'),
  };
}

/** Every record of a directory's bytes, in order; `.` and `..` included. */
export function parseRecords(dir: ByteView): DirRecord[] {
  const out: DirRecord[] = [];
  let off = 0;
  while (off < dir.length) {
    const length = dir.u8(off);
    const sectorEnd = (Math.floor(off / SECTOR) + 1) * SECTOR;
    if (length === 0) {
      off = sectorEnd;
      continue;
    }
    if (off + length > Math.min(sectorEnd, dir.length)) {
      throw corrupt('iso9660 directory record', dir.baseOffset + off, `record of ${length} bytes crosses a sector boundary or the directory's end`);
    }
    out.push(parseRecord(dir, off));
    off += length;
  }
  return out;
}

/** `.` (identifier 0x00) or `..` (0x01). */
export function isSelfOrParent(r: DirRecord): boolean {
  return r.identifier.length === 1 && r.identifier[0]! <= 1;
}
