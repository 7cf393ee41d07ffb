/**
 * A streaming writer for the cpio "newc" format (magic 070701), the format the Linux kernel
 * unpacks as an initramfs. Written by hand so that building a guest needs neither root
 * (device nodes are just headers here) nor a host `cpio` binary.
 *
 * Layout of each entry: a 110-byte ASCII header (magic + 13 fields of 8 hex digits), the
 * NUL-terminated name, padding to a multiple of 4, the data, padding to a multiple of 4.
 * The archive ends with an entry named `TRAILER!!!`. Hard links are never produced: every
 * entry has its own inode number and a link count of 1 (2 for directories).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { VirtkitError, errorMessage } from '../util/errors.js';

/** Fields every entry shares. `name` is the path inside the archive, with or without a leading '/'. */
interface EntryBase {
  name: string;
  /** Permission bits only (at most 0o7777); the file type comes from the entry kind. */
  mode: number;
  uid: number;
  gid: number;
}

/** A regular file whose bytes are in memory, or read from a host path while the archive streams. */
export interface FileEntry extends EntryBase {
  kind: 'file';
  content: Uint8Array | { hostPath: string };
}
export interface DirectoryEntry extends EntryBase {
  kind: 'dir';
}
export interface SymlinkEntry extends EntryBase {
  kind: 'symlink';
  target: string;
}
export interface DeviceEntry extends EntryBase {
  kind: 'device';
  device: 'char' | 'block';
  major: number;
  minor: number;
}
export interface FifoEntry extends EntryBase {
  kind: 'fifo';
}
export interface SocketEntry extends EntryBase {
  kind: 'socket';
}
export type CpioEntry = FileEntry | DirectoryEntry | SymlinkEntry | DeviceEntry | FifoEntry | SocketEntry;

export const CPIO_NEWC_MAGIC = '070701';
export const CPIO_TRAILER = 'TRAILER!!!';
const HEADER_SIZE = 110;
const MAX_FIELD = 0xffff_ffff;
/** The kernel's PATH_MAX: longer names cannot be created when the archive is unpacked. */
const MAX_NAME_BYTES = 4095;

const S_IFMT_BITS = {
  socket: 0o140000,
  symlink: 0o120000,
  file: 0o100000,
  block: 0o060000,
  dir: 0o040000,
  char: 0o020000,
  fifo: 0o010000,
} as const;

export interface CpioWriteOptions {
  /** Modification time stamped on every entry (seconds). Fixed by default so builds are reproducible. */
  mtime?: number;
}

function invalid(message: string, data: Record<string, unknown> = {}): VirtkitError {
  return new VirtkitError('cpio.invalid', message, data);
}

function checkField(entryName: string, field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) {
    throw invalid(`${entryName}: ${field} must be an integer from 0 to ${MAX_FIELD}, got ${value}`, { name: entryName, field });
  }
}

/**
 * The archive name of an entry: leading slashes dropped (as gen_init_cpio does), no empty,
 * `.` or `..` components, no NUL. Returned as it will be stored.
 */
export function normalizeEntryName(name: string): string {
  const stripped = name.replace(/^\/+/, '');
  if (stripped === '') throw invalid(`entry name ${JSON.stringify(name)} is empty`, { name });
  if (stripped.includes('\0')) throw invalid(`entry name ${JSON.stringify(name)} contains a NUL byte`, { name });
  const parts = stripped.replace(/\/+$/, '').split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw invalid(`entry name ${JSON.stringify(name)} has an empty, "." or ".." component`, { name });
  }
  const normalized = parts.join('/');
  if (Buffer.byteLength(normalized) > MAX_NAME_BYTES) {
    throw invalid(`entry name is longer than ${MAX_NAME_BYTES} bytes`, { name: normalized.slice(0, 64) });
  }
  return normalized;
}

