/**
 * Fuzzing the definition parser: random and mutated YAML and JSON documents must give either a
 * valid definition or a `definition.invalid` error, never another exception, in bounded time.
 * A seeded generator keeps failures reproducible (the seed is in the test name).
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { VirtkitError } from '../util/errors.js';
import { buildCommand } from '../qemu/command/index.js';
import { DomainDefinitionSchema, formatDefinition, parseDefinition, validateDefinition, type DomainDefinition } from './index.js';
import { mulberry32 as rng } from '../../test/helpers/prng.js';

const seeds = [
  `name: web1
memory: 256MiB
vcpus: 2
boot: {kernel: vmlinuz, initrd: initrd.gz, cmdline: console=ttyS0}
disks:
  - {source: root.qcow2, format: qcow2, bus: scsi, cache: none}
  - {id: data, volume: pool/data, format: raw, readonly: true, target: vdc}
  - {source: cd.raw, format: raw, bus: ide, target: hdb}
nics:
  - {model: e1000, mac: "52:54:00:12:34:56", hostfwd: ["tcp::2222-:22"]}
  - {id: uplink}
controllers: {scsi: auto}
graphics: vnc
on_crash: preserve
qemu: {args: [-no-hpet], env: {A: b}}
`,
  JSON.stringify({ name: 'j', memory: '1GiB', boot: { loader: 'guest', entry: 1 }, disks: [{ source: '/a', format: 'raw', bus: 'ide' }], nics: [{ hostfwd: ['udp::53-:53'] }] }),
  'name: m\nmemory: 64M\nboot: {loader: disk, disk: 0}\ndisks: [{source: /x, format: raw}]\n',
];

const alphabet = [...'{}[]:,-"\'\n\t #&*!|>%@`\\/0123456789abcxyzMiBG.', '\u0000', '\u00e9', '\ud83d\ude00', 'null', 'true', '~', '<<', '__proto__', 'constructor', '---', '...'];

function mutateText(text: string, random: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(random() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (out.length + 1));
    const choice = random();
    const piece = alphabet[Math.floor(random() * alphabet.length)] ?? '';
    if (choice < 0.35) out = out.slice(0, at) + piece + out.slice(at);
    else if (choice < 0.6) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(random() * 8));
    else if (choice < 0.75) out = out.slice(0, at) + piece + out.slice(at + 1);
    else if (choice < 0.85) out = out.slice(0, at);
    else { const from = Math.floor(random() * out.length); out = out.slice(0, at) + out.slice(from, from + 20) + out.slice(at); }
  }
  return out;
}

const fieldNames = [...Object.keys(DomainDefinitionSchema.properties), 'source', 'volume', 'format', 'bus', 'cache', 'readonly', 'model', 'mac', 'hostfwd', 'id', 'target', 'scsi', 'loader', 'kernel', 'entry', 'args', 'env', '__proto__', 'constructor', 'toString'];

function randomValue(random: () => number, depth: number): unknown {
  const r = random();
  if (depth > 3 || r < 0.3) {
    const scalars: unknown[] = [null, true, false, 0, -1, 1.5, 2 ** 53, 1e308, '', 'raw', 'qcow2', 'virtio', 'ide', 'scsi', '64MiB', '16MiB', '15MiB', '1G', 'tcp::1-:2', '52:54:00:00:00:01', 'pool/vol', '/abs/path', 'rel,path', 'a\nb', 'x\u0000', 'guest', 'direct', 'disk', 'vnc', 'none', 'auto', 'vda', 'sdb', 'hde', 'sdzz', 'scsi0', 'net0', 'a-b_c'];
    return scalars[Math.floor(random() * scalars.length)];
  }
  if (r < 0.55) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  const obj: Record<string, unknown> = {};
  const n = Math.floor(random() * 6);
  for (let i = 0; i < n; i++) {
    const key = fieldNames[Math.floor(random() * fieldNames.length)] ?? 'x';
    Object.defineProperty(obj, key, { value: randomValue(random, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return obj;
}

/** A document close to valid: a real base with one field replaced by a random value. */
function nearlyValid(random: () => number): unknown {
  const doc: Record<string, unknown> = YAML.parse(seeds[0] ?? '') as Record<string, unknown>;
  const key = fieldNames[Math.floor(random() * fieldNames.length)] ?? 'name';
  Object.defineProperty(doc, key, { value: randomValue(random, 1), enumerable: true, writable: true, configurable: true });
  return doc;
}

