/**
 * Reads a guest memory dump written by QEMU's `dump-guest-memory`: an ELF core (ELFCLASS64 or
 * ELFCLASS32, little-endian) or a kdump-compressed file (makedumpfile's "KDUMP   " format).
 * It reports the memory ranges, each CPU's registers (NT_PRSTATUS), and what the guest
 * kernel's VMCOREINFO note says (OSRELEASE...) when the guest published one; otherwise the
 * kernel's `Linux version` banner found in the dumped memory.
 *
 * The file is guest-controlled data: every count, offset and size is checked against the file
 * and against fixed bounds before anything is read, reads are bounded, and a malformed file is
 * a typed `dump.invalid` naming the offset, never a crash or a huge allocation.
 */
import { open } from 'node:fs/promises';
import { VirtkitError } from '../../util/errors.js';

/** Random access to the dump's bytes (a file, or a buffer in tests). */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes at `offset` (fewer at the end). */
  read(offset: number, length: number): Promise<Buffer>;
}

export interface MemoryRange {
  /** Guest-physical start address. */
  start: number;
  /** Bytes of guest memory in the range. */
  size: number;
}

export interface CpuState {
  cpu: number;
  /** Register name to value, hex with 0x. */
  registers: Record<string, string>;
}

export interface DumpInfo {
  format: 'elf64' | 'elf32' | 'kdump';
  machine: string;
  ranges: MemoryRange[];
  /** Total guest memory in the ranges. */
  memoryBytes: number;
  cpus: CpuState[];
  /** VMCOREINFO as key=value pairs, when the guest kernel published it. */
  vmcoreinfo?: Record<string, string>;
  kernel?: { release?: string; banner?: string; source: 'vmcoreinfo' | 'banner' };
  /** kdump only: block (page) size and counts from the header. */
  kdump?: { blockSize: number; maxMapnr: number; dumpedPages: number; cpus: number; uname: { release: string; machine: string } };
}

const MaxProgramHeaders = 65_536;
const MaxNotesBytes = 16 * 1024 * 1024;
const MaxNotes = 4096;
const MaxVmcoreinfoBytes = 64 * 1024;
const MaxRanges = 65_536;
const MaxBitmapBytes = 64 * 1024 * 1024;
/** The banner is searched in this much of the dump at most (the kernel image sits low in RAM). */
const BannerScanBytes = 512 * 1024 * 1024;
const ScanChunk = 4 * 1024 * 1024;

function invalid(message: string, data: Record<string, unknown> = {}): VirtkitError {
  return new VirtkitError('dump.invalid', message, data);
}

