/**
 * The plain YAML reader against the full parser: whatever it accepts, it must read exactly as
 * `yaml` does (YAML 1.2, core schema). Checked on every YAML definition of the repository and
 * on generated documents (bounded: a few thousand, a few seconds); the definitions people
 * write (the guest kit's, the fixtures' disks and NICs) must take the fast path.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import YAML, { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../test/helpers/prng.js';
import { guestDefinition } from '../guestkit/index.js';
import { parseDefinition, parseDefinitionDocument } from './index.js';
import { parsePlainYaml } from './plain-yaml.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The full parser as parse.ts calls it; undefined when it reports an error. */
function full(text: string): { value: unknown } | undefined {
  const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) return undefined;
  try {
    return { value: doc.toJS({ maxAliasCount: 64 }) as unknown };
  } catch {
    return undefined;
  }
}

function expectAgrees(text: string): boolean {
  const fast = parsePlainYaml(text);
  if (fast === undefined) return false;
  const reference = full(text);
  if (reference === undefined || !isDeepStrictEqual(fast, reference.value)) {
    expect.fail(`the plain reader read ${JSON.stringify(text)} as ${JSON.stringify(fast)}, the full parser as ${JSON.stringify(reference?.value ?? 'an error')}`);
  }
  return true;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []);
}

