/**
 * docs/errors.md carries the error-code table rendered from the code; this test fails when
 * they drift. `VIRTKIT_REGENERATE=1 npx vitest run src/cli/error-table.test.ts` rewrites it.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpStatus, httpStatusOf } from '../api/http-status.js';
import { ErrorMeanings } from '../api/error-meanings.js';
import { ErrorCodes } from '../util/errors.js';
import { ExitCodeOf, ExitCodes, exitCodeFor } from './exit-codes.js';
import { renderErrorTable, renderExitSummary } from './error-table.js';
import { expectGeneratedSection } from '../../test/helpers/generated-section.js';

const page = resolve('docs/errors.md');
const section = /(<!-- errors:begin[^\n]*-->\n)([\s\S]*?)(\n<!-- errors:end -->)/;

describe('docs/errors.md', () => {
  it('has the table the code renders', () => {
    expectGeneratedSection(page, section, renderErrorTable());
  });

  it('has the exit-status summary the code renders, 13 (partial) and 141 (closed pipe) among them', () => {
    const summary = /(<!-- exit-codes:begin[^\n]*-->\n)([\s\S]*?)(\n<!-- exit-codes:end -->)/;
    expectGeneratedSection(page, summary, renderExitSummary());
    expect(renderExitSummary()).toMatch(/ 13 partial: .* 141 the reader of the output went away/);
  });

  it('has one row per error code', () => {
    const rows = renderErrorTable().split('\n').slice(2);
    expect(rows.map((r) => /^\| `([^`]+)`/.exec(r)?.[1])).toEqual([...ErrorCodes]);
  });
});

describe('the error-code maps', () => {
  it('are exhaustive: exactly the error codes, no more', () => {
    for (const table of [HttpStatus, ExitCodeOf, ErrorMeanings]) expect(Object.keys(table).sort()).toEqual([...ErrorCodes].sort());
    for (const code of ErrorCodes) expect(ErrorMeanings[code].length, code).toBeGreaterThan(10);
  });

  it('give every code a documented exit code other than success and usage', () => {
    const documented = new Set<number>(Object.values(ExitCodes));
    for (const code of ErrorCodes) {
      expect(documented.has(exitCodeFor(code)), code).toBe(true);
      expect([ExitCodes.ok, ExitCodes.usage], code).not.toContain(exitCodeFor(code));
    }
  });

  it('keep the exit codes scripts rely on', () => {
    expect(exitCodeFor('domain.not-found')).toBe(3);
    expect(exitCodeFor('definition.not-found')).toBe(3);
    expect(exitCodeFor('qemu.not-found')).toBe(3);
    expect(exitCodeFor('domain.invalid-state')).toBe(4);
    expect(exitCodeFor('store.locked')).toBe(4);
    expect(exitCodeFor('volume.in-use')).toBe(4);
    expect(exitCodeFor('definition.invalid')).toBe(5);
    expect(exitCodeFor('request.too-large')).toBe(5);
    expect(exitCodeFor('qemu.failed-to-start')).toBe(6);
    expect(exitCodeFor('qmp.command-failed')).toBe(6);
    expect(exitCodeFor('qmp.timeout')).toBe(7);
    expect(exitCodeFor('operation.timeout')).toBe(7);
    expect(exitCodeFor('image.corrupt')).toBe(8);
    expect(exitCodeFor('fs.symlink-loop')).toBe(8);
    expect(exitCodeFor('operation.unsupported')).toBe(9);
    expect(exitCodeFor('connection.failed')).toBe(10);
    expect(exitCodeFor('access.denied')).toBe(11);
    expect(exitCodeFor('internal')).toBe(70);
    expect(exitCodeFor('store.conflict')).toBe(1);
  });

  it('give access.denied 403 and its own exit code', () => {
    expect(httpStatusOf('access.denied')).toBe(403);
    const others = ErrorCodes.filter((c) => c !== 'access.denied').map(exitCodeFor);
    expect(others).not.toContain(exitCodeFor('access.denied'));
  });
});
