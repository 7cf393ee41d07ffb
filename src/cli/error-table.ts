/**
 * The error-code table of docs/errors.md, rendered from the code: every code with its HTTP
 * status (src/api/http-status.ts), CLI exit code (./exit-codes.ts) and meaning
 * (src/api/error-meanings.ts). `error-table.test.ts` fails when the page is stale;
 * `VIRTKIT_REGENERATE=1 npx vitest run src/cli/error-table.test.ts` rewrites it.
 */
import { ErrorMeanings } from '../api/index.js';
import { HttpStatus } from '../api/index.js';
import { ErrorCodes } from '../util/errors.js';
import { CLOSED_PIPE_EXIT } from './closed-pipe.js';
import { ExitCodeOf, ExitCodes } from './exit-codes.js';

export function renderErrorTable(): string {
  const rows = ErrorCodes.map((code) => `| \`${code}\` | ${HttpStatus[code]} | ${ExitCodeOf[code]} | ${ErrorMeanings[code].replace(/\|/g, '\\|')} |`);
  return ['| code | HTTP status | exit code | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** What each exit status tells a script; the build fails until a new status has its words. */
const ExitMeanings: Record<keyof typeof ExitCodes, string> = {
  ok: 'success',
  failure: 'a failure not covered by a group',
  usage: 'usage error',
  notFound: 'not found',
  invalidState: 'invalid state',
  invalidInput: 'invalid input',
  qemu: 'QEMU failed',
  timeout: 'timeout',
  corrupt: 'corrupt data',
  unsupported: 'unsupported',
  connection: 'the daemon cannot be reached',
  accessDenied: 'access denied',
  storeUnavailable: 'the store cannot be written (see [reliability.md](reliability.md#a-full-or-failing-disk-under-the-state-store))',
  partial: 'partial: a guest filesystem walk or listing went past damaged parts, each reported on stderr ([guestfs.md](guestfs.md))',
  internal: 'internal error',
};

/** The exit-status summary of docs/errors.md: every status of exit-codes.ts, and the closed pipe's. */
export function renderExitSummary(): string {
  const entries: [number, string][] = (Object.keys(ExitCodes) as (keyof typeof ExitCodes)[]).map((k) => [ExitCodes[k], ExitMeanings[k]]);
  entries.push([CLOSED_PIPE_EXIT, 'the reader of the output went away (`| head`): stopped quietly, as `ls | head` does']);
  entries.sort((a, b) => a[0] - b[0]);
  return `Exit codes: ${entries.map(([n, words]) => `${n} ${words}`).join(', ')}.`;
}
