/**
 * Turns a distribution kernel (a bzImage) into the uncompressed ELF vmlinux inside it, when
 * that ELF can be booted directly through the PVH entry point (CONFIG_PVH, which Debian's
 * kernels have). QEMU loads such an ELF itself and jumps straight into the kernel, skipping
 * the bzImage's decompressor: under TCG, unpacking an xz-compressed kernel in emulated code
 * takes seconds, on the host well under one.
 *
 * The bzImage setup header (Documentation/x86/boot.rst) locates the payload: `setup_sects`
 * at 0x1f1, "HdrS" at 0x202, protocol version at 0x206, `payload_offset`/`payload_length` at
 * 0x248/0x24c (protocol 2.08+), relative to the protected-mode code after the setup sectors.
 */
import { spawn } from 'node:child_process';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';

const gunzipAsync = promisify(gunzip);

export type KernelPayloadFormat = 'gzip' | 'xz' | 'zstd' | 'other';

export interface KernelPayload {
  format: KernelPayloadFormat;
  bytes: Buffer;
}

const MAGIC = {
  gzip: Buffer.from([0x1f, 0x8b]),
  xz: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
  zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
} as const;

/** The compressed kernel inside a bzImage, or undefined if the image is not a bzImage we understand. */
export function bzImagePayload(image: Buffer): KernelPayload | undefined {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  if (image.readUInt16LE(0x206) < 0x208) return undefined; // no payload fields before protocol 2.08
  const setupSects = image[0x1f1] || 4; // 0 means 4, for very old images
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (length === 0 || start + length > image.length) return undefined;
  const bytes = image.subarray(start, start + length);
  const format = (Object.keys(MAGIC) as Array<keyof typeof MAGIC>).find((f) => bytes.subarray(0, MAGIC[f].length).equals(MAGIC[f]));
  return { format: format ?? 'other', bytes };
}

const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** True for a 64-bit little-endian ELF carrying the Xen PVH entry note QEMU boots from. */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    const offset = Number(elf.readBigUInt64LE(ph + 8));
    const end = Math.min(elf.length, offset + Number(elf.readBigUInt64LE(ph + 32)));
    for (let at = offset; at + 12 <= end;) {
      const nameSize = elf.readUInt32LE(at);
      const descSize = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = elf.toString('latin1', at + 12, at + 12 + Math.max(0, nameSize - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      at += 12 + Math.ceil(nameSize / 4) * 4 + Math.ceil(descSize / 4) * 4;
    }
  }
  return false;
}

/** Runs a decompressor (xz, zstd) over `input`, collecting its output. */
function decompressWithTool(tool: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Bounded like every helper (docs/reliability.md): a kernel unpacks in seconds.
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined); // reported through the exit status instead
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${tool} could not unpack the kernel: ${Buffer.concat(err).toString().trim()}`));
    });
    child.stdin.end(input);
  });
}

async function decompress(payload: KernelPayload): Promise<Buffer | undefined> {
  // The kernel build appends the uncompressed size (4 bytes) after the compressed stream.
  const stream = payload.bytes.subarray(0, Math.max(0, payload.bytes.length - 4));
  switch (payload.format) {
    case 'gzip':
      return gunzipAsync(stream);
    case 'xz':
      return decompressWithTool('xz', ['-d', '-c'], stream);
    case 'zstd':
      return decompressWithTool('zstd', ['-d', '-c', '-q'], stream);
    case 'other':
      return undefined;
  }
}

/**
 * The PVH-bootable vmlinux inside `image`, or undefined when the image has none (not a
 * bzImage, a compression we cannot unpack here, or a kernel built without CONFIG_PVH); the
 * caller then boots the bzImage as it is.
 */
export async function extractPvhKernel(image: Buffer): Promise<Buffer | undefined> {
  const payload = bzImagePayload(image);
  if (payload === undefined) return undefined;
  let elf: Buffer | undefined;
  try {
    elf = await decompress(payload);
  } catch {
    // No xz/zstd on this host, or a payload it cannot read: the bzImage still boots, only slower.
    return undefined;
  }
  return elf !== undefined && hasPvhEntry(elf) ? elf : undefined;
}
