/**
 * `prepareGuestBoot`: what the manager and `virtkit run` do before starting a guest whose
 * definition says `boot: { loader: guest }`. The guest's first disk is opened with its
 * declared format, its bootloader configuration read (or the explicit `boot.kernel` and
 * `boot.initrd` paths used), and the chosen kernel and initrds copied into the run
 * directory, all in userspace through the guestfs readers: nothing is mounted, no root.
 * The result is the `bootFiles` of the QEMU command context.
 *
 * `planGuestBoot` makes the same choice without copying anything (`virtkit argv` shows the
 * `-kernel`/`-initrd`/`-append` a start would pass), and `removeBootFiles` deletes the copies
 * once QEMU has read them: QEMU loads the kernel and initrd into memory when it creates the
 * machine (a guest reset boots from that copy), so a run dir holds them only while it starts.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DomainDefinition, GuestBoot } from '../../conf/index.js';
import { openImage } from '../../storage/image/index.js';
import { VirtkitError } from '../../util/errors.js';
import type { Filesystem } from '../fs/index.js';
import { readPartitionTable } from '../partition/index.js';
import { bootInfoOf, locateFile, openFilesystems, type ScannedFilesystem } from './find.js';
import { selectEntry } from './select.js';

export interface BootFiles {
  readonly kernel: string;
  readonly initrd?: string;
  readonly cmdline?: string;
}

export interface PrepareOptions {
  /** Host paths of disks that name a volume (`pool/name`), as the manager resolves them. */
  readonly volumePaths?: Readonly<Record<string, string>>;
  /** Most bytes kernel and initrds may take together; default 512 MiB. */
  readonly maxBytes?: number;
}

export const DEFAULT_MAX_BOOT_BYTES = 512 * 1024 * 1024;

/** Where the extracted files go; `virtkit argv` shows the same paths. */
export function bootFilePaths(runDir: string): { dir: string; kernel: string; initrd: string } {
  const dir = join(runDir, 'boot');
  return { dir, kernel: join(dir, 'kernel'), initrd: join(dir, 'initrd') };
}

interface Source { fs: Filesystem; path: string; size: number; partition?: number }

function diskPath(def: DomainDefinition, options: PrepareOptions): { path: string; format: string } {
  const disk = def.disks[0];
  if (disk === undefined) {
    throw new VirtkitError('boot.no-entry', 'boot.loader guest reads the kernel from the guest\'s disk, but the definition has no disk', {});
  }
  if (disk.source !== undefined) return { path: disk.source, format: disk.format };
  const path = disk.volume === undefined ? undefined : options.volumePaths?.[disk.volume];
  if (path === undefined) throw new VirtkitError('volume.not-found', `disks[0].volume: no host path for volume ${disk.volume ?? ''}`, { volume: disk.volume });
  return { path, format: disk.format };
}

async function requireFile(filesystems: readonly ScannedFilesystem[], preferred: number | undefined, path: string, what: string): Promise<Source> {
  const found = await locateFile(filesystems, preferred, path);
  if (found === undefined) {
    throw new VirtkitError('fs.not-found', `${what} ${path} is not a file on the guest's disk (also tried with and without /boot)`, { path });
  }
  return found;
}

/** Copies `sources` one after the other into `dest`, refusing to write more than `budget.left` bytes. */
async function extract(sources: readonly Source[], dest: string, budget: { left: number }): Promise<void> {
  const out = createWriteStream(dest, { mode: 0o600 });
  const closed = new Promise<void>((resolve, reject) => {
    out.on('close', resolve);
    out.on('error', reject);
  });
  try {
    for (const src of sources) {
      if (src.size > budget.left) throw tooLarge(src.path, budget.left);
      const limit = new Transform({
        transform(chunk: Buffer, _enc, done): void {
          budget.left -= chunk.length;
          done(budget.left < 0 ? tooLarge(src.path, 0) : null, chunk);
        },
      });
      await pipeline(src.fs.createReadStream(src.path), limit, out, { end: false });
    }
  } finally {
    out.end();
    await closed;
  }
}

function tooLarge(path: string, left: number): VirtkitError {
  return new VirtkitError('fs.too-large', `${path}: the kernel and initrds exceed the boot files' size limit (${left} bytes were left)`, { path });
}

/**
 * Reads the guest's kernel and initrd into `runDir/boot/` and returns them with the
 * command line. Errors: `boot.no-entry` (no configuration, no such entry, no disk),
 * `fs.not-found` (an entry's kernel or initrd is missing), `fs.too-large`, and whatever
 * opening the image or reading its filesystems gives (`image.*`, `fs.corrupt`).
 */
