import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { PcapRecordCounter, carriesVnetHeader, netdumpRefusal } from './observability-netdump.js';
import { PcapVnetHeaderStripper } from './observability-pcap-vnet.js';
import type { NicDefinition } from '../conf/index.js';

function pcap(sizes: number[], little = true): Buffer {
  const global = Buffer.alloc(24);
  if (little) global.writeUInt32LE(0xa1b2c3d4, 0); else global.writeUInt32BE(0xa1b2c3d4, 0);
  const parts = [global];
  for (const n of sizes) {
    const h = Buffer.alloc(16);
    if (little) { h.writeUInt32LE(n, 8); h.writeUInt32LE(n, 12); } else { h.writeUInt32BE(n, 8); h.writeUInt32BE(n, 12); }
    parts.push(h, Buffer.alloc(n, 0xab));
  }
  return Buffer.concat(parts);
}

/** Feeds `bytes` in chunks of the given sizes (cycled); returns the bytes accepted. */
function feed(counter: PcapRecordCounter, bytes: Buffer, chunk: number[]): number {
  let used = 0;
  let i = 0;
  while (used < bytes.length) {
    const n = chunk[i++ % chunk.length]!;
    const part = bytes.subarray(used, used + n);
    const took = counter.accept(part);
    used += took;
    if (took < part.length) break;
  }
  return used;
}

describe('PcapRecordCounter', () => {
  it('counts records whatever the chunking, in either byte order', () => {
    for (const little of [true, false]) {
      const file = pcap([60, 342, 0, 1514], little);
      for (const chunks of [[1], [7, 3], [16], [24, 16, 60], [100000]]) {
        const c = new PcapRecordCounter();
        expect(feed(c, file, chunks)).toBe(file.length);
        expect(c.records).toBe(4);
      }
    }
  });

  it('stops at exactly the limit: the bytes of the first N records', () => {
    const file = pcap([60, 342, 90]);
    const c = new PcapRecordCounter(2);
    expect(feed(c, file, [5, 11])).toBe(24 + 16 + 60 + 16 + 342);
    expect(c.done).toBe(true);
  });

  it('refuses what is not pcap, and absurd record sizes, with a typed error', () => {
    expect(() => new PcapRecordCounter().accept(Buffer.alloc(24))).toThrow(/not pcap/);
    const huge = pcap([]);
    const h = Buffer.alloc(16);
    h.writeUInt32LE(1 << 30, 8);
    expect(() => new PcapRecordCounter().accept(Buffer.concat([huge, h]))).toThrow(/claims/);
  });

  it('fuzz: random bytes and mutated captures end in a count or a typed error', () => {
    let seed = 99;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const base = pcap([60, 342, 0, 1514, 64]);
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(base);
      for (let e = 0; e < 1 + rand(8); e++) bytes[rand(bytes.length)] = rand(256);
      const c = new PcapRecordCounter(rand(2) === 0 ? Infinity : 1 + rand(5));
      try {
        feed(c, bytes.subarray(0, rand(bytes.length + 1)), [1 + rand(64)]);
        expect(c.records).toBeGreaterThanOrEqual(0);
      } catch (err) {
        expect(isVirtkitError(err)).toBe(true);
      }
    }
  });
});

describe('netdumpRefusal', () => {
  it('refuses a vhost back end, where QEMU does not see the packets', () => {
    const nic: NicDefinition = { id: 'net0', model: 'virtio', mac: '52:54:00:00:00:01', network: 'user', hostfwd: [] };
    expect(netdumpRefusal(nic)).toBeUndefined();
    expect(netdumpRefusal({ ...nic, network: 'lan', vhost: 'on' })?.code).toBe('operation.unsupported');
    expect(netdumpRefusal({ ...nic, network: 'lan', vhost: 'auto' })?.code).toBe('operation.unsupported');
    expect(netdumpRefusal({ ...nic, network: 'lan', vhost: 'off' })).toBeUndefined();
  });
});

describe('PcapVnetHeaderStripper', () => {
  /** A capture as QEMU 7.2's filter-dump writes it on a virtio tap: 12 header bytes, then the frame. */
  function withVnet(frames: Buffer[]): Buffer {
    const global = Buffer.alloc(24);
    global.writeUInt32LE(0xa1b2c3d4, 0);
    const parts: Uint8Array[] = [global];
    for (const f of frames) {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(f.length + 12, 8);
      h.writeUInt32LE(f.length + 12, 12);
      parts.push(h, Buffer.alloc(12, 0xee), f);
    }
    return Buffer.concat(parts);
  }

  it('writes each frame without its virtio-net header, whatever the chunking', () => {
    const frames = [Buffer.alloc(60, 1), Buffer.alloc(342, 2), Buffer.alloc(1514, 3)];
    const plain = Buffer.concat([pcap([60, 342, 1514]).subarray(0, 24), ...frames.flatMap((f) => {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(f.length, 8);
      h.writeUInt32LE(f.length, 12);
      return [h, f];
    })]);
    const file = withVnet(frames);
    for (const size of [1, 7, 16, 100, 100000]) {
      const s = new PcapVnetHeaderStripper();
      const out: Uint8Array[] = [];
      for (let at = 0; at < file.length; at += size) out.push(s.push(file.subarray(at, at + size)));
      expect(Buffer.concat(out).equals(plain)).toBe(true);
    }
  });

  it('applies to virtio NICs on a virtkit network only', () => {
    const nic: NicDefinition = { id: 'net0', model: 'virtio', mac: '52:54:00:00:00:01', network: 'user', hostfwd: [] };
    expect(carriesVnetHeader(nic)).toBe(false);
    expect(carriesVnetHeader({ ...nic, network: 'lan', vhost: 'off' })).toBe(true);
    expect(carriesVnetHeader({ ...nic, network: 'lan', model: 'e1000' })).toBe(false);
  });

  it('fuzz: mutated captures end in bytes or a typed error', () => {
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const base = withVnet([Buffer.alloc(60), Buffer.alloc(5), Buffer.alloc(342)]);
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(base);
      for (let e = 0; e < 1 + rand(8); e++) bytes[rand(bytes.length)] = rand(256);
      const s = new PcapVnetHeaderStripper();
      try {
        const cut = bytes.subarray(0, rand(bytes.length + 1));
        const size = 1 + rand(64);
        let written = 0;
        for (let at = 0; at < cut.length; at += size) written += s.push(cut.subarray(at, at + size)).length;
        expect(written).toBeLessThanOrEqual(bytes.length);
      } catch (err) {
        expect(isVirtkitError(err)).toBe(true);
      }
    }
  });
});
