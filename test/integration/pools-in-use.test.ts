/**
 * Pool files in use are protected by identity, not by name: a real guest kit guest whose disks
 * name pool files by `source:` path (directly, through a symbolic link and through a hard link
 * in another directory, and a qcow2 overlay outside the pool backed by a pool volume) runs
 * under a real daemon; every volume verb that would change or inconsistently copy those files
 * is refused with volume.in-use naming the guest and the disk, and the files keep their bytes.
 * A download needs --allow-running. After the guest stops, everything works again. One boot.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { VolumeInfo } from '../../src/api/pools.js';
import { runQemuImg } from '../../src/storage/qemu-img.js';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { DaemonHarness, type CliResult } from './daemon-harness.js';

const G = 'diskuser';
const READY = 'virtkit-guest: ready';
/** Larger than the socket and stream buffers, so a download nobody reads stays open. */
const FileBytes = 16 << 20;

let d: DaemonHarness;
let poolDir: string;
let elsewhere: string;
let work: string;

/** The pool files the guest uses, and the path and disk id it reaches each by. */
const files = {
  direct: { volume: 'direct.raw', disk: 'vda', via: '' },
  symlinked: { volume: 'linked.raw', disk: 'vdb', via: '' },
  hardlinked: { volume: 'hard.raw', disk: 'vdc', via: '' },
};

