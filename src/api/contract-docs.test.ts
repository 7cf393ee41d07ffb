/**
 * docs/api.md carries the contract table rendered from the method table; this test fails when
 * they drift. `VIRTKIT_REGENERATE=1 npx vitest run src/api/contract-docs.test.ts` rewrites it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import { renderContractTable } from './contract-docs.js';
import { Methods } from './methods.js';
import { WireFile, renderWireModule } from './wire-gen.js';
import { expectGeneratedSection } from '../../test/helpers/generated-section.js';

const page = resolve('docs/api.md');
const section = /(<!-- contract:begin[^\n]*-->\n)([\s\S]*?)(\n<!-- contract:end -->)/;

test('docs/api.md has the contract table the method table renders', () => {
  expectGeneratedSection(page, section, renderContractTable());
});

// The client's light copy of the routes (src/api/wire/index.ts) is regenerated with the table.
test('src/api/wire/index.ts has the routes of the method table', () => {
  if (process.env['VIRTKIT_REGENERATE'] === '1') writeFileSync(resolve(WireFile), renderWireModule());
  else expect(readFileSync(resolve(WireFile), 'utf8')).toBe(renderWireModule());
});

test('the table has a row per method, with its states and access', () => {
  const table = renderContractTable();
  for (const name of Object.keys(Methods)) expect(table).toContain(`| \`${name}\` |`);
  expect(table).toContain('| `domain.suspend` | `POST /domains/{name}/suspend` | running | write |  |');
  expect(table).toContain('| `domain.undefine` | `DELETE /domains/{name}` | shutoff, crashed (any with `force=true`) | write |  |');
  expect(table).toContain('| `host.shutdown` | `POST /host/shutdown` |  | admin | yes |');
});
