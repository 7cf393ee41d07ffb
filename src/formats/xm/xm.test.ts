/**
 * The xm reader against its fixtures: test/fixtures/xm/NAME.cfg beside NAME.yaml (the
 * definition input and the warnings) or NAME.err (the typed error). `lenient-*` fixtures are
 * read with lenient. Every imported definition must also pass the schema, and goes on to
 * NAME.args: the QEMU command line the argv builder makes of it (uuid and MACs the config
 * leaves out pinned, as the argv fixtures do). docs/xm.md carries
 * the key table the reader renders. `VIRTKIT_REGENERATE=1 npx vitest run src/formats/xm/xm.test.ts`
 * rewrites the expected files and the table; review the diff.
 */
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { validateDefinition } from '../../conf/index.js';
import { buildCommand } from '../../qemu/command/index.js';
import { isVirtkitError } from '../../util/errors.js';
import { parseXm, readXmConfig, renderXmKeyTable } from './index.js';

const dir = resolve('test/fixtures/xm');
const regenerate = process.env['VIRTKIT_REGENERATE'] === '1';
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.cfg')).map((f) => f.slice(0, -'.cfg'.length)).sort();

function outcome(name: string): { ext: 'yaml' | 'err'; text: string; args?: string } {
  const text = readFileSync(join(dir, `${name}.cfg`), 'utf8');
  try {
    const read = readXmConfig(text, { lenient: name.startsWith('lenient-'), sourceName: `${name}.cfg` });
    const def = validateDefinition(read.definition);
    if (read.definition['uuid'] === undefined) def.uuid = '00000000-0000-4000-8000-000000000000';
    const nics = (read.definition['nics'] ?? []) as Record<string, unknown>[];
    def.nics.forEach((nic, i) => { if (nics[i]?.['mac'] === undefined) nic.mac = `52:54:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`; });
    const command = buildCommand(def, { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: '@RUNDIR@' });
    const args = `${[...Object.entries(command.env).map(([k, v]) => `${k}=${v}`), command.binary, ...command.argv].join('\n')}\n`;
    return { ext: 'yaml', text: YAML.stringify(read, { lineWidth: 0 }), args };
  } catch (err) {
    if (!isVirtkitError(err)) throw err;
    return { ext: 'err', text: `${err.code}: ${err.message}\n` };
  }
}

describe('xm fixtures', () => {
  test('there are at least 10, each with one expected output', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
    const outputs = readdirSync(dir).filter((f) => !f.endsWith('.cfg'));
    for (const out of outputs) expect(fixtures, `${out} has no .cfg`).toContain(out.replace(/\.(yaml|err|args)$/, ''));
  });

  test.each(fixtures)('%s', (name) => {
    const got = outcome(name);
    const other = join(dir, `${name}.${got.ext === 'yaml' ? 'err' : 'yaml'}`);
    const expected = join(dir, `${name}.${got.ext}`);
    const argsFile = join(dir, `${name}.args`);
    if (regenerate) {
      writeFileSync(expected, got.text);
      if (existsSync(other)) unlinkSync(other);
      if (got.args !== undefined) writeFileSync(argsFile, got.args);
      else if (existsSync(argsFile)) unlinkSync(argsFile);
      return;
    }
    expect(existsSync(expected), `${name}.${got.ext} (the reader's outcome) is missing`).toBe(true);
    expect(got.text).toBe(readFileSync(expected, 'utf8'));
    expect(existsSync(argsFile), `${name}.args`).toBe(got.args !== undefined);
    if (got.args !== undefined) expect(got.args).toBe(readFileSync(argsFile, 'utf8'));
  });
});

