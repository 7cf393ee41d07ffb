/**
 * `virtkit argv` and `virtkit run` read a definition the way `define` does: YAML, JSON,
 * libvirt XML or xm by content, `--format` and `--lenient` through definition-input.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ExitCodes } from '../exit-codes.js';
import { runCli as run } from '../../../test/helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'virtkit-argv-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('argv and run read every definition format', () => {
  test.each(['argv', 'run'])('%s --help names the formats, --format and --lenient', async (verb) => {
    const help = (await run([verb, '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/YAML, JSON, libvirt domain XML or a Xen xm\/xl config, told apart by content/);
    expect(help).toContain('--format <format>');
    expect(help).toContain('--lenient');
  });

  test('argv reads libvirt XML by content and refuses it when --format says yaml', async () => {
    const xml = join(dir, 'g.xml');
    writeFileSync(xml, "<domain type='qemu'><name>x1</name><memory unit='MiB'>64</memory></domain>\n");
    const ok = await run(['argv', xml, '--accel', 'tcg', '--run-dir', join(dir, 'r')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('guest=x1');
    const forced = await run(['argv', xml, '--format', 'yaml', '--accel', 'tcg']);
    expect(forced.code).toBe(ExitCodes.invalidInput);
  });
});