/** Runs one case; true when it gave a definition, false for a definition error. */
function expectDefinitionOrError(run: () => DomainDefinition, what: () => string): boolean {
  let def: DomainDefinition;
  try {
    def = run();
  } catch (err) {
    // Plain checks in the hot loop: vitest's expect costs more than the parser under test.
    if (err instanceof VirtkitError && err.code === 'definition.invalid') {
      // Syntax errors name the line and column when the parser gave them, fields their path.
      const where = typeof err.data['line'] === 'number' ? `line ${err.data['line']}, column ${String(err.data['column'])}` : String(err.data['path']);
      if (!err.message.startsWith(`${where}: `)) throw new Error(`${what()}: message does not start with where it is: ${err.message}`);
      return false;
    }
    throw new Error(`${what()}: unexpected ${err instanceof Error ? err.stack : String(err)}`);
  }
  // A valid definition survives formatting and parsing back, in both formats.
  for (const format of ['yaml', 'json'] as const) {
    if (!isDeepStrictEqual(parseDefinition(formatDefinition(def, format), { format }), def)) throw new Error(`${what()}: changed by a ${format} round trip`);
  }
  // A valid definition must build (given the context it needs) without anything but typed errors.
  try {
    const volumePaths = Object.fromEntries(def.disks.flatMap((d) => (d.volume === undefined ? [] : [[d.volume, '/v']])));
    buildCommand(def, { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: '/run/x', volumePaths, bootFiles: { kernel: '/k' } });
  } catch (err) {
    if (!(err instanceof VirtkitError)) throw new Error(`${what()}: buildCommand threw ${String(err)}`);
  }
  return true;
}

describe('definition fuzzing', () => {
  const seed = 20261121;

  test(`mutated YAML and JSON text (seed ${seed})`, () => {
    const random = rng(seed);
    let valid = 0;
    for (let i = 0; i < 3000; i++) {
      const seedText = seeds[i % seeds.length] ?? '';
      const text = mutateText(seedText, random);
      // Mostly the seed's own format (so mutations reach validation), sometimes the other one.
      const own = seedText.startsWith('{') ? 'json' : 'yaml';
      const format = random() < 0.9 ? own : own === 'json' ? 'yaml' : 'json';
      if (expectDefinitionOrError(() => parseDefinition(text, { format, baseDir: '/defs' }), () => `#${i} ${format} ${JSON.stringify(text)}`)) valid++;
    }
    // Both outcomes are exercised, not just the syntax errors.
    expect(valid).toBeGreaterThan(30);
    expect(valid).toBeLessThan(2900);
  });

  test(`random document trees (seed ${seed + 1})`, () => {
    const random = rng(seed + 1);
    let valid = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = i % 2 === 0 ? randomValue(random, 0) : nearlyValid(random);
      const label = (): string => `#${i} ${JSON.stringify(doc)}`;
      if (expectDefinitionOrError(() => validateDefinition(doc), label)) valid++;
      expectDefinitionOrError(() => parseDefinition(JSON.stringify(doc), { format: 'json' }), label);
      // The YAML library is the slow part: every fourth document goes through it.
      if (i % 4 === 0) expectDefinitionOrError(() => parseDefinition(YAML.stringify(doc), { format: 'yaml' }), label);
    }
    expect(valid).toBeGreaterThan(30);
  });

  test('values no parser produces are still typed errors', () => {
    const odd: unknown[] = [undefined, 1n, Symbol('s'), () => 1, new Date(0), new Map(), Object.create(null), { name: 'a', memory: 1n }];
    const circular: Record<string, unknown> = { name: 'a', memory: '64MiB' };
    circular['disks'] = [circular];
    odd.push(circular);
    for (const value of odd) expect(expectDefinitionOrError(() => validateDefinition(value), () => String(typeof value))).toBe(false);
  });
});
