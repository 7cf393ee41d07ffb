import { describe, expect, it } from 'vitest';
import { parseDefinition } from '../../conf/index.js';
import { buildCommand } from '../command/index.js';
import { accelOfCommandLine } from './qemu-driver.js';
import { deviceKind, guestRunState } from './qemu-guest.js';

describe('accelOfCommandLine', () => {
  it('reads the accelerator of an attached QEMU from -machine or -accel, the last word winning', () => {
    expect(accelOfCommandLine(['qemu-system-x86_64', '-machine', 'pc,accel=tcg'])).toBe('tcg');
    expect(accelOfCommandLine(['qemu-system-x86_64', '-M', 'q35,accel=kvm,smm=off'])).toBe('kvm');
    expect(accelOfCommandLine(['qemu-system-x86_64', '-accel', 'kvm'])).toBe('kvm');
    expect(accelOfCommandLine(['qemu-system-x86_64', '-machine', 'pc,accel=kvm', '-accel', 'tcg,thread=single'])).toBe('tcg');
  });

  it('says nothing for a command line without one, or one it does not know', () => {
    expect(accelOfCommandLine(['qemu-system-x86_64', '-machine', 'pc'])).toBeUndefined();
    expect(accelOfCommandLine(['qemu-system-x86_64', '-accel', 'hvf'])).toBeUndefined();
    expect(accelOfCommandLine(['qemu-system-x86_64', '-accel'])).toBeUndefined();
  });

  it('agrees with the command builder', () => {
    const def = parseDefinition('name: a\nmemory: 64MiB\n');
    for (const accel of ['kvm', 'tcg'] as const) {
      const { binary, argv } = buildCommand(def, { binary: 'qemu-system-x86_64', accel, runDir: '/run/a' });
      expect(accelOfCommandLine([binary, ...argv])).toBe(accel);
    }
  });
});

describe('deviceKind and guestRunState', () => {
  it('classifies devices by their QOM type', () => {
    expect(deviceKind('vda', 'virtio-blk-pci')).toBe('disk');
    expect(deviceKind('sda', 'scsi-hd')).toBe('disk');
    expect(deviceKind('net0', 'virtio-net-pci')).toBe('nic');
    expect(deviceKind('net1', 'e1000')).toBe('nic');
    expect(deviceKind('scsi0', 'virtio-scsi-pci')).toBe('controller');
    expect(deviceKind('pvpanic0', 'pvpanic')).toBe('other');
  });

  it('maps QEMU\'s run states to the contract\'s', () => {
    expect(guestRunState('running')).toBe('running');
    expect(guestRunState('paused')).toBe('paused');
    expect(guestRunState('io-error')).toBe('paused');
    expect(guestRunState('shutdown')).toBe('shutdown');
    expect(guestRunState('guest-panicked')).toBe('crashed');
    expect(guestRunState('prelaunch')).toBe('prelaunch');
    expect(guestRunState('inmigrate')).toBe('other');
  });
});
