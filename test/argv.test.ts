/**
 * Data-driven argv fixtures (docs/argv-fixtures.md): test/fixtures/argv/NAME.yaml (or .json)
 * is a definition; NAME.args is the command buildCommand makes of it, NAME.err the error it
 * must raise instead. `VIRTKIT_REGENERATE=1 npx vitest run test/argv.test.ts` rewrites the
 * expectations; review the diff line by line.
 */
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadArgvFixture, renderArgs, fixtureDir, listArgvFixtures, FixtureExtensions } from './argv-fixtures.js';

const regenerate = process.env['VIRTKIT_REGENERATE'] === '1';
const fixtures = listArgvFixtures();

describe('argv fixtures', () => {
  test('there are enough of them', () => {
    expect(fixtures.filter((f) => f.expect === 'args').length).toBeGreaterThanOrEqual(25);
    expect(fixtures.filter((f) => f.expect === 'err').length).toBeGreaterThanOrEqual(8);
  });

  test('every file in the fixture directory belongs to a case', () => {
    const used = new Set(fixtures.flatMap((f) => [f.inputFile, ...(f.expect === undefined ? [] : [`${f.name}.${f.expect}`])]));
    const unused = readdirSync(fixtureDir).filter((file) => !used.has(file));
    expect(unused).toEqual([]);
    for (const f of fixtures) {
      expect(f.expect, `${f.name} has neither .args nor .err`).toBeDefined();
      const other = `${f.name}.${f.expect === 'args' ? 'err' : 'args'}`;
      expect(readdirSync(fixtureDir), `${f.name} has both .args and .err`).not.toContain(other);
    }
  });

  for (const fixture of fixtures) {
    test(fixture.name, () => {
      const outcome = loadArgvFixture(fixture);
      const actual = outcome.kind === 'command' ? renderArgs(outcome.command) : `${outcome.error.code}: ${outcome.error.message}\n`;
      const expectedKind = outcome.kind === 'command' ? 'args' : 'err';
      const expectedPath = join(fixtureDir, `${fixture.name}.${expectedKind}`);
      if (regenerate) {
        for (const ext of FixtureExtensions) {
          if (ext !== expectedKind) try { unlinkSync(join(fixtureDir, `${fixture.name}.${ext}`)); } catch { /* absent */ }
        }
        writeFileSync(expectedPath, actual);
        return;
      }
      expect(expectedKind, `${fixture.name}: outcome differs from its .${fixture.expect ?? 'args/.err'} file`).toBe(fixture.expect);
      expect(actual).toBe(readFileSync(expectedPath, 'utf8'));
    });
  }
});