describe('xm reader', () => {
  test('the seed config maps to a direct boot with the disk renamed, the bridge a network, warned about', () => {
    const read = readXmConfig(readFileSync(join(dir, 'seed-short.cfg'), 'utf8'));
    const def = validateDefinition(read.definition);
    expect(def.boot).toEqual({ loader: 'direct', kernel: '/boot/vmlinuz-xen', initrd: '/boot/initrd-xen.img', cmdline: 'root=/dev/vda ro' });
    expect(def.disks).toMatchObject([{ source: '/path/disk.img', format: 'raw', bus: 'virtio', target: 'vda', readonly: false }]);
    expect(def.nics).toMatchObject([{ network: 'xenbr0', mac: '00:16:3e:22:15:51' }]);
    expect(def.memory).toBe(128 * 1024 * 1024);
    expect(read.warnings.map((w) => w.path)).toEqual(expect.arrayContaining(['disk[0]', 'vif[0].bridge', 'root']));
    expect(def.notes?.length).toBe(read.warnings.length);
  });

  test('syntax errors name line and column', () => {
    const cases: [string, number, number, RegExp][] = [
      ['name = "x"\nimport os\n', 2, 1, /`import` is Python code/],
      ['memory = 1 + 2', 1, 12, /operator "\+"/],
      ['a = [1, 2', 1, 5, /never closed/],
      ['a = "abc', 1, 5, /unterminated string/],
      ['a = open("x")', 1, 5, /call of open/],
      ['x.y = 1', 1, 2, /attribute access/],
      ['a = 1 if b else 2', 1, 7, /makes an expression/],
      ['a = {}', 1, 5, /dict/],
      ['a = 1j', 1, 5, /complex/],
      ['a = 0755', 1, 5, /leading zero/],
      ['a = "\\x4"', 1, 6, /truncated \\x escape/],
      ['a = b"x"', 1, 5, /bytes literal/],
      ['a += 1', 1, 3, /augmented assignment/],
      ['a = b = 1', 1, 5, /names another variable/],
      ['a = $', 1, 5, /unexpected character/],
      ['a = 1 \\ 2', 1, 7, /backslash outside a string/],
    ];
    for (const [text, line, column, message] of cases) {
      let caught: unknown;
      try {
        parseXm(text);
      } catch (err) {
        caught = err;
      }
      expect(isVirtkitError(caught), text).toBe(true);
      if (!isVirtkitError(caught)) continue;
      expect(caught.code, text).toBe('definition.invalid');
      expect(caught.data, text).toMatchObject({ line, column, rule: 'xm-syntax' });
      expect(caught.message, text).toMatch(message);
    }
  });

  test('literals: escapes, raw strings, adjacent strings, tuples, signs, booleans', () => {
    const got = parseXm(`a = 'x\\ty' "z"\nb = r'\\n'\nc = (1, -2.5, True, None)\nd = [[1], ()]\ne = """q\n"r"\n"""\nf = -0\n`);
    expect(got.map((x) => x.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(got[0]!.value).toMatchObject({ kind: 'string', value: 'x\tyz' });
    expect(got[1]!.value).toMatchObject({ kind: 'string', value: '\\n' });
    expect(got[2]!.value).toMatchObject({ kind: 'list', tuple: true, items: [{ value: 1 }, { value: -2.5, integer: false }, { kind: 'bool', value: true }, { kind: 'none' }] });
    expect(got[4]!.value).toMatchObject({ kind: 'string', value: 'q\n"r"\n' });
    expect(got[5]!.value).toMatchObject({ kind: 'number', value: 0 });
  });

  test('unsupported settings fail listing them, and --lenient keeps them in notes', () => {
    const text = 'name = "u"\nmemory = 128\ncpus = "0-1"\nfrobnicate = 1\n';
    let caught: unknown;
    try {
      readXmConfig(text);
    } catch (err) {
      caught = err;
    }
    expect(isVirtkitError(caught) && caught.code).toBe('definition.unsupported');
    expect(isVirtkitError(caught) && caught.data['unsupported']).toEqual([
      'cpus: line 3: CPU pinning is not supported', 'frobnicate: line 4: not a setting virtkit reads',
    ]);
    const lenient = readXmConfig(text, { lenient: true });
    expect(lenient.definition['notes']).toEqual([
      'xm cpus: line 3: CPU pinning is not supported (not imported)', 'xm frobnicate: line 4: not a setting virtkit reads (not imported)',
    ]);
  });

  test('text quoted from the file has its control characters escaped', () => {
    const lenient = readXmConfig('name = "e"\nmemory = 128\nvif = ["\\x1b]0;owned\\x07=1"]\n', { lenient: true });
    expect(lenient.warnings[0]!.path).toBe('vif[0].\\e]0;owned\\x07');
    expect(JSON.stringify(lenient)).not.toMatch(/\\u001b|\\u0007/);
    let caught: unknown;
    try {
      readXmConfig('name = "e"\nmemory = 128\non_crash = "\\x1b[2J"\n');
    } catch (err) {
      caught = err;
    }
    expect(isVirtkitError(caught) && caught.message).toContain('got "\\e[2J"');
  });

  test('docs/xm.md has the key table the reader renders', () => {
    const page = resolve('docs/xm.md');
    const section = /(<!-- xm-keys:begin[^\n]*-->\n)([\s\S]*?)(\n<!-- xm-keys:end -->)/;
    const text = readFileSync(page, 'utf8');
    expect(text).toMatch(section);
    if (regenerate) {
      writeFileSync(page, text.replace(section, (_all, begin: string, _t: string, end: string) => `${begin}${renderXmKeyTable()}${end}`));
      return;
    }
    expect(section.exec(text)?.[2]).toBe(renderXmKeyTable());
  });
});
