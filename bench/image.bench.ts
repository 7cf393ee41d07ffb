/**
 * Sequential read throughput of a 1 GiB qcow2 (half data clusters, half zero clusters), warm
 * cache, in the same run:
 *   - virtkit's native block layer, reading every byte in 2 MiB chunks into one reused buffer
 *     (`readInto`, as a copy or an export does), and with `read` (a fresh buffer per chunk);
 *   - `qemu-img convert` of the same image to a null target (null-co://, nothing written);
 *   - plain reads of the same guest bytes from a raw file (the page cache's own speed).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readInto } from '../src/storage/block/index.js';
import { openImage } from '../src/storage/image/index.js';
import { median, ratioLine, timeMs } from './stats.js';

const SIZE = 1024 * 1024 * 1024;
const CHUNK = 2 * 1024 * 1024;
const RUNS = 5;
const GiB = 1024 * 1024 * 1024;

async function readNative(path: string, mode: 'readInto' | 'read'): Promise<void> {
  const img = await openImage(path, { format: 'qcow2' });
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (let off = 0; off < img.size; off += CHUNK) {
      if (mode === 'readInto') await readInto(img, off, buf.subarray(0, Math.min(CHUNK, img.size - off)));
      else await img.read(off, Math.min(CHUNK, img.size - off));
    }
  } finally {
    await img.close();
  }
}

async function readPlain(path: string): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (let off = 0; off < SIZE; off += CHUNK) await fh.read(buf, 0, CHUNK, off);
  } finally {
    await fh.close();
  }
}

function qemuImgToNull(path: string): void {
  execFileSync('qemu-img', ['convert', '-n', '-f', 'qcow2', '--target-image-opts', path, `driver=null-co,size=${SIZE}`]);
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-bench-image-'));
  try {
    const qcow2 = join(dir, 'half-zero.qcow2');
    const raw = join(dir, 'half-zero.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, String(SIZE)]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0xab 0 ${SIZE / 2}`, '-c', `write -z ${SIZE / 2} ${SIZE / 2}`, qcow2], { stdio: 'ignore' });
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw]);

    // Warm the page cache for all three, then alternate the measurements.
    await readNative(qcow2, 'readInto');
    qemuImgToNull(qcow2);
    await readPlain(raw);
    const native: number[] = [];
    const nativeAlloc: number[] = [];
    const qemu: number[] = [];
    const plain: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      native.push(await timeMs(() => readNative(qcow2, 'readInto')));
      qemu.push(await timeMs(async () => qemuImgToNull(qcow2)));
      plain.push(await timeMs(() => readPlain(raw)));
      nativeAlloc.push(await timeMs(() => readNative(qcow2, 'read')));
    }
    const gibps = (ms: number): number => SIZE / GiB / (ms / 1000);
    const ours = gibps(median(native));
    const qemuRate = gibps(median(qemu));
    console.log(ratioLine('qcow2 1 GiB sequential read (half zero clusters)', ours, qemuRate, 'GiB/s', 'qemu-img convert -> null-co'));
    console.log(ratioLine('same, read() with a fresh buffer per chunk', gibps(median(nativeAlloc)), qemuRate, 'GiB/s', 'qemu-img convert -> null-co'));
    console.log(ratioLine('same bytes vs plain raw file reads', ours, gibps(median(plain)), 'GiB/s', 'plain read'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