/** A number from a u64 field, refused past 2^53 (no file or address a dump-info reader meets is that large). */
function u64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${what} is too large (${v})`, { field: what });
  return Number(v);
}

async function readExact(src: ByteSource, offset: number, length: number, what: string): Promise<Buffer> {
  if (offset < 0 || length < 0 || offset + length > src.size) {
    throw invalid(`${what} (${length} bytes at offset ${offset}) lies outside the file (${src.size} bytes)`, { offset, length, what });
  }
  const buf = await src.read(offset, length);
  if (buf.length < length) throw invalid(`${what}: file ends at offset ${offset + buf.length}`, { offset, what });
  return buf;
}

const Machines: Record<number, string> = { 3: 'i386', 62: 'x86_64', 183: 'aarch64', 243: 'riscv', 21: 'ppc64', 22: 's390' };

const X86_64Regs = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs'];
const I386Regs = ['ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp', 'eax', 'ds', 'es', 'fs', 'gs', 'orig_eax', 'eip', 'cs', 'eflags', 'esp', 'ss'];

interface Note {
  name: string;
  type: number;
  desc: Buffer;
}

/** ELF notes (4-byte aligned name and descriptor, as QEMU and Linux write them). */
export function parseNotes(buf: Buffer, baseOffset = 0): Note[] {
  const notes: Note[] = [];
  let at = 0;
  while (at + 12 <= buf.length) {
    if (notes.length >= MaxNotes) throw invalid(`more than ${MaxNotes} ELF notes`, { offset: baseOffset + at });
    const namesz = buf.readUInt32LE(at);
    const descsz = buf.readUInt32LE(at + 4);
    const type = buf.readUInt32LE(at + 8);
    const nameAt = at + 12;
    const descAt = nameAt + align4(namesz);
    const end = descAt + align4(descsz);
    if (namesz === 0 && descsz === 0 && type === 0) break; // padding after the last note
    if (end > buf.length || namesz > 256) throw invalid(`ELF note at offset ${baseOffset + at} runs past its segment`, { offset: baseOffset + at });
    const name = buf.subarray(nameAt, nameAt + namesz).toString('latin1').replace(/\0+$/, '');
    notes.push({ name, type, desc: buf.subarray(descAt, descAt + descsz) });
    at = end;
  }
  return notes;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** The CPUs' registers (NT_PRSTATUS notes, in CPU order) and VMCOREINFO from a list of notes. */
function fromNotes(notes: Note[], machine: string): { cpus: CpuState[]; vmcoreinfo?: Record<string, string> } {
  const cpus: CpuState[] = [];
  let vmcoreinfo: Record<string, string> | undefined;
  for (const note of notes) {
    if (note.name === 'CORE' && note.type === 1) {
      const registers: Record<string, string> = {};
      if (machine === 'x86_64' && note.desc.length >= 112 + X86_64Regs.length * 8) {
        X86_64Regs.forEach((r, i) => { registers[r] = hex(note.desc.readBigUInt64LE(112 + i * 8)); });
      } else if (machine === 'i386' && note.desc.length >= 72 + I386Regs.length * 4) {
        I386Regs.forEach((r, i) => { registers[r] = hex(note.desc.readUInt32LE(72 + i * 4)); });
      }
      cpus.push({ cpu: cpus.length, registers });
    } else if (note.name === 'VMCOREINFO' && vmcoreinfo === undefined) {
      vmcoreinfo = parseVmcoreinfo(note.desc.subarray(0, MaxVmcoreinfoBytes));
    }
  }
  return { cpus, ...(vmcoreinfo ? { vmcoreinfo } : {}) };
}

/** `KEY=value` lines; keys are upper-case words with (), _ and digits, as the kernel writes them. */
export function parseVmcoreinfo(desc: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of desc.toString('latin1').split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0 || eq > 128) continue;
    const key = line.slice(0, eq);
    if (!/^[A-Za-z0-9_().]+$/.test(key) || key in out) continue;
    out[key] = line.slice(eq + 1).replace(/\0.*$/s, '').slice(0, 512);
  }
  return out;
}

async function readElf(src: ByteSource, ident: Buffer): Promise<DumpInfo> {
  const is64 = ident[4] === 2;
  if (ident[4] !== 1 && ident[4] !== 2) throw invalid(`ELF class ${ident[4]} is neither 32- nor 64-bit`, { offset: 4 });
  if (ident[5] !== 1) throw invalid('only little-endian ELF dumps are read', { offset: 5 });
  const ehsize = is64 ? 64 : 52;
  const eh = await readExact(src, 0, ehsize, 'ELF header');
  const type = eh.readUInt16LE(16);
  if (type !== 4) throw invalid(`ELF type ${type} is not a core file (4)`, { offset: 16 });
  const machineNo = eh.readUInt16LE(18);
  const machine = Machines[machineNo] ?? `elf-machine-${machineNo}`;
  const phoff = is64 ? u64(eh, 32, 'e_phoff') : eh.readUInt32LE(28);
  const shoff = is64 ? u64(eh, 40, 'e_shoff') : eh.readUInt32LE(32);
  const phentsize = eh.readUInt16LE(is64 ? 54 : 42);
  let phnum = eh.readUInt16LE(is64 ? 56 : 44);
  const wantPhent = is64 ? 56 : 32;
  if (phentsize !== wantPhent) throw invalid(`program header size ${phentsize}, expected ${wantPhent}`, { offset: is64 ? 54 : 42 });
  if (phnum === 0xffff) {
    // PN_XNUM: the real count is section header 0's sh_info (QEMU does this past 65534 ranges)
    const sh = await readExact(src, shoff, is64 ? 64 : 40, 'section header 0');
    phnum = sh.readUInt32LE(is64 ? 44 : 28);
  }
  if (phnum > MaxProgramHeaders) throw invalid(`${phnum} program headers (at most ${MaxProgramHeaders} are read)`, { phnum });
  const ph = await readExact(src, phoff, phnum * wantPhent, 'program headers');
  const ranges: MemoryRange[] = [];
  let notesBuf: Buffer[] = [];
  let notesBytes = 0;
  for (let i = 0; i < phnum; i++) {
    const at = i * wantPhent;
    const pType = ph.readUInt32LE(at);
    const offset = is64 ? u64(ph, at + 8, 'p_offset') : ph.readUInt32LE(at + 4);
    const paddr = is64 ? u64(ph, at + 24, 'p_paddr') : ph.readUInt32LE(at + 12);
    const filesz = is64 ? u64(ph, at + 32, 'p_filesz') : ph.readUInt32LE(at + 16);
    const memsz = is64 ? u64(ph, at + 40, 'p_memsz') : ph.readUInt32LE(at + 20);
    if (pType === 1) {
      if (offset + filesz > src.size) throw invalid(`PT_LOAD ${i} (${filesz} bytes at ${offset}) lies past the end of the file`, { offset: phoff + at });
      if (ranges.length < MaxRanges) ranges.push({ start: paddr, size: memsz });
    } else if (pType === 4) {
      if (notesBytes + filesz > MaxNotesBytes) throw invalid(`PT_NOTE segments larger than ${MaxNotesBytes} bytes`, { offset: phoff + at });
      notesBytes += filesz;
      notesBuf.push(await readExact(src, offset, filesz, `PT_NOTE ${i}`));
    }
  }
  const notes = notesBuf.flatMap((b) => parseNotes(b));
  notesBuf = [];
  const { cpus, vmcoreinfo } = fromNotes(notes, machine);
  const info: DumpInfo = {
    format: is64 ? 'elf64' : 'elf32', machine, ranges, memoryBytes: ranges.reduce((a, r) => a + r.size, 0), cpus,
    ...(vmcoreinfo ? { vmcoreinfo } : {}),
  };
  return withKernel(info, src, ph, phnum, is64);
}

/** The kernel release: VMCOREINFO's OSRELEASE, else the `Linux version` banner found in the dumped memory. */
async function withKernel(info: DumpInfo, src: ByteSource, ph: Buffer, phnum: number, is64: boolean): Promise<DumpInfo> {
  const release = info.vmcoreinfo?.['OSRELEASE'];
  if (release !== undefined) return { ...info, kernel: { release, source: 'vmcoreinfo' } };
  const wantPhent = is64 ? 56 : 32;
  let scanned = 0;
  for (let i = 0; i < phnum && scanned < BannerScanBytes; i++) {
    const at = i * wantPhent;
    if (ph.readUInt32LE(at) !== 1) continue;
    const offset = is64 ? Number(ph.readBigUInt64LE(at + 8)) : ph.readUInt32LE(at + 4);
    const filesz = is64 ? Number(ph.readBigUInt64LE(at + 32)) : ph.readUInt32LE(at + 16);
    const banner = await scanBanner(src, offset, Math.min(filesz, BannerScanBytes - scanned));
    scanned += filesz;
    if (banner) return { ...info, kernel: { ...releaseOfBanner(banner), banner, source: 'banner' } };
  }
  return info;
}

const BannerPrefix = Buffer.from('Linux version ');

/** The first `Linux version X (...) #N ...` line in [offset, offset+length), printable ASCII only. */
async function scanBanner(src: ByteSource, offset: number, length: number): Promise<string | undefined> {
  for (let at = 0; at < length; at += ScanChunk - 256) {
    const chunk = await src.read(offset + at, Math.min(ScanChunk, length - at));
    let from = 0;
    for (;;) {
      const i = chunk.indexOf(BannerPrefix, from);
      if (i < 0) break;
      let end = i;
      while (end < chunk.length && end - i < 256 && chunk[end]! >= 0x20 && chunk[end]! < 0x7f) end++;
      const text = chunk.subarray(i, end).toString('latin1');
      // the real banner has the compiler in parentheses and a build number; format strings do not
      if (/^Linux version \S+ \(.*\) #\d/.test(text)) return text;
      from = i + 1;
    }
    if (chunk.length < Math.min(ScanChunk, length - at)) break;
  }
  return undefined;
}

function releaseOfBanner(banner: string): { release?: string } {
  const m = /^Linux version (\S+)/.exec(banner);
  return m ? { release: m[1]! } : {};
}

const KdumpSignature = 'KDUMP   ';

async function readKdump(src: ByteSource): Promise<DumpInfo> {
  // QEMU's DiskDumpHeader64: utsname ends at 402, the timeval is 8-aligned (408..424), then u32s
  const h = await readExact(src, 0, 464, 'kdump header');
  const version = h.readUInt32LE(8);
  const cstr = (at: number, len: number): string => h.subarray(at, at + len).toString('latin1').replace(/\0.*$/s, '');
  const uname = { release: cstr(12 + 65 * 2, 65), machine: cstr(12 + 65 * 4, 65) };
  const blockSize = h.readUInt32LE(428);
  const subHdrSize = h.readUInt32LE(432);
  const bitmapBlocks = h.readUInt32LE(436);
  let maxMapnr = h.readUInt32LE(440);
  const nrCpus = h.readUInt32LE(460);
  if (blockSize < 512 || blockSize > 1024 * 1024 || (blockSize & (blockSize - 1)) !== 0) {
    throw invalid(`kdump block size ${blockSize} is not a power of two between 512 and 1 MiB`, { offset: 428 });
  }
  if (subHdrSize > 1024) throw invalid(`kdump sub-header of ${subHdrSize} blocks is not plausible`, { offset: 432 });
  if (version < 1 || version > 64) throw invalid(`kdump header version ${version} is not known`, { offset: 8 });
  const machine = uname.machine || 'unknown';
  let notes: Note[] = [];
  let dumpedPages = 0;
  if (version >= 2 && subHdrSize > 0) {
    const sub = await readExact(src, blockSize, Math.min(104, subHdrSize * blockSize), 'kdump sub-header');
    if (sub.length >= 104 && version >= 6) {
      const mapnr64 = u64(sub, 96, 'max_mapnr_64');
      if (mapnr64 > 0) maxMapnr = mapnr64;
    }
    if (sub.length >= 64 && version >= 4) {
      const noteOff = u64(sub, 48, 'offset_note');
      const noteSize = u64(sub, 56, 'size_note');
      if (noteSize > MaxNotesBytes) throw invalid(`kdump notes of ${noteSize} bytes (at most ${MaxNotesBytes})`, { offset: blockSize + 56 });
      if (noteSize > 0) notes = parseNotes(await readExact(src, noteOff, noteSize, 'kdump notes'), noteOff);
    } else if (sub.length >= 48 && version >= 3) {
      const viOff = u64(sub, 32, 'offset_vmcoreinfo');
      const viSize = u64(sub, 40, 'size_vmcoreinfo');
      if (viSize > 0 && viSize <= MaxVmcoreinfoBytes) {
        notes = [{ name: 'VMCOREINFO', type: 0, desc: await readExact(src, viOff, viSize, 'kdump vmcoreinfo') }];
      }
    }
  }
  // The first bitmap (pages that exist) gives the ranges; the second (pages dumped), the count.
  const bitmapAt = blockSize * (1 + subHdrSize);
  const half = (bitmapBlocks * blockSize) / 2;
  if (bitmapBlocks === 0 || bitmapAt + 2 * half > src.size) throw invalid(`kdump bitmaps (${bitmapBlocks} blocks at ${bitmapAt}) lie outside the file`, { offset: 436 });
  const pages = Math.min(maxMapnr, half * 8);
  if (pages / 8 > MaxBitmapBytes) throw invalid(`a kdump bitmap of ${Math.ceil(pages / 8)} bytes is more than is read (${MaxBitmapBytes}: 2 TiB of 4 KiB pages)`, { offset: 440 });
  const ranges: MemoryRange[] = [];
  let runStart = -1;
  const chunkBytes = 1024 * 1024;
  for (let byte = 0; byte * 8 < pages; byte += chunkBytes) {
    const valid = await readExact(src, bitmapAt + byte, Math.min(chunkBytes, Math.ceil(pages / 8) - byte), 'kdump bitmap');
    const dumped = await readExact(src, bitmapAt + half + byte, valid.length, 'kdump dumped-page bitmap');
    for (let i = 0; i < valid.length; i++) {
      dumpedPages += popcount(dumped[i]!);
      const v = valid[i]!;
      for (let bit = 0; bit < 8; bit++) {
        const pfn = (byte + i) * 8 + bit;
        if (pfn >= pages) break;
        const set = (v >> bit) & 1;
        if (set && runStart < 0) runStart = pfn;
        if (!set && runStart >= 0) {
          if (ranges.length < MaxRanges) ranges.push({ start: runStart * blockSize, size: (pfn - runStart) * blockSize });
          runStart = -1;
        }
      }
    }
  }
  if (runStart >= 0 && ranges.length < MaxRanges) ranges.push({ start: runStart * blockSize, size: (pages - runStart) * blockSize });
  const { cpus, vmcoreinfo } = fromNotes(notes, machine);
  const release = vmcoreinfo?.['OSRELEASE'] ?? (uname.release || undefined);
  return {
    format: 'kdump', machine, ranges, memoryBytes: ranges.reduce((a, r) => a + r.size, 0), cpus,
    ...(vmcoreinfo ? { vmcoreinfo } : {}),
    ...(release ? { kernel: { release, source: 'vmcoreinfo' as const } } : {}),
    kdump: { blockSize, maxMapnr, dumpedPages, cpus: nrCpus, uname },
  };
}

function popcount(b: number): number {
  let n = 0;
  for (let v = b; v; v &= v - 1) n++;
  return n;
}

const FlatSignature = 'makedumpfile';
const FlatHeaderBytes = 4096;
const MaxFlatRecords = 4_000_000;
const MaxFlatRecordBytes = 256 * 1024 * 1024;

/**
 * makedumpfile's "flattened" form, which QEMU writes for kdump formats: a 4 KiB header, then
 * records (offset, size: big-endian i64; the bytes) meaning "these bytes go at this offset",
 * ended by offset -1. The records are indexed (bounded) and read back as the plain file.
 */
async function unflatten(src: ByteSource): Promise<ByteSource> {
  const records: { at: number; size: number; pos: number }[] = [];
  let pos = FlatHeaderBytes;
  let size = 0;
  for (;;) {
    if (records.length >= MaxFlatRecords) throw invalid(`more than ${MaxFlatRecords} flattened records`, { offset: pos });
    const h = await readExact(src, pos, 16, 'flattened record header');
    const at = h.readBigInt64BE(0);
    const len = h.readBigInt64BE(8);
    if (at === -1n && len === -1n) break;
    if (at < 0n || len < 0n || at > BigInt(Number.MAX_SAFE_INTEGER) || len > BigInt(MaxFlatRecordBytes)) {
      throw invalid(`flattened record at ${pos}: offset ${at}, size ${len} are not plausible`, { offset: pos });
    }
    const rec = { at: Number(at), size: Number(len), pos: pos + 16 };
    if (rec.pos + rec.size > src.size) throw invalid(`flattened record at ${pos} runs past the end of the file`, { offset: pos });
    records.push(rec);
    size = Math.max(size, rec.at + rec.size);
    pos = rec.pos + rec.size;
  }
  records.sort((a, b) => a.at - b.at);
  return {
    size,
    read: async (offset, length) => {
      const end = Math.min(size, offset + length);
      const out = Buffer.alloc(Math.max(0, end - offset));
      // the first record that may overlap: binary search on `at`
      let lo = 0;
      let hi = records.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (records[mid]!.at + records[mid]!.size <= offset) lo = mid + 1;
        else hi = mid;
      }
      for (let i = Math.max(0, lo - 1); i < records.length && records[i]!.at < end; i++) {
        const r = records[i]!;
        const from = Math.max(offset, r.at);
        const to = Math.min(end, r.at + r.size);
        if (to <= from) continue;
        const part = await src.read(r.pos + (from - r.at), to - from);
        part.copy(out, from - offset);
      }
      return out;
    },
  };
}

