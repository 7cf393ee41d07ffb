/**
 * docs/definition.md carries the field table rendered from the schema; this test fails when
 * they drift. `VIRTKIT_REGENERATE=1 npx vitest run src/conf/docs.test.ts` rewrites the table.
 */
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import { definitionFields, renderFieldTable } from './docs.js';
import { expectGeneratedSection } from '../../test/helpers/generated-section.js';

const page = resolve('docs/definition.md');
const section = /(<!-- fields:begin[^\n]*-->\n)([\s\S]*?)(\n<!-- fields:end -->)/;

test('docs/definition.md has the field table the schema renders', () => {
  expectGeneratedSection(page, section, renderFieldTable());
});

test('every field has a row with a description', () => {
  const fields = definitionFields();
  for (const path of ['name', 'uuid', 'memory', 'vcpus', 'machine', 'cpu', 'accel', 'boot', 'boot.kernel', 'boot.entry', 'disks',
    'disks[].source', 'disks[].volume', 'disks[].format', 'disks[].bus', 'disks[].readonly', 'disks[].cache', 'nics', 'nics[].model',
    'nics[].mac', 'nics[].network', 'nics[].hostfwd', 'disks[].id', 'disks[].target', 'nics[].id', 'controllers', 'controllers.scsi', 'serial', 'graphics', 'on_poweroff', 'on_reboot', 'on_crash',
    'on_host_shutdown', 'shutdown_timeout', 'qemu', 'qemu.args', 'qemu.env']) {
    expect(fields.map((f) => f.path), path).toContain(path);
  }
  for (const field of fields) expect(field.description.length, field.path).toBeGreaterThan(3);
});
