/**
 * The error-code table of docs/errors.md, rendered from the code: every code with its HTTP
 * status (src/api/http-status.ts), CLI exit code (./exit-codes.ts) and meaning
 * (src/api/error-meanings.ts). `error-table.test.ts` fails when the page is stale;
 * `VIRTKIT_REGENERATE=1 npx vitest run src/cli/error-table.test.ts` rewrites it.
 */
import { ErrorMeanings } from '../api/index.js';
import { HttpStatus } from '../api/index.js';
import { ErrorCodes } from '../util/errors.js';
import { ExitCodeOf } from './exit-codes.js';

export function renderErrorTable(): string {
  const rows = ErrorCodes.map((code) => `| \`${code}\` | ${HttpStatus[code]} | ${ExitCodeOf[code]} | ${ErrorMeanings[code].replace(/\|/g, '\\|')} |`);
  return ['| code | HTTP status | exit code | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
