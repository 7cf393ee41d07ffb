import { deflateSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { readZisofs } from './zisofs.js';

const BLOCK = 1 << 15;

/** A zisofs stream of `plain`: header, pointer table, zlib blocks (all-zero blocks left empty). */
function compress(plain: Buffer, log2 = 15): Buffer {
  const bs = 2 ** log2;
  const blocks: Buffer[] = [];
  for (let at = 0; at < plain.length; at += bs) {
    const chunk = plain.subarray(at, at + bs);
    blocks.push(chunk.every((b) => b === 0) ? Buffer.alloc(0) : deflateSync(chunk));
  }
  const header = Buffer.alloc(16);
  header.set([0x37, 0xe4, 0x53, 0x96, 0xc9, 0xdb, 0xd6, 0x07]);
  header.writeUInt32LE(plain.length, 8);
  header[12] = 4;
  header[13] = log2;
  const table = Buffer.alloc((blocks.length + 1) * 4);
  let pos = 16 + table.length;
  blocks.forEach((b, i) => {
    table.writeUInt32LE(pos, i * 4);
    pos += b.length;
  });
  table.writeUInt32LE(pos, blocks.length * 4);
  return Buffer.concat([header, table, ...blocks]);
}

function plainData(): Buffer {
  const b = Buffer.alloc(3 * BLOCK + 1000);
  for (let i = 0; i < BLOCK; i++) b[i] = (i * 7) & 0xff;
  // Block 1 stays zero (an empty block); blocks 2 and 3 hold text.
  b.write('hello '.repeat(6000), 2 * BLOCK);
  return b;
}

function reader(stored: Buffer): (o: number, l: number) => Promise<Uint8Array> {
  return async (o, l) => stored.subarray(o, o + l);
}

describe('zisofs', () => {
  test('whole files and ranges across blocks inflate to the original', async () => {
    const plain = plainData();
    const stored = compress(plain);
    const z = { realSize: plain.length };
    expect(Buffer.from(await readZisofs(z, stored.length, reader(stored), 0, plain.length, 0)).equals(plain)).toBe(true);
    for (const [off, len] of [[BLOCK - 10, 20], [BLOCK + 5, 2 * BLOCK], [plain.length - 3, 100], [plain.length, 10]] as const) {
      const got = Buffer.from(await readZisofs(z, stored.length, reader(stored), off, len, 0));
      expect([off, got.equals(plain.subarray(off, off + len))]).toEqual([off, true]);
    }
  });

  test('damaged headers, pointers and blocks are fs.corrupt', async () => {
    const plain = plainData();
    const good = compress(plain);
    const z = { realSize: plain.length };
    const damage: [string, (b: Buffer) => void][] = [
      ['magic', (b) => { b[0] = 0; }],
      ['block size', (b) => { b[13] = 20; }],
      ['header size', (b) => { b[12] = 1; }],
      ['size mismatch', (b) => { b.writeUInt32LE(5, 8); }],
      ['pointer beyond the data', (b) => { b.writeUInt32LE(0x7fffffff, 16 + 4); }],
      ['pointers backwards', (b) => { b.writeUInt32LE(16, 16 + 4); }],
      ['garbage block', (b) => { b.fill(0x55, b.readUInt32LE(16 + 8), b.readUInt32LE(16 + 12)); }],
    ];
    for (const [what, hurt] of damage) {
      const bad = Buffer.from(good);
      hurt(bad);
      await expect(readZisofs(z, bad.length, reader(bad), 0, plain.length, 99), what)
        .rejects.toMatchObject({ code: 'fs.corrupt', data: { structure: 'iso9660 zisofs data', offset: 99 } });
    }
    // A block that inflates to more than the block size is cut off, never allocated whole.
    const bomb = compress(Buffer.alloc(BLOCK, 1));
    const big = deflateSync(Buffer.alloc(64 * BLOCK, 1));
    const table = bomb.readUInt32LE(16);
    const forged = Buffer.concat([bomb.subarray(0, table), big]);
    forged.writeUInt32LE(table + big.length, 20);
    await expect(readZisofs({ realSize: BLOCK }, forged.length, reader(forged), 0, BLOCK, 0)).rejects.toMatchObject({ code: 'fs.corrupt' });
    await expect(readZisofs(z, 8, reader(good), 0, 10, 0)).rejects.toMatchObject({ code: 'fs.corrupt' });
  });
});
