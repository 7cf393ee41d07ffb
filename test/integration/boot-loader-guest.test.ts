/**
 * Booting from the guest's own disk. Disks are built without root: a staging tree copied
 * into a filesystem by `mke2fs -d -E offset=` (MBR written by `sfdisk` before, GPT by `sgdisk`
 * after, as mke2fs clears the sectors holding a GPT header) or `mkfs.vfat` + `mcopy`, and
 * wrapped in qcow2 by `qemu-img convert`.
 *  - GRUB: the guest kit's kernel and initramfs in /boot of an ext4 partition inside an MBR
 *    disk (qcow2) with a two-entry grub.cfg; `virtkit run` boots it through `loader: guest`
 *    to the ready marker (the one boot of this file).
 *  - BLS: a GPT disk with a separate /boot partition (paths without /boot) and a root one.
 *  - extlinux: a FAT filesystem on the whole disk, relative paths.
 * The manager's start path is checked with a paused guest (QEMU loads the kernel, runs nothing).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { validateDefinition, type DomainDefinition } from '../../src/conf/index.js';
import { findBootEntries, prepareGuestBoot, type BootInfo } from '../../src/guestfs/boot/index.js';
import { openImage } from '../../src/storage/image/index.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { DaemonHarness } from './daemon-harness.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/virtkit.js');
const FIXTURES = join(ROOT, 'test/fixtures/boot');
const READY = 'virtkit-guest: ready';
const MiB = 1024 * 1024;
const BOOT_TIMEOUT_MS = 180_000;

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('exit', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

async function entriesOf(image: string, format: string): Promise<BootInfo> {
  const disk = await openImage(image, { format });
  try {
    return await findBootEntries(disk);
  } finally {
    await disk.close();
  }
}

async function sparseFile(path: string, size: number): Promise<void> {
  await writeFile(path, '');
  await truncate(path, size);
}

/** An ext4 filesystem of `size` bytes filled from `staging`, at `offset` of `image`. */
async function mkext4(image: string, staging: string, offset: number, size: number, label: string): Promise<void> {
  await run('mke2fs', ['-q', '-t', 'ext4', '-L', label, '-d', staging, '-E', `offset=${offset}`, image, `${size / 1024}k`]);
}

