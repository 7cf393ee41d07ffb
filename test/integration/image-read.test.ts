/**
 * The native block layer against QEMU: images made by the real qemu-img / qemu-io with many
 * option combinations, read natively and compared byte for byte with `qemu-img convert -O raw`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/storage/image/index.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { expectSameAsQemu, qemuImg, qemuIo, tempDir } from './image-qemu.js';

const { dir, cleanup } = tempDir('image-read');
afterAll(cleanup);

/** Writes at odd offsets that cross cluster and subcluster boundaries, and a zeroed range over data. */
const DATA_WRITES = [
  'write -P 0xab 0 4k',
  'write -P 0x11 70000 200000',
  'write -P 0x5c 1m 1',
  'write -P 0x77 2047k 3k',
  'write -P 0x99 1500k 300k',
];

describe('qcow2 read through the native layer matches qemu-img', () => {
  for (const compat of ['0.10', '1.1']) {
    for (const cluster of ['512', '4k', '64k', '2M']) {
      it(`compat=${compat} cluster_size=${cluster}`, async () => {
        const f = join(dir, `c${compat}-${cluster}.qcow2`);
        qemuImg('create', '-f', 'qcow2', '-o', `compat=${compat},cluster_size=${cluster}`, f, '3M');
        qemuIo(f, 'qcow2', ...DATA_WRITES, 'write -z 1536k 64k', 'write -z 2560k 512k');
        await expectSameAsQemu(f, 'qcow2', dir);
      });
    }
  }

  it('zero clusters hide the backing file (write -z on a v3 overlay)', async () => {
    const base = join(dir, 'zb-base.qcow2');
    const top = join(dir, 'zb-top.qcow2');
    qemuImg('create', '-f', 'qcow2', base, '2M');
    qemuIo(base, 'qcow2', 'write -P 0x42 0 2M');
    qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top);
    qemuIo(top, 'qcow2', 'write -z 64k 128k', 'write -z 1m 1k', 'write -P 0x24 300k 10k');
    await expectSameAsQemu(top, 'qcow2', dir);
    const img = await openImage(top, { format: 'qcow2' });
    const map = await img.blockStatus(0, img.size);
    expect(map.some((e) => e.zero && e.offset <= 64 * 1024 && e.offset + e.length >= 192 * 1024)).toBe(true);
    await img.close();
  });

  for (const cluster of ['64k', '2M']) {
    it(`extended_l2=on cluster_size=${cluster} over a backing file`, async () => {
      const base = join(dir, `el2-base-${cluster}.qcow2`);
      const top = join(dir, `el2-top-${cluster}.qcow2`);
      qemuImg('create', '-f', 'qcow2', base, '4M');
      qemuIo(base, 'qcow2', 'write -P 0x33 0 4M');
      qemuImg('create', '-f', 'qcow2', '-o', `extended_l2=on,cluster_size=${cluster}`, '-b', base, '-F', 'qcow2', top);
      // Subcluster-sized writes: 2 KiB subclusters at 64k, 64 KiB at 2M.
      qemuIo(top, 'qcow2', 'write -P 0xe1 2k 2k', 'write -P 0xe2 100k 7k', 'write -z 8k 4k', 'write -z 1m 192k',
        'write -P 0xe3 3m 1k');
      await expectSameAsQemu(top, 'qcow2', dir);
    });
  }

  for (const [compat, cluster] of [['1.1', '64k'], ['1.1', '4k'], ['0.10', '64k'], ['1.1', '2M']] as const) {
    it(`compressed clusters (qemu-img convert -c, compat=${compat}, cluster_size=${cluster})`, async () => {
      const src = join(dir, `csrc-${compat}-${cluster}.raw`);
      const dst = join(dir, `comp-${compat}-${cluster}.qcow2`);
      // Compressible text with variation, some random-ish bytes (stored uncompressed by QEMU), and holes.
      const buf = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < 2 * 1024 * 1024; i++) buf[i] = (i * 7 + (i >> 12)) & 0xff;
      let x = 1;
      for (let i = 3 * 1024 * 1024; i < 3 * 1024 * 1024 + 300_000; i++) { x = (x * 48271) % 2147483647; buf[i] = x & 0xff; }
      buf.write('virtkit '.repeat(4096), 4 * 1024 * 1024);
      writeFileSync(src, buf);
      qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compat=${compat},cluster_size=${cluster}`, src, dst);
      await expectSameAsQemu(dst, 'qcow2', dir);
      const img = await openImage(dst, { format: 'qcow2' });
      expect((await img.mapExtents(0, img.size)).some((e) => e.compressed)).toBe(true);
      await img.close();
    });
  }

  it('a backing chain three deep with -F, layers of different sizes and a raw base', async () => {
    const base = join(dir, 'chain-base.raw');
    const mid = join(dir, 'chain-mid.qcow2');
    const mid2 = join(dir, 'chain-mid2.qcow2');
    const top = join(dir, 'chain-top.qcow2');
    qemuImg('create', '-f', 'raw', base, '1M');
    qemuIo(base, 'raw', 'write -P 0x01 0 1M');
    qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'raw', mid, '2M');
    qemuIo(mid, 'qcow2', 'write -P 0x02 512k 1M');
    qemuImg('create', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4k', '-b', 'chain-mid.qcow2', '-F', 'qcow2', mid2, '3M');
    qemuIo(mid2, 'qcow2', 'write -P 0x03 100k 50k');
    qemuImg('create', '-f', 'qcow2', '-b', mid2, '-F', 'qcow2', top, '3M');
    qemuIo(top, 'qcow2', 'write -P 0x04 2500k 10k', 'write -z 0 4k');
    await expectSameAsQemu(top, 'qcow2', dir);
    const img = await openImage(top, { format: 'qcow2' });
    const depths = new Set((await img.mapExtents(0, img.size)).map((e) => e.depth));
    expect([...depths].sort()).toEqual([0, 1, 2, 3]);
    await img.close();
  });

  it('raw images read as they are', async () => {
    const f = join(dir, 'plain.raw');
    qemuImg('create', '-f', 'raw', f, '1M');
    qemuIo(f, 'raw', 'write -P 0xcd 1000 5000');
    await expectSameAsQemu(f, 'raw', dir);
  });
});

describe('backing files are never probed', () => {
  it('refuses a backing file without a recorded format unless the caller names it', async () => {
    const base = join(dir, 'np-base.qcow2');
    const top = join(dir, 'np-top.qcow2');
    qemuImg('create', '-f', 'qcow2', base, '1M');
    qemuIo(base, 'qcow2', 'write -P 0x5a 0 64k');
    // qemu-img 7.2 requires -F; rebase -u with an empty -F is refused too, so patch the extension away:
    // create with -F then clear the backing-format extension's type to an unknown one.
    qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top);
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(top);
    const at = bytes.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
    expect(at).toBeGreaterThan(0);
    bytes.writeUInt32BE(0x7f000001, at);
    writeFileSync(top, bytes);
    const err = await openImage(top, { format: 'qcow2' }).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'image.unsupported')).toBe(true);
    expect((err as { data: { field: string } }).data.field).toBe('backing_format');
    const img = await openImage(top, { format: 'qcow2', backingFormat: 'qcow2' });
    expect(Buffer.from(await img.read(0, 4)).toString('hex')).toBe('5a5a5a5a');
    await img.close();
  });
});

describe('vmdk read through the native layer matches qemu-img', () => {
  const src = join(dir, 'vmdk-src.raw');
  const prepareSource = (): void => {
    qemuImg('create', '-f', 'raw', src, '5M');
    qemuIo(src, 'raw', 'write -P 0x61 0 100k', 'write -P 0x62 2M 300k', 'write -P 0x63 4000k 7k');
  };
  for (const sub of ['monolithicSparse', 'streamOptimized', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
    it(`subformat=${sub} (qemu-img convert)`, async () => {
      prepareSource();
      const f = join(dir, `${sub}.vmdk`);
      qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, src, f);
      await expectSameAsQemu(f, 'vmdk', dir);
    });
  }

  it('a sparse vmdk written out of order, with zeroed grains over data', async () => {
    const f = join(dir, 'zg.vmdk');
    qemuImg('create', '-f', 'vmdk', '-o', 'zeroed_grain=on', f, '4M');
    qemuIo(f, 'vmdk', 'write -P 0x71 3M 100k', 'write -P 0x72 0 64k', 'write -P 0x73 1000k 130k', 'write -z 3M 64k');
    await expectSameAsQemu(f, 'vmdk', dir);
    const img = await openImage(f, { format: 'vmdk' });
    const map = await img.mapExtents(0, img.size);
    expect(map.some((e) => e.present && e.zero)).toBe(true);
    await img.close();
  });
});

describe('vdi read through the native layer matches qemu-img', () => {
  for (const isStatic of [false, true]) {
    it(`${isStatic ? 'fixed' : 'dynamic'} image written out of order`, async () => {
      const f = join(dir, `img-${isStatic ? 'fixed' : 'dynamic'}.vdi`);
      qemuImg('create', '-f', 'vdi', '-o', `static=${isStatic ? 'on' : 'off'}`, f, '5M');
      qemuIo(f, 'vdi', 'write -P 0x81 3M 100k', 'write -P 0x82 0 4k', 'write -P 0x83 1000k 100k', 'write -z 3M 4k');
      await expectSameAsQemu(f, 'vdi', dir);
    });
  }
});
