/**
 * The save file (docs/save-restore.md): a header, then QEMU's migration stream.
 *
 *   0   16  magic "virtkit-save\n\0\0\0"
 *   16   4  format version, u32 little-endian (SaveFormatVersion)
 *   20   4  header length N, u32 little-endian
 *   24   N  header: JSON (SaveHeader), padded with spaces
 *   24+N    the migration stream, `streamBytes` long
 *
 * The header is written twice: first with `complete: false` and room reserved, before the
 * stream; then, once QEMU is gone, in place with the stream's length and the disks' identities
 * (size and modification time after QEMU's last write). A save that died half-way is therefore
 * recognisable (`complete: false` or a short file) and is refused as truncated.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { validateDefinition, type DomainDefinition } from '../conf/index.js';
import { VirtkitError, errorMessage } from '../util/errors.js';

export const SaveMagic = Buffer.from('virtkit-save\n\0\0\0', 'latin1');
export const SaveFormatVersion = 1;
const FixedBytes = 24;
/** A header longer than this is not ours (a definition is at most a few KiB, 64 disks of paths). */
const MaxHeaderBytes = 4 * 1024 * 1024;

/** What identifies a disk image at save time: a changed size or mtime means it was written since. */
export interface DiskIdentity {
  id: string;
  path: string;
  size: number;
  /** Modification time in nanoseconds, as a decimal string (beyond 2^53). */
  mtimeNs: string;
}

export interface SaveHeader {
  complete: boolean;
  /** The definition QEMU ran (its live definition): the restored QEMU gets the same machine. */
  definition: DomainDefinition;
  /** The guest was paused when saved: it is restored paused. */
  paused: boolean;
  savedAt: string;
  streamBytes: number;
  disks: DiskIdentity[];
}

export interface ParsedSave {
  header: SaveHeader;
  /** Where the migration stream starts. */
  streamOffset: number;
}

function invalid(path: string, reason: string, message: string, data: Record<string, unknown> = {}): VirtkitError {
  return new VirtkitError('save.invalid', `${path}: ${message}`, { path, reason, ...data });
}

/** The host paths of a definition's disks, with their ids (pool volumes resolved by the caller). */
export async function diskIdentities(disks: readonly { id: string; path: string }[]): Promise<DiskIdentity[]> {
  return Promise.all(disks.map(async (d) => {
    const st = await stat(d.path, { bigint: true });
    return { id: d.id, path: d.path, size: Number(st.size), mtimeNs: st.mtimeNs.toString() };
  }));
}

function encodeHeader(header: SaveHeader, length?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const size = length ?? json.length;
  if (json.length > size) throw new VirtkitError('internal', `save header grew past its reserved ${size} bytes`, { size });
  const out = Buffer.alloc(FixedBytes + size, 0x20);
  SaveMagic.copy(out, 0);
  out.writeUInt32LE(SaveFormatVersion, 16);
  out.writeUInt32LE(size, 20);
  json.copy(out, FixedBytes);
  return out;
}

/**
 * Creates `path` (refusing to overwrite nothing: an existing file is replaced, as virsh save
 * does) with the provisional header; returns the stream offset. The reserved room fits the
 * final header: every disk identity with the widest numbers it can have.
 */
export async function writeProvisionalHeader(path: string, header: Omit<SaveHeader, 'complete' | 'streamBytes' | 'disks'>,
  disks: readonly { id: string; path: string }[]): Promise<number> {
  const widest: SaveHeader = {
    ...header, complete: true, streamBytes: Number.MAX_SAFE_INTEGER,
    disks: disks.map((d) => ({ id: d.id, path: d.path, size: Number.MAX_SAFE_INTEGER, mtimeNs: '9'.repeat(24) })),
  };
  const reserved = Buffer.byteLength(JSON.stringify(widest)) + 256;
  const bytes = encodeHeader({ ...header, complete: false, streamBytes: 0, disks: [] }, reserved);
  let fh: FileHandle;
  try {
    fh = await open(path, 'w', 0o600);
  } catch (err) {
    throw new VirtkitError('argument.invalid', `cannot create the save file ${path}: ${errorMessage(err)}`, { path });
  }
  try {
    await fh.write(bytes, 0, bytes.length, 0);
  } finally {
    await fh.close();
  }
  return bytes.length;
}

/** Rewrites the header in place as complete, then syncs the file: the save is on disk. */
export async function completeHeader(path: string, offset: number, header: SaveHeader): Promise<void> {
  const bytes = encodeHeader({ ...header, complete: true }, offset - FixedBytes);
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads and checks a save file's header: magic, version, length, JSON, definition, completeness. */
export async function readSaveFile(path: string): Promise<ParsedSave> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new VirtkitError(code === 'ENOENT' ? 'image.not-found' : 'image.io', `cannot open the save file ${path}: ${errorMessage(err)}`, { path });
  }
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(size, FixedBytes));
    await fh.read(head, 0, head.length, 0);
    return await parseSaveHeader(path, size, head, async (length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, FixedBytes);
      return buf.subarray(0, bytesRead);
    });
  } finally {
    await fh.close();
  }
}

