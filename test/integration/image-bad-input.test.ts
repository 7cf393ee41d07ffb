/**
 * Broken and hostile images: each gives `image.corrupt` or `image.unsupported` naming the field
 * or offset, in bounded time. Images start as real qemu-img output and are then damaged.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_CHAIN_DEPTH, openImage } from '../../src/storage/image/index.js';
import { isVirtkitError, type VirtkitError } from '../../src/util/errors.js';
import { qemuImg, qemuIo, tempDir } from './image-qemu.js';

const { dir, cleanup } = tempDir('image-bad');
afterAll(cleanup);

async function failureOf(path: string, format = 'qcow2', readAll = true): Promise<VirtkitError> {
  try {
    const img = await openImage(path, { format });
    try {
      if (readAll) await img.read(0, img.size);
    } finally {
      await img.close();
    }
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error(`expected ${path} to be refused`);
}

let n = 0;
/** A fresh 1 MiB qcow2 (64 KiB clusters) with data at 0, as bytes, plus where its tables are. */
function dataImage(compat = '1.1'): { bytes: Buffer; l1: number; l2: number } {
  const f = join(dir, `src-${n++}.qcow2`);
  qemuImg('create', '-f', 'qcow2', '-o', `compat=${compat}`, f, '1M');
  qemuIo(f, 'qcow2', 'write -P 0x61 0 128k');
  const bytes = readFileSync(f);
  const l1 = Number(bytes.readBigUInt64BE(40));
  const l2 = Number(bytes.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  return { bytes, l1, l2 };
}

function save(bytes: Buffer): string {
  const f = join(dir, `bad-${n++}.qcow2`);
  writeFileSync(f, bytes);
  return f;
}

describe('corrupt tables', () => {
  it('an L2 table past the end of the file', async () => {
    const { bytes, l1 } = dataImage();
    bytes.writeBigUInt64BE(0x8000000010000000n, l1);
    const err = await failureOf(save(bytes));
    expect(err.code).toBe('image.corrupt');
    expect(err.data).toMatchObject({ field: 'l2_table', offset: 0x10000000 });
  });

  it('a misaligned L2 table offset', async () => {
    const { bytes, l1, l2 } = dataImage();
    bytes.writeBigUInt64BE(BigInt(l2 + 512), l1);
    const err = await failureOf(save(bytes));
    expect(err.code).toBe('image.corrupt');
    expect(err.data).toMatchObject({ field: 'l1_table', offset: l1 });
  });

  it('an L2 table that is the L1 table (a table loop)', async () => {
    const { bytes, l1 } = dataImage();
    bytes.writeBigUInt64BE(BigInt(l1), l1);
    const err = await failureOf(save(bytes));
    expect(err.code).toBe('image.corrupt');
    expect(err.data['field']).toBe('l1_table');
  });

  it('a misaligned data cluster offset', async () => {
    const { bytes, l2 } = dataImage();
    bytes.writeBigUInt64BE(bytes.readBigUInt64BE(l2) + 4096n, l2);
    const err = await failureOf(save(bytes));
    expect(err.code).toBe('image.corrupt');
    expect(err.data).toMatchObject({ field: 'l2_entry', offset: l2 });
  });

  it('a zero-cluster flag in a version 2 image', async () => {
    const { bytes, l2 } = dataImage('0.10');
    bytes.writeBigUInt64BE(bytes.readBigUInt64BE(l2) | 1n, l2);
    const err = await failureOf(save(bytes));
    expect(err.code).toBe('image.corrupt');
    expect(err.data['field']).toBe('l2_entry');
  });

  it('a compressed cluster that does not inflate, or points past the end', async () => {
    const { bytes, l2 } = dataImage();
    const host = bytes.readBigUInt64BE(l2) & 0x00fffffffffffe00n;
    bytes.writeBigUInt64BE((1n << 62n) | host, l2); // points at the 0x61 data: not a deflate stream
    expect((await failureOf(save(bytes))).code).toBe('image.corrupt');
    bytes.writeBigUInt64BE((1n << 62n) | 0x3fffffffffffn, l2);
    const err = await failureOf(save(bytes));
    expect(err.code).toBe('image.corrupt');
    expect(err.data['field']).toBe('l2_entry');
  });

  it('a truncated file (the header only)', async () => {
    const { bytes } = dataImage();
    expect((await failureOf(save(bytes.subarray(0, 50)))).data['field']).toBe('header');
    expect((await failureOf(save(bytes.subarray(0, 4096)))).data['field']).toBe('l1_table_offset');
  });
});

describe('refused features', () => {
  it('encrypted images (LUKS)', async () => {
    const f = join(dir, 'enc.qcow2');
    // qemu-img times its key derivation in CPU time; on a loaded machine that measurement can
    // fail ("Unable to get accurate CPU usage"): try again with a longer target.
    for (const iterTime of [10, 100, 500]) {
      try {
        qemuImg('create', '-f', 'qcow2', '--object', 'secret,id=sec0,data=123456', '-o', `encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=${iterTime}`, f, '1M');
        break;
      } catch (err) {
        if (iterTime === 500 || !/accurate CPU usage/.test(String(err))) throw err;
      }
    }
    const err = await failureOf(f, 'qcow2', false);
    expect(err.code).toBe('image.unsupported');
    expect(err.data['field']).toBe('crypt_method');
  });

  it('an external data file', async () => {
    const f = join(dir, 'ext.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', `data_file=${join(dir, 'ext.data')}`, f, '1M');
    const err = await failureOf(f, 'qcow2', false);
    expect(err.code).toBe('image.unsupported');
    expect(['incompatible_features', 'data_file']).toContain(err.data['field']);
  });

  it('zstd-compressed clusters: the image opens, reading a compressed cluster is refused', async () => {
    const raw = join(dir, 'z.raw');
    const f = join(dir, 'z.qcow2');
    writeFileSync(raw, Buffer.alloc(1024 * 1024, 0x61));
    qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', raw, f);
    const img = await openImage(f, { format: 'qcow2' });
    const specific = img.info()['format-specific'];
    expect(specific?.type === 'qcow2' ? specific.data['compression-type'] : null).toBe('zstd');
    await img.close();
    const err = await failureOf(f);
    expect(err.code).toBe('image.unsupported');
    expect(err.data['field']).toBe('compression_type');
  });

  it('an unknown format name', async () => {
    const err = await failureOf(join(dir, 'whatever.img'), 'vmdk-ish', false);
    expect(err.code).toBe('image.unsupported');
    expect(err.data['field']).toBe('format');
  });
});

describe('backing chains', () => {
  it('a loop a -> b -> a', async () => {
    const a = join(dir, 'loop-a.qcow2');
    const b = join(dir, 'loop-b.qcow2');
    qemuImg('create', '-f', 'qcow2', b, '1M');
    qemuImg('create', '-f', 'qcow2', '-b', b, '-F', 'qcow2', a);
    qemuImg('rebase', '-u', '-f', 'qcow2', '-b', a, '-F', 'qcow2', b);
    const err = await failureOf(a, 'qcow2', false);
    expect(err.code).toBe('image.unsupported');
    expect(err.data['field']).toBe('backing_file');
  });

  it(`a chain deeper than ${MAX_CHAIN_DEPTH}`, async () => {
    let prev = join(dir, 'deep-0.qcow2');
    qemuImg('create', '-f', 'qcow2', prev, '64k');
    for (let i = 1; i <= MAX_CHAIN_DEPTH + 1; i++) {
      const next = join(dir, `deep-${i}.qcow2`);
      qemuImg('create', '-f', 'qcow2', '-u', '-b', prev, '-F', 'qcow2', next, '64k');
      prev = next;
    }
    const err = await failureOf(prev, 'qcow2', false);
    expect(err.code).toBe('image.unsupported');
    expect(err.data).toMatchObject({ field: 'backing_file', depth: MAX_CHAIN_DEPTH + 1 });
    // One layer less is fine.
    const ok = await openImage(join(dir, `deep-${MAX_CHAIN_DEPTH}.qcow2`), { format: 'qcow2' });
    expect(Buffer.from(await ok.read(0, 16)).every((b) => b === 0)).toBe(true);
    await ok.close();
  });

  it('a backing file that is a device node or a FIFO', async () => {
    for (const target of ['/dev/zero', '/dev/null']) {
      const f = join(dir, `dev-${n++}.qcow2`);
      qemuImg('create', '-f', 'qcow2', '-u', '-b', target, '-F', 'raw', f, '1M');
      const err = await failureOf(f, 'qcow2', false);
      expect(err.code).toBe('image.unsupported');
      expect(err.data['path']).toBe(target);
    }
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const f = join(dir, 'fifo-top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-u', '-b', fifo, '-F', 'raw', f, '1M');
    expect((await failureOf(f, 'qcow2', false)).code).toBe('image.unsupported');
  });

  it('a missing backing file, and one that is not a local path', async () => {
    const f = join(dir, 'missing-top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-u', '-b', join(dir, 'nope.qcow2'), '-F', 'qcow2', f, '1M');
    expect((await failureOf(f, 'qcow2', false)).code).toBe('image.not-found');
    const g = join(dir, 'nbd-top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1:10809/x', '-F', 'raw', g, '1M');
    const err = await failureOf(g, 'qcow2', false);
    expect(err.code).toBe('image.unsupported');
    expect(err.data['field']).toBe('backing_file');
  });
});
