import { describe, expect, test } from 'vitest';
import { ByteView } from '../../bytes.js';
import { MAX_DESCRIPTORS, readDescriptors, volumeLabel, volumeUuid, type VolumeDescriptor } from './descriptors.js';
import { IsoDriver, stripVersion } from './iso-fs.js';
import { longDate, parseRecords, shortDate } from './records.js';
import { MAX_CONTINUATIONS, parseRockRidge, suspSkipBytes } from './rock-ridge.js';

function both32(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v, 0);
  b.writeUInt32BE(v, 4);
  return b;
}

function descriptor(type: number, opts: { id?: string; escapes?: string; blockSize?: number; modified?: string; created?: string } = {}): Buffer {
  const d = Buffer.alloc(2048);
  d[0] = type;
  d.write('CD001', 1, 'latin1');
  d[6] = 1;
  if (opts.escapes !== undefined) {
    d.write(opts.escapes, 88, 'latin1');
    const ucs = Buffer.from((opts.id ?? '').padEnd(16), 'utf16le');
    ucs.swap16();
    ucs.copy(d, 40);
  } else {
    d.write((opts.id ?? '').padEnd(32), 40, 'latin1');
  }
  d.set(both32(100), 80);
  d.writeUInt16LE(opts.blockSize ?? 2048, 128);
  d[156] = 34;
  d[156 + 32] = 1;
  d.write(opts.created ?? '2024010203040506', 813, 'latin1');
  d.write(opts.modified ?? '0000000000000000', 830, 'latin1');
  return d;
}

function deviceOf(sectors: Buffer[]): { read: (o: number, l: number) => Promise<Uint8Array>; size: number; reads: number } {
  const image = Buffer.concat([Buffer.alloc(16 * 2048), ...sectors]);
  const dev = {
    size: image.length, reads: 0,
    read: async (o: number, l: number) => { dev.reads++; return image.subarray(o, o + l); },
  };
  return dev;
}

describe('ISO 9660 volume descriptors', () => {
  test('primary, Joliet (each escape level) and the terminator', async () => {
    for (const escapes of ['%/@', '%/C', '%/E']) {
      const dev = deviceOf([descriptor(1, { id: 'CDROM' }), descriptor(2, { id: 'cdrom extended', escapes }), descriptor(255)]);
      const set = await readDescriptors(dev.read, dev.size);
      expect(set.primary.volumeId).toBe('CDROM');
      expect(set.joliet?.volumeId).toBe('cdrom extended');
      expect(volumeLabel(set)).toBe('cdrom extended');
    }
    const other = deviceOf([descriptor(1, { id: 'CDROM' }), descriptor(2, { id: 'other', escapes: '%/X' }), descriptor(255)]);
    const set = await readDescriptors(other.read, other.size);
    expect(set.joliet).toBeUndefined();
    expect(volumeLabel(set)).toBe('CDROM');
  });

  test('the scan is bounded and needs a primary descriptor', async () => {
    const dev = deviceOf(Array.from({ length: 200 }, () => descriptor(0)));
    await expect(readDescriptors(dev.read, dev.size)).rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 volume descriptor' } });
    expect(dev.reads).toBe(MAX_DESCRIPTORS);
    const bad = deviceOf([descriptor(1, { blockSize: 3000 }), descriptor(255)]);
    await expect(readDescriptors(bad.read, bad.size)).rejects.toMatchObject({ code: 'fs.corrupt' });
  });

  test('the UUID is the modification date, else the creation date, as libblkid prints it', () => {
    const base: VolumeDescriptor = {
      offset: 0, volumeId: '', volumeBlocks: 0, blockSize: 2048, rootRecord: new ByteView(new Uint8Array(34), 'r', 0),
      created: '2024010203040506', modified: '',
    };
    expect(volumeUuid(base)).toBe('2024-01-02-03-04-05-06');
    expect(volumeUuid({ ...base, modified: '2025123123595999' })).toBe('2025-12-31-23-59-59-99');
    expect(volumeUuid({ ...base, created: '' })).toBe('');
  });
});

