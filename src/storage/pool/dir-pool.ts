/**
 * A directory pool: a host directory whose image files are the volumes. This is the only code
 * that knows pools are directories. Every volume is a regular file directly inside the pool
 * directory, named by `checkVolumeName` (which also gives its format); symbolic links are never
 * volumes, files are opened with O_NOFOLLOW, and new files appear under their name only
 * through link(2), which never replaces what is there. A qcow2 volume's backing file must be
 * another volume of the same pool with its format recorded in the header, so opening a volume
 * can never reach a host file outside the pool or make QEMU probe a format.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { link, lstat, open, readdir, realpath, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { inspectImage, MAX_CHAIN_DEPTH, type ImageInfo } from '../image/index.js';
import { convertImage, createImage, resizeImage, type QemuImgRunOptions } from '../qemu-img.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../../util/errors.js';
import type { FileIdentity } from './in-use.js';
import { checkVolumeName, checkVolumeNameFormat, declaredFormat, isVolumeName, type VolumeFormat } from './names.js';

export interface VolumeBacking {
  /** The backing volume's name, when the backing file is a volume of this pool. */
  readonly volume?: string;
  /** The backing file as the header names it, resolved against the pool directory. */
  readonly path: string;
  /** The backing format recorded in the header, if any. */
  readonly format?: string;
}

export interface VolumeInfo {
  readonly name: string;
  readonly format: VolumeFormat;
  /** Host path of the volume file. */
  readonly path: string;
  /** Guest-visible size in bytes (the qcow2 virtual size; a raw file's length). */
  readonly capacity: number;
  /** Bytes the file occupies on the host. */
  readonly allocation: number;
  readonly backing?: VolumeBacking;
  /** Set (by `list` only) when the file could not be read as its format: the typed error's text. */
  readonly problem?: string;
}

export interface PoolStats {
  /** Size of the filesystem holding the pool, in bytes. */
  readonly capacity: number;
  /** Bytes in use on that filesystem. */
  readonly allocation: number;
  /** Bytes still available to an unprivileged user. */
  readonly available: number;
}

export interface CreateVolumeOptions {
  readonly name: string;
  readonly format: VolumeFormat;
  /** Virtual size in bytes. */
  readonly capacity: number;
  /** A volume of this pool to use as the backing file (qcow2 volumes only). */
  readonly backing?: string;
}

/** An upload in progress: write into `stream` and end it, then `commit` (validates and replaces the volume) or `abort`. */
export interface VolumeUpload {
  readonly stream: Writable;
  commit(): Promise<VolumeInfo>;
  abort(): Promise<void>;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class DirPool {
  private constructor(
    /** The pool directory's real path (symbolic links resolved when the pool was opened). */
    readonly path: string,
    private readonly run: QemuImgRunOptions,
  ) {}

  /**
   * Opens the pool directory at `dir`.
   * @throws VirtkitError('pool.invalid') when it does not exist or is not a directory.
   */
  static async open(dir: string, run: QemuImgRunOptions = {}): Promise<DirPool> {
    let real: string;
    try {
      real = await realpath(dir);
    } catch (err) {
      throw new VirtkitError('pool.invalid', `pool directory ${dir} cannot be reached: ${errorMessage(err)}`, { path: dir, errno: errnoOf(err) });
    }
    const st = await stat(real);
    if (!st.isDirectory()) throw new VirtkitError('pool.invalid', `pool path ${dir} is not a directory`, { path: dir });
    return new DirPool(real, run);
  }

  /** The host path of a volume name (checked, not necessarily existing). */
  pathOf(name: string): string {
    checkVolumeName(name);
    return join(this.path, name);
  }

  /**
   * The volume's file status: a regular file directly inside the pool.
   * @throws volume.invalid-name (bad name, a symbolic link, not a regular file) or volume.not-found.
   */
  private async lstatVolume(name: string): Promise<{ path: string; format: VolumeFormat; st: Stats }> {
    const format = checkVolumeName(name);
    const path = join(this.path, name);
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new VirtkitError('volume.not-found', `no volume "${name}" in pool directory ${this.path}`, { volume: name });
      throw new VirtkitError('image.io', `cannot stat ${path}: ${errorMessage(err)}`, { path }, { cause: err });
    }
    if (st.isSymbolicLink()) {
      throw new VirtkitError('volume.invalid-name', `"${name}" is a symbolic link: volumes are regular files inside the pool directory`, { volume: name });
    }
    if (!st.isFile()) throw new VirtkitError('volume.invalid-name', `"${name}" is not a regular file`, { volume: name });
    return { path, format, st };
  }

