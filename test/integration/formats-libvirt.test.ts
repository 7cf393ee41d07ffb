/**
 * libvirt domain XML through the built CLI against a real daemon: the guest kit guest's
 * definition converted to XML (valid per libvirt's schema), defined from that XML (detected by
 * content), booted to its ready marker, dumped back with dumpxml (saved and --live, both
 * valid, and importing to the same definition); hostile, unsupported and lenient documents.
 * One guest boot for the whole file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGuestDefinition } from '../helpers/guests.js';
import { DaemonHarness } from './daemon-harness.js';

const G = 'xmlguest';
const fixtures = resolve('test/fixtures/libvirt');
let d: DaemonHarness;
let dir: string;

function validate(xml: string, name: string): void {
  const file = join(dir, `${name}.xml`);
  writeFileSync(file, xml);
  execFileSync('virt-xml-validate', [file, 'domain'], { stdio: 'pipe' });
}

async function names(): Promise<string[]> {
  return (JSON.parse((await d.cli(['list', '--all', '--json'])).stdout) as { name: string }[]).map((x) => x.name);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'virtkit-xml-'));
  d = await DaemonHarness.create();
  await d.start();
}, 60_000);

afterAll(async () => {
  await d.cli(['destroy', G]);
  await d.cleanup();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('libvirt XML through the CLI', () => {
  it('converts the guest kit guest to valid XML, defines it from the XML, boots it, and dumps it back', async () => {
    const converted = await d.cli(['convert', '--to', 'libvirt', testGuestDefinition()]);
    expect(converted.code, converted.stderr).toBe(0);
    const xml = converted.stdout.replace(/<name>[^<]*<\/name>/, `<name>${G}</name>`).replace(/<uuid>[^<]*<\/uuid>\n\s*/, '');
    validate(xml, 'converted');
    const file = join(dir, 'guest.xml');
    writeFileSync(file, xml);

    const defined = await d.cli(['define', file]);
    expect(defined.code, defined.stderr).toBe(0);
    expect(defined.stdout).toContain(`Domain '${G}' defined`);
    const start = await d.cli(['start', G]);
    expect(start.code, start.stderr).toBe(0);
    await d.waitConsole(G, 'virtkit-guest: ready');

    for (const live of [false, true]) {
      const dumped = await d.cli(['dumpxml', G, ...(live ? ['--live'] : [])]);
      expect(dumped.code, dumped.stderr).toBe(0);
      validate(dumped.stdout, live ? 'live' : 'saved');
      // The dump imports to the definition the daemon holds.
      const back = await d.cli(['convert', '--from', 'libvirt', '--to', 'json', '-'], { input: dumped.stdout });
      expect(back.code, back.stderr).toBe(0);
      const saved = await d.cli(['dumpdef', G, '--json', ...(live ? ['--live'] : [])]);
      expect(JSON.parse(back.stdout)).toEqual(JSON.parse(saved.stdout));
    }
  }, 120_000);

  it('refuses hostile XML with a typed error and defines nothing', async () => {
    for (const [fixture, code] of [['hostile-billion-laughs', 'definition.xml-refused'], ['hostile-external-entity', 'definition.xml-refused'],
      ['hostile-unknown-namespace', 'definition.xml-refused'], ['malformed-unclosed', 'definition.invalid'], ['duplicate-targets', 'definition.invalid'],
      ['units-overflow', 'definition.invalid']] as const) {
      const r = await d.cli(['define', join(fixtures, `${fixture}.xml`)]);
      expect(r.code, fixture).toBe(5);
      expect(r.stderr, fixture).toContain(code);
    }
    expect(await names()).toEqual([G]);
  });

  it('refuses what it cannot honour by XPath, and keeps the list in notes with --lenient', async () => {
    const strict = await d.cli(['define', join(fixtures, 'strict-virt-manager.xml')]);
    expect(strict.code).toBe(5);
    expect(strict.stderr).toContain('definition.unsupported');
    expect(strict.stderr).toContain('/domain/devices/sound[1]: not supported: no sound devices');
    expect(await names()).toEqual([G]);

    const lenient = await d.cli(['define', '--lenient', join(fixtures, 'lenient-virt-manager.xml')]);
    expect(lenient.code, lenient.stderr).toBe(0);
    const def = JSON.parse((await d.cli(['dumpdef', 'debian12', '--json'])).stdout) as { notes: string[]; nics: { network: string }[] };
    expect(def.notes).toContain('/domain/devices/sound[1]: not supported: no sound devices');
    // <interface type='network'><source network='default'/>: the virtkit network of that name.
    expect(def.nics[0]?.network).toBe('default');
    const dumped = await d.cli(['dumpxml', 'debian12']);
    validate(dumped.stdout, 'lenient');
    expect(dumped.stdout).toContain('<!-- virtkit note: /domain/devices/sound[1]: not supported: no sound devices -->');
    expect((await d.cli(['undefine', 'debian12'])).code).toBe(0);
  });

  it('refuses to dump a description XML cannot carry, and writes no raw ESC', async () => {
    const file = join(dir, 'escape.yaml');
    writeFileSync(file, 'name: escape\nmemory: 128MiB\ndescription: "a\\x1bb\\x07c"\n');
    expect((await d.cli(['define', file])).code).toBe(0);
    const dumped = await d.cli(['dumpxml', 'escape']);
    expect(dumped.code).toBe(5);
    expect(dumped.stderr).toContain('definition.unsupported');
    expect(dumped.stderr).toContain('description: holds U+001B');
    expect(`${dumped.stdout}${dumped.stderr}`).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f]/);
    const converted = await d.cli(['convert', '--to', 'libvirt', file]);
    expect(converted.code).toBe(5);
    expect(converted.stdout).toBe('');
    expect((await d.cli(['undefine', 'escape'])).code).toBe(0);
  });

  it('net-define reads libvirt network XML', async () => {
    const file = join(dir, 'net.xml');
    writeFileSync(file, "<network><name>vklab</name><forward mode='nat'/><ip address='10.213.77.1' netmask='255.255.255.0'><dhcp><range start='10.213.77.10' end='10.213.77.20'/></dhcp></ip></network>\n");
    const defined = await d.cli(['net-define', file]);
    expect(defined.code, defined.stderr).toBe(0);
    const dumped = await d.cli(['net-dumpdef', 'vklab', '--json']);
    expect(dumped.code, dumped.stderr).toBe(0);
    expect(JSON.parse(dumped.stdout)).toMatchObject({ name: 'vklab', mode: 'nat', subnet: '10.213.77.0/24', dhcp: { start: '10.213.77.10', end: '10.213.77.20' } });
    expect((await d.cli(['net-undefine', 'vklab'])).code).toBe(0);
    writeFileSync(file, "<network><name>routed</name><forward mode='route'/></network>\n");
    const refused = await d.cli(['net-define', file]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('/network/forward/@mode: "route" is not supported');
  });

  it('takes --format and refuses an unknown one', async () => {
    const asYaml = await d.cli(['convert', '--from', 'yaml', join(fixtures, 'minimal.xml')]);
    expect(asYaml.code).toBe(5);
    expect(asYaml.stderr).toContain('definition.invalid');
    const bad = await d.cli(['define', '--format', 'vmx', join(fixtures, 'minimal.xml')]);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain('--format must be one of yaml, json, libvirt, xm');
    expect(readFileSync(join(fixtures, 'minimal.xml'), 'utf8')).toContain('<domain');
  });
});
