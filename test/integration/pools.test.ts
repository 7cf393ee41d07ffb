/**
 * Pools and volumes through the CLI against a real daemon process, real qemu-img and real
 * files: the whole lifecycle, streamed upload/download compared byte for byte, names that try
 * to leave the pool, volumes a defined guest uses, and a guest whose disk is a pool volume
 * (started paused: QEMU opens the volume's host path, no guest boots).
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolInfo, PoolSummary, VolumeInfo } from '../../src/api/pools.js';
import type { DomainInfo } from '../../src/api/schemas.js';
import type { VirtkitClient } from '../../src/client/index.js';
import { runQemuImg } from '../../src/storage/qemu-img.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { DaemonHarness, waitFor, type CliResult } from './daemon-harness.js';

let d: DaemonHarness;
let poolDir: string;
let work: string;

async function ok(args: string[]): Promise<CliResult> {
  const r = await d.cli(args);
  if (r.code !== 0) throw new Error(`virtkit ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse((await ok([...args, '--json'])).stdout) as T;
}

/** Runs a command expected to fail; returns the typed error code it printed and the exit code. */
async function refused(args: string[]): Promise<{ code: number; error: string; stderr: string }> {
  const r = await d.cli(args);
  expect(r.code, `virtkit ${args.join(' ')} should fail: ${r.stdout}`).not.toBe(0);
  const m = /virtkit: error: ([a-z0-9.-]+):/.exec(r.stderr);
  return { code: r.code, error: m?.[1] ?? '', stderr: r.stderr };
}

async function defineGuest(name: string, volume: string, format: string): Promise<void> {
  const file = join(work, `${name}.yaml`);
  await writeFile(file, `name: ${name}\nmemory: 64MiB\naccel: tcg\ndisks:\n  - volume: ${volume}\n    format: ${format}\n`);
  await ok(['define', file]);
}

beforeAll(async () => {
  d = await DaemonHarness.create();
  await d.start();
  work = join(d.stateDir, 'work');
  poolDir = join(d.stateDir, 'images');
  await mkdir(work);
  await mkdir(poolDir);
  await ok(['pool-define-as', 'images', 'dir', poolDir]);
});

afterAll(async () => {
  await d.cleanup();
});

describe('pool lifecycle', () => {
  it('lists and describes a pool with statfs figures and its volume count', async () => {
    const pools = await json<PoolSummary[]>(['pool-list']);
    expect(pools).toEqual([{ name: 'images', type: 'dir', path: poolDir, state: 'running' }]);
    const info = await json<PoolInfo>(['pool-info', 'images']);
    expect(info.state).toBe('running');
    expect(info.capacity).toBeGreaterThan(0);
    expect(info.available).toBeGreaterThan(0);
    expect(info.allocation).toBeLessThanOrEqual(info.capacity!);
    const human = (await ok(['pool-info', 'images'])).stdout;
    expect(human).toMatch(/^Capacity: +\S+/m);
    expect(human).toMatch(/^Volumes: +\d+$/m);
  });

  it('refuses a second pool of the same name or on the same directory, and a directory that is not there', async () => {
    expect((await refused(['pool-define-as', 'images', 'dir', work])).error).toBe('pool.exists');
    const same = await refused(['pool-define-as', 'other', 'dir', poolDir]);
    expect(same.error).toBe('pool.exists');
    expect(same.code).toBe(4);
    const missing = await refused(['pool-define-as', 'ghost', 'dir', join(work, 'nope')]);
    expect(missing.error).toBe('pool.invalid');
    expect(missing.code).toBe(5);
    expect((await refused(['pool-info', 'nope'])).code).toBe(3);
  });

  it('defines, refreshes (seeing files that appeared) and undefines a pool, leaving its directory alone', async () => {
    const dir = join(work, 'scratch');
    await mkdir(dir);
    await ok(['pool-define-as', 'scratch', 'dir', dir]);
    expect((await json<PoolInfo>(['pool-refresh', 'scratch'])).volumes).toBe(0);
    await runQemuImg(['create', '-q', '-f', 'raw', join(dir, 'dropped.img'), '1M']);
    await writeFile(join(dir, 'notes.txt'), 'not a volume: its name declares no format');
    expect((await json<PoolInfo>(['pool-refresh', 'scratch'])).volumes).toBe(1);
    const vols = await json<VolumeInfo[]>(['vol-list', 'scratch']);
    expect(vols.map((v) => [v.name, v.format, v.capacity])).toEqual([['dropped.img', 'raw', 1 << 20]]);
    await ok(['pool-undefine', 'scratch']);
    expect((await json<PoolSummary[]>(['pool-list', '--all'])).map((p) => p.name)).toEqual(['images']);
    expect((await stat(join(dir, 'dropped.img'))).size).toBe(1 << 20);
  });
});