  /**
   * The volume file's identity (device and inode), for the in-use checks (in-use.ts).
   * @throws volume.invalid-name (bad name, a symbolic link, not a regular file) or volume.not-found.
   */
  async identityOf(name: string): Promise<FileIdentity> {
    const { st } = await this.lstatVolume(name);
    return { dev: st.dev, ino: st.ino };
  }

  private async assertAbsent(name: string): Promise<string> {
    const path = this.pathOf(name);
    try {
      await lstat(path);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return path;
      throw err;
    }
    throw new VirtkitError('volume.exists', `a volume (or file) named "${name}" already exists in ${this.path}`, { volume: name });
  }

  /** Where a backing file named in a header lies, and whether it is a volume of this pool. */
  private backingOf(info: ImageInfo): VolumeBacking | undefined {
    const full = info['full-backing-filename'];
    if (full === undefined) return undefined;
    const name = basename(full);
    const inside = dirname(full) === this.path && isVolumeName(name);
    const format = info['backing-filename-format'];
    return { ...(inside ? { volume: name } : {}), path: full, ...(format !== undefined ? { format } : {}) };
  }

  async info(name: string): Promise<VolumeInfo> {
    const { path, format, st } = await this.lstatVolume(name);
    const base = { name, format, path, allocation: st.blocks * 512 };
    if (format === 'raw') return { ...base, capacity: st.size };
    const img = await inspectImage(path, { format });
    const backing = this.backingOf(img);
    return { ...base, capacity: img['virtual-size'], ...(backing ? { backing } : {}) };
  }

  /** Every volume, sorted by name. Files whose names declare no format, links and directories are not volumes. */
  async list(): Promise<VolumeInfo[]> {
    const entries = await readdir(this.path, { withFileTypes: true });
    const names = entries.filter((e) => e.isFile() && isVolumeName(e.name)).map((e) => e.name).sort();
    const out: VolumeInfo[] = [];
    for (const name of names) {
      try {
        out.push(await this.info(name));
      } catch (err) {
        if (isVirtkitError(err, 'volume.not-found')) continue; // deleted meanwhile
        const format = declaredFormat(name)!;
        out.push({ name, format, path: join(this.path, name), capacity: 0, allocation: 0, problem: isVirtkitError(err) ? err.describe() : errorMessage(err) });
      }
    }
    return out;
  }

  async stats(): Promise<PoolStats> {
    const s = await statfs(this.path);
    return { capacity: s.blocks * s.bsize, allocation: (s.blocks - s.bfree) * s.bsize, available: s.bavail * s.bsize };
  }