describe('ISO 9660 names, dates and records', () => {
  test('versions and the empty extension are dropped', () => {
    expect(stripVersion('README.TXT;1')).toBe('README.TXT');
    expect(stripVersion('MAKEFILE.;1')).toBe('MAKEFILE');
    expect(stripVersion('NOVERSION')).toBe('NOVERSION');
    expect(stripVersion('odd;name')).toBe('odd;name');
  });

  test('dates carry their GMT offset', () => {
    // 2020-06-15 12:00:00 at GMT+2 (8 quarter hours).
    expect(shortDate(Uint8Array.from([120, 6, 15, 12, 0, 0, 8])).toISOString()).toBe('2020-06-15T10:00:00.000Z');
    expect(shortDate(Uint8Array.from([120, 6, 15, 12, 0, 0, 0xfc])).toISOString()).toBe('2020-06-15T13:00:00.000Z');
    expect(shortDate(new Uint8Array(7)).getTime()).toBe(0);
    expect(longDate(Buffer.concat([Buffer.from('2020061512000050'), Buffer.from([0])])).toISOString()).toBe('2020-06-15T12:00:00.500Z');
    expect(longDate(Buffer.from('0000000000000000\0')).getTime()).toBe(0);
  });

  function record(name: string, extra = 0): Buffer {
    const idLen = name.length;
    const len = 33 + idLen + (idLen % 2 === 0 ? 1 : 0) + extra;
    const r = Buffer.alloc(len);
    r[0] = len;
    r.set(both32(20), 2);
    r.set(both32(5), 10);
    r[32] = idLen;
    r.write(name, 33, 'latin1');
    return r;
  }

  test('records never cross a sector: zero bytes pad to the next one', () => {
    const sector = Buffer.alloc(2048);
    let at = 0;
    for (const r of [record('\0'), record('\x01'), record('A.TXT;1')]) {
      r.copy(sector, at);
      at += r.length;
    }
    const second = Buffer.alloc(2048);
    record('B.TXT;1').copy(second, 0);
    const records = parseRecords(new ByteView(Buffer.concat([sector, second]), 'iso9660 directory', 0));
    expect(records.map((r) => Buffer.from(r.identifier).toString('latin1'))).toEqual(['\0', '\x01', 'A.TXT;1', 'B.TXT;1']);
    expect(records[3]!.offset).toBe(2048);

    const crossing = Buffer.alloc(4096);
    let off = 0;
    for (; off < 2048 - 100; off += 34) record('X').copy(crossing, off);
    record('C.TXT;1', 100).copy(crossing, off);
    expect(() => parseRecords(new ByteView(crossing, 'iso9660 directory', 0))).toThrow(expect.objectContaining({ code: 'fs.corrupt' }));
    const short = Buffer.alloc(2048);
    short[0] = 20;
    expect(() => parseRecords(new ByteView(short, 'iso9660 directory', 0))).toThrow(expect.objectContaining({ code: 'fs.corrupt' }));
    const longId = record('D.TXT;1');
    longId[32] = 200;
    expect(() => parseRecords(new ByteView(Buffer.concat([longId, Buffer.alloc(2048 - longId.length)]), 'iso9660 directory', 0))).toThrow(expect.objectContaining({ code: 'fs.corrupt' }));
  });
});

function entry(sig: string, data: Buffer | number[]): Buffer {
  const body = Buffer.from(data);
  return Buffer.concat([Buffer.from(sig, 'latin1'), Buffer.from([4 + body.length, 1]), body]);
}

function ce(block: number, offset: number, length: number): Buffer {
  return entry('CE', Buffer.concat([both32(block), both32(offset), both32(length)]));
}

function view(b: Buffer, at = 1000): ByteView {
  return new ByteView(b, 'iso9660 system use area', at);
}

const noContinuation = async (): Promise<ByteView> => { throw new Error('no continuation expected'); };