describe('boot.loader guest', () => {
  let scratch: string;
  let guestCmdline: string;
  let guestKernel: string;
  let guestInitrd: string;
  let grubDisk: string;
  let blsDisk: string;
  let extlinuxDisk: string;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    scratch = await mkdtemp(join(tmpdir(), 'virtkit-bootguest-'));
    const guest = guestPaths(testGuest());
    guestKernel = guest.kernelPath;
    guestInitrd = guest.initrdPath;
    const doc = parse(await readFile(guest.definitionPath, 'utf8')) as { boot: { cmdline: string } };
    guestCmdline = doc.boot.cmdline;

    // GRUB: MBR, one ext4 partition from 1 MiB holding /boot/{vmlinuz,initrd.img,grub/grub.cfg}.
    const grubStage = join(scratch, 'grub-stage');
    await mkdir(join(grubStage, 'boot/grub'), { recursive: true });
    await copyFile(guestKernel, join(grubStage, 'boot/vmlinuz'));
    await copyFile(guestInitrd, join(grubStage, 'boot/initrd.img'));
    const grubCfg = (await readFile(join(FIXTURES, 'grub/grub.cfg.in'), 'utf8')).replace('@CMDLINE@', guestCmdline);
    await writeFile(join(grubStage, 'boot/grub/grub.cfg'), grubCfg);
    const fsSize = Math.ceil(((await stat(guestKernel)).size + (await stat(guestInitrd)).size) / MiB + 32) * MiB;
    const grubRaw = join(scratch, 'grub.raw');
    await sparseFile(grubRaw, MiB + fsSize);
    await new Promise<void>((res, rej) => {
      const p = spawn('sfdisk', ['-q', grubRaw], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (c: Buffer) => (err += c.toString()));
      p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`sfdisk: ${err}`))));
      p.stdin.end('label: dos\nstart=2048, type=83, bootable\n');
    });
    await mkext4(grubRaw, grubStage, MiB, fsSize, 'boot');
    grubDisk = join(scratch, 'grub.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', grubRaw, grubDisk]);
    await rm(grubRaw);
    await rm(grubStage, { recursive: true });

    // BLS: GPT, partition 1 a separate /boot (entries and kernels at its top), partition 2 the root.
    const bootStage = join(scratch, 'bls-boot');
    await cp(join(FIXTURES, 'bls'), bootStage, { recursive: true });
    for (const [name, text] of [['vmlinuz-6.1.0', 'kernel 6.1'], ['initramfs-6.1.0.img', 'initrd 6.1'], ['vmlinuz-6.10.0', 'kernel 6.10'],
      ['initramfs-6.10.0.img', 'initrd 6.10'], ['ucode.img', 'microcode']] as const) {
      await writeFile(join(bootStage, name), text);
    }
    const rootStage = join(scratch, 'bls-root');
    await mkdir(join(rootStage, 'boot'), { recursive: true });
    await mkdir(join(rootStage, 'etc'));
    await writeFile(join(rootStage, 'etc/os-release'), 'NAME="Virtkit Linux"\nID=virtkit\n');
    blsDisk = join(scratch, 'bls.raw');
    await sparseFile(blsDisk, 40 * MiB);
    // The filesystems first: mke2fs clears the sectors after the first one, where the GPT header lives.
    await mkext4(blsDisk, bootStage, MiB, 16 * MiB, 'boot');
    await mkext4(blsDisk, rootStage, 17 * MiB, 16 * MiB, 'root');
    await run('sgdisk', ['-o', '-n', '1:2048:+16M', '-t', '1:ea00', '-n', '2:0:+16M', '-t', '2:8300', blsDisk]);

    // extlinux: FAT on the whole disk.
    extlinuxDisk = join(scratch, 'extlinux.raw');
    await run('mkfs.vfat', ['-C', extlinuxDisk, '4096']);
    const fatStage = join(scratch, 'fat-stage');
    await cp(join(FIXTURES, 'extlinux'), fatStage, { recursive: true });
    await writeFile(join(fatStage, 'extlinux/vmlinuz'), 'kernel');
    await writeFile(join(fatStage, 'initrd.img'), 'initrd');
    await run('mcopy', ['-s', '-i', extlinuxDisk, join(fatStage, 'extlinux'), join(fatStage, 'initrd.img'), '::/']);
  });

  afterAll(async () => {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  describe('finding entries', () => {
    it('lists both GRUB entries of the qcow2 disk, the first as default and the second with its kernel missing', async () => {
      const info = await entriesOf(grubDisk, 'qcow2');
      expect(info.entries.map((e) => e.title)).toEqual(['virtkit test guest', 'Broken entry (kernel missing)']);
      expect(info.defaultIndex).toBe(0);
      expect(info.entries[0]).toMatchObject({
        loader: 'grub', source: '/boot/grub/grub.cfg', partition: 1, id: 'virtkit-test',
        kernel: '/boot/vmlinuz', initrds: ['/boot/initrd.img'], cmdline: guestCmdline, missing: [],
        kernelFile: { partition: 1, path: '/boot/vmlinuz', size: (await stat(guestKernel)).size },
      });
      expect(info.entries[1]!.missing).toEqual(['/boot/vmlinuz-does-not-exist']);
    });

    it('`virtkit bootinfo` shows the BLS entries of a separate /boot partition, newest first, default from loader.conf', async () => {
      const out = await cli(['bootinfo', blsDisk, '--json']);
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const info = JSON.parse(out.stdout) as BootInfo;
      expect(info.entries.map((e) => e.title)).toEqual(['Virtkit Linux (6.10.0)', 'Virtkit Linux (6.1.0)']);
      expect(info.defaultIndex).toBe(1);
      expect(info.entries[0]).toMatchObject({
        loader: 'bls', source: '/loader/entries', partition: 1, kernel: '/vmlinuz-6.10.0',
        initrds: ['/ucode.img', '/initramfs-6.10.0.img'], cmdline: 'root=LABEL=root ro quiet', missing: [],
      });
      const text = await cli(['bootinfo', blsDisk]);
      expect(text.stdout).toMatch(/^\* 1: Virtkit Linux \(6\.1\.0\)/m);
      expect(text.stdout).toMatch(/Configuration: bls \/loader\/entries \(partition 1\), timeout 3 s/);
    });

    it('`virtkit bootinfo` shows the extlinux entries of a FAT disk with paths relative to the config', async () => {
      const out = await cli(['bootinfo', extlinuxDisk, '--format', 'raw']);
      expect(out.code).toBe(0);
      expect(out.stdout).toMatch(/^\* 1: Virtkit Linux \(rescue\)/m);
      expect(out.stdout).toContain('kernel:  /extlinux/vmlinuz (whole disk, 6 bytes)');
      expect(out.stdout).toContain('initrd:  /initrd.img (whole disk, 6 bytes)');
      expect(out.stdout).toContain('cmdline: initrd=/initrd.img single');
      expect(out.stdout).toMatch(/^ {2}0: Virtkit Linux {2}\[id linux\]/m);
    });

    it('`virtkit bootinfo` refuses a qcow2 disk read as raw with a hint, never guessing the format', async () => {
      const out = await cli(['bootinfo', grubDisk, '--format', 'raw']);
      expect(out.stderr).toContain('fs.unsupported');
      expect(out.stderr).toContain('pass --format qcow2');
      expect(out.code).toBe(9);
      const asQcow2 = await cli(['bootinfo', grubDisk]);
      expect(asQcow2.stdout).toMatch(/^\* 0: virtkit test guest {2}\[id virtkit-test\]/m);
      expect(asQcow2.stdout).toContain('kernel:  /boot/vmlinuz-does-not-exist (missing)');
    });
  });

  describe('prepareGuestBoot', () => {
    const definition = (disk: string, format: string, boot: Record<string, unknown>): DomainDefinition =>
      validateDefinition({ name: 'bootguest', memory: '128MiB', boot: { loader: 'guest', ...boot }, disks: [{ source: disk, format }] });

    const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
      p.then(() => undefined, (err: unknown) => (isVirtkitError(err) ? err.code : String(err)));

    it('extracts the default entry\'s kernel and initrd byte for byte, with its command line', async () => {
      const runDir = await mkdtemp(join(scratch, 'run-'));
      const files = await prepareGuestBoot(definition(grubDisk, 'qcow2', {}), runDir);
      expect(files).toEqual({ kernel: join(runDir, 'boot/kernel'), initrd: join(runDir, 'boot/initrd'), cmdline: guestCmdline });
      expect(await sha256(files.kernel)).toBe(await sha256(guestKernel));
      expect(await sha256(files.initrd!)).toBe(await sha256(guestInitrd));
    });

    it('selects by title and by index, takes explicit paths, and refuses a missing kernel', async () => {
      const runDir = await mkdtemp(join(scratch, 'run-'));
      expect((await prepareGuestBoot(definition(blsDisk, 'raw', { entry: 'Virtkit Linux (6.10.0)' }), runDir)).cmdline).toBe('root=LABEL=root ro quiet');
      // Several initrds are concatenated, in order, as a bootloader loads them.
      expect(await readFile(join(runDir, 'boot/initrd'), 'utf8')).toBe('microcodeinitrd 6.10');
      const byIndex = await prepareGuestBoot(definition(extlinuxDisk, 'raw', { entry: 0 }), runDir);
      expect(byIndex.cmdline).toBe('root=/dev/vda2 ro console=ttyS0');
      const explicit = await prepareGuestBoot(definition(blsDisk, 'raw', { kernel: '/boot/vmlinuz-6.1.0', initrd: '/initramfs-6.1.0.img', cmdline: 'x=1' }), runDir);
      expect(explicit.cmdline).toBe('x=1');
      expect(await readFile(explicit.kernel, 'utf8')).toBe('kernel 6.1');
      expect(await readFile(explicit.initrd!, 'utf8')).toBe('initrd 6.1');
      expect(await codeOf(prepareGuestBoot(definition(grubDisk, 'qcow2', { entry: 1 }), runDir))).toBe('fs.not-found');
      expect(await codeOf(prepareGuestBoot(definition(grubDisk, 'qcow2', { entry: 7 }), runDir))).toBe('boot.no-entry');
      expect(await codeOf(prepareGuestBoot(definition(grubDisk, 'qcow2', { entry: 'No such title' }), runDir))).toBe('boot.no-entry');
      expect(await codeOf(prepareGuestBoot(definition(grubDisk, 'qcow2', { kernel: '/boot/nothing' }), runDir))).toBe('fs.not-found');
      expect(await codeOf(prepareGuestBoot(definition(grubDisk, 'qcow2', {}), runDir, { maxBytes: MiB }))).toBe('fs.too-large');
    });
  });

  it('the manager extracts the kernel when it starts a guest (paused: QEMU loads it, no guest code runs)', async () => {
    const d = await DaemonHarness.create();
    try {
      await d.start();
      const c = d.client();
      const yaml = (entry: number): string => stringify({
        name: `bootguest-${entry}`, memory: '128MiB', boot: { loader: 'guest', entry }, disks: [{ source: grubDisk, format: 'qcow2' }],
      });
      await c.define(yaml(0));
      const info = await c.start('bootguest-0', { paused: true });
      expect(info.state).toBe('paused');
      expect(info.runDir).toBeDefined();
      // QEMU read the extracted kernel into memory when it created the machine: no copy stays in the run dir.
      expect(existsSync(join(info.runDir!, 'boot'))).toBe(false);
      await c.destroy('bootguest-0');
      await c.define(yaml(1));
      const err = await c.start('bootguest-1').then(() => undefined, (e: unknown) => e);
      expect(isVirtkitError(err) ? err.code : err).toBe('fs.not-found');
      expect(await c.state('bootguest-1')).toEqual({ state: 'shutoff', reason: 'failed' });
      expect(await d.qemuPids()).toHaveLength(0);
    } finally {
      await d.cleanup();
    }
  });

  it('`virtkit run --until-ready` boots the guest kit guest installed on the disk through loader: guest', async () => {
    const doc = parse(await readFile(guestPaths(testGuest()).definitionPath, 'utf8')) as Record<string, unknown>;
    const defPath = join(scratch, 'bootguest.yaml');
    await writeFile(defPath, stringify({ ...doc, name: 'bootguest', boot: { loader: 'guest' }, disks: [{ source: grubDisk, format: 'qcow2' }] }));
    const runtimeDir = join(scratch, 'xdg');
    const out = await cli(['run', defPath, '--until-ready', '--timeout', String(BOOT_TIMEOUT_MS / 1000 - 20)], { XDG_RUNTIME_DIR: runtimeDir });
    expect(out.stdout, out.stderr).toContain(READY);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('guest is ready');
  }, BOOT_TIMEOUT_MS);
});
