/**
 * The dump reader on cores built like QEMU's (elf-writer.ts), plus a flattened kdump and a
 * bounded fuzz: every mutated, truncated or random file is read or refused with dump.invalid.
 */
import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { bufferSource, buildElfCore, readDumpInfo } from './index.js';

const banner = 'Linux version 6.1.0-test (builder@host) (gcc 12) #1 SMP PREEMPT_DYNAMIC';

function sampleCore(vmcoreinfo?: string): Buffer {
  const low = Buffer.alloc(8192);
  low.write(`%s ${'Linux version %s'} \0${banner}\0`, 1000, 'latin1');
  return buildElfCore({
    cpus: [{ rip: 0xffffffff81234567n, rsp: 0xffffc90000003f00n, rax: 42n }, { rip: 0x1000n }],
    ranges: [{ start: 0, data: low }, { start: 0x100000, data: Buffer.alloc(4096) }],
    ...(vmcoreinfo !== undefined ? { vmcoreinfo } : {}),
  });
}

/** A kdump header + sub-header + bitmaps, then wrapped in makedumpfile's flattened records. */
function sampleFlatKdump(): Buffer {
  const block = 4096;
  const plain = Buffer.alloc(block * 4);
  plain.write('KDUMP   ', 0, 'latin1');
  plain.writeUInt32LE(6, 8);
  plain.write('6.1.0-kd', 12 + 65 * 2, 'latin1');
  plain.write('x86_64', 12 + 65 * 4, 'latin1');
  plain.writeUInt32LE(block, 428);
  plain.writeUInt32LE(1, 432);
  plain.writeUInt32LE(2, 436); // bitmap blocks: two halves of one block each
  plain.writeUInt32LE(16, 440);
  plain.writeUInt32LE(1, 460);
  plain.writeBigUInt64LE(16n, block + 96);
  plain[block * 2] = 0b00001111; // pfns 0-3 exist
  plain[block * 2 + 1] = 0b00000011; // pfns 8-9 exist
  plain[block * 3] = 0b00000101; // two pages dumped
  const head = Buffer.alloc(4096);
  head.write('makedumpfile', 0, 'latin1');
  const rec = (at: number, data: Buffer): Buffer => {
    const h = Buffer.alloc(16);
    h.writeBigInt64BE(BigInt(at), 0);
    h.writeBigInt64BE(BigInt(data.length), 8);
    return Buffer.concat([h, data]);
  };
  const end = Buffer.alloc(16, 0xff);
  return Buffer.concat([head, rec(0, plain.subarray(0, block * 2)), rec(block * 2, plain.subarray(block * 2)), end]);
}

describe('dump-info reader', () => {
  it('reads ranges, registers and the kernel banner of an ELF core', async () => {
    const info = await readDumpInfo(bufferSource(sampleCore()));
    expect(info.format).toBe('elf64');
    expect(info.machine).toBe('x86_64');
    expect(info.ranges).toEqual([{ start: 0, size: 8192 }, { start: 0x100000, size: 4096 }]);
    expect(info.cpus).toHaveLength(2);
    expect(info.cpus[0]!.registers['rip']).toBe('0xffffffff81234567');
    expect(info.cpus[0]!.registers['rax']).toBe('0x2a');
    expect(info.kernel).toMatchObject({ release: '6.1.0-test', source: 'banner' });
  });

  it('prefers VMCOREINFO when the guest published it', async () => {
    const info = await readDumpInfo(bufferSource(sampleCore('OSRELEASE=6.1.0-vmci\nPAGESIZE=4096\nSYMBOL(log_buf)=ffffffff82000000\n')));
    expect(info.kernel).toEqual({ release: '6.1.0-vmci', source: 'vmcoreinfo' });
    expect(info.vmcoreinfo?.['PAGESIZE']).toBe('4096');
  });

  it('reads a flattened kdump file: header, ranges from the bitmap, dumped pages', async () => {
    const info = await readDumpInfo(bufferSource(sampleFlatKdump()));
    expect(info.format).toBe('kdump');
    expect(info.ranges).toEqual([{ start: 0, size: 4 * 4096 }, { start: 8 * 4096, size: 2 * 4096 }]);
    expect(info.kdump).toMatchObject({ blockSize: 4096, dumpedPages: 2, uname: { release: '6.1.0-kd', machine: 'x86_64' } });
    expect(info.kernel?.release).toBe('6.1.0-kd');
  });

  it('fuzz: mutated, truncated and random files are read or refused with dump.invalid (bounded)', async () => {
    let seed = 99;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const seeds = [sampleCore('OSRELEASE=x\n'), sampleFlatKdump()];
    const started = Date.now();
    for (let i = 0; i < 3000; i++) {
      const base = seeds[i % 2]!;
      let buf = Buffer.from(base);
      const mode = rnd(3);
      if (mode === 0) buf = buf.subarray(0, rnd(buf.length));
      else if (mode === 1) for (let k = 0; k < 1 + rnd(6); k++) buf[rnd(Math.min(buf.length, 4096 + 600))] = rnd(256);
      else buf = Buffer.concat([buf.subarray(0, 8), Buffer.from(Array.from({ length: rnd(2000) }, () => rnd(256)))]);
      try {
        await readDumpInfo(bufferSource(buf));
      } catch (err) {
        if (!isVirtkitError(err, 'dump.invalid')) throw err;
      }
    }
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});
