import { describe, expect, test } from 'vitest';
import type { BlockDevice } from '../../../storage/block/index.js';
import { ByteView } from '../../bytes.js';
import { formatSerial, looksLikeFat, parseBootSector } from './boot-sector.js';
import { fatTime, parseDirectory, shortNameChecksum, type FatDirEntry } from './directory.js';
import { FatTable } from './table.js';

interface Geometry {
  bps?: number; spc?: number; reserved?: number; fats?: number; rootEntries?: number;
  totalSectors: number; fatSectors: number; media?: number; oem?: string; fat32?: boolean;
}

/** A boot sector with the given BPB; FAT32 layout (fat16 size 0, root cluster 2) when asked. */
function bootSector(g: Geometry): Uint8Array {
  const s = Buffer.alloc(512);
  s.set([0xeb, 0x3c, 0x90]);
  s.write((g.oem ?? 'mkfs.fat').padEnd(8), 3, 'latin1');
  s.writeUInt16LE(g.bps ?? 512, 0x0b);
  s.writeUInt8(g.spc ?? 1, 0x0d);
  s.writeUInt16LE(g.reserved ?? (g.fat32 === true ? 32 : 1), 0x0e);
  s.writeUInt8(g.fats ?? 2, 0x10);
  s.writeUInt16LE(g.fat32 === true ? 0 : g.rootEntries ?? 512, 0x11);
  s.writeUInt8(g.media ?? 0xf8, 0x15);
  if (g.totalSectors < 0x10000) s.writeUInt16LE(g.totalSectors, 0x13);
  else s.writeUInt32LE(g.totalSectors, 0x20);
  if (g.fat32 === true) {
    s.writeUInt32LE(g.fatSectors, 0x24);
    s.writeUInt32LE(2, 0x2c);
    s.writeUInt8(0x29, 0x42);
    s.writeUInt32LE(0x1234abcd, 0x43);
    s.write('LABEL32    ', 0x47, 'latin1');
  } else {
    s.writeUInt16LE(g.fatSectors, 0x16);
    s.writeUInt8(0x29, 0x26);
    s.writeUInt32LE(0xdeadbeef, 0x27);
    s.write('NO NAME    ', 0x2b, 'latin1');
  }
  s[510] = 0x55;
  s[511] = 0xaa;
  return s;
}

/** Total sectors giving exactly `clusters` clusters of one sector with FAT12/16 layout. */
function fat16Total(clusters: number, fatSectors: number): number {
  return 1 + 2 * fatSectors + 32 + clusters;
}

function memoryDevice(bytes: Uint8Array): BlockDevice {
  return {
    size: bytes.length, format: 'raw',
    read: async (offset, length) => bytes.slice(offset, offset + length),
    blockStatus: async (offset, length) => [{ offset, length, zero: false, allocated: true }],
    close: async () => {},
  };
}