describe('volume lifecycle', () => {
  it('creates a qcow2 volume and an overlay backed by it, readable by img info --backing-chain', async () => {
    const base = await json<VolumeInfo>(['vol-create-as', 'images', 'base.qcow2', '64M', '--format', 'qcow2']);
    expect(base).toMatchObject({ name: 'base.qcow2', pool: 'images', format: 'qcow2', capacity: 64 << 20, path: join(poolDir, 'base.qcow2') });
    const top = await json<VolumeInfo>(['vol-create-as', 'images', 'top.qcow2', '64M', '--format', 'qcow2', '--backing', 'base.qcow2']);
    expect(top.backing).toEqual({ volume: 'base.qcow2', path: join(poolDir, 'base.qcow2'), format: 'qcow2' });

    const chain = JSON.parse((await ok(['img', 'info', '--backing-chain', '--json', top.path])).stdout) as Record<string, unknown>[];
    expect(chain.map((l) => l['filename'])).toEqual([top.path, base.path]);
    expect(chain[0]).toMatchObject({ 'backing-filename': 'base.qcow2', 'backing-filename-format': 'qcow2' });
    // qemu-img agrees: the backing name is relative to the pool and its format recorded.
    const q = JSON.parse((await runQemuImg(['info', '--output=json', '-f', 'qcow2', top.path])).stdout) as Record<string, unknown>;
    expect(q['backing-filename-format']).toBe('qcow2');
    expect(q['full-backing-filename']).toBe(base.path);
  });

  it('shows a volume in the POOL VOL form and in virsh\'s VOL --pool POOL form alike', async () => {
    const a = await json<VolumeInfo>(['vol-info', 'images', 'top.qcow2']);
    const b = await json<VolumeInfo>(['vol-info', 'top.qcow2', '--pool', 'images']);
    expect(b).toEqual(a);
    expect((await ok(['vol-info', 'images', 'top.qcow2'])).stdout).toMatch(/^Backing: +base\.qcow2 \(qcow2\)$/m);
    const list = await json<VolumeInfo[]>(['vol-list', 'images']);
    expect(list.map((v) => v.name)).toEqual(['base.qcow2', 'top.qcow2']);
    expect((await refused(['vol-info', 'images'])).code).toBe(5);
  });

  it('refuses a name whose extension contradicts --format, a duplicate, and an unknown backing volume', async () => {
    expect((await refused(['vol-create-as', 'images', 'x.raw', '1M', '--format', 'qcow2'])).error).toBe('volume.invalid-name');
    expect((await refused(['vol-create-as', 'images', 'noext', '1M', '--format', 'raw'])).error).toBe('volume.invalid-name');
    const dup = await refused(['vol-create-as', 'images', 'base.qcow2', '1M']);
    expect(dup.error).toBe('volume.exists');
    expect(dup.code).toBe(4);
    expect((await refused(['vol-create-as', 'images', 'y.qcow2', '1M', '--backing', 'nope.qcow2'])).error).toBe('volume.not-found');
    expect((await refused(['vol-info', 'images', 'nope.qcow2'])).code).toBe(3);
  });

  it('clones (flattening the chain, converting to the format the new name declares), resizes and deletes', async () => {
    const clone = await json<VolumeInfo>(['vol-clone', 'top.qcow2', 'flat.raw', '--pool', 'images']);
    expect(clone).toMatchObject({ format: 'raw', capacity: 64 << 20 });
    expect(clone.backing).toBeUndefined();
    const grown = await json<VolumeInfo>(['vol-resize', 'images', 'flat.raw', '+1M']);
    expect(grown.capacity).toBe(65 << 20);
    const shrink = await refused(['vol-resize', 'images', 'flat.raw', '1M']);
    expect(shrink.error).toBe('argument.invalid');
    expect((await json<VolumeInfo>(['vol-resize', 'flat.raw', '1M', '--shrink', '--pool', 'images'])).capacity).toBe(1 << 20);
    expect((await json<VolumeInfo>(['vol-resize', 'images', 'top.qcow2', '128M'])).capacity).toBe(128 << 20);
    await ok(['vol-delete', 'images', 'flat.raw']);
    await expect(lstat(join(poolDir, 'flat.raw'))).rejects.toThrow();
  });

  it('refuses to delete a volume another volume is backed by', async () => {
    const r = await refused(['vol-delete', 'images', 'base.qcow2']);
    expect(r.error).toBe('volume.in-use');
    expect(r.stderr).toContain('top.qcow2');
    expect((await stat(join(poolDir, 'base.qcow2'))).isFile()).toBe(true);
  });
});

