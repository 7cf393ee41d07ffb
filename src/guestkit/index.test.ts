import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main.js';
import { loadDefinition } from '../conf/index.js';
import { GUEST_CMDLINE, READY_MARKER, buildGuest, type BuiltGuest } from './index.js';
import { POWER_BUTTON_HANDLER } from './init-script.js';
import { hasPvhEntry } from './vmlinux.js';

let work: string;
let acpiGuest: BuiltGuest;
let plainGuest: BuiltGuest;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'virtkit-guestkit-'));
  acpiGuest = await buildGuest({ dir: join(work, 'acpi') });
  plainGuest = await buildGuest({ dir: join(work, 'plain'), name: 'quiet-one', acpi: false });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const archive = (guest: BuiltGuest): Buffer => gunzipSync(readFileSync(guest.initrdPath));
const listing = (guest: BuiltGuest): string[] =>
  execFileSync('cpio', ['--quiet', '-t'], { input: archive(guest) }).toString().trim().split('\n');
const extract = (guest: BuiltGuest, name: string): string =>
  execFileSync('cpio', ['--quiet', '-i', '--to-stdout', name], { input: archive(guest) }).toString();

describe('buildGuest', () => {
  it('writes a definition the conf layer accepts, with paths next to it', async () => {
    const def = await loadDefinition(acpiGuest.definitionPath);
    expect(def).toMatchObject({
      name: 'demo',
      memory: 128 * 1024 * 1024,
      vcpus: 1,
      accel: 'auto',
      serial: true,
      graphics: 'none',
      boot: { loader: 'direct', kernel: acpiGuest.kernelPath, initrd: acpiGuest.initrdPath, cmdline: GUEST_CMDLINE },
    });
    expect(readFileSync(acpiGuest.definitionPath, 'utf8')).toMatch(/^\s+kernel: vmlinuz$/m);
  });

  it('boots the kernel through PVH: the uncompressed ELF from inside the bzImage', () => {
    // Debian's kernels are xz-compressed bzImages built with CONFIG_PVH.
    expect(acpiGuest.kernelFormat).toBe('pvh');
    const kernel = readFileSync(acpiGuest.kernelPath);
    expect(hasPvhEntry(kernel)).toBe(true);
    expect(kernel.length).toBeGreaterThan(readFileSync(acpiGuest.kernel.imagePath).length);
  });

  it('gives the --no-acpi guest its name and a short shutdown timeout', async () => {
    const def = await loadDefinition(plainGuest.definitionPath);
    expect(def.name).toBe('quiet-one');
    expect(def.shutdown_timeout).toBeLessThan((await loadDefinition(acpiGuest.definitionPath)).shutdown_timeout);
  });

  it('packs busybox, the console nodes, /init and every module into the initramfs', () => {
    const names = listing(acpiGuest);
    expect(names).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'bin/sh', 'dev/console', 'dev/ttyS0', 'dev/null']));
    expect(names).toEqual(expect.arrayContaining(acpiGuest.modules.map((m) => `lib/modules/${m}.ko`)));
    expect(acpiGuest.modules).toEqual(expect.arrayContaining(['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4']));
  });

  it('loads modules in dependency order, then reports ready, then starts the shell', () => {
    const init = extract(acpiGuest, 'init');
    const loadOrder = [...init.matchAll(/'\/lib\/modules\/([a-z0-9_]+)\.ko'/g)].map((m) => m[1]);
    expect(loadOrder).toEqual(acpiGuest.modules);
    const at = (pattern: RegExp): number => init.search(pattern);
    expect(at(/^ *insmod /m)).toBeGreaterThan(0);
    expect(at(/^acpid /m)).toBeGreaterThan(at(/^ *insmod /m));
    expect(at(new RegExp(`^echo '${READY_MARKER}'`, 'm'))).toBeGreaterThan(at(/^acpid /m));
    expect(at(/^ *setsid cttyhack sh/m)).toBeGreaterThan(at(new RegExp(`^echo '${READY_MARKER}'`, 'm')));
  });

  it('handles the power button only in the ACPI guest', () => {
    expect(extract(acpiGuest, POWER_BUTTON_HANDLER.slice(1))).toMatch(/^#!\/bin\/sh\n[\s\S]*poweroff -f/);
    expect(listing(plainGuest)).not.toContain(POWER_BUTTON_HANDLER.slice(1));
    expect(extract(plainGuest, 'init')).not.toMatch(/^acpid /m);
  });

  it('refuses a name the definition would refuse, before building anything', async () => {
    const dir = join(work, 'bad');
    await expect(buildGuest({ dir, name: 'no spaces' })).rejects.toMatchObject({ code: 'definition.invalid' });
    expect(() => readFileSync(join(dir, 'initramfs.img'))).toThrow();
  });
});

describe('virtkit guestkit', () => {
  it('builds the guest and says what it built', async () => {
    const out: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      expect(await main(['guestkit', join(work, 'cli'), '--name', 'clidemo', '--no-acpi'])).toBe(0);
    } finally {
      write.mockRestore();
    }
    expect(out.join('')).toMatch(/Built guest 'clidemo'/);
    expect(out.join('')).toMatch(/power button ignored/);
    expect((await loadDefinition(join(work, 'cli', 'guest.yaml'))).name).toBe('clidemo');
  });
});
