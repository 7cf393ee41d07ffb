import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseFirmwareDescriptor, plainUefi } from './index.js';

const Plain = JSON.stringify({
  description: 'UEFI firmware for x86_64', 'interface-types': ['uefi'],
  mapping: { device: 'flash', executable: { filename: '/usr/share/OVMF/OVMF_CODE_4M.fd', format: 'raw' }, 'nvram-template': { filename: '/usr/share/OVMF/OVMF_VARS_4M.fd', format: 'raw' } },
  targets: [{ architecture: 'x86_64', machines: ['pc-i440fx-*', 'pc-q35-*'] }], features: ['acpi-s3'], tags: [],
});
const Secure = Plain.replace('"acpi-s3"', '"secure-boot","requires-smm"').replace('OVMF_CODE_4M.fd', 'OVMF_CODE_4M.secboot.fd');

describe('firmware descriptors', () => {
  test('the plain UEFI image is chosen over a secure-boot one', () => {
    const images = [parseFirmwareDescriptor('50-secure.json', Secure)!, parseFirmwareDescriptor('60-plain.json', Plain)!];
    expect(plainUefi(images)).toMatchObject({ name: '60-plain.json', executable: '/usr/share/OVMF/OVMF_CODE_4M.fd', nvramTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' });
  });
  test('what is not a descriptor is skipped', () => {
    for (const text of ['', '[]', '{}', 'null', '{"mapping":{"device":"flash"}}', '{"interface-types":["uefi"],"mapping":[]}']) {
      expect(parseFirmwareDescriptor('x.json', text)).toBeUndefined();
    }
    expect(parseFirmwareDescriptor('x.json', Plain.replace('/usr/share/OVMF/OVMF_CODE_4M.fd', 'relative.fd'))?.executable).toBeUndefined();
  });
  test('the host\'s own descriptors parse, when installed', () => {
    let text: string;
    try { text = readFileSync('/usr/share/qemu/firmware/60-edk2-x86_64.json', 'utf8'); } catch { return; }
    expect(parseFirmwareDescriptor('60-edk2-x86_64.json', text)?.interfaces).toEqual(['uefi']);
  });
  test('fuzz: 3000 mutated descriptors parse to an image or nothing, never throw', () => {
    let seed = 11;
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const pieces = ['{', '}', '[', ']', '"', ',', ':', 'null', '1', '"uefi"', '"flash"', '"/x"'];
    for (let i = 0; i < 3000; i++) {
      const chars = [...Plain];
      for (let k = random(5); k > 0; k--) chars.splice(random(chars.length), random(3), pieces[random(pieces.length)]!);
      const image = parseFirmwareDescriptor('f.json', chars.join(''));
      if (image) expect(image.interfaces.length).toBeGreaterThan(0);
    }
  });
});
