/**
 * libvirt XML fixtures (docs/formats.md): test/fixtures/libvirt/NAME.xml is a domain
 * document; NAME.yaml is the definition virtkit imports from it (NAME.err the error it must
 * raise instead); NAME.args, where present, the QEMU command that definition starts; and
 * NAME.out.xml the XML `dumpxml` writes for it, which libvirt's own RelaxNG schema must accept
 * (virt-xml-validate) and which imports back to the same definition. A name starting with
 * `lenient-` is imported with --lenient.
 * `VIRTKIT_REGENERATE=1 npx vitest run test/libvirt-fixtures.test.ts` rewrites the
 * expectations; review the diff line by line.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { formatDefinition, type DomainDefinition } from '../src/conf/index.js';
import { exportLibvirtXml, importLibvirtXml, LibvirtMapping, readDefinitionText, validateImported } from '../src/formats/index.js';
import { buildCommand } from '../src/qemu/command/index.js';
import { VirtkitError } from '../src/util/errors.js';
import { FixtureBaseDir, fixtureContext, renderArgs } from './argv-fixtures.js';

const regenerate = process.env['VIRTKIT_REGENERATE'] === '1';
const dir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'libvirt');
const names = readdirSync(dir).filter((f) => f.endsWith('.xml') && !f.endsWith('.out.xml')).map((f) => f.slice(0, -4)).sort();
/** The fixtures whose QEMU command is checked too. */
const WithArgs = new Set(['lenient-disk-sata-q35', 'direct-kernel', 'disks', 'nics', 'qemu-commandline', 'uefi', 'filesystems', 'graphics']);
const ArgvContext = '# ctx: { volumePaths: { "default/extra.qcow2": /var/lib/virtkit/pools/default/extra.qcow2 }, '
  + 'firmware: { code: /usr/share/OVMF/OVMF_CODE_4M.fd, vars: /var/lib/virtkit/domains/uefi/OVMF_VARS.fd }, filesystemDrivers: [virtiofs, 9p, 9p] }';

const pathsRead = new Set<string>();
const scratch = mkdtempSync(join(tmpdir(), 'virtkit-libvirt-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function importFixture(name: string, text: string): Promise<DomainDefinition> {
  const lenient = name.startsWith('lenient-');
  // Once through the importer directly, to learn which table rows the fixtures cover.
  try {
    importLibvirtXml(text, { lenient, onRead: (p) => pathsRead.add(p) });
  } catch { /* the same error comes again below */ }
  const read = await readDefinitionText(text, { format: 'auto', lenient, sourceName: `${name}.xml` });
  const def = validateImported(read, { baseDir: FixtureBaseDir });
  // Generated values a fixture leaves out are pinned, as the argv fixtures do.
  if (!text.includes('<uuid>')) def.uuid = '00000000-0000-4000-8000-000000000000';
  def.nics.forEach((nic, i) => {
    if (!text.toLowerCase().includes(nic.mac)) nic.mac = `52:54:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`;
  });
  return def;
}

function expectFile(file: string, actual: string, others: string[] = []): void {
  const path = join(dir, file);
  if (regenerate) {
    for (const other of others) if (existsSync(join(dir, other))) unlinkSync(join(dir, other));
    writeFileSync(path, actual);
    return;
  }
  expect(existsSync(path), `${file} is missing (VIRTKIT_REGENERATE=1 writes it)`).toBe(true);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

function validateWithLibvirt(xml: string, name: string): void {
  const file = join(scratch, `${name}.xml`);
  writeFileSync(file, xml);
  try {
    execFileSync('virt-xml-validate', [file, 'domain'], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer };
    throw new Error(`virt-xml-validate refused ${name}.out.xml:\n${e.stderr?.toString() ?? ''}${e.stdout?.toString() ?? ''}`);
  }
}

function withoutNotes(def: DomainDefinition): Omit<DomainDefinition, 'notes'> {
  const copy: Record<string, unknown> = { ...def };
  delete copy['notes'];
  return copy as Omit<DomainDefinition, 'notes'>;
}

describe('libvirt XML fixtures', () => {
  test('there are enough of them, hostile ones among them', () => {
    expect(names.length).toBeGreaterThanOrEqual(20);
    expect(names.filter((n) => existsSync(join(dir, `${n}.err`))).length).toBeGreaterThanOrEqual(8);
  });

  test('every file in the fixture directory belongs to a case', () => {
    const known = new Set(names.flatMap((n) => ['xml', 'yaml', 'err', 'args', 'out.xml'].map((ext) => `${n}.${ext}`)));
    expect(readdirSync(dir).filter((f) => !known.has(f))).toEqual([]);
  });

  for (const name of names) {
    test(name, async () => {
      const text = readFileSync(join(dir, `${name}.xml`), 'utf8');
      let def: DomainDefinition;
      try {
        def = await importFixture(name, text);
      } catch (err) {
        if (!(err instanceof VirtkitError)) throw err;
        expectFile(`${name}.err`, `${err.code}: ${err.message}\n`, [`${name}.yaml`, `${name}.args`, `${name}.out.xml`]);
        return;
      }
      expectFile(`${name}.yaml`, formatDefinition(def, 'yaml'), [`${name}.err`]);
      if (WithArgs.has(name)) expectFile(`${name}.args`, renderArgs(buildCommand(def, fixtureContext(ArgvContext))));
      const xml = exportLibvirtXml(def);
      expectFile(`${name}.out.xml`, xml);
      validateWithLibvirt(xml, name);
      // The round trip: the exported XML imports cleanly (nothing unsupported) to the same
      // definition, and exporting that gives the same XML (the canonical form is a fixed point).
      const again = validateImported(await readDefinitionText(xml, { format: 'libvirt' }), { baseDir: FixtureBaseDir });
      expect(withoutNotes(again)).toEqual(withoutNotes(def));
      expect(exportLibvirtXml({ ...again, notes: def.notes } as DomainDefinition)).toBe(xml);
    });
  }

  test('every honoured row of the mapping table is read by some fixture', () => {
    const honoured = LibvirtMapping.filter((row) => row.unsupported === undefined).map((row) => row.xpath);
    expect(honoured.filter((p) => !pathsRead.has(p))).toEqual([]);
  });
});
