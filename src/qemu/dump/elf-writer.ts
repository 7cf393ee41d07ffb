/**
 * Writes a small ELF64 core the way QEMU's `dump-guest-memory` lays one out: the ELF header,
 * one PT_NOTE with an NT_PRSTATUS per CPU (and VMCOREINFO when given), then one PT_LOAD per
 * memory range. The fake driver's dumps and the reader's tests use it.
 */
export interface ElfCoreSpec {
  /** Per CPU: x86_64 registers by name (see core-file.ts for the order); missing ones are 0. */
  cpus: Record<string, bigint>[];
  vmcoreinfo?: string;
  ranges: { start: number; data: Buffer }[];
}

const RegOrder = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs'];

function note(name: string, type: number, desc: Buffer): Buffer {
  const nameBuf = Buffer.from(`${name}\0`, 'latin1');
  const pad = (n: number): number => (n + 3) & ~3;
  const out = Buffer.alloc(12 + pad(nameBuf.length) + pad(desc.length));
  out.writeUInt32LE(nameBuf.length, 0);
  out.writeUInt32LE(desc.length, 4);
  out.writeUInt32LE(type, 8);
  nameBuf.copy(out, 12);
  desc.copy(out, 12 + pad(nameBuf.length));
  return out;
}

export function buildElfCore(spec: ElfCoreSpec): Buffer {
  const notes: Buffer[] = spec.cpus.map((regs, i) => {
    const desc = Buffer.alloc(336);
    desc.writeUInt32LE(i + 1, 32); // pr_pid: QEMU numbers CPUs from 1
    RegOrder.forEach((r, k) => desc.writeBigUInt64LE(regs[r] ?? 0n, 112 + k * 8));
    return note('CORE', 1, desc);
  });
  if (spec.vmcoreinfo !== undefined) notes.push(note('VMCOREINFO', 0, Buffer.from(spec.vmcoreinfo, 'latin1')));
  const noteData = Buffer.concat(notes);
  const phnum = 1 + spec.ranges.length;
  const ehdr = Buffer.alloc(64);
  ehdr.writeUInt32BE(0x7f454c46, 0);
  ehdr[4] = 2; // ELFCLASS64
  ehdr[5] = 1; // little-endian
  ehdr[6] = 1;
  ehdr.writeUInt16LE(4, 16); // ET_CORE
  ehdr.writeUInt16LE(62, 18); // x86_64
  ehdr.writeUInt32LE(1, 20);
  ehdr.writeBigUInt64LE(64n, 32); // e_phoff
  ehdr.writeUInt16LE(64, 52);
  ehdr.writeUInt16LE(56, 54);
  ehdr.writeUInt16LE(phnum, 56);
  const phdrs = Buffer.alloc(56 * phnum);
  let offset = 64 + phdrs.length;
  phdrs.writeUInt32LE(4, 0);
  phdrs.writeBigUInt64LE(BigInt(offset), 8);
  phdrs.writeBigUInt64LE(BigInt(noteData.length), 32);
  phdrs.writeBigUInt64LE(BigInt(noteData.length), 40);
  offset += noteData.length;
  spec.ranges.forEach((r, i) => {
    const at = 56 * (i + 1);
    phdrs.writeUInt32LE(1, at);
    phdrs.writeUInt32LE(7, at + 4);
    phdrs.writeBigUInt64LE(BigInt(offset), at + 8);
    phdrs.writeBigUInt64LE(BigInt(r.start), at + 24);
    phdrs.writeBigUInt64LE(BigInt(r.data.length), at + 32);
    phdrs.writeBigUInt64LE(BigInt(r.data.length), at + 40);
    offset += r.data.length;
  });
  return Buffer.concat([ehdr, phdrs, noteData, ...spec.ranges.map((r) => r.data)]);
}