  /**
   * The volume and the volumes under it, top first. Every backing file must be a volume of this
   * pool whose header-recorded format matches the format its name declares.
   * @throws image.unsupported for a backing file outside the pool or without a recorded format;
   *         image.corrupt for a loop or a chain deeper than MAX_CHAIN_DEPTH.
   */
  async chain(name: string): Promise<string[]> {
    const out: string[] = [];
    for (let cur: string | undefined = name; cur !== undefined;) {
      if (out.includes(cur)) throw new VirtkitError('image.corrupt', `backing chain of "${name}" loops at "${cur}"`, { volume: name, loop: cur });
      if (out.length > MAX_CHAIN_DEPTH) throw new VirtkitError('image.corrupt', `backing chain of "${name}" is deeper than ${MAX_CHAIN_DEPTH}`, { volume: name });
      out.push(cur);
      const info = await this.info(cur);
      if (!info.backing) break;
      const b = info.backing;
      if (b.volume === undefined) {
        throw new VirtkitError('image.unsupported', `volume "${cur}" names backing file ${b.path}, which is not a volume of this pool`, { volume: cur, backing: b.path });
      }
      if (b.format === undefined || b.format !== declaredFormat(b.volume)) {
        throw new VirtkitError('image.unsupported',
          `volume "${cur}" must record its backing file's format (${declaredFormat(b.volume)}), its header says ${b.format ?? 'nothing'}`,
          { volume: cur, backing: b.volume, backingFormat: b.format ?? null });
      }
      cur = b.volume;
    }
    return out;
  }

  /** Volumes of this pool whose backing chain contains `name` (unreadable volumes are skipped). */
  async dependents(name: string): Promise<string[]> {
    const out: string[] = [];
    for (const v of await this.list()) {
      if (v.name === name || v.format !== 'qcow2' || v.problem !== undefined) continue;
      const chain = await this.chain(v.name).catch(() => [] as string[]);
      if (chain.includes(name)) out.push(v.name);
    }
    return out;
  }

