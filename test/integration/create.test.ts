/**
 * `virtkit create` end to end: flags to a running guest kit guest through a real daemon, with
 * a new qcow2 file created by qemu-img and a new volume in a dir pool, the console attached by
 * --console; and the failures that must leave nothing behind (a bad spec, a define refused
 * after the disks were made); and an xm config, the seed's shape, defined with --format xm
 * and booted. Two boots in all.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runQemuImg } from '../../src/storage/index.js';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { CliPath, DaemonHarness, waitFor } from './daemon-harness.js';

const Ready = 'virtkit-guest: ready';
const Name = 'created';
let d: DaemonHarness;
let work: string;

/** The guest kit's own kernel command line (console on ttyS0, quick boot). */
async function guestCmdline(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const doc = YAML.parse(await readFile(guestPaths(testGuest()).definitionPath, 'utf8')) as { boot: { cmdline: string } };
  return doc.boot.cmdline;
}

beforeAll(async () => {
  d = await DaemonHarness.create();
  await d.start();
  work = await mkdtemp('/tmp/vkcreate-');
  await mkdir(join(work, 'pool'));
  await d.client().poolDefine({ name: 'images', type: 'dir', path: join(work, 'pool') });
});

afterAll(async () => {
  await d.cleanup();
  await rm(work, { recursive: true, force: true });
});

describe.sequential('virtkit create', { timeout: 240_000 }, () => {
  it('refuses a bad spec naming the flag, and --print creates nothing', async () => {
    const bad = await d.cli(['create', '--name', Name, '--memory', '128MiB', '--disk', `${join(work, 'x.qcow2')},size=1G,bus=usb`, '--define']);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/argument\.invalid: --disk .*bus: must be one of virtio, ide, scsi/);
    const printed = await d.cli(['create', '--name', Name, '--memory', '128', '--disk', `${join(work, 'x.qcow2')},size=1G`, '--nic', 'user,hostfwd=tcp::2222-:22']);
    expect(printed.code, printed.stderr).toBe(0);
    const doc = YAML.parse(printed.stdout) as { memory: string; uuid: string; nics: { mac: string; hostfwd: string[] }[]; disks: { source: string; format: string }[] };
    expect(doc.memory).toBe('128MiB');
    expect(doc.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(doc.nics[0]!.mac).toMatch(/^52:54:00:/);
    expect(doc.nics[0]!.hostfwd).toEqual(['tcp::2222-:22']);
    expect(doc.disks[0]).toMatchObject({ source: join(work, 'x.qcow2'), format: 'qcow2' });
    expect(existsSync(join(work, 'x.qcow2'))).toBe(false);
    expect((await d.client().list({ all: true })).domains.map((x) => x.name)).not.toContain(Name);
  });

  it('creates the disks, defines and starts the guest, and --console shows it booting', async () => {
    const g = guestPaths(testGuest());
    const args = ['create', '--name', Name, '--memory', '128MiB', '--vcpus', '1',
      '--kernel', g.kernelPath, '--initrd', g.initrdPath, '--cmdline', await guestCmdline(),
      '--disk', `${join(work, 'root.qcow2')},size=64M`, '--disk', 'pool=images,size=32M', '--nic', 'user',
      '--start', '--console'];
    const p = spawn(process.execPath, [CliPath, ...args], { env: { ...process.env, VIRTKIT_CONNECT: d.socketPath }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const exited = new Promise<number>((resolve) => p.on('close', (code) => resolve(code ?? -1)));
    try {
      await waitFor('the ready marker through create --console', async () => {
        if (p.exitCode !== null) throw new Error(`create exited ${p.exitCode}: ${stderr}`);
        return stdout.includes(Ready);
      }, 180_000, 200);
    } finally {
      p.stdin.end('\x1d'); // Ctrl-]: detach; the guest keeps running
    }
    expect(await exited, stderr).toBe(0);
    expect(stdout).toContain(`Created disk ${join(work, 'root.qcow2')} (qcow2, 64MiB)`);
    expect(stdout).toContain('Created volume images/created.qcow2 (qcow2, 32MiB)');
    expect(stdout).toContain(`Domain '${Name}' started`);
    expect(stderr).toContain(`Connected to domain '${Name}'`);

    // -U: the running guest holds the image's write lock.
    const imgInfo = JSON.parse((await runQemuImg(['info', '-U', '--output=json', '-f', 'qcow2', join(work, 'root.qcow2')])).stdout) as { 'virtual-size': number };
    expect(imgInfo['virtual-size']).toBe(64 * 1024 * 1024);
    expect((await d.client().volumeInfo('images', 'created.qcow2')).capacity).toBe(32 * 1024 * 1024);
    expect((await d.client().state(Name)).state).toBe('running');
    const def = YAML.parse((await d.client().getDefinition(Name)).text) as { disks: { source?: string; volume?: string }[]; nics: { mac: string }[] };
    expect(def.disks.map((x) => x.source ?? x.volume)).toEqual([join(work, 'root.qcow2'), 'images/created.qcow2']);
    expect(def.nics[0]!.mac).toMatch(/^52:54:00:/);
  });

  it('removes the disks it made when the define is refused', async () => {
    const r = await d.cli(['create', '--name', Name, '--memory', '128MiB', '--disk', `${join(work, 'second.qcow2')},size=16M`, '--disk', 'pool=images,size=16M', '--define']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('domain.exists');
    expect(existsSync(join(work, 'second.qcow2'))).toBe(false);
    // The pool disk would have been created-1.qcow2 (created.qcow2 is taken): gone again.
    expect((await d.client().volumeList('images')).volumes.map((v) => v.name)).toEqual(['created.qcow2']);
    await d.client().destroy(Name);
  });

  it('defines an xm config with --format xm, notes kept, and boots it', async () => {
    const g = guestPaths(testGuest());
    const cfg = join(work, 'example.cfg');
    // The seed's config, pointed at the guest kit's kernel and the image created above.
    await writeFile(cfg, [
      '# xm config, as in "learning Xen"',
      'name = "xmguest"',
      'memory = 128',
      'vcpus = 1 # one is plenty',
      `kernel = "${g.kernelPath}"`,
      `ramdisk = "${g.initrdPath}"`,
      `disk = [ "tap:qcow2:/${join(work, 'root.qcow2')},xvda1,w" ]`,
      'root = "/dev/xvda1 ro"',
      `extra = "${await guestCmdline()}"`,
      // bridge= would put the NIC on a virtkit network of that name (test/fixtures/xm covers it): user networking here.
      'vif = [ "mac=00:16:3e:22:15:51" ]',
      '',
    ].join('\n'));
    const defined = await d.cli(['define', '--format', 'xm', cfg]);
    expect(defined.code, defined.stderr).toBe(0);
    const def = YAML.parse((await d.client().getDefinition('xmguest')).text) as {
      boot: { cmdline: string }; disks: { source: string; format: string; target: string }[]; nics: { mac: string; network: string }[]; notes: string[];
    };
    expect(def.disks).toMatchObject([{ source: join(work, 'root.qcow2'), format: 'qcow2', target: 'vda' }]);
    expect(def.boot.cmdline.startsWith('root=/dev/vda ro ')).toBe(true);
    expect(def.nics).toMatchObject([{ mac: '00:16:3e:22:15:51', network: 'user' }]);
    expect(def.notes.length).toBeGreaterThan(0);
    const started = await d.cli(['start', 'xmguest']);
    expect(started.code, started.stderr).toBe(0);
    await d.waitConsole('xmguest', Ready);
    await d.client().destroy('xmguest');
  });
});
