/**
 * VMDK and VDI specifics: a streamOptimized footer, `img info` against qemu-img, and what is
 * refused (linked clones, extents outside the descriptor's directory, VMFS extents, VMDK3,
 * VDI differencing images, damage).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/storage/image/index.js';
import { isVirtkitError, type VirtkitError } from '../../src/util/errors.js';
import { qemuImg, qemuIo, qemuRaw, tempDir } from './image-qemu.js';

const { dir, cleanup } = tempDir('image-vmdk');
afterAll(cleanup);

async function failureOf(path: string, format = 'vmdk'): Promise<VirtkitError> {
  try {
    const img = await openImage(path, { format });
    try {
      await img.read(0, img.size);
    } finally {
      await img.close();
    }
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error(`expected ${path} to be refused`);
}

function streamOptimized(name: string): string {
  const src = join(dir, `${name}.raw`);
  const f = join(dir, `${name}.vmdk`);
  qemuImg('create', '-f', 'raw', src, '2M');
  qemuIo(src, 'raw', 'write -P 0x5a 64k 200k');
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', src, f);
  return f;
}

describe('vmdk', () => {
  it('reads a streamOptimized image whose grain directory is in the footer', async () => {
    const f = streamOptimized('footer');
    const expected = qemuRaw(f, 'vmdk', dir);
    const bytes = readFileSync(f);
    // Move the header into a footer (marker, header copy, end-of-stream), as VMware writes it.
    const marker = Buffer.alloc(512);
    marker.writeUInt32LE(3, 12);
    const footer = Buffer.from(bytes.subarray(0, 512));
    bytes.writeUInt32LE(0xffffffff, 56);
    bytes.writeUInt32LE(0xffffffff, 60);
    writeFileSync(f, Buffer.concat([bytes, marker, footer, Buffer.alloc(512)]));
    const img = await openImage(f, { format: 'vmdk' });
    expect(Buffer.from(await img.read(0, img.size)).equals(expected)).toBe(true);
    await img.close();
  });

  it('img info agrees with qemu-img info', () => {
    const f = streamOptimized('info');
    const cli = resolve(import.meta.dirname, '../../bin/virtkit.js');
    const ours = JSON.parse(spawnSync(process.execPath, [cli, 'img', 'info', '--json', f], { encoding: 'utf8' }).stdout) as Record<string, unknown>;
    const theirs = JSON.parse(qemuImg('info', '--output=json', '-f', 'vmdk', f)) as Record<string, unknown>;
    for (const k of ['virtual-size', 'format', 'cluster-size', 'actual-size', 'dirty-flag']) expect(ours[k], k).toEqual(theirs[k]);
    const spec = (i: Record<string, unknown>): Record<string, unknown> => (i['format-specific'] as { data: Record<string, unknown> }).data;
    for (const k of ['cid', 'parent-cid', 'create-type']) expect(spec(ours)[k], k).toEqual(spec(theirs)[k]);
  });

  it('refuses a linked clone (a parent disk)', async () => {
    const base = join(dir, 'parent-base.vmdk');
    const child = join(dir, 'parent-child.vmdk');
    qemuImg('create', '-f', 'vmdk', base, '1M');
    qemuImg('create', '-f', 'vmdk', '-b', base, '-F', 'vmdk', child);
    const err = await failureOf(child);
    expect(err.code).toBe('image.unsupported');
    expect(err.data['field']).toBe('parentCID');
  });

  it('refuses extents outside the descriptor\'s directory and unsupported extent types', async () => {
    const cases: [string, string, string][] = [
      ['dotdot', 'RW 2048 FLAT "../etc/passwd" 0', 'extent'],
      ['absolute', 'RW 2048 FLAT "/etc/passwd" 0', 'extent'],
      ['vmfs', 'RW 2048 VMFSRDM "disk-rdm.vmdk"', 'descriptor'],
      ['noaccess', 'NOACCESS 2048 FLAT "x.raw" 0', 'descriptor'],
    ];
    for (const [name, line, field] of cases) {
      const f = join(dir, `${name}.vmdk`);
      writeFileSync(f, `# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n${line}\n`);
      const err = await failureOf(f);
      expect(err.code, name).toBe('image.unsupported');
      expect(err.data['field'], name).toBe(field);
    }
  });

  it('refuses an extent file that is a device node', async () => {
    const f = join(dir, 'dev.vmdk');
    writeFileSync(f, '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\nRW 2048 FLAT "zero-dev" 0\n');
    spawnSync('ln', ['-sf', '/dev/zero', join(dir, 'zero-dev')]);
    expect((await failureOf(f)).code).toBe('image.unsupported');
  });

  it('damaged sparse extents give typed errors with the field', async () => {
    const f = streamOptimized('damage');
    const good = readFileSync(f);
    const damage = async (edit: (b: Buffer) => void): Promise<VirtkitError> => {
      const b = Buffer.from(good);
      edit(b);
      const g = join(dir, `damaged-${Math.random().toString(36).slice(2)}.vmdk`);
      writeFileSync(g, b);
      return failureOf(g);
    };
    const gd = good.readUInt32LE(56) * 512;
    const gt = good.readUInt32LE(gd) * 512;
    const grain = good.readUInt32LE(gt + 4) * 512;
    expect((await damage((b) => b.writeUInt32LE(0x434f5744, 0))).data['field']).toBe('magic');
    expect((await damage((b) => b.writeUInt32LE(9, 4))).data['field']).toBe('version');
    expect((await damage((b) => b.writeUInt32LE(0x1000000, 20))).data['field']).toBe('grainSize');
    expect((await damage((b) => b.writeUInt32LE(0xfffff, 56))).data['field']).toBe('grain_directory');
    expect((await damage((b) => b.writeUInt32LE(0xfffffff, gd))).data['field']).toBe('grain_table');
    expect((await damage((b) => b.writeUInt32LE(7, grain))).data['field']).toBe('grain_marker');
    expect((await damage((b) => b.fill(0x41, grain + 12, grain + 40))).data['field']).toBe('compressed_grain');
    expect((await damage((b) => b.writeUInt16LE(2, 77))).data['field']).toBe('compressAlgorithm');
  });
});

describe('vdi', () => {
  it('img info agrees with qemu-img info', () => {
    const f = join(dir, 'info.vdi');
    qemuImg('create', '-f', 'vdi', f, '3M');
    qemuIo(f, 'vdi', 'write -P 0x11 1M 10k');
    const cli = resolve(import.meta.dirname, '../../bin/virtkit.js');
    const ours = JSON.parse(spawnSync(process.execPath, [cli, 'img', 'info', '--json', f], { encoding: 'utf8' }).stdout) as Record<string, unknown>;
    const theirs = JSON.parse(qemuImg('info', '--output=json', '-f', 'vdi', f)) as Record<string, unknown>;
    for (const k of ['virtual-size', 'format', 'cluster-size', 'actual-size', 'dirty-flag']) expect(ours[k], k).toEqual(theirs[k]);
  });

  it('damaged headers and block maps give typed errors with the field', async () => {
    const f = join(dir, 'damage.vdi');
    qemuImg('create', '-f', 'vdi', f, '3M');
    qemuIo(f, 'vdi', 'write -P 0x11 0 10k');
    const good = readFileSync(f);
    const damage = async (edit: (b: Buffer) => void): Promise<VirtkitError> => {
      const b = Buffer.from(good);
      edit(b);
      const g = join(dir, `damaged-${Math.random().toString(36).slice(2)}.vdi`);
      writeFileSync(g, b);
      return failureOf(g, 'vdi');
    };
    expect((await damage((b) => b.writeUInt32LE(0, 0x40))).data['field']).toBe('signature');
    expect((await damage((b) => b.writeUInt32LE(0x20000, 0x44))).data['field']).toBe('version');
    expect((await damage((b) => b.writeUInt32LE(3, 0x178))).data['field']).toBe('block_size');
    expect((await damage((b) => b.writeUInt32LE(0x7fffffff, 0x154))).data['field']).toBe('offset_bmap');
    expect((await damage((b) => b.writeUInt32LE(0x10000000, 0x170 + 4))).data['field']).toBe('disk_size');
    const parent = await damage((b) => b.fill(7, 0x1b8, 0x1c8));
    expect(parent.code).toBe('image.unsupported');
    expect(parent.data['field']).toBe('uuid_parent');
    const truncated = join(dir, 'truncated.vdi');
    writeFileSync(truncated, good.subarray(0, 100));
    expect((await failureOf(truncated, 'vdi')).data['field']).toBe('header');
  });
});