  /** Runs `make(tmp)` to produce a file, then links it in under `name` (never replacing a file). */
  private async produce(name: string, make: (tmp: string) => Promise<void>): Promise<VolumeInfo> {
    const path = await this.assertAbsent(name);
    const tmp = this.tempPath(name);
    try {
      await make(tmp);
      try {
        await link(tmp, path);
      } catch (err) {
        if (errnoOf(err) === 'EEXIST') throw new VirtkitError('volume.exists', `a volume named "${name}" appeared meanwhile`, { volume: name });
        throw err;
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    return this.info(name);
  }

  /** Hidden names (leading '.') are never volume names, so listings skip files in the making. */
  private tempPath(name: string): string {
    return join(this.path, `.${name}.${randomBytes(6).toString('hex')}.part`);
  }

  async create(o: CreateVolumeOptions): Promise<VolumeInfo> {
    checkVolumeNameFormat(o.name, o.format);
    if (!Number.isSafeInteger(o.capacity) || o.capacity < 0) {
      throw new VirtkitError('argument.invalid', `capacity must be a whole number of bytes, got ${o.capacity}`, { field: 'capacity' });
    }
    let backing: { name: string; format: VolumeFormat } | undefined;
    if (o.backing !== undefined) {
      if (o.format !== 'qcow2') throw new VirtkitError('argument.invalid', 'only qcow2 volumes can have a backing volume', { field: 'backing' });
      await this.chain(o.backing);
      backing = { name: o.backing, format: checkVolumeName(o.backing) };
    }
    return this.produce(o.name, (tmp) => createImage({
      path: tmp, format: o.format, size: o.capacity,
      // Relative to the new file's directory, i.e. the pool: the pool directory can move.
      ...(backing ? { backing: backing.name, backingFormat: backing.format } : {}),
    }, this.run));
  }

  /** A standalone copy of `source` (its backing chain flattened) in the format `target`'s name declares. */
  async clone(source: string, target: string, onProgress?: (fraction: number) => void): Promise<VolumeInfo> {
    const targetFormat = checkVolumeName(target);
    const { format } = await this.lstatVolume(source);
    await this.chain(source);
    return this.produce(target, (tmp) => convertImage({
      source: join(this.path, source), sourceFormat: format, target: tmp, targetFormat,
      ...(onProgress ? { onProgress } : {}),
    }, this.run));
  }

  /** Sets the virtual size; making it smaller needs `shrink` (data past the new end is lost). */
  async resize(name: string, capacity: number, opts: { shrink?: boolean } = {}): Promise<VolumeInfo> {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new VirtkitError('argument.invalid', `capacity must be a whole number of bytes, got ${capacity}`, { field: 'capacity' });
    }
    const current = await this.info(name);
    if (capacity < current.capacity && opts.shrink !== true) {
      throw new VirtkitError('argument.invalid',
        `${capacity} bytes is smaller than the volume's ${current.capacity}: pass shrink (--shrink) to lose the data past it`, { field: 'capacity' });
    }
    if (capacity !== current.capacity) {
      await resizeImage(current.path, current.format, capacity, { shrink: capacity < current.capacity }, this.run);
    }
    return this.info(name);
  }

  async delete(name: string): Promise<void> {
    const { path } = await this.lstatVolume(name);
    await unlink(path);
  }

  /** Opens a volume's file for reading (O_NOFOLLOW), with its size. */
  async openRead(name: string): Promise<{ handle: FileHandle; size: number }> {
    const { path } = await this.lstatVolume(name);
    const handle = await openNoFollow(path, constants.O_RDONLY, name);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new VirtkitError('volume.invalid-name', `"${name}" is not a regular file`, { volume: name });
      return { handle, size: st.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * Starts replacing an existing volume's file with new content. The bytes go to a hidden file
   * beside it; `commit` checks a qcow2 upload (header readable, backing chain inside the pool
   * with recorded formats) and renames it over the volume, so a failed or refused upload leaves
   * the volume as it was.
   */
  async beginUpload(name: string): Promise<VolumeUpload> {
    const { path, st } = await this.lstatVolume(name);
    const tmp = this.tempPath(name);
    const handle = await openNoFollow(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, name, st.mode & 0o777);
    // The stream owns the handle and closes it when it finishes or is destroyed.
    const stream = handle.createWriteStream();
    return {
      stream,
      commit: async () => {
        try {
          if (!stream.closed) await new Promise<void>((resolve, reject) => { stream.once('close', resolve).once('error', reject); });
          await syncFile(tmp, name);
          if (checkVolumeName(name) === 'qcow2') await this.checkUploaded(tmp, name);
          await rename(tmp, path);
        } catch (err) {
          await unlink(tmp).catch(() => undefined);
          throw err;
        }
        return this.info(name);
      },
      abort: async () => {
        stream.destroy();
        await unlink(tmp).catch(() => undefined);
      },
    };
  }

  /** An uploaded qcow2 file must parse and may only be backed by volumes of this pool, formats recorded. */
  private async checkUploaded(tmp: string, name: string): Promise<void> {
    const info = await inspectImage(tmp, { format: 'qcow2' });
    const backing = this.backingOf(info);
    if (!backing) return;
    if (backing.volume === undefined || backing.volume === name) {
      throw new VirtkitError('image.unsupported', `the uploaded image names backing file ${backing.path}, which is not another volume of this pool`,
        { volume: name, backing: backing.path });
    }
    if (backing.format !== declaredFormat(backing.volume)) {
      throw new VirtkitError('image.unsupported', `the uploaded image must record its backing file's format (${declaredFormat(backing.volume)})`,
        { volume: name, backing: backing.volume, backingFormat: backing.format ?? null });
    }
    await this.chain(backing.volume);
  }
}

/** Flushes a written file to disk before it is renamed into place (a crash leaves old or new content). */
async function syncFile(path: string, name: string): Promise<void> {
  const fh = await openNoFollow(path, constants.O_RDONLY, name);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function openNoFollow(path: string, flags: number, name: string, mode = 0o600): Promise<FileHandle> {
  try {
    return await open(path, flags | constants.O_NOFOLLOW, mode);
  } catch (err) {
    if (errnoOf(err) === 'ELOOP') throw new VirtkitError('volume.invalid-name', `"${name}" is a symbolic link`, { volume: name });
    if (errnoOf(err) === 'ENOENT') throw new VirtkitError('volume.not-found', `no volume "${name}"`, { volume: name });
    throw new VirtkitError('image.io', `cannot open ${path}: ${errorMessage(err)}`, { path }, { cause: err });
  }
}