/** Reads the dump in `src`: ELF core or kdump-compressed (plain or flattened). */
export async function readDumpInfo(input: ByteSource): Promise<DumpInfo> {
  if (input.size < 16) throw invalid(`the file is ${input.size} bytes: too short for an ELF or kdump header`, { size: input.size });
  const flat = (await readExact(input, 0, 16, 'file header')).subarray(0, FlatSignature.length).toString('latin1') === FlatSignature;
  const src = flat ? await unflatten(input) : input;
  if (src.size < 16) throw invalid(`the dump is ${src.size} bytes: too short for an ELF or kdump header`, { size: src.size });
  const ident = await readExact(src, 0, 16, 'file header');
  if (ident.readUInt32BE(0) === 0x7f454c46) return readElf(src, ident);
  if (ident.subarray(0, 8).toString('latin1') === KdumpSignature) return readKdump(src);
  throw invalid('not an ELF core or a kdump-compressed dump (no ELF or "KDUMP   " signature)', { offset: 0 });
}

export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read: async (offset, length) => buf.subarray(offset, Math.min(buf.length, offset + length)),
  };
}

/** Reads the dump file at `path`. */
export async function readDumpFile(path: string): Promise<DumpInfo> {
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new VirtkitError(err.code === 'ENOENT' ? 'image.not-found' : 'image.io', `${path}: ${err.message}`, { path });
  });
  try {
    const { size } = await fh.stat();
    const src: ByteSource = {
      size,
      read: async (offset, length) => {
        const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        return buf.subarray(0, bytesRead);
      },
    };
    return await readDumpInfo(src);
  } finally {
    await fh.close();
  }
}