export async function prepareGuestBoot(def: DomainDefinition, runDir: string, options: PrepareOptions = {}): Promise<BootFiles> {
  return withGuestDisk(def, options, (boot, filesystems) => extractChosen(boot, filesystems, runDir, options));
}

/** Opens the guest's disk and runs `fn` over its filesystems. */
async function withGuestDisk<T>(def: DomainDefinition, options: PrepareOptions, fn: (boot: GuestBoot, filesystems: readonly ScannedFilesystem[]) => Promise<T>): Promise<T> {
  const boot = def.boot;
  if (boot.loader !== 'guest') throw new VirtkitError('argument.invalid', `boot.loader is ${boot.loader}, not guest`);
  const { path, format } = diskPath(def, options);
  const disk = await openImage(path, { format });
  try {
    const table = await readPartitionTable(disk);
    const filesystems = await openFilesystems(disk, table);
    try {
      return await fn(boot, filesystems);
    } finally {
      for (const { fs } of filesystems) await fs.close();
    }
  } finally {
    await disk.close();
  }
}

/** Where in the guest the boot files come from: partition and path of the kernel and each initrd. */
export interface BootPlan extends BootFiles {
  readonly from: { readonly kernel: GuestFile; readonly initrds: readonly GuestFile[] };
}

export interface GuestFile {
  readonly partition?: number;
  readonly path: string;
  readonly size: number;
}

/**
 * What `prepareGuestBoot` would pass, read from the guest's disk the same way, without
 * copying anything: the run dir paths the files would get, the command line, and where in
 * the guest each file is.
 */
export async function planGuestBoot(def: DomainDefinition, runDir: string, options: PrepareOptions = {}): Promise<BootPlan> {
  return withGuestDisk(def, options, async (boot, filesystems) => {
    const chosen = await chooseSources(boot, filesystems);
    const paths = bootFilePaths(runDir);
    const where = (s: Source): GuestFile => ({ ...(s.partition === undefined ? {} : { partition: s.partition }), path: s.path, size: s.size });
    return {
      kernel: paths.kernel,
      ...(chosen.initrds.length > 0 ? { initrd: paths.initrd } : {}),
      ...(chosen.cmdline === undefined ? {} : { cmdline: chosen.cmdline }),
      from: { kernel: where(chosen.kernel), initrds: chosen.initrds.map(where) },
    };
  });
}

/** Deletes the copies `prepareGuestBoot` made in `runDir` (nothing there is an error). */
export async function removeBootFiles(runDir: string): Promise<void> {
  await rm(bootFilePaths(runDir).dir, { recursive: true, force: true });
}

async function chooseSources(boot: GuestBoot, filesystems: readonly ScannedFilesystem[]): Promise<{ kernel: Source; initrds: Source[]; cmdline: string | undefined }> {
  let kernel: Source;
  let initrds: Source[];
  let cmdline: string | undefined;
  if (boot.kernel !== undefined) {
    const k = await requireFile(filesystems, undefined, boot.kernel, 'boot.kernel');
    kernel = k;
    initrds = boot.initrd === undefined ? [] : [await requireFile(filesystems, k.partition, boot.initrd, 'boot.initrd')];
    cmdline = boot.cmdline;
  } else {
    const entry = selectEntry(await bootInfoOf(filesystems), boot.entry);
    const k = await requireFile(filesystems, entry.partition, entry.kernel!, `entry ${entry.index} "${entry.title}": kernel`);
    kernel = k;
    initrds = [];
    for (const p of entry.initrds) initrds.push(await requireFile(filesystems, k.partition, p, `entry ${entry.index} "${entry.title}": initrd`));
    cmdline = boot.cmdline ?? entry.cmdline;
  }
  return { kernel, initrds, cmdline };
}

async function extractChosen(boot: GuestBoot, filesystems: readonly ScannedFilesystem[], runDir: string, options: PrepareOptions): Promise<BootFiles> {
  const { kernel, initrds, cmdline } = await chooseSources(boot, filesystems);
  const paths = bootFilePaths(runDir);
  await rm(paths.dir, { recursive: true, force: true });
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const budget = { left: options.maxBytes ?? DEFAULT_MAX_BOOT_BYTES };
  await extract([kernel], paths.kernel, budget);
  if (initrds.length > 0) await extract(initrds, paths.initrd, budget);
  return { kernel: paths.kernel, ...(initrds.length > 0 ? { initrd: paths.initrd } : {}), ...(cmdline === undefined ? {} : { cmdline }) };
}