describe('upload and download', () => {
  it('round-trips a file through a raw volume byte for byte, with JSON progress lines', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const src = join(work, 'data.bin');
    await writeFile(src, data);
    await ok(['vol-create-as', 'images', 'blob.raw', '1M']);
    const up = await ok(['vol-upload', 'images', 'blob.raw', src, '--json']);
    const lines = up.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; done?: number; total?: number; volume?: VolumeInfo });
    const progress = lines.filter((l) => l.event === 'progress');
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual({ event: 'progress', done: data.length, total: data.length });
    expect(lines.at(-1)?.volume).toMatchObject({ name: 'blob.raw', capacity: data.length });

    const back = join(work, 'back.bin');
    const down = await ok(['vol-download', 'blob.raw', back, '--pool', 'images', '--json']);
    expect(JSON.parse(down.stdout.trim().split('\n').at(-1)!)).toEqual({ event: 'done', total: data.length });
    expect((await readFile(back)).equals(data)).toBe(true);
  });

  it('uploads a qcow2 image into a qcow2 volume and downloads the same bytes', async () => {
    const img = join(work, 'made.qcow2');
    await runQemuImg(['create', '-q', '-f', 'qcow2', img, '8M']);
    await runQemuImg(['convert', '-f', 'raw', '-O', 'qcow2', join(work, 'data.bin'), img]);
    await ok(['vol-create-as', 'images', 'up.qcow2', '1M']);
    const info = await json<VolumeInfo>(['vol-info', 'images', 'up.qcow2']);
    expect(info.capacity).toBe(1 << 20);
    await ok(['vol-upload', 'images', 'up.qcow2', img]);
    const made = JSON.parse((await runQemuImg(['info', '--output=json', '-f', 'qcow2', img])).stdout) as { 'virtual-size': number };
    expect((await json<VolumeInfo>(['vol-info', 'images', 'up.qcow2'])).capacity).toBe(made['virtual-size']);
    await ok(['vol-download', 'images', 'up.qcow2', join(work, 'up-back.qcow2')]);
    expect((await readFile(join(work, 'up-back.qcow2'))).equals(await readFile(img))).toBe(true);
  });

  it('refuses a qcow2 upload whose backing file lies outside the pool, leaving the volume as it was', async () => {
    const evil = join(work, 'evil.qcow2');
    await runQemuImg(['create', '-q', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', evil, '1M']);
    const before = await readFile(join(poolDir, 'up.qcow2'));
    const r = await refused(['vol-upload', 'images', 'up.qcow2', evil]);
    expect(r.error).toBe('image.unsupported');
    expect(r.stderr).toContain('/etc/passwd');
    expect((await readFile(join(poolDir, 'up.qcow2'))).equals(before)).toBe(true);
    // No half-written file is left in the pool either.
    expect((await json<VolumeInfo[]>(['vol-list', 'images'])).map((v) => v.name)).toEqual(['base.qcow2', 'blob.raw', 'top.qcow2', 'up.qcow2']);
  });

  it('drops the partial file of an upload whose client goes away, leaving the volume as it was', async () => {
    const before = await readFile(join(poolDir, 'blob.raw'));
    await new Promise<void>((resolve) => {
      const req = request({ socketPath: d.socketPath, method: 'PUT', path: '/pools/images/volumes/blob.raw/content',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(64 << 20) } });
      req.on('error', () => resolve());
      req.write(randomBytes(1 << 20), () => setTimeout(() => { req.destroy(); resolve(); }, 300));
    });
    await waitFor('the partial upload to be removed', async () => (await readdir(poolDir)).every((n) => !n.startsWith('.')), 10_000);
    expect((await readFile(join(poolDir, 'blob.raw'))).equals(before)).toBe(true);
  });

  it('leaves no file behind when downloading a volume that is not there', async () => {
    const target = join(work, 'never.bin');
    expect((await refused(['vol-download', 'images', 'nope.raw', target])).error).toBe('volume.not-found');
    await expect(lstat(target)).rejects.toThrow();
  });
});