async function ok(args: string[]): Promise<CliResult> {
  const r = await d.cli(args);
  if (r.code !== 0) throw new Error(`virtkit ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

async function refused(args: string[]): Promise<{ code: number; error: string; stderr: string }> {
  const r = await d.cli(args);
  expect(r.code, `virtkit ${args.join(' ')} should fail: ${r.stdout}`).not.toBe(0);
  const m = /virtkit: error: ([a-z0-9.-]+):/.exec(r.stderr);
  return { code: r.code, error: m?.[1] ?? '', stderr: r.stderr };
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

beforeAll(async () => {
  d = await DaemonHarness.create();
  await d.start();
  poolDir = join(d.stateDir, 'images');
  elsewhere = join(d.stateDir, 'elsewhere');
  work = join(d.stateDir, 'work');
  await Promise.all([mkdir(poolDir), mkdir(elsewhere), mkdir(work)]);
  await ok(['pool-define-as', 'images', 'dir', poolDir]);

  for (const f of Object.values(files)) await writeFile(join(poolDir, f.volume), randomBytes(FileBytes));
  files.direct.via = join(poolDir, files.direct.volume);
  files.symlinked.via = join(elsewhere, 'via-symlink.raw');
  await symlink(join(poolDir, files.symlinked.volume), files.symlinked.via);
  files.hardlinked.via = join(elsewhere, 'via-hardlink.raw');
  await link(join(poolDir, files.hardlinked.volume), files.hardlinked.via);
  // A qcow2 overlay outside the pool whose backing file is a pool volume.
  await runQemuImg(['create', '-q', '-f', 'qcow2', join(poolDir, 'base.qcow2'), '8M']);
  await runQemuImg(['create', '-q', '-f', 'qcow2', '-b', join(poolDir, 'base.qcow2'), '-F', 'qcow2', join(elsewhere, 'overlay.qcow2')]);

  const def = parse(await readFile(guestPaths(testGuest()).definitionPath, 'utf8')) as Record<string, unknown>;
  const boot = def.boot as Record<string, string>;
  Object.assign(def, {
    name: G,
    boot: { ...boot, kernel: join(testGuest(), boot.kernel!), initrd: join(testGuest(), boot.initrd!) },
    disks: [
      { source: files.direct.via, format: 'raw' },
      { source: files.symlinked.via, format: 'raw' },
      { source: files.hardlinked.via, format: 'raw' },
      { source: join(elsewhere, 'overlay.qcow2'), format: 'qcow2' },
    ],
  });
  const path = join(work, `${G}.yaml`);
  await writeFile(path, stringify(def));
  await ok(['define', path]);
});

afterAll(async () => {
  await d.cleanup();
});

describe('a running guest\'s disks named by path', () => {
  it('a start waits for a download in progress on one of its files', async () => {
    // A download nobody reads holds its file: the guest, which writes that file, must not start under it.
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      request({ socketPath: d.socketPath, method: 'GET', path: `/pools/images/volumes/${files.direct.volume}/content` }, resolve)
        .on('error', reject).end();
    });
    expect(res.statusCode).toBe(200);
    res.pause();
    let started = false;
    const starting = d.client().start(G).then((info) => { started = true; return info; });
    await new Promise((r) => setTimeout(r, 1500));
    expect(started).toBe(false);
    expect(await d.qemuPids()).toEqual([]);
    res.destroy();
    expect((await starting).state).toBe('running');
    await d.waitConsole(G, READY);
  });

  for (const [how, f] of Object.entries(files)) {
    it(`refuses upload, delete, resize and clone of a pool file the guest uses ${how}, naming the guest and the disk`, async () => {
      const file = join(poolDir, f.volume);
      const before = await sha256(file);
      const payload = join(work, 'payload.raw');
      await writeFile(payload, randomBytes(1 << 20));
      for (const args of [
        ['vol-upload', 'images', f.volume, payload],
        ['vol-delete', 'images', f.volume],
        ['vol-resize', 'images', f.volume, '32M'],
        ['vol-clone', 'images', f.volume, 'copy.raw'],
      ]) {
        const r = await refused(args);
        expect(r.error, `${args[0]}: ${r.stderr}`).toBe('volume.in-use');
        expect(r.code).toBe(4);
        expect(r.stderr).toContain(`guest "${G}" (disk ${f.disk}: ${f.via})`);
      }
      expect(await sha256(file)).toBe(before);
      expect((await lstat(file)).size).toBe(FileBytes);
      await expect(lstat(join(poolDir, 'copy.raw'))).rejects.toThrow();
    });
  }

  it('reports the guests and disks in the error\'s data, through the typed client', async () => {
    const err = await d.client().volumeResize('images', files.hardlinked.volume, 1 << 30).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({
      code: 'volume.in-use',
      data: { volume: `images/${files.hardlinked.volume}`, action: 'resize', domains: [G],
        users: [{ domain: G, disk: files.hardlinked.disk, path: files.hardlinked.via, role: 'disk', writable: true }] },
    });
  });

  it('protects a pool volume that backs a running disk from changes, but lets it be copied and downloaded (it is only read)', async () => {
    const base = join(poolDir, 'base.qcow2');
    const before = await sha256(base);
    for (const args of [['vol-resize', 'images', 'base.qcow2', '16M'], ['vol-delete', 'images', 'base.qcow2'],
      ['vol-upload', 'images', 'base.qcow2', join(work, 'payload.raw')]]) {
      const r = await refused(args);
      expect(r.error, `${args[0]}: ${r.stderr}`).toBe('volume.in-use');
      expect(r.stderr).toContain(`disk vdd, as a backing file: ${base}`);
    }
    expect(await sha256(base)).toBe(before);
    await ok(['vol-clone', 'images', 'base.qcow2', 'base-copy.qcow2']);
    const r = await ok(['vol-download', 'images', 'base.qcow2', join(work, 'base.qcow2')]);
    expect(r.stderr).not.toContain('warning');
    expect(await sha256(join(work, 'base.qcow2'))).toBe(before);
    await ok(['vol-delete', 'images', 'base-copy.qcow2']);
  });

  it('refuses to download a disk the guest writes without --allow-running, and with it warns and copies', async () => {
    const target = join(work, 'down.raw');
    const r = await refused(['vol-download', 'images', files.symlinked.volume, target]);
    expect(r.error).toBe('volume.in-use');
    expect(r.stderr).toContain('--allow-running');
    await expect(lstat(target)).rejects.toThrow();

    const allowed = await ok(['vol-download', 'images', files.symlinked.volume, target, '--allow-running']);
    expect(allowed.stderr).toMatch(new RegExp(`warning: images/${files.symlinked.volume} is in use by "${G}" \\(disk ${files.symlinked.disk}\\).*inconsistent`));
    // The guest does not write its unused disks, so here the copy is the file.
    expect(await sha256(target)).toBe(await sha256(join(poolDir, files.symlinked.volume)));
  });
});

describe('after the guest stops', () => {
  it('allows every verb again: download, upload, resize, clone, delete', async () => {
    await ok(['destroy', G]);
    for (const f of Object.values(files)) {
      const target = join(work, `after-${f.volume}`);
      const down = await ok(['vol-download', 'images', f.volume, target]);
      expect(down.stderr).not.toContain('warning');
      expect(await sha256(target)).toBe(await sha256(join(poolDir, f.volume)));
      const payload = randomBytes(2 << 20);
      await writeFile(join(work, 'payload.raw'), payload);
      await ok(['vol-upload', 'images', f.volume, join(work, 'payload.raw')]);
      expect(await sha256(join(poolDir, f.volume))).toBe(createHash('sha256').update(payload).digest('hex'));
      expect((JSON.parse((await ok(['vol-resize', 'images', f.volume, '4M', '--json'])).stdout) as VolumeInfo).capacity).toBe(4 << 20);
      await ok(['vol-clone', 'images', f.volume, `copy-${f.volume}`]);
      await ok(['vol-delete', 'images', `copy-${f.volume}`]);
      await ok(['vol-delete', 'images', f.volume]);
      await expect(lstat(join(poolDir, f.volume))).rejects.toThrow();
    }
    await ok(['vol-resize', 'images', 'base.qcow2', '16M']);
    expect(await d.qemuPids()).toEqual([]);
  });
});