function typeBits(entry: CpioEntry): number {
  switch (entry.kind) {
    case 'device':
      return entry.device === 'char' ? S_IFMT_BITS.char : S_IFMT_BITS.block;
    default:
      return S_IFMT_BITS[entry.kind];
  }
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const ZEROS = Buffer.alloc(4);

interface HeaderFields {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  name: string;
}

/** Header, name and the padding that follows the name: everything before an entry's data. */
function encodeHeader(h: HeaderFields): Buffer {
  const nameBytes = Buffer.from(h.name + '\0');
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
  const header =
    CPIO_NEWC_MAGIC +
    hex(h.ino) +
    hex(h.mode) +
    hex(h.uid) +
    hex(h.gid) +
    hex(h.nlink) +
    hex(h.mtime) +
    hex(h.size) +
    hex(0) + // devmajor: the device holding the file; meaningless in an archive
    hex(0) + // devminor
    hex(h.rdevMajor) +
    hex(h.rdevMinor) +
    hex(nameBytes.length) +
    hex(0); // check: only used by the 070702 "crc" variant
  return Buffer.concat([Buffer.from(header, 'ascii'), nameBytes, ZEROS.subarray(0, pad4(HEADER_SIZE + nameBytes.length))]);
}

/** Validates an entry up front, so a bad entry fails before any of its bytes are emitted. */
function checkEntry(entry: CpioEntry): string {
  const name = normalizeEntryName(entry.name);
  if (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777) {
    throw invalid(`${name}: mode must be permission bits from 0 to 07777, got ${entry.mode}`, { name, field: 'mode' });
  }
  checkField(name, 'uid', entry.uid);
  checkField(name, 'gid', entry.gid);
  if (entry.kind === 'device') {
    checkField(name, 'major', entry.major);
    checkField(name, 'minor', entry.minor);
  }
  if (entry.kind === 'symlink') {
    if (entry.target === '' || entry.target.includes('\0')) {
      throw invalid(`${name}: symlink target must be non-empty and contain no NUL byte`, { name });
    }
    if (Buffer.byteLength(entry.target) > MAX_NAME_BYTES) throw invalid(`${name}: symlink target is too long`, { name });
  }
  return name;
}

async function* streamHostFile(name: string, hostPath: string, size: number): AsyncGenerator<Buffer> {
  let seen = 0;
  try {
    for await (const chunk of createReadStream(hostPath) as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (seen > size) break;
      yield chunk;
    }
  } catch (err) {
    throw invalid(`${name}: cannot read ${hostPath}: ${errorMessage(err)}`, { name, hostPath });
  }
  if (seen !== size) throw invalid(`${name}: ${hostPath} changed size while it was archived`, { name, hostPath });
}

async function hostFileSize(name: string, hostPath: string): Promise<number> {
  let info;
  try {
    info = await stat(hostPath);
  } catch (err) {
    throw invalid(`${name}: cannot read ${hostPath}: ${errorMessage(err)}`, { name, hostPath });
  }
  if (!info.isFile()) throw invalid(`${name}: ${hostPath} is not a regular file`, { name, hostPath });
  if (info.size > MAX_FIELD) throw invalid(`${name}: ${hostPath} is larger than 4GiB, the newc limit`, { name, hostPath });
  return info.size;
}

/**
 * Encodes entries as a newc archive, chunk by chunk, reading host files only as the consumer
 * pulls. Pipe it into gzip and a file: `pipeline(Readable.from(writeCpio(entries)), createGzip(), out)`.
 * Duplicate names are refused: the kernel would silently keep the last one.
 */
export async function* writeCpio(
  entries: Iterable<CpioEntry> | AsyncIterable<CpioEntry>,
  options: CpioWriteOptions = {},
): AsyncGenerator<Buffer> {
  const mtime = options.mtime ?? 0;
  checkField('archive', 'mtime', mtime);
  const seen = new Set<string>();
  // gen_init_cpio starts numbering inodes at 721; any distinct numbers would do.
  let ino = 721;
  for await (const entry of entries) {
    const name = checkEntry(entry);
    if (seen.has(name)) throw invalid(`${name}: duplicate entry`, { name });
    seen.add(name);
    const common = {
      ino: ino++,
      mode: typeBits(entry) | entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      nlink: entry.kind === 'dir' ? 2 : 1,
      mtime,
      name,
      rdevMajor: entry.kind === 'device' ? entry.major : 0,
      rdevMinor: entry.kind === 'device' ? entry.minor : 0,
    };
    const content = entry.kind === 'file' ? entry.content : undefined;
    if (content !== undefined && !(content instanceof Uint8Array)) {
      const size = await hostFileSize(name, content.hostPath);
      yield encodeHeader({ ...common, size });
      yield* streamHostFile(name, content.hostPath, size);
      if (pad4(size) > 0) yield ZEROS.subarray(0, pad4(size));
      continue;
    }
    const data =
      content !== undefined
        ? Buffer.from(content.buffer, content.byteOffset, content.byteLength)
        : entry.kind === 'symlink'
          ? Buffer.from(entry.target)
          : ZEROS.subarray(0, 0);
    if (data.length > MAX_FIELD) throw invalid(`${name}: content is larger than 4GiB, the newc limit`, { name });
    yield Buffer.concat([encodeHeader({ ...common, size: data.length }), data, ZEROS.subarray(0, pad4(data.length))]);
  }
  yield encodeHeader({ ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0, rdevMajor: 0, rdevMinor: 0, name: CPIO_TRAILER });
}

/** Collects a whole archive in memory; for small archives and tests. */
export async function cpioToBuffer(
  entries: Iterable<CpioEntry> | AsyncIterable<CpioEntry>,
  options: CpioWriteOptions = {},
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeCpio(entries, options)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
