/**
 * Which host files running guests use, by identity: a file is its (device, inode) pair, so a
 * guest reaching a pool file through another path, a symbolic link or a hard link in another
 * directory is still seen using it. Two sources are merged: the disks of the guests'
 * definitions (each disk's file and, for qcow2, the backing files its header chain names), and
 * the files each guest's QEMU process has open (/proc/PID/fd), which also catches drives added
 * outside the definition. Nothing here knows the store: the daemon hands in what it knows.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { inspectImage, MAX_CHAIN_DEPTH, type ImageInfo } from '../image/index.js';

/** O_ACCMODE on Linux (Node's fs.constants lacks it): the low two bits of the open flags. */
const OpenAccessModeMask = 0o3;

export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** How a guest uses a file. */
export interface FileUse {
  readonly domain: string;
  /** The disk's id, when the file belongs to a disk of the guest's definition. */
  readonly disk?: string;
  /** The path the guest reaches the file by (the disk's source, a backing file, an open file of QEMU). */
  readonly path: string;
  /** 'disk': the disk's own file; 'backing': a file under it in its qcow2 chain; 'open-file': only seen open by QEMU. */
  readonly role: 'disk' | 'backing' | 'open-file';
  /** Whether the guest may write it (a read-write disk, or a file QEMU opened for writing). */
  readonly writable: boolean;
}

/** A disk of an active guest, with its host path (a volume already resolved to its file). */
export interface ActiveDisk {
  readonly domain: string;
  readonly disk: string;
  readonly path: string;
  readonly format: string;
  readonly readonly: boolean;
}

/** A running guest's QEMU process, and the identity we put on its command line (`-uuid`). */
export interface ActiveProcess {
  readonly domain: string;
  readonly pid: number;
  readonly uuid: string;
}

export function identityKey(id: FileIdentity): string {
  return `${id.dev}:${id.ino}`;
}

/** The identity of the file at `path`, symbolic links followed; undefined when there is none. */
export async function fileIdentity(path: string): Promise<FileIdentity | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() || st.isBlockDevice() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A disk's file and the backing files under it, top first, each with its identity. The chain
 * is read from the qcow2 headers with the formats they record (never probed); a file missing,
 * unreadable or named without a recorded format ends the chain there. Bounded by
 * MAX_CHAIN_DEPTH and by identity, so a loop ends too.
 */
export async function diskFileChain(path: string, format: string): Promise<{ path: string; id: FileIdentity }[]> {
  const out: { path: string; id: FileIdentity }[] = [];
  const seen = new Set<string>();
  let cur: { path: string; format: string | undefined } | undefined = { path, format };
  while (cur !== undefined && out.length <= MAX_CHAIN_DEPTH) {
    const id = await fileIdentity(cur.path);
    if (!id || seen.has(identityKey(id))) break;
    seen.add(identityKey(id));
    out.push({ path: cur.path, id });
    if (cur.format !== 'qcow2') break;
    const info: ImageInfo | undefined = await inspectImage(cur.path, { format: 'qcow2' }).catch(() => undefined);
    const next: string | undefined = info?.['full-backing-filename'];
    cur = next === undefined ? undefined : { path: next, format: info?.['backing-filename-format'] };
  }
  return out;
}

/** The set of files in use, by identity. */
export class InUseFiles {
  private readonly uses = new Map<string, FileUse[]>();

  add(id: FileIdentity, use: FileUse): void {
    const key = identityKey(id);
    const list = this.uses.get(key) ?? [];
    // One entry per guest and file: what the definition says wins, QEMU's open mode can only widen it.
    const same = list.findIndex((u) => u.domain === use.domain);
    if (same < 0) list.push(use);
    else {
      const old = list[same]!;
      const keep = old.role === 'open-file' && use.role !== 'open-file' ? use : old;
      list[same] = { ...keep, writable: old.writable || use.writable };
    }
    this.uses.set(key, list);
  }

  usersOf(id: FileIdentity): FileUse[] {
    return this.uses.get(identityKey(id)) ?? [];
  }

  get size(): number {
    return this.uses.size;
  }

  /** Builds the set from the guests' disks and their QEMU processes. */
  static async collect(disks: readonly ActiveDisk[], processes: readonly ActiveProcess[]): Promise<InUseFiles> {
    const set = new InUseFiles();
    for (const d of disks) {
      for (const [i, f] of (await diskFileChain(d.path, d.format)).entries()) {
        set.add(f.id, {
          domain: d.domain, disk: d.disk, path: f.path,
          role: i === 0 ? 'disk' : 'backing',
          // QEMU opens backing files read-only; a read-only disk is opened read-only.
          writable: i === 0 && !d.readonly,
        });
      }
    }
    for (const p of processes) {
      for (const f of await openFilesOf(p)) set.add(f.id, { domain: p.domain, path: f.path, role: 'open-file', writable: f.writable });
    }
    return set;
  }
}

/**
 * The regular files and block devices a guest's QEMU has open, with the mode each was opened
 * in. Only a process proven to be that guest's QEMU is read: its command line must carry the
 * guest's uuid (a reused pid belongs to someone else). Unreadable entries are skipped: the
 * definition's disks remain the answer for them.
 */
export async function openFilesOf(p: ActiveProcess): Promise<{ id: FileIdentity; path: string; writable: boolean }[]> {
  const proc = `/proc/${p.pid}`;
  const cmdline = await readFile(`${proc}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.split('\0').includes(p.uuid)) return [];
  const fds = await readdir(`${proc}/fd`).catch(() => [] as string[]);
  const out: { id: FileIdentity; path: string; writable: boolean }[] = [];
  for (const fd of fds) {
    const id = await fileIdentity(`${proc}/fd/${fd}`);
    if (!id) continue;
    const [path, fdinfo] = await Promise.all([
      readlink(`${proc}/fd/${fd}`).catch(() => `${proc}/fd/${fd}`),
      readFile(`${proc}/fdinfo/${fd}`, 'utf8').catch(() => ''),
    ]);
    const flags = /^flags:\s*([0-7]+)$/m.exec(fdinfo)?.[1];
    // Unknown flags count as writable: a refusal is the safe side.
    const writable = flags === undefined || (Number.parseInt(flags, 8) & OpenAccessModeMask) !== 0 /* O_RDONLY */;
    out.push({ id, path, writable });
  }
  return out;
}
