/**
 * docs/formats.md carries the libvirt mapping table rendered from mapping.ts; this test fails
 * when they drift. `VIRTKIT_REGENERATE=1 npx vitest run src/formats/libvirt/docs.test.ts`
 * rewrites the table.
 */
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import { LibvirtMapping, renderMappingTable } from './mapping.js';
import { expectGeneratedSection } from '../../../test/helpers/generated-section.js';

const page = resolve('docs/formats.md');
const section = /(<!-- libvirt-mapping:begin[^\n]*-->\n)([\s\S]*?)(<!-- libvirt-mapping:end -->)/;

test('docs/formats.md has the mapping table the importer uses', () => {
  expectGeneratedSection(page, section, renderMappingTable());
});

test('the table covers every element the issue names, each path once', () => {
  const paths = LibvirtMapping.map((row) => row.xpath);
  expect(new Set(paths).size).toBe(paths.length);
  for (const element of ['name', 'uuid', 'title', 'description', 'memory', 'currentMemory', 'maxMemory', 'vcpu', 'vcpu/@placement', 'vcpu/@current',
    'os/type/@machine', 'os/kernel', 'os/initrd', 'os/cmdline', 'os/boot/@dev', 'os/loader', 'features/acpi', 'features/apic', 'cpu/@mode', 'cpu/model',
    'clock', 'on_poweroff', 'on_reboot', 'on_crash', 'devices/disk/@type', 'devices/disk/driver/@name', 'devices/disk/driver/@type',
    'devices/disk/driver/@cache', 'devices/disk/source', 'devices/disk/target/@dev', 'devices/disk/target/@bus', 'devices/disk/readonly',
    'devices/disk/shareable', 'devices/disk/boot/@order', 'devices/controller', 'devices/interface/@type', 'devices/interface/mac', 'devices/interface/model',
    'devices/interface/source', 'devices/serial', 'devices/console', 'devices/channel', 'devices/input', 'devices/graphics/@type', 'devices/graphics/listen',
    'devices/video', 'devices/memballoon', 'devices/rng', 'devices/filesystem', 'devices/watchdog', 'qemu:commandline/qemu:arg', 'qemu:commandline/qemu:env']) {
    expect(paths, element).toContain(`/domain/${element}`);
  }
});
