import { describe, expect, it } from 'vitest';
import { parseAccelHelp, resolveAccel, type QemuCapabilities } from './caps.js';

const caps = (usable: boolean): QemuCapabilities => ({
  binary: '/usr/bin/qemu-system-x86_64',
  version: { major: 7, minor: 2, micro: 0, package: '' },
  machines: [],
  accelerators: ['tcg', 'kvm'],
  cpuModels: [],
  devices: [],
  kvm: { usable, reason: usable ? 'KVM ran a test guest' : 'a KVM test guest made no progress', bootId: 'b' },
});

describe('resolveAccel', () => {
  it('auto picks KVM only when the functional check passed, and says why', () => {
    expect(resolveAccel('auto', caps(true))).toEqual({ accel: 'kvm', reason: 'auto: KVM ran a test guest' });
    expect(resolveAccel('auto', caps(false))).toEqual({ accel: 'tcg', reason: 'auto: a KVM test guest made no progress; using TCG' });
  });

  it('honours an explicit request', () => {
    expect(resolveAccel('tcg', caps(true)).accel).toBe('tcg');
    expect(resolveAccel('kvm', caps(false))).toMatchObject({ accel: 'kvm', reason: expect.stringContaining('made no progress') as unknown });
  });
});

describe('parseAccelHelp', () => {
  it('lists the accelerators under the header', () => {
    expect(parseAccelHelp('Accelerators supported in QEMU binary:\ntcg\nkvm\n')).toEqual(['tcg', 'kvm']);
  });
});