/**
 * The header checks on bytes already read: `head` is the file's first (up to) 24 bytes,
 * `readJson(n)` the n bytes after them. Separate from the file so the fuzz test drives it.
 */
export async function parseSaveHeader(path: string, fileSize: number, head: Buffer, readJson: (n: number) => Promise<Buffer>): Promise<ParsedSave> {
  if (head.length < SaveMagic.length || !head.subarray(0, SaveMagic.length).equals(SaveMagic)) {
    if (head.length < SaveMagic.length && SaveMagic.subarray(0, head.length).equals(head)) {
      throw new VirtkitError('save.truncated', `${path}: the file ends inside the save header (${fileSize} bytes)`, { path, size: fileSize });
    }
    throw invalid(path, 'not-a-save-file', 'not a virtkit save file (no "virtkit-save" magic)');
  }
  if (head.length < FixedBytes) throw new VirtkitError('save.truncated', `${path}: the file ends inside the save header (${fileSize} bytes)`, { path, size: fileSize });
  const version = head.readUInt32LE(16);
  if (version !== SaveFormatVersion) {
    throw invalid(path, 'version', `save format version ${version}; this virtkit reads version ${SaveFormatVersion}`, { version, supported: SaveFormatVersion });
  }
  const length = head.readUInt32LE(20);
  if (length === 0 || length > MaxHeaderBytes) throw invalid(path, 'header-length', `a header length of ${length} bytes is not plausible`, { length });
  if (FixedBytes + length > fileSize) {
    throw new VirtkitError('save.truncated', `${path}: the file ends inside the save header (${fileSize} of ${FixedBytes + length} bytes)`, { path, size: fileSize });
  }
  const json = await readJson(length);
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw invalid(path, 'header', `the header is not JSON: ${errorMessage(err)}`);
  }
  const header = checkHeader(path, raw);
  const streamOffset = FixedBytes + length;
  if (!header.complete) throw new VirtkitError('save.truncated', `${path}: the save did not finish (its header was never completed)`, { path });
  if (streamOffset + header.streamBytes > fileSize) {
    throw new VirtkitError('save.truncated', `${path}: the migration stream is cut short (${fileSize - streamOffset} of ${header.streamBytes} bytes)`,
      { path, size: fileSize, expected: streamOffset + header.streamBytes });
  }
  return { header, streamOffset };
}

function checkHeader(path: string, raw: unknown): SaveHeader {
  const o = raw as Partial<SaveHeader> | null;
  const bad = (field: string): VirtkitError => invalid(path, 'header', `header field ${field} is missing or of the wrong type`, { field });
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw invalid(path, 'header', 'the header is not a JSON object');
  if (typeof o.complete !== 'boolean') throw bad('complete');
  if (typeof o.paused !== 'boolean') throw bad('paused');
  if (typeof o.savedAt !== 'string') throw bad('savedAt');
  if (typeof o.streamBytes !== 'number' || !Number.isSafeInteger(o.streamBytes) || o.streamBytes < 0) throw bad('streamBytes');
  if (!Array.isArray(o.disks) || o.disks.length > 256) throw bad('disks');
  for (const [i, d] of o.disks.entries()) {
    const disk = d as Partial<DiskIdentity> | null;
    if (typeof disk !== 'object' || disk === null || typeof disk.id !== 'string' || typeof disk.path !== 'string'
      || typeof disk.size !== 'number' || typeof disk.mtimeNs !== 'string' || !/^\d{1,30}$/.test(disk.mtimeNs)) throw bad(`disks[${i}]`);
  }
  let definition: DomainDefinition;
  try {
    definition = validateDefinition(o.definition);
  } catch (err) {
    throw invalid(path, 'definition', `the saved definition is not valid: ${errorMessage(err)}`);
  }
  return { complete: o.complete, paused: o.paused, savedAt: o.savedAt, streamBytes: o.streamBytes, disks: o.disks as DiskIdentity[], definition };
}

/** The disks whose size or mtime differ from the save's (or that are gone). */
export async function changedDisks(header: SaveHeader): Promise<{ id: string; path: string; why: string }[]> {
  const out: { id: string; path: string; why: string }[] = [];
  for (const d of header.disks) {
    const st = await stat(d.path, { bigint: true }).catch(() => undefined);
    if (!st) out.push({ id: d.id, path: d.path, why: 'gone' });
    else if (Number(st.size) !== d.size) out.push({ id: d.id, path: d.path, why: `size ${st.size} (was ${d.size})` });
    else if (st.mtimeNs.toString() !== d.mtimeNs) out.push({ id: d.id, path: d.path, why: 'modified since the save' });
  }
  return out;
}

/** Refuses (save.disks-changed) a restore whose disks were written since the save. */
export async function assertDisksUnchanged(path: string, header: SaveHeader): Promise<void> {
  const changed = await changedDisks(header);
  if (changed.length > 0) {
    throw new VirtkitError('save.disks-changed',
      `${path}: ${changed.map((c) => `disk ${c.id} (${c.path}): ${c.why}`).join('; ')}; restoring would corrupt them (--force restores anyway)`,
      { path, disks: changed });
  }
}