describe('Rock Ridge', () => {
  test('SP marks SUSP with its skip count', () => {
    expect(suspSkipBytes(view(entry('SP', [0xbe, 0xef, 3])))).toBe(3);
    expect(suspSkipBytes(view(entry('SP', [0xbe, 0xee, 0])))).toBeUndefined();
    expect(suspSkipBytes(view(entry('PX', Buffer.alloc(32))))).toBeUndefined();
  });

  test('NM, PX, TF and SL', async () => {
    const px = Buffer.concat([both32(0o100640), both32(3), both32(1000), both32(100), both32(77)]);
    const tf = Buffer.concat([Buffer.from([0x0e]), Buffer.from([120, 1, 2, 3, 4, 5, 0]), Buffer.from([121, 1, 2, 3, 4, 5, 0]), Buffer.from([122, 1, 2, 3, 4, 5, 0])]);
    const rr = await parseRockRidge(view(Buffer.concat([
      entry('NM', Buffer.concat([Buffer.from([1]), Buffer.from('first-')])),
      entry('NM', Buffer.concat([Buffer.from([0]), Buffer.from('second')])),
      entry('PX', px), entry('TF', tf),
      entry('SL', [1, 0x08, 0, 0, 3, ...Buffer.from('usr'), 0x01, 2, ...Buffer.from('li')]),
      entry('SL', [0, 0, 1, 0x62, 0x04, 0, 0x02, 0, 0, 4, ...Buffer.from('file')]),
      entry('ST', []), entry('NM', [0, 0x41]),
    ])), 0, noContinuation);
    expect(rr).toMatchObject({ name: 'first-second', mode: 0o100640, nlink: 3, uid: 1000, gid: 100, ino: 77, symlink: '/usr/lib/.././file' });
    expect(rr.mtime?.toISOString()).toBe('2020-01-02T03:04:05.000Z');
    expect(rr.atime?.toISOString()).toBe('2021-01-02T03:04:05.000Z');
    expect(rr.ctime?.toISOString()).toBe('2022-01-02T03:04:05.000Z');
  });

  test('skip bytes, CE continuation areas, RE and CL', async () => {
    const area = Buffer.concat([entry('NM', Buffer.concat([Buffer.from([0]), Buffer.from('continued')])), entry('RE', []), entry('CL', both32(42))]);
    const rr = await parseRockRidge(view(Buffer.concat([Buffer.from([9, 9]), ce(7, 100, area.length)])), 2, async (block, offset, length) => {
      expect([block, offset, length]).toEqual([7, 100, area.length]);
      return view(area, 7 * 2048 + 100);
    });
    expect(rr).toMatchObject({ name: 'continued', relocated: true, childLink: 42 });
  });

  test('continuation loops, long chains and oversized areas are fs.corrupt', async () => {
    const self = ce(5, 0, 28);
    await expect(parseRockRidge(view(self), 0, async () => view(self, 5 * 2048)))
      .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 continuation area' } });
    let n = 0;
    await expect(parseRockRidge(view(ce(1, 0, 28)), 0, async () => view(ce(++n + 1, 0, 28))))
      .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 continuation area' } });
    expect(n).toBe(MAX_CONTINUATIONS);
    await expect(parseRockRidge(view(ce(1, 0, 1 << 20)), 0, noContinuation))
      .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 continuation area' } });
  });

  test('overlong names and targets are fs.corrupt; garbage ends the area', async () => {
    const nm = entry('NM', Buffer.concat([Buffer.from([1]), Buffer.alloc(250, 0x61)]));
    await expect(parseRockRidge(view(Buffer.concat([nm, nm, nm, nm, nm])), 0, noContinuation))
      .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 rock ridge NM' } });
    const garbage = Buffer.concat([entry('NM', [0, 0x41]), Buffer.from([0x50, 0x58, 2, 1, 0, 0])]);
    expect((await parseRockRidge(view(garbage), 0, noContinuation)).name).toBe('A');
  });
});

describe('Rock Ridge continuation budget', () => {
  test('one directory may not read more than its budget of continuation areas', async () => {
    const area = Buffer.concat([entry('NM', Buffer.concat([Buffer.from([0]), Buffer.from('x')]))]);
    const budget = { remaining: 100 };
    const read = async (): Promise<ByteView> => view(area, 0);
    for (let i = 0; i < 3; i++) await parseRockRidge(view(ce(1, 0, 30)), 0, read, budget);
    await expect(parseRockRidge(view(ce(1, 0, 30)), 0, read, budget))
      .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 continuation area' } });
  });
});

