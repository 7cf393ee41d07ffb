import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { findHostKernel } from './kernel.js';
import { moduleNameOf, parseModulesDep, readModule, resolveModules } from './modules.js';

let versionDir: string;

const MODULES_DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:
kernel/drivers/block/virtio_blk.ko.gz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/loop-a.ko: kernel/fs/loop_b.ko
kernel/fs/loop_b.ko: kernel/fs/loop-a.ko
kernel/fs/needs-missing.ko: kernel/fs/gone.ko
`;

beforeAll(() => {
  versionDir = mkdtempSync(join(tmpdir(), 'virtkit-modules-'));
  writeFileSync(join(versionDir, 'modules.dep'), MODULES_DEP);
  writeFileSync(join(versionDir, 'modules.builtin'), 'kernel/drivers/input/evdev.ko\nkernel/drivers/acpi/button.ko\n');
  mkdirSync(join(versionDir, 'kernel/drivers/virtio'), { recursive: true });
  mkdirSync(join(versionDir, 'kernel/drivers/block'), { recursive: true });
  writeFileSync(join(versionDir, 'kernel/drivers/virtio/virtio.ko'), 'plain module');
  writeFileSync(join(versionDir, 'kernel/drivers/block/virtio_blk.ko.gz'), gzipSync('gzip module'));
  const xzSource = join(versionDir, 'kernel/drivers/virtio/virtio_pci_modern_dev.ko');
  writeFileSync(xzSource, 'xz module');
  execFileSync('xz', ['-z', xzSource]); // replaces it with .ko.xz
});
afterAll(() => rmSync(versionDir, { recursive: true, force: true }));

describe('kernel modules', () => {
  it('names modules the way the kernel does', () => {
    expect(moduleNameOf('kernel/drivers/char/hw_random/virtio-rng.ko.zst')).toBe('virtio_rng');
    expect(moduleNameOf('kernel/fs/ext4/ext4.ko')).toBe('ext4');
  });

  it('parses modules.dep and skips lines that are not entries', () => {
    const table = parseModulesDep('a.ko: b.ko c.ko\n\ngarbage\n: nothing\nb.ko:\n');
    expect([...table.keys()]).toEqual(['a', 'b']);
    expect(table.get('a')?.deps).toEqual(['b.ko', 'c.ko']);
  });

  it('orders dependencies before the modules that need them, each once', async () => {
    const { load, builtin } = await resolveModules(versionDir, ['virtio_blk', 'virtio-pci', 'evdev', 'button']);
    expect(load.map((m) => m.name)).toEqual(['virtio_ring', 'virtio', 'virtio_blk', 'virtio_pci_modern_dev', 'virtio_pci']);
    expect(builtin).toEqual(['evdev', 'button']);
  });

  it('fails with guestkit.missing-host-file for an unknown module, naming who needs it', async () => {
    const err: unknown = await resolveModules(versionDir, ['needs_missing']).catch((e: unknown) => e);
    expect(isVirtkitError(err, 'guestkit.missing-host-file')).toBe(true);
    expect((err as Error).message).toMatch(/kernel module gone \(needed by needs_missing\)/);
  });

  it('refuses a dependency cycle instead of looping', async () => {
    const err: unknown = await resolveModules(versionDir, ['loop_a']).catch((e: unknown) => e);
    expect(isVirtkitError(err, 'guestkit.missing-host-file')).toBe(true);
    expect((err as Error).message).toMatch(/cycle/);
  });

  it('reads plain modules and decompresses .ko.gz and .ko.xz', async () => {
    const { load } = await resolveModules(versionDir, ['virtio_blk', 'virtio_pci_modern_dev']);
    const text = async (name: string): Promise<string> => {
      const mod = load.find((m) => m.name === name);
      if (mod === undefined) throw new Error(`${name} not resolved`);
      return (await readModule(versionDir, mod)).toString();
    };
    expect(await text('virtio')).toBe('plain module');
    expect(await text('virtio_blk')).toBe('gzip module');
    expect(await text('virtio_pci_modern_dev')).toBe('xz module');
  });

  it('reports a missing module file as guestkit.missing-host-file', async () => {
    const { load } = await resolveModules(versionDir, ['virtio_ring']);
    const mod = load[0];
    expect(mod).toBeDefined();
    if (mod !== undefined) await expect(readModule(versionDir, mod)).rejects.toMatchObject({ code: 'guestkit.missing-host-file' });
  });

  it('resolves the guest kit modules for the host kernel', async () => {
    const kernel = await findHostKernel();
    const { load, builtin } = await resolveModules(kernel.modulesDir, ['virtio_pci', 'virtio_blk', 'ext4', 'button', 'evdev']);
    const order = load.map((m) => m.name);
    expect([...order, ...builtin]).toEqual(expect.arrayContaining(['virtio_pci', 'virtio_blk', 'ext4', 'button', 'evdev']));
    if (order.includes('virtio') && order.includes('virtio_pci')) expect(order.indexOf('virtio')).toBeLessThan(order.indexOf('virtio_pci'));
    if (order.includes('jbd2')) expect(order.indexOf('jbd2')).toBeLessThan(order.indexOf('ext4'));
  });
});