describe('names cannot leave the pool', () => {
  const escapes = ['../x.raw', '/etc/passwd', 'a/b.raw', '..', '.', '.hidden.raw', 'x.raw/..', '..%2Fx.raw', '../../../../etc/passwd', 'x\0.raw', ''];

  /** Every volume operation of the typed client on `name` (the CLI's own path is checked below). */
  function everyOperation(c: VirtkitClient, name: string): [string, () => Promise<unknown>][] {
    return [
      ['info', () => c.volumeInfo('images', name)],
      ['create', () => c.volumeCreate('images', { name, capacity: 1 << 20, format: 'raw' })],
      ['clone to', () => c.volumeClone('images', 'base.qcow2', name)],
      ['clone from', () => c.volumeClone('images', name, 'copy.raw')],
      ['resize', () => c.volumeResize('images', name, 2 << 20)],
      ['delete', () => c.volumeDelete('images', name)],
      ['upload', () => c.volumeUpload('images', name, Readable.from([Buffer.from('payload')]), 7)],
      ['download', () => c.volumeDownload('images', name, new PassThrough().resume())],
      ['backing', () => c.volumeCreate('images', { name: 'o.qcow2', capacity: 1 << 20, format: 'qcow2', backing: name })],
    ];
  }

  it('refuses escaping names in every volume operation with volume.invalid-name', async () => {
    const c = d.client();
    for (const name of escapes) {
      for (const [what, op] of everyOperation(c, name)) {
        const err = await op().then(() => undefined, (e: unknown) => e);
        expect(isVirtkitError(err) ? err.code : err, `${what} ${JSON.stringify(name)}`).toBe('volume.invalid-name');
      }
    }
    expect(await readFile('/etc/passwd', 'utf8')).toContain('root:');
    await expect(lstat(join(d.stateDir, 'x.raw'))).rejects.toThrow();
    await expect(lstat(join(poolDir, 'copy.raw'))).rejects.toThrow();
  });

  it('refuses escaping names in the CLI verbs with exit code 5', async () => {
    const outside = join(work, 'outside.bin');
    await writeFile(outside, 'outside');
    for (const args of [
      ['vol-info', 'images', '../x.raw'],
      ['vol-create-as', 'images', '/etc/passwd', '1M', '--format', 'raw'],
      ['vol-clone', 'images', 'base.qcow2', '../x.qcow2'],
      ['vol-delete', '../../etc/passwd', '--pool', 'images'],
      ['vol-resize', 'images', 'a/b.raw', '2M'],
      ['vol-upload', 'images', '../x.raw', outside],
      ['vol-download', 'images', '../x.raw', join(work, 'dl.bin')],
    ]) {
      const r = await refused(args);
      expect(r.error, `${args.join(' ')}: ${r.stderr}`).toBe('volume.invalid-name');
      expect(r.code).toBe(5);
    }
    await expect(lstat(join(work, 'dl.bin'))).rejects.toThrow();
  });

  it('refuses a symbolic link in the pool that points outside it', async () => {
    const secret = join(work, 'secret.raw');
    await writeFile(secret, 'secret bytes');
    await symlink(secret, join(poolDir, 'link.raw'));
    await symlink('/etc/passwd', join(poolDir, 'passwd.raw'));
    const c = d.client();
    for (const name of ['link.raw', 'passwd.raw']) {
      for (const [what, op] of everyOperation(c, name)) {
        if (what === 'create' || what === 'clone to') continue; // the name is taken: volume.exists
        const err = await op().then(() => undefined, (e: unknown) => e);
        expect(isVirtkitError(err) ? err.code : err, `${what} ${name}`).toBe('volume.invalid-name');
      }
    }
    const r = await refused(['vol-download', 'images', 'link.raw', join(work, 'dl.bin')]);
    expect(r.error).toBe('volume.invalid-name');
    expect(r.stderr).toContain('symbolic link');
    // Links are not volumes: not listed, and left as they were, as is their target.
    expect((await json<VolumeInfo[]>(['vol-list', 'images'])).map((v) => v.name)).not.toContain('link.raw');
    expect(await readlink(join(poolDir, 'link.raw'))).toBe(secret);
    expect(await readFile(secret, 'utf8')).toBe('secret bytes');
    expect(await readFile('/etc/passwd', 'utf8')).toContain('root:');
    await expect(lstat(join(work, 'dl.bin'))).rejects.toThrow();
  });

  it('refuses a backing volume outside the pool or given as a path', async () => {
    for (const backing of ['../base.qcow2', join(poolDir, 'base.qcow2'), 'link.raw']) {
      const r = await refused(['vol-create-as', 'images', 'o.qcow2', '1M', '--backing', backing]);
      expect(r.error, r.stderr).toBe('volume.invalid-name');
    }
  });
});

