/** The directory pool against real files and the real qemu-img. */
import { mkdtemp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQemuImg } from '../qemu-img.js';
import { isVirtkitError } from '../../util/errors.js';
import { DirPool } from './dir-pool.js';

let root: string;
let dir: string;
let pool: DirPool;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (isVirtkitError(err)) return err.code;
    throw err;
  }
}

/**
 * qemu-img no longer writes a backing file without its format; older images exist, though. Turn
 * the backing-format header extension into an unknown one (which readers skip) to make one.
 */
async function forgetBackingFormat(path: string): Promise<void> {
  const bytes = await readFile(path);
  const at = bytes.subarray(0, 65536).indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
  if (at < 0) throw new Error('no backing format extension found');
  bytes.writeUInt32BE(0x7a7a7a7a, at);
  await writeFile(path, bytes);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vk-pool-'));
  dir = join(root, 'pool');
  await mkdir(dir);
  // Opened through a symbolic link: the pool works on the real path.
  await symlink(dir, join(root, 'via-link'));
  pool = await DirPool.open(join(root, 'via-link'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('DirPool', () => {
  it('opens only directories', async () => {
    expect(pool.path).toBe(dir);
    await writeFile(join(root, 'file'), '');
    expect(await codeOf(DirPool.open(join(root, 'file')))).toBe('pool.invalid');
    expect(await codeOf(DirPool.open(join(root, 'missing')))).toBe('pool.invalid');
  });

  it('creates volumes and backed overlays, and lists only files whose names declare a format', async () => {
    await pool.create({ name: 'base.qcow2', format: 'qcow2', capacity: 1 << 20 });
    const top = await pool.create({ name: 'top.qcow2', format: 'qcow2', capacity: 2 << 20, backing: 'base.qcow2' });
    expect(top.backing).toEqual({ volume: 'base.qcow2', path: join(dir, 'base.qcow2'), format: 'qcow2' });
    await writeFile(join(dir, 'README'), 'x');
    await mkdir(join(dir, 'sub.raw'));
    expect((await pool.list()).map((v) => v.name)).toEqual(['base.qcow2', 'top.qcow2']);
    expect(await pool.chain('top.qcow2')).toEqual(['top.qcow2', 'base.qcow2']);
    expect(await pool.dependents('base.qcow2')).toEqual(['top.qcow2']);
    expect(await codeOf(pool.create({ name: 'r.raw', format: 'raw', capacity: 1, backing: 'base.qcow2' }))).toBe('argument.invalid');
    expect(await codeOf(pool.info('sub.raw'))).toBe('volume.invalid-name');
    // Nothing half-made stays behind.
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses chains that leave the pool, lack a recorded backing format, or loop', async () => {
    const outside = join(root, 'outside.qcow2');
    await runQemuImg(['create', '-q', '-f', 'qcow2', outside, '1M']);
    await runQemuImg(['create', '-q', '-f', 'qcow2', '-b', outside, '-F', 'qcow2', join(dir, 'escape.qcow2'), '1M']);
    expect(await codeOf(pool.chain('escape.qcow2'))).toBe('image.unsupported');
    expect((await pool.info('escape.qcow2')).backing).toEqual({ path: outside, format: 'qcow2' });

    await runQemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'base.qcow2', '-F', 'qcow2', join(dir, 'noformat.qcow2'), '1M']);
    await forgetBackingFormat(join(dir, 'noformat.qcow2'));
    expect(await codeOf(pool.chain('noformat.qcow2'))).toBe('image.unsupported');
    await runQemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'base.qcow2', '-F', 'raw', join(dir, 'wrongformat.qcow2'), '1M']);
    expect(await codeOf(pool.chain('wrongformat.qcow2'))).toBe('image.unsupported');

    await runQemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'loop-b.qcow2', '-F', 'qcow2', join(dir, 'loop-a.qcow2'), '1M']);
    await runQemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'loop-a.qcow2', '-F', 'qcow2', join(dir, 'loop-b.qcow2'), '1M']);
    expect(await codeOf(pool.chain('loop-a.qcow2'))).toBe('image.corrupt');
    // None of them can serve as a backing volume.
    expect(await codeOf(pool.create({ name: 'o.qcow2', format: 'qcow2', capacity: 1, backing: 'loop-b.qcow2' }))).toBe('image.corrupt');
  });

  it('lists an unreadable volume with its problem instead of failing the listing', async () => {
    await writeFile(join(dir, 'junk.qcow2'), 'not a qcow2 header');
    const junk = (await pool.list()).find((v) => v.name === 'junk.qcow2');
    expect(junk?.problem).toMatch(/^image\.(corrupt|unsupported):/);
    expect(await codeOf(pool.info('junk.qcow2'))).toMatch(/^image\./);
  });

  it('replaces content only through a committed upload, and an aborted one leaves nothing', async () => {
    await pool.create({ name: 'data.raw', format: 'raw', capacity: 4096 });
    const up = await pool.beginUpload('data.raw');
    up.stream.end(Buffer.from('hello'));
    expect((await up.commit()).capacity).toBe(5);
    const aborted = await pool.beginUpload('data.raw');
    aborted.stream.write(Buffer.from('partial'));
    await aborted.abort();
    expect((await pool.info('data.raw')).capacity).toBe(5);
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses a qcow2 upload that does not parse, keeping the volume as it was', async () => {
    const before = await pool.info('base.qcow2');
    const up = await pool.beginUpload('base.qcow2');
    up.stream.end(Buffer.from('QFI\xfbthis is not a qcow2 header at all'));
    expect(await codeOf(up.commit())).toMatch(/^image\.(corrupt|unsupported)$/);
    expect(await pool.info('base.qcow2')).toEqual(before);
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses symbolic links as volumes, whatever they point at', async () => {
    await symlink('/etc/passwd', join(dir, 'passwd.raw'));
    await symlink('data.raw', join(dir, 'inside.raw'));
    for (const name of ['passwd.raw', 'inside.raw']) {
      expect(await codeOf(pool.info(name))).toBe('volume.invalid-name');
      expect(await codeOf(pool.openRead(name))).toBe('volume.invalid-name');
      expect(await codeOf(pool.beginUpload(name))).toBe('volume.invalid-name');
      expect(await codeOf(pool.delete(name))).toBe('volume.invalid-name');
    }
    expect(await codeOf(pool.create({ name: 'passwd.raw', format: 'raw', capacity: 1 }))).toBe('volume.exists');
  });
});
