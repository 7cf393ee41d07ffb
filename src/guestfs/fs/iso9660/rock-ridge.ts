/**
 * Rock Ridge (RRIP) entries in the System Use Sharing Protocol (SUSP) area of a directory
 * record: NM names, PX attributes, TF times, SL symlinks, CL/RE directory relocation, and
 * CE continuation areas. Continuations are followed with limits on their count, total size
 * and revisits, so a loop or a huge chain in a hostile image is an `fs.corrupt`.
 */
import { corrupt, type ByteView } from '../../bytes.js';
import { MAX_PATH_BYTES } from '../types.js';
import { longDate, shortDate } from './records.js';

/** Continuation areas followed for one record (Linux stops at 32). */
export const MAX_CONTINUATIONS = 32;
/** Bytes of one continuation area, and of all of a record's areas together. */
export const MAX_CONTINUATION_BYTES = 64 * 1024;
/**
 * Continuation bytes one directory listing may read in total: real images need a few hundred
 * bytes per entry at most, and without a budget a directory of records that all point to
 * the same large area would be parsed over and over.
 */
export const DIRECTORY_CONTINUATION_BUDGET = 16 << 20;
/** NAME_MAX of the longest names Rock Ridge writers produce, with room to spare. */
export const MAX_NAME_BYTES = 1024;

export interface RockRidge {
  name?: string;
  /** st_mode with type bits, from PX. */
  mode?: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  /** PX file serial number (RRIP 1.12 only). */
  ino?: number;
  mtime?: Date;
  atime?: Date;
  ctime?: Date;
  symlink?: string;
  /** CL: this record stands for a directory relocated to this logical block. */
  childLink?: number;
  /** RE: this is the relocated directory itself; it is shown at its CL place instead. */
  relocated: boolean;
  /** ZF: compressed data; algorithm `pz` is zisofs, with its uncompressed size. */
  compression?: { readonly algorithm: string; readonly realSize: number };
}

/** Where a CE entry points: the caller reads it (and checks it against the device). */
export type ContinuationReader = (block: number, offset: number, length: number) => Promise<ByteView>;

interface SymlinkState {
  parts: Buffer[];
  /** The previous component asked to be continued without a separator. */
  joinNext: boolean;
  started: boolean;
}

/**
 * The SP entry of the root's `.` record: Rock Ridge (SUSP) is in use, with `skip` bytes to
 * ignore at the start of every other System Use area. undefined when absent.
 */
export function suspSkipBytes(rootSelf: ByteView): number | undefined {
  if (rootSelf.length < 7) return undefined;
  const b = rootSelf.bytes;
  if (b[0] !== 0x53 || b[1] !== 0x50 || b[2]! < 7 || b[4] !== 0xbe || b[5] !== 0xef) return undefined;
  return b[6]!;
}

const TF_STAMPS = 7;

function parseTimes(e: ByteView, rr: RockRidge): void {
  const flags = e.u8(4);
  const size = (flags & 0x80) !== 0 ? 17 : 7;
  let pos = 5;
  for (let bit = 0; bit < TF_STAMPS; bit++) {
    if ((flags & (1 << bit)) === 0) continue;
    if (pos + size > e.length) return;
    const stamp = e.slice(pos, size);
    const date = size === 17 ? longDate(stamp) : shortDate(stamp);
    if (bit === 1) rr.mtime = date;
    else if (bit === 2) rr.atime = date;
    else if (bit === 3) rr.ctime = date;
    pos += size;
  }
}

function addSymlinkComponents(e: ByteView, state: SymlinkState): void {
  let pos = 5;
  while (pos + 2 <= e.length) {
    const flags = e.u8(pos);
    const len = e.u8(pos + 1);
    if (pos + 2 + len > e.length) throw corrupt('iso9660 rock ridge SL', e.baseOffset + pos, `component of ${len} bytes overruns the entry`);
    let text: Buffer;
    if ((flags & 0x08) !== 0) {
      // Root: the target is absolute.
      if (!state.started) state.parts.push(Buffer.from('/'));
      state.started = true;
      state.joinNext = true;
      pos += 2 + len;
      continue;
    }
    if ((flags & 0x02) !== 0) text = Buffer.from('.');
    else if ((flags & 0x04) !== 0) text = Buffer.from('..');
    else text = Buffer.from(e.slice(pos + 2, len));
    if (state.started && !state.joinNext) state.parts.push(Buffer.from('/'));
    state.parts.push(text);
    state.started = true;
    state.joinNext = (flags & 0x01) !== 0;
    pos += 2 + len;
  }
}

