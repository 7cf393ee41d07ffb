/**
 * Shared by the argv fixture tests: finding the cases, the fixed context they are built in,
 * and the .args rendering (environment lines, then the binary, then one argument per line).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseDefinition, type DomainDefinition } from '../src/conf/index.js';
import { buildCommand, type CommandContext, type QemuCommand } from '../src/qemu/command/index.js';
import { VirtkitError } from '../src/util/errors.js';

export const fixtureDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'argv');
export const FixtureExtensions = ['args', 'err'] as const;

/** Relative host paths in fixtures resolve against this directory. */
export const FixtureBaseDir = '/srv/defs';
/** The run directory of every fixture, as written in .args files. */
export const RunDirPlaceholder = '@RUNDIR@';

export interface ArgvFixture {
  name: string;
  inputFile: string;
  expect: (typeof FixtureExtensions)[number] | undefined;
}

export function listArgvFixtures(): ArgvFixture[] {
  const files = readdirSync(fixtureDir);
  return files
    .filter((file) => /\.(yaml|json)$/.test(file))
    .sort()
    .map((inputFile) => {
      const name = inputFile.replace(/\.(yaml|json)$/, '');
      return { name, inputFile, expect: FixtureExtensions.find((ext) => files.includes(`${name}.${ext}`)) };
    });
}

/**
 * The context a fixture is built in: binary qemu-system-x86_64, accel tcg, run dir @RUNDIR@,
 * changed by a `# ctx: {...}` comment line in the fixture (YAML flow syntax), e.g.
 * `# ctx: { accel: kvm, volumePaths: { "pool/a": /var/lib/a.qcow2 } }`.
 */
export function fixtureContext(text: string): CommandContext {
  const ctx: CommandContext = { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: RunDirPlaceholder };
  for (const line of text.split('\n')) {
    const match = /^#\s*ctx:\s*(.*)$/.exec(line);
    if (match !== null) Object.assign(ctx, YAML.parse(match[1] ?? '{}') as Partial<CommandContext>);
  }
  return ctx;
}

/** Generated values (uuid, MACs) a fixture leaves out are replaced by fixed ones. */
function pinGenerated(def: DomainDefinition, document: Record<string, unknown>): void {
  if (document['uuid'] === undefined) def.uuid = '00000000-0000-4000-8000-000000000000';
  const nics = Array.isArray(document['nics']) ? (document['nics'] as Array<Record<string, unknown>>) : [];
  def.nics.forEach((nic, i) => {
    if (nics[i]?.['mac'] === undefined) nic.mac = `52:54:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`;
  });
}

export type FixtureOutcome =
  | { kind: 'command'; def: DomainDefinition; ctx: CommandContext; command: QemuCommand }
  | { kind: 'error'; error: VirtkitError };

export function loadArgvFixture(fixture: ArgvFixture): FixtureOutcome {
  const text = readFileSync(join(fixtureDir, fixture.inputFile), 'utf8');
  const format = fixture.inputFile.endsWith('.json') ? 'json' : 'yaml';
  const ctx = fixtureContext(text);
  try {
    const def = parseDefinition(text, { format, baseDir: FixtureBaseDir });
    const document = (format === 'json' ? JSON.parse(text) : YAML.parse(text)) as Record<string, unknown>;
    pinGenerated(def, document);
    return { kind: 'command', def, ctx, command: buildCommand(def, ctx) };
  } catch (err) {
    if (err instanceof VirtkitError) return { kind: 'error', error: err };
    throw err;
  }
}

/** The .args form: `NAME=value` per environment variable, the binary, one argument per line. */
export function renderArgs(command: QemuCommand): string {
  const env = Object.entries(command.env).map(([key, value]) => `${key}=${value}`);
  return `${[...env, command.binary, ...command.argv].join('\n')}\n`;
}