describe('volumes used by guests', () => {
  it('refuses to delete a volume a defined guest names, naming the guest; pool-undefine likewise', async () => {
    await defineGuest('voluser', 'images/top.qcow2', 'qcow2');
    const del = await refused(['vol-delete', 'images', 'top.qcow2']);
    expect(del.error).toBe('volume.in-use');
    expect(del.code).toBe(4);
    expect(del.stderr).toContain('"voluser"');
    const und = await refused(['pool-undefine', 'images']);
    expect(und.error).toBe('volume.in-use');
    expect(und.stderr).toContain('"voluser"');
    expect((await stat(join(poolDir, 'top.qcow2'))).isFile()).toBe(true);
  });

  it('starts a guest on its volume\'s host path and refuses to rewrite the volume (or its backing) while it runs', async () => {
    const info = await json<DomainInfo>(['start', 'voluser', '--paused']);
    try {
      expect(info.state).toBe('paused');
      const cmdline = (await readFile(`/proc/${info.pid}/cmdline`, 'utf8')).split('\0').join(' ');
      expect(cmdline).toContain(join(poolDir, 'top.qcow2'));
      const up = await refused(['vol-upload', 'images', 'top.qcow2', join(work, 'data.bin')]);
      expect(up.error).toBe('volume.in-use');
      expect(up.stderr).toContain('"voluser"');
      expect((await refused(['vol-resize', 'images', 'base.qcow2', '1G'])).error).toBe('volume.in-use');
    } finally {
      await ok(['destroy', 'voluser']);
    }
    await ok(['undefine', 'voluser']);
    await ok(['vol-delete', 'images', 'top.qcow2']);
  });

  it('fails the start of a guest whose volume or pool does not exist, naming it', async () => {
    await defineGuest('lost', 'images/gone.qcow2', 'qcow2');
    const r = await refused(['start', 'lost']);
    expect(r.error).toBe('volume.not-found');
    expect(r.stderr).toContain('images/gone.qcow2');
    expect(await json<{ state: string; reason?: string }>(['domstate', 'lost'])).toEqual({ state: 'shutoff', reason: 'failed' });
    await ok(['undefine', 'lost']);

    await defineGuest('nopool', 'elsewhere/disk.raw', 'raw');
    const p = await refused(['start', 'nopool']);
    expect(p.error).toBe('pool.not-found');
    expect(p.stderr).toContain('elsewhere/disk.raw');
    await ok(['undefine', 'nopool']);
  });

  it('fails the start when the disk\'s format is not the volume\'s', async () => {
    await defineGuest('wrongfmt', 'images/base.qcow2', 'raw');
    const r = await refused(['start', 'wrongfmt']);
    expect(r.error).toBe('definition.invalid');
    expect(r.stderr).toContain('images/base.qcow2');
    await ok(['undefine', 'wrongfmt']);
    expect(await d.qemuPids()).toEqual([]);
  });
});
