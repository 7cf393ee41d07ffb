/**
 * Fuzzing the xm reader: 10,000 mutated configs (the fixtures, edited at random with Python's
 * punctuation, quotes, escapes, keywords and deep brackets) must each give a definition input
 * or a typed error (definition.invalid / definition.unsupported), never another exception,
 * in bounded time (the test's timeout is the hang guard). A seeded generator keeps failures reproducible.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, test } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { readXmConfig } from './index.js';
import { mulberry32 as rng } from '../../../test/helpers/prng.js';

const dir = resolve('test/fixtures/xm');
const seeds = readdirSync(dir).filter((f) => f.endsWith('.cfg')).sort().map((f) => readFileSync(join(dir, f), 'utf8'));

const alphabet = [
  ...'[](){},;:=.+-*/%\'"#\\\n\r\t 0123456789abcxyz_', '"""', '\'\'\'', '\\\n', '\\x', '\\u12', '\\N{', 'r"', 'b"', 'f"', 'u\'',
  'import', 'for ', 'lambda', 'True', 'None', '0x', '0o7', '1e999', '99999999999999999999', '1j', '\u0000', '\u00e9', '\ud83d\ude00',
  '[[[[[[[[[[[[[[[[[[[[', ')))))', 'tap:aio:', 'phy:', 'tap:qcow2:', 'iscsi:', ',xvda1,w', ',hdc:cdrom,r', 'mac=', 'bridge=',
  'model=', 'format=', 'vdev=', 'target=', 'pygrub', '__proto__', 'constructor', 'memory = ', 'maxmem = ', 'disk = [\'',
];

function mutate(text: string, random: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(random() * 5);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (out.length + 1));
    const choice = random();
    const piece = alphabet[Math.floor(random() * alphabet.length)] ?? '';
    if (choice < 0.4) out = out.slice(0, at) + piece + out.slice(at);
    else if (choice < 0.6) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(random() * 8));
    else if (choice < 0.75) out = out.slice(0, at) + piece + out.slice(at + 1);
    else if (choice < 0.82) out = out.slice(0, at);
    else { const from = Math.floor(random() * out.length); out = out.slice(0, at) + out.slice(from, from + 24) + out.slice(at); }
  }
  return out;
}

const seed = Number(process.env['VIRTKIT_FUZZ_SEED'] ?? 0x11b);

test(`10,000 mutated xm configs give a result or a typed error (seed ${seed})`, () => {
  const random = rng(seed);
  let typed = 0;
  let read = 0;
  for (let i = 0; i < 10_000; i++) {
    const text = mutate(seeds[i % seeds.length]!, random);
    try {
      readXmConfig(text, { lenient: random() < 0.5, sourceName: 'fuzz.cfg' });
      read += 1;
    } catch (err) {
      if (!isVirtkitError(err) || (err.code !== 'definition.invalid' && err.code !== 'definition.unsupported')) {
        throw new Error(`mutation ${i} threw ${String(err)}:\n${JSON.stringify(text)}`);
      }
      expect(err.message.length).toBeGreaterThan(0);
      typed += 1;
    }
  }
  // Both outcomes happen, so the mutations reach past the tokenizer.
  expect(read).toBeGreaterThan(100);
  expect(typed).toBeGreaterThan(100);
}, 60_000);

test('pathological inputs stay bounded', () => {
  const cases = [
    `a = ${'['.repeat(100_000)}`,
    `a = "${'\\'.repeat(100_001)}`,
    `a = ${'"x" '.repeat(50_000)}`,
    `${'# comment\n'.repeat(50_000)}name = "x"\nmemory = 128\n`,
    `a = [${'1,'.repeat(100_000)}]`,
    'x'.repeat(2 * 1024 * 1024),
  ];
  for (const text of cases) {
    try {
      readXmConfig(text, { lenient: true });
    } catch (err) {
      expect(isVirtkitError(err), String(err)).toBe(true);
    }
  }
});
