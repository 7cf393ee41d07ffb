/** Files in use by identity, against real files, real qemu-img chains and a real process's open files. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQemuImg } from '../qemu-img.js';
import { diskFileChain, fileIdentity, InUseFiles, openFilesOf } from './in-use.js';

let root: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vk-inuse-'));
  await mkdir(join(root, 'pool'));
  await mkdir(join(root, 'elsewhere'));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

describe('fileIdentity', () => {
  it('is the same through a symbolic link and a hard link in another directory, and differs for a copy', async () => {
    const file = join(root, 'pool', 'disk.raw');
    await writeFile(file, 'disk');
    await symlink(file, join(root, 'elsewhere', 'sym.raw'));
    await link(file, join(root, 'elsewhere', 'hard.raw'));
    await writeFile(join(root, 'elsewhere', 'copy.raw'), 'disk');
    const id = await fileIdentity(file);
    expect(id).toBeDefined();
    expect(await fileIdentity(join(root, 'elsewhere', 'sym.raw'))).toEqual(id);
    expect(await fileIdentity(join(root, 'elsewhere', 'hard.raw'))).toEqual(id);
    expect(await fileIdentity(join(root, 'elsewhere', 'copy.raw'))).not.toEqual(id);
    expect(await fileIdentity(join(root, 'nope.raw'))).toBeUndefined();
    expect(await fileIdentity(root)).toBeUndefined(); // a directory is no disk file
  });
});

describe('diskFileChain', () => {
  it('follows a qcow2 backing chain by its headers, and stops at a missing backing file or a raw disk', async () => {
    const base = join(root, 'pool', 'base.qcow2');
    const top = join(root, 'elsewhere', 'top.qcow2');
    await runQemuImg(['create', '-q', '-f', 'qcow2', base, '1M']);
    await runQemuImg(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    const chain = await diskFileChain(top, 'qcow2');
    expect(chain.map((f) => f.path)).toEqual([top, base]);
    expect(chain[1]!.id).toEqual(await fileIdentity(base));
    // The same file read as raw has no chain: formats are never probed.
    expect((await diskFileChain(top, 'raw')).map((f) => f.path)).toEqual([top]);
    const orphan = join(root, 'elsewhere', 'orphan.qcow2');
    await runQemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', join(root, 'gone.qcow2'), '-F', 'qcow2', orphan, '1M']);
    expect((await diskFileChain(orphan, 'qcow2')).map((f) => f.path)).toEqual([orphan]);
    expect(await diskFileChain(join(root, 'missing.qcow2'), 'qcow2')).toEqual([]);
  });
});

describe('InUseFiles', () => {
  it('finds a disk by any path to its file; backing files and read-only disks are not writable uses', async () => {
    const set = await InUseFiles.collect([
      { domain: 'g1', disk: 'vda', path: join(root, 'elsewhere', 'sym.raw'), format: 'raw', readonly: false },
      { domain: 'g2', disk: 'vdb', path: join(root, 'elsewhere', 'top.qcow2'), format: 'qcow2', readonly: false },
      { domain: 'g3', disk: 'vdc', path: join(root, 'elsewhere', 'hard.raw'), format: 'raw', readonly: true },
    ], []);
    const disk = await fileIdentity(join(root, 'pool', 'disk.raw'));
    expect(set.usersOf(disk!)).toEqual([
      { domain: 'g1', disk: 'vda', path: join(root, 'elsewhere', 'sym.raw'), role: 'disk', writable: true },
      { domain: 'g3', disk: 'vdc', path: join(root, 'elsewhere', 'hard.raw'), role: 'disk', writable: false },
    ]);
    const base = await fileIdentity(join(root, 'pool', 'base.qcow2'));
    expect(set.usersOf(base!)).toEqual([{ domain: 'g2', disk: 'vdb', path: join(root, 'pool', 'base.qcow2'), role: 'backing', writable: false }]);
    expect(set.usersOf((await fileIdentity(join(root, 'elsewhere', 'copy.raw')))!)).toEqual([]);
  });

  it('sees the files a process proven to be the guest\'s has open, with their open mode; not those of another process', async () => {
    const rw = join(root, 'elsewhere', 'opened-rw.raw');
    const ro = join(root, 'elsewhere', 'opened-ro.raw');
    await writeFile(rw, 'rw');
    await writeFile(ro, 'ro');
    const uuid = randomUUID();
    const script = `const fs=require('fs');fs.openSync(${JSON.stringify(rw)},'r+');fs.openSync(${JSON.stringify(ro)},'r');`
      + `process.stdout.write('open\\n');setInterval(()=>{},1000);`;
    const child = spawn(process.execPath, ['-e', script, uuid], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));

    const files = await openFilesOf({ domain: 'g', pid: child.pid!, uuid });
    const byPath = new Map(files.map((f) => [f.path, f.writable]));
    expect(byPath.get(rw)).toBe(true);
    expect(byPath.get(ro)).toBe(false);
    // A pid whose command line does not carry the guest's uuid is not the guest's QEMU.
    expect(await openFilesOf({ domain: 'g', pid: child.pid!, uuid: randomUUID() })).toEqual([]);

    const set = await InUseFiles.collect(
      [{ domain: 'g', disk: 'vda', path: ro, format: 'raw', readonly: true }],
      [{ domain: 'g', pid: child.pid!, uuid }],
    );
    // The definition names the disk; what QEMU has open adds the files the definition does not name.
    expect(set.usersOf((await fileIdentity(ro))!)).toEqual([{ domain: 'g', disk: 'vda', path: ro, role: 'disk', writable: false }]);
    expect(set.usersOf((await fileIdentity(rw))!)).toEqual([{ domain: 'g', path: rw, role: 'open-file', writable: true }]);
  });
});
