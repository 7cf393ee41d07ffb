/** Shared by the image tests: make images with the real qemu-img / qemu-io and compare our reads with QEMU's. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { openImage } from '../../src/storage/image/index.js';

export function qemuImg(...args: string[]): string {
  try {
    return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`qemu-img ${args.join(' ')}: ${String((err as { stderr?: unknown }).stderr)}`, { cause: err });
  }
}

/** Run qemu-io commands (`write -P 0xab 0 64k`, `write -z ...`) against an image. */
export function qemuIo(file: string, format: string, ...commands: string[]): void {
  const args = ['-f', format];
  for (const c of commands) args.push('-c', c);
  execFileSync('qemu-io', [...args, file], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `virtkit-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** QEMU's view of the guest disk: `qemu-img convert -O raw`. */
export function qemuRaw(path: string, format: string, dir: string): Buffer {
  const out = join(dir, `expected-${Math.random().toString(36).slice(2)}.raw`);
  qemuImg('convert', '-f', format, '-O', 'raw', path, out);
  const data = readFileSync(out);
  rmSync(out);
  return data;
}

/** Read the image through the native layer, whole and in odd-sized pieces, and compare with QEMU's bytes. */
export async function expectSameAsQemu(path: string, format: string, dir: string): Promise<void> {
  const expected = qemuRaw(path, format, dir);
  const img = await openImage(path, { format });
  try {
    expect(img.size).toBe(expected.length);
    const whole = Buffer.from(await img.read(0, img.size));
    expect(whole.equals(expected), `whole read of ${path}`).toBe(true);
    // readInto, into a reused buffer that starts out dirty, in 1 MiB steps.
    const step = Buffer.alloc(Math.min(img.size, 1024 * 1024), 0xee);
    for (let off = 0; off < img.size; off += step.length) {
      const target = step.subarray(0, Math.min(step.length, img.size - off));
      await img.readInto!(off, target);
      if (!target.equals(expected.subarray(off, off + target.length))) throw new Error(`readInto at ${off} from ${path} differs`);
      target.fill(0xee);
    }
    // Unaligned pieces that straddle clusters and subclusters.
    let seed = 7;
    for (let i = 0; i < 40; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const off = seed % img.size;
      const len = Math.min(img.size - off, 1 + (seed % 200_000));
      const got = Buffer.from(await img.read(off, len));
      if (!got.equals(expected.subarray(off, off + len))) {
        throw new Error(`read of ${len} bytes at ${off} from ${path} differs from qemu-img`);
      }
    }
    // The allocation map agrees with the data: zero extents read as zeros.
    for (const e of await img.blockStatus(0, img.size)) {
      if (e.zero) expect(expected.subarray(e.offset, e.offset + e.length).every((b) => b === 0)).toBe(true);
    }
  } finally {
    await img.close();
  }
}