describe('a synthetic ISO image', () => {
  /** A directory record; `flags` 2 is a directory, 0x80 more extents follow. */
  function dirRecord(name: Buffer, extent: number, size: number, flags: number): Buffer {
    const len = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
    const r = Buffer.alloc(len);
    r[0] = len;
    r.set(both32(extent), 2);
    r.set(both32(size), 10);
    r.set([124, 1, 2, 3, 4, 5, 0], 18);
    r[25] = flags;
    r[32] = name.length;
    name.copy(r, 33);
    return r;
  }

  /** Plain ISO: root at block 18 holding `records`; data blocks from 19 on. */
  function image(records: Buffer[], dataBlocks: Buffer[]): Buffer {
    const pvd = descriptor(1, { id: 'SYNTH' });
    dirRecord(Buffer.from([0]), 18, 2048, 2).copy(pvd, 156);
    const root = Buffer.alloc(2048);
    let at = 0;
    for (const r of [dirRecord(Buffer.from([0]), 18, 2048, 2), dirRecord(Buffer.from([1]), 18, 2048, 2), ...records]) {
      r.copy(root, at);
      at += r.length;
    }
    return Buffer.concat([Buffer.alloc(16 * 2048), pvd, descriptor(255), root, ...dataBlocks]);
  }

  async function open(bytes: Buffer): Promise<IsoDriver> {
    return IsoDriver.open({
      size: bytes.length, format: 'raw',
      read: async (o, l) => bytes.subarray(o, o + l),
      blockStatus: async (offset, length) => [{ offset, length, zero: false, allocated: true }],
      close: async () => {},
    });
  }

  test('multi-extent files read as one; plain names lose their version', async () => {
    const a = Buffer.alloc(2048, 0x61);
    const b = Buffer.alloc(2048, 0x62);
    const name = Buffer.from('BIG.DAT;1');
    const driver = await open(image([dirRecord(name, 19, 2048, 0x80), dirRecord(name, 20, 100, 0)], [a, b]));
    expect(driver.naming).toBe('plain');
    const root = await driver.root();
    expect(await driver.list(root)).toEqual([{ name: 'BIG.DAT', type: 'file', inode: expect.any(Number) }]);
    const node = (await driver.lookup(root, 'big.dat'))!;
    expect(node.size).toBe(2148);
    const data = Buffer.from(await driver.read(node, 2000, 1000));
    expect(data.equals(Buffer.concat([Buffer.alloc(48, 0x61), Buffer.alloc(100, 0x62)]))).toBe(true);
    expect((await driver.stat(node)).mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
  });

  test('a multi-extent file without its final extent is fs.corrupt', async () => {
    const driver = await open(image([dirRecord(Buffer.from('A;1'), 19, 2048, 0x80), dirRecord(Buffer.from('B;1'), 19, 10, 0)], [Buffer.alloc(2048)]));
    await expect(driver.list(await driver.root())).rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 directory record' } });
  });

  test('associated files are not listed; a directory pointing at the root has the root inode', async () => {
    const driver = await open(image([dirRecord(Buffer.from('ASSOC;1'), 19, 1, 0x04), dirRecord(Buffer.from('LOOP'), 18, 2048, 2)], [Buffer.alloc(2048)]));
    const root = await driver.root();
    const entries = await driver.list(root);
    expect(entries).toEqual([{ name: 'LOOP', type: 'directory', inode: 18 }]);
    expect((await driver.stat(root)).ino).toBe(18);
  });
});

describe('Rock Ridge on random System Use areas', () => {
  /** xorshift32 from a seed, so a failing case reproduces. */
  function prng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      return x;
    };
  }
  const SIGS = ['NM', 'SL', 'PX', 'TF', 'CE', 'CL', 'RE', 'ST', 'SP', 'ZF', 'PD', 'XX'];

  function randomArea(next: () => number): Buffer {
    const parts: Buffer[] = [];
    const count = next() % 8;
    for (let i = 0; i < count; i++) {
      const sig = SIGS[next() % SIGS.length]!;
      const body = Buffer.alloc(next() % 40);
      for (let b = 0; b < body.length; b++) body[b] = next() % 3 === 0 ? next() & 0xff : next() % 16;
      const e = entry(sig, body);
      if (next() % 10 === 0) e[2] = next() & 0xff; // a wrong length byte
      parts.push(e);
    }
    return Buffer.concat(parts);
  }

  test('10,000 random areas give an answer or a typed fs.corrupt', async () => {
    let typed = 0;
    for (let seed = 1; seed <= 10_000; seed++) {
      const next = prng(seed);
      const areas = Array.from({ length: 4 }, () => randomArea(next));
      const read = async (block: number): Promise<ByteView> => view(areas[block % areas.length]!, block * 2048);
      try {
        const rr = await parseRockRidge(view(areas[0]!), next() % 3, read);
        expect(typeof rr.relocated).toBe('boolean');
      } catch (err) {
        expect([seed, (err as { code?: string }).code]).toEqual([seed, 'fs.corrupt']);
        typed++;
      }
    }
    expect(typed).toBeGreaterThan(0);
  });
});
