/**
 * The fake driver's resource limits, screens and keys: what the QEMU driver does, minus the
 * host. No cgroups (limits change the live definition only, and read back as set), a blank
 * screen of VGA text mode's size, keys checked as the real driver checks them and recorded
 * for tests (fakeSentKeys), the VNC password refused as QEMU would refuse it.
 */
import { videoModelOf, type DomainDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { encodePng, parseKeys, randomVncPassword, type Screenshot } from '../screens/index.js';
import type { DomainCapabilities } from './domcaps.js';
import { assertVncPassword, limitsOf, type ResourceLimits, type ResourceLimitsInfo } from './host-resources.js';

const sentKeys = new WeakMap<object, string[][]>();

/** Test hook: the qcodes each sendKeys call of this fake guest pressed, in order. */
export function fakeSentKeys(guest: object): string[][] {
  return sentKeys.get(guest) ?? [];
}

export function fakeWithLimits(def: DomainDefinition, limits: ResourceLimits): DomainDefinition {
  const out: DomainDefinition = { ...def, cpu_shares: limits.cpu_shares, cpu_quota: limits.cpu_quota, memory_limit: limits.memory_limit };
  for (const key of ['cpu_shares', 'cpu_quota', 'memory_limit'] as const) if (out[key] === undefined) delete out[key];
  return out;
}

export function fakeResourceLimits(def: DomainDefinition): ResourceLimitsInfo {
  const limits = limitsOf(def);
  for (const key of ['cpu_shares', 'cpu_quota', 'memory_limit'] as const) if (limits[key] === undefined) delete limits[key];
  return { limits };
}

/** VGA text mode (80x25 cells of 9x16), as a guest kit guest's VGA shows on the serial-only console. */
export function fakeScreenshot(def: DomainDefinition): Screenshot {
  if (videoModelOf(def) === 'none') {
    throw new VirtkitError('qmp.command-failed', 'screendump: There is no QemuConsole I can screendump from.', { command: 'screendump' });
  }
  const width = 720;
  const height = 400;
  return { width, height, png: encodePng({ width, height, rgb: Buffer.alloc(width * height * 3) }) };
}

export function fakeSendKeys(guest: object, keys: readonly string[]): void {
  const codes = parseKeys(keys);
  sentKeys.set(guest, [...fakeSentKeys(guest), codes]);
}

export function fakeVncPassword(def: DomainDefinition): string {
  assertVncPassword(def);
  return randomVncPassword();
}

export const FakeDomainCapabilities: DomainCapabilities = {
  binary: 'qemu-system-x86_64',
  version: '7.2.0',
  accelerators: ['tcg'],
  kvm: { usable: false, reason: 'fake driver' },
  machines: [{ name: 'pc-i440fx-7.2', alias: 'pc', isDefault: true, maxCpus: 255, deprecated: false }, { name: 'pc-q35-7.2', alias: 'q35', isDefault: false, maxCpus: 288, deprecated: false }],
  cpuModels: ['max', 'qemu64'],
  firmware: { kinds: ['bios', 'uefi'], images: [] },
  devices: {
    disk: ['ide-hd', 'scsi-hd', 'virtio-blk-pci'], nic: ['e1000', 'rtl8139', 'virtio-net-pci'], video: ['VGA', 'bochs-display', 'virtio-vga'],
    balloon: ['virtio-balloon-pci'], filesystem: ['vhost-user-fs-pci', 'virtio-9p-pci'], controller: ['virtio-scsi-pci'],
  },
  definition: { video: ['vga', 'bochs', 'virtio', 'none'], filesystemDrivers: ['auto', 'virtiofs', '9p'] },
};