describe('plain YAML reader', () => {
  it('reads the guest kit\'s definition, as written, on the fast path', () => {
    for (const acpi of [true, false]) {
      const text = `# Built by \`virtkit guestkit\`: kernel 6.1.0-57-amd64.\n# The guest prints "virtkit-guest: ready".\n${stringify(guestDefinition('demo', acpi))}`;
      expect(expectAgrees(text)).toBe(true);
      // The kernel command line is folded over several lines: the reader joins them.
      expect((parsePlainYaml(text)?.['boot'] as { cmdline: string }).cmdline).toContain('console=ttyS0 ');
    }
  });

  it('reads every YAML definition of the repository as the full parser does, many on the fast path', () => {
    const files = yamlFiles(join(root, 'test', 'fixtures'));
    expect(files.length).toBeGreaterThan(50);
    let fast = 0;
    for (const file of files) if (expectAgrees(readFileSync(file, 'utf8'))) fast++;
    // Lists of disks and NICs, nested mappings, comments, quoted names, empty lists (the rest
    // use flow mappings, block scalars or escapes, which the full parser reads).
    expect(fast / files.length).toBeGreaterThan(0.4);
  });

  it('leaves to the full parser what is outside its subset', () => {
    for (const text of [
      'name: "esc\\n"\n', "name: 'it''s'\n", 'name: "a"\n  b\n', 'a: [1, 2]\n', 'a: {b: 1}\n', 'a: &x 1\nb: *x\n', 'a: !!str 1\n',
      'a: |\n  text\n', 'a: >\n  text\n', '---\na: 1\n', 'a: 1\na: 2\n', 'a:\tb\n', 'a: 1.5\n', 'a: 0x1F\n', 'a: 0o17\n',
      'a: .inf\n', 'a: 1e3\n', 'a: 007\n', 'a: -0\n', 'true: 1\n', '- a\n', 'a: b: c\n', 'a: x\n\n  y\n', 'a: x\n# c\n  y\n',
      'a: 1\r\nb: 2\r\n', 'a: é\n', '__proto__: 1\n', '', '# only a comment\n', 'a: b#c\n', 'a: x:\n', '  a: 1\n',
    ]) {
      expect(parsePlainYaml(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it('reads null, booleans, integers and strings as the core schema does', () => {
    const text = 'a:\nb: ~\nc: null\nd: True\ne: FALSE\nf: 42\ng: -7\nh: +3\ni: 0\nj: yes\nk: 52:54:00:12:34:56\nl: 128MiB\nm: 1_000\n';
    expect(expectAgrees(text)).toBe(true);
    expect(parsePlainYaml(text)).toEqual({
      a: null, b: null, c: null, d: true, e: false, f: 42, g: -7, h: 3, i: 0, j: 'yes', k: '52:54:00:12:34:56', l: '128MiB', m: '1_000',
    });
  });

  it('fuzz: every generated document is either left to the full parser or read as it reads it', () => {
    const random = mulberry32(0x5eed_4a41);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const scalars = [
      'a', 'web1', '128MiB', '1', '0', '-1', '+1', '01', '1.5', '.5', '1e3', '0x10', '0o7', 'true', 'True', 'TRUE', 'yes', 'No',
      'on', 'null', 'Null', '~', '', 'a b', 'a  b', 'a: b', 'a:b', 'a #b', 'a#b', '#x', '-', '- a', '-a', '--x', '?x', ':x', 'x:',
      '"q"', "'q'", '[a]', '{a}', '&a', '*a', '!t', '|', '>', '%x', '@x', '`x', '/a/b.qcow2', 'console=ttyS0 panic=-1',
      '52:54:00:aa:bb:cc', 'a,b', '(x)', '.inf', '.nan', '-.inf', '9007199254740993', '123456789012345', '1_0', 'é', 'a\tb',
      '[]', '{}', '[ ]', '""', "''", '"a b"', '"a: b"', "'it''s'", '"a\\"b"', '"a\\nb"', '"1"', "'true'", '"x" y', '[]x',
      'web1', 'virtio', '/images/a.qcow2', '2', 'destroy', '64MiB',
    ];
    const keys = ['name', 'memory', 'disks', 'nics', 'boot', 'source', 'format', 'a', 'b', 'on_reboot', 'x-y', '_k', 'true', 'null', '1', 'a b', '"k"'];
    function block(depth: number, indent: number, out: string[]): void {
      const pad = ' '.repeat(indent);
      const entries = 1 + Math.floor(random() * 4);
      const sequence = depth > 0 && random() < 0.3;
      for (let n = 0; n < entries; n++) {
        const head = sequence ? `${pad}-${random() < 0.9 ? ' ' : ''}` : `${pad}${pick(keys)}:`;
        const r = random();
        if (r < 0.55 || depth >= 3) {
          out.push(`${head}${sequence ? '' : ' '.repeat(random() < 0.9 ? 1 : 2)}${pick(scalars)}${random() < 0.1 ? ' # note' : ''}`);
          // A folded continuation line, sometimes after a blank or comment line.
          if (random() < 0.15) {
            if (random() < 0.2) out.push(random() < 0.5 ? '' : `${pad}# c`);
            out.push(`${' '.repeat(indent + 1 + Math.floor(random() * 3))}${pick(scalars)}`);
          }
        } else if (sequence && random() < 0.5) {
          // `- key: value` and more keys at the item's column.
          out.push(`${head}${pick(keys)}: ${pick(scalars)}`);
          if (random() < 0.7) out.push(`${' '.repeat(indent + 2 + (random() < 0.1 ? 1 : 0))}${pick(keys)}: ${pick(scalars)}`);
        } else {
          out.push(head);
          if (random() < 0.1) out.push(random() < 0.5 ? '' : `${pad}  # comment`);
          const deeper = random() < 0.15 ? indent : indent + 1 + Math.floor(random() * 3);
          if (random() > 0.05) block(depth + 1, deeper, out);
        }
      }
    }
    let accepted = 0;
    const documents = 10_000;
    for (let n = 0; n < documents; n++) {
      const out: string[] = [];
      if (random() < 0.1) out.push('# header');
      block(0, 0, out);
      let text = `${out.join('\n')}${random() < 0.9 ? '\n' : ''}`;
      // Now and then a mutation: a character dropped, doubled or replaced.
      if (random() < 0.2 && text.length > 0) {
        const at = Math.floor(random() * text.length);
        const op = random();
        text = op < 0.33 ? text.slice(0, at) + text.slice(at + 1)
          : op < 0.66 ? text.slice(0, at) + text[at]! + text.slice(at)
          : text.slice(0, at) + pick([' ', ':', '-', '#', '\n', 'a', '"']) + text.slice(at + 1);
      }
      if (expectAgrees(text)) accepted++;
    }
    // The generator reaches both sides: many documents on the fast path, many left to the full parser.
    expect(accepted).toBeGreaterThan(documents / 20);
    expect(accepted).toBeLessThan(documents * 0.9);
  });

  it('leaves syntax errors to the full parser, with their positions', () => {
    expect(() => parseDefinitionDocument('name: a\nname: b\n')).toThrow(/line 2, column 1: invalid YAML/);
    expect(() => parseDefinition('name: web1\nmemory: 128MiB\n  bad: indent\n')).toThrow(/^line 2, column 9: invalid YAML/);
  });
});
