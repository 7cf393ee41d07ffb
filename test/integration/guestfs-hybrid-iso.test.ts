/**
 * A hybrid install ISO (xorriso with an appended EFI partition) carries both ISO 9660 across
 * the whole disk and a partition table: without `:N` the ISO is read, as blkid reports it;
 * `FILE:N` still reaches the partition.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openTargetFilesystem } from '../../src/guestfs/target.js';

let dir: string;
let iso: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'virtkit-hybrid-'));
  mkdirSync(join(dir, 'tree'));
  writeFileSync(join(dir, 'tree', 'on-the-iso.txt'), 'iso\n');
  execFileSync('mkfs.vfat', ['-C', join(dir, 'efi.img'), '2048'], { stdio: 'ignore' });
  execFileSync('mcopy', ['-i', join(dir, 'efi.img'), join(dir, 'tree', 'on-the-iso.txt'), '::/ON-EFI.TXT']);
  iso = join(dir, 'hybrid.iso');
  execFileSync('xorriso', ['-as', 'mkisofs', '-R', '-J', '-o', iso, '-append_partition', '2', '0xef',
    join(dir, 'efi.img'), join(dir, 'tree')], { stdio: 'ignore' });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the whole-disk ISO 9660 wins over the partitions when no partition is named', async () => {
  const whole = await openTargetFilesystem(iso);
  try {
    expect(whole.fs.info.type).toBe('iso9660');
    expect(await whole.fs.readdir('/')).toEqual([expect.objectContaining({ name: 'on-the-iso.txt' })]);
  } finally {
    await whole.close();
  }
  const efi = await openTargetFilesystem(`${iso}:2`);
  try {
    expect(efi.fs.info.type).toMatch(/fat|vfat/);
    expect((await efi.fs.readdir('/')).map((e) => e.name.toUpperCase())).toEqual(['ON-EFI.TXT']);
  } finally {
    await efi.close();
  }
});