function totalLength(parts: readonly Buffer[]): number {
  return parts.reduce((n, p) => n + p.length, 0);
}

/**
 * Parses the SUSP entries of `area` (after `skip` bytes) and every continuation it chains to,
 * charging the continuation bytes read to `budget` (shared by one directory's records).
 */
export async function parseRockRidge(
  area: ByteView, skip: number, readContinuation: ContinuationReader,
  budget: { remaining: number } = { remaining: DIRECTORY_CONTINUATION_BUDGET },
): Promise<RockRidge> {
  const rr: RockRidge = { relocated: false };
  const nameParts: Buffer[] = [];
  let nameContinues = false;
  const link: SymlinkState = { parts: [], joinNext: false, started: false };
  let sawLink = false;
  const visited = new Set<string>();
  let continuations = 0;
  let continuationBytes = 0;
  let current: ByteView | undefined = area;
  let pos = Math.min(skip, area.length);
  while (current !== undefined) {
    let next: { block: number; offset: number; length: number; at: number } | undefined;
    while (pos + 4 <= current.length) {
      const len = current.u8(pos + 2);
      if (len < 4 || pos + len > current.length) break; // Padding or garbage ends the area, as in Linux.
      const e = current.view(pos, len, 'iso9660 system use entry');
      const sig = String.fromCharCode(e.u8(0), e.u8(1));
      if (sig === 'ST') break;
      if (sig === 'CE' && len >= 28) {
        next = { block: e.u32(4), offset: e.u32(12), length: e.u32(20), at: e.baseOffset };
      } else if (sig === 'NM' && len >= 5) {
        const flags = e.u8(4);
        if ((flags & 0x06) === 0) {
          nameParts.push(Buffer.from(e.slice(5, len - 5)));
          if (totalLength(nameParts) > MAX_NAME_BYTES) throw corrupt('iso9660 rock ridge NM', e.baseOffset, `name longer than ${MAX_NAME_BYTES} bytes`);
        }
        nameContinues = (flags & 0x01) !== 0;
      } else if (sig === 'PX' && len >= 36) {
        rr.mode = e.u32(4);
        rr.nlink = e.u32(12);
        rr.uid = e.u32(20);
        rr.gid = e.u32(28);
        if (len >= 44) rr.ino = e.u32(36);
      } else if (sig === 'TF' && len >= 5) {
        parseTimes(e, rr);
      } else if (sig === 'SL' && len >= 5) {
        sawLink = true;
        addSymlinkComponents(e, link);
        if (totalLength(link.parts) > MAX_PATH_BYTES) throw corrupt('iso9660 rock ridge SL', e.baseOffset, `symlink target longer than ${MAX_PATH_BYTES} bytes`);
      } else if (sig === 'CL' && len >= 12) {
        rr.childLink = e.u32(4);
      } else if (sig === 'RE') {
        rr.relocated = true;
      } else if (sig === 'ZF' && len >= 16) {
        rr.compression = { algorithm: String.fromCharCode(e.u8(4), e.u8(5)), realSize: e.u32(8) };
      }
      pos += len;
    }
    current = undefined;
    if (next !== undefined) {
      const key = `${next.block}:${next.offset}`;
      if (visited.has(key) || ++continuations > MAX_CONTINUATIONS) {
        throw corrupt('iso9660 continuation area', next.at, `continuation areas loop or chain more than ${MAX_CONTINUATIONS} times`, { block: next.block });
      }
      continuationBytes += next.length;
      if (next.length > MAX_CONTINUATION_BYTES || continuationBytes > MAX_CONTINUATION_BYTES) {
        throw corrupt('iso9660 continuation area', next.at, `continuation areas of ${continuationBytes} bytes exceed ${MAX_CONTINUATION_BYTES}`, { block: next.block });
      }
      budget.remaining -= next.length;
      if (budget.remaining < 0) {
        throw corrupt('iso9660 continuation area', next.at, `continuation areas of one directory exceed ${DIRECTORY_CONTINUATION_BUDGET} bytes`, { block: next.block });
      }
      visited.add(key);
      current = await readContinuation(next.block, next.offset, next.length);
      pos = 0;
    }
  }
  if (nameParts.length > 0 || nameContinues) rr.name = Buffer.concat(nameParts).toString('utf8');
  if (sawLink) rr.symlink = Buffer.concat(link.parts).toString('utf8');
  return rr;
}
