/**
 * firmware: uefi on a real guest kit guest under TCG: OVMF boots the host's EFI-stub kernel
 * directly (QEMU's -kernel through OVMF's kernel loader) with the guest kit initramfs, the
 * domain gets a variable store of its own under STATE/nvram, removed on undefine; and
 * domcapabilities reports the firmware and the device models. One UEFI boot: TCG makes it slow.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { testGuestDefinition } from '../helpers/guests.js';
import { DaemonHarness } from './daemon-harness.js';

const G = 'efi';
let d: DaemonHarness;
let dir: string;

async function ok(args: string[]): Promise<string> {
  const r = await d.cli(args);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-uefi-'));
  const base = testGuestDefinition();
  const text = await readFile(base, 'utf8');
  // The guest kit's kernel file is an uncompressed vmlinux (fast to boot directly, but no EFI
  // stub): OVMF boots the host's own bzImage of the same version, which the modules fit.
  const version = /kernel (\S+),/.exec(text)?.[1];
  const def = YAML.parse(text) as Record<string, Record<string, unknown>>;
  const boot = def['boot']!;
  boot['kernel'] = `/boot/vmlinuz-${version ?? 'unknown'}`;
  boot['initrd'] = resolve(dirname(base), String(boot['initrd']));
  await writeFile(join(dir, 'guest.yaml'), YAML.stringify({ ...def, name: G, accel: 'tcg', memory: '256MiB', firmware: 'uefi' }));
  d = await DaemonHarness.create();
  await d.start();
}, 60_000);

afterAll(async () => {
  await d?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe('firmware: uefi', { timeout: 180_000 }, () => {
  it('boots a guest kit guest through OVMF with a variable store of its own, removed on undefine', async () => {
    await ok(['define', join(dir, 'guest.yaml')]);
    const { uuid } = JSON.parse(await ok(['dominfo', G, '--json'])) as { uuid: string };
    await ok(['start', G]);
    const vars = join(d.stateDir, 'nvram', uuid, 'OVMF_VARS.fd');
    expect((await stat(vars)).mode & 0o777).toBe(0o600);
    expect((await stat(vars)).size).toBe((await stat('/usr/share/OVMF/OVMF_VARS_4M.fd')).size);
    await d.waitConsole(G, 'virtkit-guest: ready', 0, 150_000);
    const log = await d.client().consoleLog(G);
    // OVMF's code and the domain's store on the two flash drives
    const argv = await readFile(`/proc/${(JSON.parse(await ok(['dominfo', G, '--json'])) as { pid: number }).pid}/cmdline`, 'utf8');
    expect(argv).toContain('"node-name":"fw.code"');
    expect(argv).toContain('pflash0=fw.code,pflash1=fw.vars');
    expect(log).toContain('virtkit-guest: ready');
    await ok(['destroy', G]);
    expect(existsSync(vars)).toBe(true);
    await ok(['undefine', G]);
    expect(existsSync(dirname(vars))).toBe(false);
  });

  it('domcapabilities names the UEFI firmware and the device models of each purpose', async () => {
    const caps = JSON.parse(await ok(['domcapabilities', '--json'])) as {
      firmware: { kinds: string[]; images: { interfaces: string[]; executable?: string; features: string[] }[] };
      devices: Record<string, string[]>; machines: { name: string }[]; cpuModels: string[];
    };
    expect(caps.firmware.kinds).toEqual(['bios', 'uefi']);
    expect(caps.firmware.images).toContainEqual(expect.objectContaining({ interfaces: ['uefi'], executable: '/usr/share/OVMF/OVMF_CODE_4M.fd' }));
    expect(caps.devices['video']).toEqual(expect.arrayContaining(['VGA', 'bochs-display', 'virtio-vga']));
    expect(caps.devices['disk']).toEqual(expect.arrayContaining(['virtio-blk-pci', 'scsi-hd', 'ide-hd']));
    expect(caps.devices['nic']).toEqual(expect.arrayContaining(['virtio-net-pci', 'e1000', 'rtl8139']));
    expect(caps.devices['balloon']).toContain('virtio-balloon-pci');
    expect(caps.devices['filesystem']).toEqual(['vhost-user-fs-pci', 'virtio-9p-pci']);
    expect(caps.machines.map((m) => m.name)).toContain('pc-q35-7.2');
    expect(caps.cpuModels).toContain('qemu64');
    expect(await ok(['domcapabilities'])).toMatch(/60-edk2-x86_64\.json\s+uefi\s+flash/);
  });
});
