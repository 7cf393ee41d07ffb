/**
 * Builds ext images at test time without root: a source tree on the host, then
 * `mke2fs -d` (which copies names, contents, modes, ownership, holes and special files).
 * The reference listing and contents come from debugfs over the same image.
 */
import { execFile } from 'node:child_process';
import { chown, mkdir, mkdtemp, symlink, link, truncate, writeFile, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `virtkit-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Deterministic pseudo-random bytes (a xorshift stream), so failures reproduce. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function sparseFile(path: string, size: number): Promise<void> {
  await writeFile(path, '');
  await truncate(path, size);
}

async function writeAt(path: string, offset: number, data: Uint8Array): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

export interface TreeOptions {
  /** Files in /many (an htree directory when large). */
  readonly manyFiles: number;
  /** Add a file whose data sits beyond the double-indirect range of 1 KiB blocks (70 MiB, sparse). */
  readonly tripleIndirect: boolean;
}

/** The source tree every ext variant is built from. */
export async function buildSourceTree(dir: string, opts: TreeOptions): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(join(dir, 'etc/os-release'), 'NAME="Test Linux"\nVERSION_ID="1.2"\nID=testlinux\nPRETTY_NAME="Test Linux 1.2"\n');
  await writeFile(join(dir, 'etc/hostname'), 'testhost\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'small.txt'), 'hello, guest\n');
  await writeFile(join(dir, 'tiny'), 'x');
  await writeFile(join(dir, 'medium.bin'), pseudoRandomBytes(100_000, 1));
  await writeFile(join(dir, 'large.bin'), pseudoRandomBytes(3 * 1024 * 1024 + 17, 2));
  // Sparse: holes at the start, between and after the data.
  await sparseFile(join(dir, 'sparse.bin'), 10 * 1024 * 1024);
  await writeAt(join(dir, 'sparse.bin'), 5 * 1024 * 1024 + 100, Buffer.from('middle of the hole'));
  await writeAt(join(dir, 'sparse.bin'), 10 * 1024 * 1024 - 4, Buffer.from('end!'));
  if (opts.tripleIndirect) {
    await sparseFile(join(dir, 'huge-sparse.bin'), 70 * 1024 * 1024);
    await writeAt(join(dir, 'huge-sparse.bin'), 69 * 1024 * 1024, pseudoRandomBytes(5000, 3));
  }
  await writeFile(join(dir, 'owned'), 'uid and gid with high bits\n');
  await chown(join(dir, 'owned'), 70000, 70001);
  await writeFile(join(dir, 'setuid'), '#!/bin/sh\n', { mode: 0o4755 });
  await writeFile(join(dir, 'private'), 'secret\n', { mode: 0o600 });
  await link(join(dir, 'small.txt'), join(dir, 'hardlink.txt'));
  await symlink('small.txt', join(dir, 'link-short'));
  await symlink(`/${'long-directory-name/'.repeat(5)}target-file`, join(dir, 'link-long'));
  await symlink('/etc/os-release', join(dir, 'link-abs'));
  await symlink('does-not-exist', join(dir, 'link-dangling'));
  await symlink('loop-b', join(dir, 'loop-a'));
  await symlink('loop-a', join(dir, 'loop-b'));
  await symlink('deep/d1/d2', join(dir, 'link-dir'));
  await run('mkfifo', [join(dir, 'fifo')]);
  let deep = join(dir, 'deep');
  for (let i = 1; i <= 30; i++) {
    deep = join(deep, `d${i}`);
  }
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'bottom.txt'), 'at the bottom\n');
  await symlink('../../../../small-rel', join(dir, 'deep/d1/d2/d3/up'));
  await mkdir(join(dir, 'many'));
  for (let i = 0; i < opts.manyFiles; i++) {
    await writeFile(join(dir, 'many', `file-${String(i).padStart(5, '0')}-with-a-longer-name`), `${i}\n`);
  }
  await mkdir(join(dir, 'bin'));
  await writeFile(join(dir, 'bin/busybox'), elfHeader());
  await symlink('busybox', join(dir, 'bin/sh'));
  await mkdir(join(dir, 'boot/grub'), { recursive: true });
  await writeFile(join(dir, 'boot/vmlinuz-6.1.0-test'), pseudoRandomBytes(4096, 4));
  await writeFile(join(dir, 'boot/initrd.img-6.1.0-test'), pseudoRandomBytes(2048, 5));
  await writeFile(join(dir, 'boot/grub/grub.cfg'), "menuentry 'Test' {\n  linux /boot/vmlinuz-6.1.0-test root=/dev/vda1\n}\n");
}

/** The first 64 bytes of an x86-64 ELF executable. */
export function elfHeader(): Buffer {
  const b = Buffer.alloc(64);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  b.writeUInt16LE(2, 0x10);
  b.writeUInt16LE(0x3e, 0x12);
  return b;
}

export interface ExtVariant {
  readonly name: string;
  readonly type: 'ext2' | 'ext3' | 'ext4';
  readonly blockSize: 1024 | 4096 | 65536;
  readonly features?: string;
  readonly inodeSize?: 128 | 256;
}

export async function buildExtImage(path: string, srcDir: string, v: ExtVariant, sizeMiB: number): Promise<void> {
  const args = ['-q', '-F', '-t', v.type, '-b', String(v.blockSize), '-L', v.name.slice(0, 16),
    '-U', '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', '-E', 'root_owner=0:0', '-d', srcDir];
  if (v.features !== undefined) args.push('-O', v.features);
  if (v.inodeSize !== undefined) args.push('-I', String(v.inodeSize));
  args.push(path, `${sizeMiB}M`);
  await run('mke2fs', args);
  // mke2fs -d writes linear directories; e2fsck -D rebuilds large ones as htree (dir_index).
  await run('e2fsck', ['-fyD', path]).catch((err: { code?: number }) => {
    if (err.code !== 1) throw err; // 1: "errors corrected", which -D always reports
  });
}

/** Runs many debugfs requests in one process and splits the output per request. */
export async function debugfsBatch(image: string, commands: readonly string[]): Promise<string[]> {
  const child = execFile('debugfs', ['-f', '-', image], { maxBuffer: 1 << 30, encoding: 'latin1' });
  const out = new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: string) => { text += d; });
    child.on('error', reject);
    child.on('close', () => { resolve(text); });
  });
  child.stdin!.end(commands.join('\n') + '\n');
  const text = await out;
  const parts = text.split(/^debugfs: /m).slice(1);
  return parts.map((p) => p.slice(p.indexOf('\n') + 1));
}

/**
 * An in-memory BlockDevice over a base image with byte patches on top, so a fuzz loop can
 * mutate a copy-on-write view without copying the image each iteration. Records the ranges
 * read when `trace` is set.
 */
export class PatchedMemoryDevice {
  readonly format = 'raw';
  readonly size: number;
  readonly patches = new Map<number, number>();
  trace: { offset: number; length: number; phase: string }[] | undefined;
  /** Tags trace entries, so a caller can tell metadata walks from file reads. */
  phase = '';

  constructor(private readonly base: Uint8Array) {
    this.size = base.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      const { VirtkitError } = await import('../../src/util/errors.js');
      throw new VirtkitError('image.io', `read of ${length} bytes at ${offset} is outside the device`, { offset, length });
    }
    this.trace?.push({ offset, length, phase: this.phase });
    const out = new Uint8Array(length);
    out.set(this.base.subarray(offset, offset + length));
    for (const [at, value] of this.patches) {
      if (at >= offset && at < offset + length) out[at - offset] = value;
    }
    return out;
  }

  async blockStatus(offset: number, length: number): Promise<{ offset: number; length: number; zero: boolean; allocated: boolean }[]> {
    return [{ offset, length, zero: false, allocated: true }];
  }

  async close(): Promise<void> {}

  /** The base image with the patches applied. */
  materialize(): Buffer {
    const out = Buffer.from(this.base);
    for (const [at, value] of this.patches) out[at] = value;
    return out;
  }
}
