import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bzImagePayload, extractPvhKernel, hasPvhEntry } from './vmlinux.js';

/** A minimal ELF64: header, one PT_NOTE program header, one note (name, type). */
function elfWithNote(noteName: string, noteType: number): Buffer {
  const name = Buffer.from(noteName + '\0');
  const namePadded = Buffer.concat([name, Buffer.alloc((4 - (name.length % 4)) % 4)]);
  const note = Buffer.alloc(12);
  note.writeUInt32LE(name.length, 0);
  note.writeUInt32LE(4, 4);
  note.writeUInt32LE(noteType, 8);
  const noteBytes = Buffer.concat([note, namePadded, Buffer.from([0, 0, 0, 1])]);
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // 64-bit
  header[5] = 1; // little-endian
  header.writeBigUInt64LE(64n, 0x20); // e_phoff
  header.writeUInt16LE(56, 0x36); // e_phentsize
  header.writeUInt16LE(1, 0x38); // e_phnum
  const ph = Buffer.alloc(56);
  ph.writeUInt32LE(4, 0); // PT_NOTE
  ph.writeBigUInt64LE(BigInt(64 + 56), 8); // p_offset
  ph.writeBigUInt64LE(BigInt(noteBytes.length), 32); // p_filesz
  return Buffer.concat([header, ph, noteBytes]);
}

/** A bzImage-shaped buffer: one setup sector plus the boot sector, then the payload and its size suffix. */
function fakeBzImage(payload: Buffer, uncompressedSize: number): Buffer {
  const setup = Buffer.alloc(2 * 512);
  setup[0x1f1] = 1;
  setup.write('HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(0x20f, 0x206);
  setup.writeUInt32LE(16, 0x248); // payload_offset, after some decompressor code
  setup.writeUInt32LE(payload.length + 4, 0x24c);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(uncompressedSize, 0);
  return Buffer.concat([setup, Buffer.alloc(16, 0x90), payload, size, Buffer.alloc(64)]);
}

const pvhElf = elfWithNote('Xen', 18);

describe('vmlinux extraction', () => {
  it('recognizes the PVH entry note', () => {
    expect(hasPvhEntry(pvhElf)).toBe(true);
    expect(hasPvhEntry(elfWithNote('Xen', 17))).toBe(false);
    expect(hasPvhEntry(elfWithNote('GNU', 18))).toBe(false);
    expect(hasPvhEntry(Buffer.from('not an elf at all, just some text padding it out to 64 bytes......'))).toBe(false);
  });

  it('unpacks a gzip payload', async () => {
    const image = fakeBzImage(gzipSync(pvhElf), pvhElf.length);
    expect(bzImagePayload(image)?.format).toBe('gzip');
    expect((await extractPvhKernel(image))?.equals(pvhElf)).toBe(true);
  });

  it('unpacks an xz payload with the kernel build\'s size suffix', async () => {
    const xz = execFileSync('xz', ['-z', '-c', '--check=crc32'], { input: pvhElf });
    const image = fakeBzImage(xz, pvhElf.length);
    expect(bzImagePayload(image)?.format).toBe('xz');
    expect((await extractPvhKernel(image))?.equals(pvhElf)).toBe(true);
  });

  it('keeps the bzImage when there is no PVH kernel inside', async () => {
    expect(await extractPvhKernel(fakeBzImage(gzipSync(elfWithNote('Xen', 1)), 100))).toBeUndefined();
    expect(await extractPvhKernel(fakeBzImage(Buffer.from('BZh91AY&SY'), 100))).toBeUndefined(); // bzip2: not unpacked here
    expect(await extractPvhKernel(fakeBzImage(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]), 100))).toBeUndefined(); // corrupt xz
    expect(await extractPvhKernel(Buffer.alloc(4096))).toBeUndefined(); // not a bzImage
  });
});
