/**
 * Partition tables made by sfdisk (MBR with an extended partition and logicals) and sgdisk
 * (GPT), compared with sfdisk's own JSON view; a GPT with a damaged primary read from its
 * backup; ext filesystems inside partitions reached as FILE:N through `virtkit fs` and
 * `virtkit inspect`, on raw and qcow2 images.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { runCli as cli } from '../helpers/run-cli.js';
import { readPartitionTable, type PartitionTable } from '../../src/guestfs/partition/index.js';
import { RawImage } from '../../src/storage/image/raw.js';
import { isVirtkitError } from '../../src/util/errors.js';
import {
  PatchedMemoryDevice, buildExtImage, buildSourceTree, removeDir, run, tempDir,
} from './guestfs-fixtures.js';

let work: string;
let fsImage: string;

beforeAll(async () => {
  work = await tempDir('guestfs-part');
  const src = join(work, 'src');
  await buildSourceTree(src, { manyFiles: 20, tripleIndirect: false });
  fsImage = join(work, 'fs.img');
  await buildExtImage(fsImage, src, { name: 'rootfs', type: 'ext4', blockSize: 4096 }, 8);
});

afterAll(async () => {
  await removeDir(work);
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Copies the ext image into the disk at a byte offset. */
async function placeFilesystem(disk: string, offset: number): Promise<void> {
  const data = await readFile(fsImage);
  const fh = await open(disk, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

async function sfdiskJson(disk: string): Promise<{ partitiontable: { label: string; partitions: { node: string; start: number; size: number; type: string; uuid?: string; name?: string }[] } }> {
  const { stdout } = await run('sfdisk', ['--json', disk]);
  return JSON.parse(stdout) as never;
}

async function table(disk: string): Promise<PartitionTable> {
  const dev = await RawImage.open(disk);
  try {
    return await readPartitionTable(dev);
  } finally {
    await dev.close();
  }
}

describe('MBR with an extended partition and logicals', () => {
  let disk: string;

  beforeAll(async () => {
    disk = join(work, 'mbr.img');
    await run('truncate', ['-s', '64M', disk]);
    const layout = [
      'label: dos',
      'start=2048, size=16384, type=83, bootable',
      'start=18432, size=90112, type=5',
      'start=108544, size=16384, type=83',
      'start=20480, size=16384, type=83',
      'start=38912, size=16384, type=82',
      'start=57344, size=16384, type=83',
    ].join('\n');
    await run('sh', ['-c', `printf '%s\\n' "$1" | sfdisk -q "$2"`, 'sh', layout, disk]);
    for (const lba of [2048, 20480, 57344]) await placeFilesystem(disk, lba * 512);
  });

  test('partitions match sfdisk --json', async () => {
    const ours = await table(disk);
    const ref = await sfdiskJson(disk);
    expect(ours.type).toBe('mbr');
    expect(ours.partitions.map((p) => ({ n: p.number, start: p.start / 512, size: p.size / 512, type: p.type.replace(/^0x0?/, '') })))
      .toEqual(ref.partitiontable.partitions.map((p) => ({ n: Number(/(\d+)$/.exec(p.node)![1]), start: p.start, size: p.size, type: p.type })));
    expect(ours.partitions.map((p) => p.kind)).toEqual(['primary', 'extended', 'primary', 'logical', 'logical', 'logical']);
    expect(ours.partitions[0]!.bootable).toBe(true);
  });

  test('fs cat and ls reach filesystems in a primary and in logicals', async () => {
    for (const n of [1, 5, 7]) {
      const r = await cli(['fs', 'cat', `${disk}:${n}`, '/small.txt']);
      expect({ n, ...r }).toEqual({ n, code: 0, stdout: 'hello, guest\n', stderr: '' });
    }
    const ls = await cli(['fs', 'ls', `${disk}:5`, '/etc']);
    expect(ls.stdout).toBe('hostname\nos-release\n');
  });

  test('without :N a disk with several filesystems asks for one; a missing partition is typed', async () => {
    const r = await cli(['fs', 'ls', disk, '/']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/argument\.invalid: .*pick one as .*:N/);
    const missing = await cli(['fs', 'ls', `${disk}:9`, '/']);
    expect(missing.stderr).toMatch(/partition\.not-found/);
    const extended = await cli(['fs', 'ls', `${disk}:2`, '/']);
    expect(extended.stderr).toMatch(/partition\.not-found: partition 2 is an extended partition/);
  });

  test('a looping logical chain is fs.corrupt', async () => {
    const base = await readFile(disk);
    const dev = new PatchedMemoryDevice(base);
    // The first EBR sits at the extended partition's start (LBA 18432); its second entry
    // links to the next EBR, relative to that start. Make the second EBR link to itself.
    const extStart = 18432;
    const firstLink = extStart * 512 + 446 + 16;
    const secondRel = base.readUInt32LE(firstLink + 8);
    const secondLink = (extStart + secondRel) * 512 + 446 + 16;
    dev.patches.set(secondLink + 4, 0x05);
    for (let b = 0; b < 4; b++) dev.patches.set(secondLink + 8 + b, (secondRel >>> (8 * b)) & 0xff);
    await expect(readPartitionTable(dev)).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.corrupt')
      && e.data.structure === 'mbr extended boot record');
  });

  test('qcow2: the same disk converted by qemu-img reads as qcow2 by its name or --format qcow2', async () => {
    const qcow2 = join(work, 'mbr.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, qcow2]);
    const r = await cli(['fs', 'cat', '--format', 'qcow2', `${qcow2}:7`, '/etc/hostname']);
    expect(r).toEqual({ code: 0, stdout: 'testhost\n', stderr: '' });
    const byName = await cli(['fs', 'ls', `${qcow2}:7`, '/etc']);
    expect(byName.code).toBe(0);
    expect(byName.stdout.split('\n')).toContain('hostname');
    const raw = await cli(['fs', 'ls', '--format', 'raw', `${qcow2}:1`, '/']);
    expect(raw.code).not.toBe(0);
    const misnamed = join(work, 'mbr-qcow2.img');
    await run('cp', [qcow2, misnamed]);
    const guessed = await cli(['fs', 'ls', misnamed, '/']);
    expect(guessed.stderr).toMatch(/fs\.unsupported: .*looks like a qcow2 image: pass --format qcow2/);
  });
});

describe('GPT', () => {
  let disk: string;

  beforeAll(async () => {
    disk = join(work, 'gpt.img');
    await run('truncate', ['-s', '40M', disk]);
    await run('sgdisk', ['-o', '-n', '1:2048:+8M', '-t', '1:ef00', '-c', '1:EFI system', '-n', '2:0:+8M', '-t', '2:8300', '-c', '2:root',
      '-n', '3:0:+4M', '-t', '3:8200', '-c', '3:swap', disk]);
    const ref = await sfdiskJson(disk);
    await placeFilesystem(disk, ref.partitiontable.partitions[1]!.start * 512);
  });

  test('partitions, names and GUIDs match sfdisk --json', async () => {
    const ours = await table(disk);
    const ref = await sfdiskJson(disk);
    expect(ours.type).toBe('gpt');
    expect(ours.warnings).toEqual([]);
    expect(ours.partitions.map((p) => ({ start: p.start / 512, size: p.size / 512, type: p.type, uuid: p.uuid, name: p.name })))
      .toEqual(ref.partitiontable.partitions.map((p) => ({ start: p.start, size: p.size, type: p.type, uuid: p.uuid, name: p.name })));
    expect(ours.partitions.map((p) => p.typeName)).toEqual(['efi-system', 'linux', 'linux-swap']);
  });

  test('a damaged primary header is read from the backup, with a warning', async () => {
    const damaged = join(work, 'gpt-damaged.img');
    const bytes = await readFile(disk);
    bytes[512 + 30] = bytes[512 + 30]! ^ 0xff; // inside the primary header: its CRC no longer matches
    await writeFile(damaged, bytes);
    const good = await table(disk);
    const ours = await table(damaged);
    expect(ours.partitions).toEqual(good.partitions);
    expect(ours.warnings.join('\n')).toMatch(/primary GPT is damaged .*header CRC32 mismatch.*using the backup/);
    const r = await cli(['fs', 'cat', `${damaged}:2`, '/small.txt']);
    expect(r.stdout).toBe('hello, guest\n');
    expect(r.stderr).toMatch(/warning: primary GPT is damaged/);
  });

  test('a damaged primary entry array is read from the backup; both copies damaged is fs.corrupt', async () => {
    const bytes = await readFile(disk);
    bytes[1024 + 200] = bytes[1024 + 200]! ^ 0xff; // primary entry array
    const dev = new PatchedMemoryDevice(bytes);
    const t = await readPartitionTable(dev);
    expect(t.partitions).toHaveLength(3);
    expect(t.warnings.join('\n')).toMatch(/entry array CRC32 mismatch/);
    const last = bytes.length - 512;
    dev.patches.set(last + 30, bytes[last + 30]! ^ 0xff);
    await expect(readPartitionTable(dev)).rejects.toSatisfy((e) => isVirtkitError(e, 'fs.corrupt')
      && e.data.structure === 'gpt entries');
  });

  test('inspect reports the table, the filesystem and the operating system in it', async () => {
    const r = await cli(['inspect', disk, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      partitionTable: { type: string }; partitions: unknown[];
      filesystems: { partition: number; type: string; label: string; uuid: string }[];
      operatingSystems: { partition: number; name: string; versionId: string; id: string; hostname: string; architecture: string }[];
      boot: { kernels: { path: string }[]; initrds: { path: string }[]; bootloaderConfigs: string[] }[];
    };
    expect(report.partitionTable.type).toBe('gpt');
    expect(report.partitions).toHaveLength(3);
    expect(report.filesystems).toEqual([expect.objectContaining({ partition: 2, type: 'ext4', label: 'rootfs', uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' })]);
    expect(report.operatingSystems).toEqual([{ partition: 2, name: 'Test Linux', versionId: '1.2', id: 'testlinux', prettyName: 'Test Linux 1.2', hostname: 'testhost', architecture: 'x86_64' }]);
    expect(report.boot).toEqual([{
      partition: 2,
      kernels: [{ path: '/boot/vmlinuz-6.1.0-test', size: 4096, version: '6.1.0-test', initrd: '/boot/initrd.img-6.1.0-test' }],
      initrds: [{ path: '/boot/initrd.img-6.1.0-test', size: 2048 }],
      bootloaderConfigs: ['/boot/grub/grub.cfg'],
    }]);
    const text = await cli(['inspect', disk]);
    expect(text.stdout).toMatch(/Name: Test Linux\n\s+Version: 1\.2\n\s+ID: testlinux\n\s+Hostname: testhost\n\s+Architecture: x86_64/);
  });
});

describe('whole-disk filesystem and the fs verbs', () => {
  test('ls -l, ls -R, stat, find, get and typed errors', async () => {
    const img = fsImage;
    const ls = await cli(['fs', 'ls', img, '/etc', '-l']);
    expect(ls.stdout).toMatch(/^-rw-r--r-- +1 +0 +0 +9 \S+ \S+ hostname\n/);
    const rec = await cli(['fs', 'ls', img, '/deep/d1/d2', '-R']);
    expect(rec.stdout.split('\n')[0]).toBe('d3');
    expect(rec.stdout).toContain('d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/d21/d22/d23/d24/d25/d26/d27/d28/d29/d30/bottom.txt\n');
    const st = await cli(['fs', 'stat', img, '/owned', '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({ type: 'file', mode: '0644', uid: 70000, gid: 70001, size: 27 });
    const link = await cli(['fs', 'stat', img, '/link-long']);
    expect(link.stdout).toContain(`-> /${'long-directory-name/'.repeat(5)}target-file`);
    const found = await cli(['fs', 'find', img, '/', '-name', '*.cfg']);
    expect(found.stdout).toBe('/boot/grub/grub.cfg\n');
    const many = await cli(['fs', 'find', img, '/many', '-name', 'file-0001?-*', '-type', 'f']);
    expect(many.stdout.trim().split('\n')).toHaveLength(10);
    const dest = join(work, 'got.bin');
    expect((await cli(['fs', 'get', img, '/medium.bin', dest])).code).toBe(0);
    expect((await readFile(dest)).equals(await readFile(join(work, 'src/medium.bin')))).toBe(true);
    const loop = await cli(['fs', 'cat', img, '/loop-a']);
    expect([loop.code, loop.stderr]).toEqual([8, expect.stringMatching(/fs\.symlink-loop/)]);
    const missing = await cli(['fs', 'cat', join(work, 'no-such.img'), '/x']);
    expect(missing.stderr).toMatch(/image\.not-found/);
  });
});
