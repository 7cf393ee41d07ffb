/**
 * Fuzzing the libvirt XML reader: 10,000 mutations of the fixtures (bytes flipped, slices
 * cut, repeated or moved, markup and entities inserted, numbers and units swapped). Each must
 * import to a definition or fail with a typed error; never another exception, never a hang
 * (the run is bounded by the test's timeout). What imports must also validate or fail typed,
 * and what validates must export. The seed is printed; VIRTKIT_FUZZ_SEED replays a run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, test } from 'vitest';
import { validateDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { exportLibvirtXml } from './export.js';
import { importLibvirtXml } from './import.js';
import { mulberry32 as prng } from '../../../test/helpers/prng.js';

const Runs = 10_000;
const fixtureDir = resolve('test/fixtures/libvirt');
const seeds = readdirSync(fixtureDir).filter((f) => f.endsWith('.xml')).map((f) => readFileSync(join(fixtureDir, f), 'utf8'));

const Inserts = [
  '<', '>', '&', '&amp;', '&lt;', '&#0;', '&#x110000;', '&#65;', '&foo;', '"', '\'', '<!--', '-->', '<![CDATA[x]]>', '<!DOCTYPE d>',
  '<!ENTITY e "x">', '<?xml version="1.0"?>', '</domain>', '<domain>', '<disk/>', '<qemu:arg value="x"/>', 'xmlns:q="urn:x"',
  ' unit="EiB"', ' unit="KB"', ' unit="bogus"', '99999999999999999999', '-1', '0', '\u0000', '\uFFFF', '\u202E', '\n', ' ',
  '<devices>', '</devices>', '<interface type="bridge"><source bridge="b"/></interface>', '<boot order="1"/>', '<readonly/>',
];

function mutate(text: string, rnd: () => number): string {
  const pick = (n: number): number => Math.floor(rnd() * n);
  let out = text;
  const steps = 1 + pick(4);
  for (let i = 0; i < steps; i += 1) {
    const at = pick(out.length + 1);
    switch (pick(7)) {
      case 0: out = out.slice(0, at) + String.fromCharCode(pick(128)) + out.slice(at + 1); break;
      case 1: out = out.slice(0, at) + out.slice(at + 1 + pick(40)); break;
      case 2: out = out.slice(0, at) + (Inserts[pick(Inserts.length)] ?? '') + out.slice(at); break;
      case 3: { const len = pick(80); out = out.slice(0, at) + out.slice(at, at + len).repeat(1 + pick(4)) + out.slice(at); break; }
      case 4: out = out.slice(0, at); break;
      case 5: out = out.replace(/[0-9]+/, String(pick(2 ** 31) * (pick(2) === 0 ? 1 : 1024 ** pick(4)))); break;
      default: { const from = pick(out.length); const len = pick(60); const piece = out.slice(from, from + len); out = out.slice(0, at) + piece + out.slice(at); }
    }
  }
  return out;
}

test(`the libvirt XML reader survives ${Runs} mutated documents with typed errors only`, () => {
  const seed = Number(process.env['VIRTKIT_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  console.log(`libvirt XML fuzz seed ${seed} (VIRTKIT_FUZZ_SEED=${seed} replays it)`);
  const rnd = prng(seed);
  const outcomes = { imported: 0, valid: 0, typedErrors: 0 };
  for (let i = 0; i < Runs; i += 1) {
    const input = mutate(seeds[Math.floor(rnd() * seeds.length)] ?? '', rnd);
    try {
      const imported = importLibvirtXml(input, { lenient: rnd() < 0.5 });
      outcomes.imported += 1;
      const def = validateDefinition(imported.definition);
      outcomes.valid += 1;
      expect(exportLibvirtXml(def)).toMatch(/^<domain /);
    } catch (err) {
      if (!(err instanceof VirtkitError)) {
        throw new Error(`seed ${seed}, input ${i}: ${String(err)}\n--- input ---\n${input.slice(0, 2000)}`);
      }
      expect(err.code).toMatch(/^definition\.(invalid|xml-refused|unsupported)$/);
      outcomes.typedErrors += 1;
    }
  }
  console.log(`libvirt XML fuzz: ${JSON.stringify(outcomes)}`);
  // The mutations must not all be refused at the first byte: some still import.
  expect(outcomes.imported).toBeGreaterThan(Runs / 50);
}, 60_000);