describe('FAT boot sector', () => {
  test('the type follows the cluster count alone (Microsoft rule)', () => {
    expect(parseBootSector(bootSector({ totalSectors: fat16Total(4084, 12), fatSectors: 12 })).type).toBe('fat12');
    expect(parseBootSector(bootSector({ totalSectors: fat16Total(4085, 32), fatSectors: 32 })).type).toBe('fat16');
    expect(parseBootSector(bootSector({ totalSectors: fat16Total(65524, 256), fatSectors: 256 })).type).toBe('fat16');
    const fat32 = parseBootSector(bootSector({ totalSectors: 32 + 2 * 520 + 65525, fatSectors: 520, fat32: true }));
    expect(fat32).toMatchObject({ type: 'fat32', clusterCount: 65525, rootCluster: 2, label: 'LABEL32', serial: 0x1234abcd });
  });

  test('geometry is checked', () => {
    const ok = { totalSectors: 2048, fatSectors: 6 };
    expect(looksLikeFat(bootSector(ok))).toBe(true);
    for (const bad of [{ bps: 3000 }, { bps: 256 }, { bps: 8192 }, { spc: 3 }, { spc: 0 }, { reserved: 0 }, { fats: 0 }, { media: 0x12 }, { oem: 'NTFS    ' }, { oem: 'EXFAT   ' }]) {
      expect([bad, looksLikeFat(bootSector({ ...ok, ...bad }))]).toEqual([bad, false]);
    }
    const noSignature = bootSector(ok);
    noSignature[511] = 0;
    expect(looksLikeFat(noSignature)).toBe(false);
    expect(() => parseBootSector(bootSector({ totalSectors: 20, fatSectors: 6 }))).toThrow(expect.objectContaining({ code: 'fs.corrupt' }));
    // A FAT too small to map every cluster.
    expect(() => parseBootSector(bootSector({ totalSectors: fat16Total(4000, 1), fatSectors: 1 }))).toThrow(expect.objectContaining({ code: 'fs.corrupt' }));
    // 70,000 clusters make FAT32, but the BPB has the FAT16 layout.
    expect(() => parseBootSector(bootSector({ totalSectors: fat16Total(70000, 0xffff), fatSectors: 0xffff }))).toThrow(expect.objectContaining({ code: 'fs.corrupt' }));
  });

  test('an MBR with a partition table is no FAT boot sector', () => {
    const mbr = Buffer.alloc(512);
    mbr.set([0xfa, 0x31, 0xc0]);
    mbr.set([0x80, 0, 0, 0, 0x0c, 0, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x00, 0x10, 0], 446);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    expect(looksLikeFat(mbr)).toBe(false);
    const grubMbr = Buffer.from(mbr);
    grubMbr.set([0xeb, 0x63, 0x90]);
    expect(looksLikeFat(grubMbr)).toBe(false);
  });

  test('serial and label', () => {
    expect(formatSerial(0x1234abcd)).toBe('1234-ABCD');
    expect(formatSerial(0xbeef)).toBe('0000-BEEF');
    expect(formatSerial(undefined)).toBe('');
    expect(parseBootSector(bootSector({ totalSectors: 2048, fatSectors: 6 })).label).toBe('');
  });
});

/** 32-byte short entry. */
function shortEntry(name11: string, opts: { attr?: number; nt?: number; cluster?: number; size?: number } = {}): Buffer {
  const e = Buffer.alloc(32);
  e.write(name11, 0, 'latin1');
  e[11] = opts.attr ?? 0x20;
  e[12] = opts.nt ?? 0;
  e.writeUInt16LE(0x5a21, 24); // 2025-01-01
  e.writeUInt16LE(((12 << 11) | (34 << 5) | 28) >>> 0, 22); // 12:34:56
  e.writeUInt16LE(opts.cluster ?? 0, 26);
  e.writeUInt32LE(opts.size ?? 0, 28);
  return e;
}

/** The long name entries (highest ordinal first) that go before `short`. */
function longEntries(name: string, short: Buffer): Buffer[] {
  const sum = shortNameChecksum(short.subarray(0, 11));
  const units: number[] = [...name].map((c) => c.charCodeAt(0));
  const parts = Math.ceil(units.length / 13);
  if (units.length % 13 !== 0) units.push(0);
  while (units.length % 13 !== 0) units.push(0xffff);
  const out: Buffer[] = [];
  for (let p = parts; p >= 1; p--) {
    const e = Buffer.alloc(32);
    e[0] = p | (p === parts ? 0x40 : 0);
    e[11] = 0x0f;
    e[13] = sum;
    const chunk = units.slice((p - 1) * 13, p * 13);
    [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30].forEach((off, i) => e.writeUInt16LE(chunk[i]!, off));
    out.push(e);
  }
  return out;
}

function parse(...entries: Buffer[]): { names: string[]; entries: FatDirEntry[]; labels: string[] } {
  const out: FatDirEntry[] = [];
  const labels: string[] = [];
  parseDirectory([new ByteView(Buffer.concat(entries), 'fat directory entry', 4096)], out, { fat32: true, labels });
  return { names: out.map((e) => e.name), entries: out, labels };
}

describe('FAT directory entries', () => {
  test('long names with valid checksums and ordinals, split across runs', () => {
    const short = shortEntry('LONGFI~1TXT');
    const name = 'A long file name, more than 26 characters.txt';
    const all = Buffer.concat([...longEntries(name, short), short]);
    expect(parse(all).names).toEqual([name]);
    const out: FatDirEntry[] = [];
    parseDirectory([new ByteView(all.subarray(0, 64), 'x', 0), new ByteView(all.subarray(64), 'x', 9000)], out, { fat32: false });
    expect(out.map((e) => e.name)).toEqual([name]);
    expect(out[0]!.offset).toBe(9000 + all.length - 64 - 32);
  });

  test('a broken long name falls back to the short name', () => {
    const short = shortEntry('LONGFI~1TXT');
    const [a, b, c, d] = longEntries('A long file name, more than 26 characters.txt', short);
    const badSum = Buffer.from(b!);
    badSum[13] = badSum[13]! ^ 1;
    expect(parse(a!, badSum, c!, d!, short).names).toEqual(['LONGFI~1.TXT']);
    expect(parse(a!, c!, d!, short).names).toEqual(['LONGFI~1.TXT']); // a gap in the ordinals
    expect(parse(b!, c!, d!, short).names).toEqual(['LONGFI~1.TXT']); // no first (0x40) part
    const slash = shortEntry('SLASH   TXT');
    expect(parse(...longEntries('a/b.txt', slash), slash).names).toEqual(['SLASH.TXT']);
  });

  test('8.3 names: NT lowercase flags, 0x05, deleted entries, labels, dot entries, the end mark', () => {
    const deleted = shortEntry('\u00e5ONE    TXT');
    const end = Buffer.alloc(32);
    const after = shortEntry('AFTER   TXT');
    const r = parse(
      shortEntry('.          ', { attr: 0x10 }), shortEntry('..         ', { attr: 0x10 }),
      shortEntry('MYVOLUME   ', { attr: 0x08 }),
      shortEntry('LOWER   TXT', { nt: 0x18 }), shortEntry('BASE    TXT', { nt: 0x08 }), shortEntry('EXT     TXT', { nt: 0x10 }),
      shortEntry('NOEXT      '), shortEntry('\u0005E5     BIN'), deleted, end, after,
    );
    expect(r.names).toEqual(['lower.txt', 'base.TXT', 'EXT.txt', 'NOEXT', '\u03c3E5.BIN']);
    expect(r.labels).toEqual(['MYVOLUME']);
  });

  test('the high cluster word counts on FAT32 only', () => {
    const e = shortEntry('FILE    BIN', { cluster: 5 });
    e.writeUInt16LE(0x8001, 20);
    const read = (fat32: boolean): number => {
      const out: FatDirEntry[] = [];
      parseDirectory([new ByteView(e, 'fat directory entry', 0)], out, { fat32 });
      return out[0]!.firstCluster;
    };
    expect(read(false)).toBe(5);
    expect(read(true)).toBe(0x80010005);
  });

  test('times are the recorded local time, read as UTC', () => {
    expect(fatTime(0x5a21, (12 << 11) | (34 << 5) | 28).toISOString()).toBe('2025-01-01T12:34:56.000Z');
    expect(fatTime(0, 0).getTime()).toBe(0);
    expect(fatTime(0x5a21, 0, 150).toISOString()).toBe('2025-01-01T00:00:01.500Z');
    expect(parse(shortEntry('F       TXT')).entries[0]!.mtime.toISOString()).toBe('2025-01-01T12:34:56.000Z');
  });

  test('the checksum rotates right and adds each of the 11 name bytes (fatgen103)', () => {
    expect(shortNameChecksum(Buffer.from('FOO     BAR', 'latin1'))).toBe(0x53);
    // 1 rotated right ten times in 8 bits.
    expect(shortNameChecksum(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toBe(0x40);
  });
});

describe('FAT cluster chains', () => {
  /** A FAT16 volume with 5000 one-sector clusters; `links` sets FAT entries. */
  function fat16(links: Record<number, number>): FatTable {
    const fatSectors = 20;
    const image = Buffer.alloc(512 * fat16Total(5000, fatSectors));
    const boot = bootSector({ totalSectors: fat16Total(5000, fatSectors), fatSectors });
    image.set(boot);
    for (const [n, v] of Object.entries(links)) image.writeUInt16LE(v, 512 + Number(n) * 2);
    return new FatTable(memoryDevice(image), parseBootSector(boot));
  }
  const dirReq = { count: 100, untilEnd: true, structure: 'fat directory', at: 0 };

  test('a chain ends at the end mark', async () => {
    expect(await fat16({ 2: 3, 3: 7, 7: 0xffff }).chain(2, dirReq)).toEqual([2, 3, 7]);
    expect(await fat16({ 2: 3, 3: 0xffff }).chain(2, { ...dirReq, count: 1, untilEnd: false })).toEqual([2]);
  });

  test('loops, bad, free and out-of-range links and short chains are fs.corrupt', async () => {
    const cases: [Record<number, number>, string][] = [
      [{ 2: 3, 3: 2 }, 'fat table'],
      [{ 2: 2 }, 'fat table'],
      [{ 2: 0xfff7 }, 'fat table'],
      [{ 2: 0 }, 'fat table'],
      [{ 2: 1 }, 'fat table'],
      [{ 2: 5002 }, 'fat table'],
    ];
    for (const [links, structure] of cases) {
      await expect(fat16(links).chain(2, dirReq)).rejects.toMatchObject({ code: 'fs.corrupt', data: { structure } });
    }
    await expect(fat16({ 2: 0xffff }).chain(2, { count: 3, untilEnd: false, structure: 'fat file', at: 64 }))
      .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'fat file', offset: 64 } });
    await expect(fat16({}).chain(9999, dirReq)).rejects.toMatchObject({ code: 'fs.corrupt' });
  });

  test('FAT12 entries are packed in 12 bits', async () => {
    const fatSectors = 6;
    const total = fat16Total(2000, fatSectors);
    const image = Buffer.alloc(512 * total);
    const boot = bootSector({ totalSectors: total, fatSectors });
    image.set(boot);
    // Entries 2 -> 3 -> 0xfff: bytes of the pair (2, 3) are 03 F0 FF.
    image.set([0x03, 0xf0, 0xff], 512 + 3);
    const table = new FatTable(memoryDevice(image), parseBootSector(boot));
    expect(await table.entry(2)).toBe(3);
    expect(await table.entry(3)).toBe(0xfff);
    expect(await table.chain(2, dirReq)).toEqual([2, 3]);
  });
});

describe('FAT directories of random bytes', () => {
  test('10,000 random directory clusters give entries or a typed fs.corrupt', () => {
    let x = 12345;
    const next = (): number => {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      return x;
    };
    let named = 0;
    for (let i = 0; i < 10_000; i++) {
      const bytes = Buffer.alloc(512);
      for (let b = 0; b < bytes.length; b++) bytes[b] = next() % 4 === 0 ? 0x0f : next() & 0xff;
      for (let e = 0; e < 16; e++) if (next() % 3 === 0) bytes[e * 32 + 11] = 0x0f; // many long name parts
      const out: FatDirEntry[] = [];
      try {
        parseDirectory([new ByteView(bytes, 'fat directory entry', 0)], out, { fat32: next() % 2 === 0 });
        named += out.length;
      } catch (err) {
        expect([i, (err as { code?: string }).code]).toEqual([i, 'fs.corrupt']);
      }
    }
    expect(named).toBeGreaterThan(0);
  });
});
