import type { ErrorCode } from '../util/errors.js';

/**
 * Stable exit codes (documented in docs/cli.md). 0 success, 1 a generic failure, 2 bad usage;
 * the rest group error codes by what a script would do next.
 */
export const ExitCodes = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  invalidState: 4,
  invalidInput: 5,
  qemu: 6,
  timeout: 7,
  corrupt: 8,
  unsupported: 9,
  connection: 10,
  internal: 70,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  if (code.endsWith('not-found')) return ExitCodes.notFound;
  if (code === 'domain.invalid-state' || code === 'domain.exists' || code === 'domain.field-immutable'
    || code === 'volume.in-use' || code === 'pool.exists' || code === 'volume.exists'
    || code === 'store.locked') return ExitCodes.invalidState;
  if (code === 'definition.invalid' || code === 'argument.invalid' || code === 'request.invalid'
    || code === 'request.too-large' || code === 'volume.invalid-name' || code === 'pool.invalid') return ExitCodes.invalidInput;
  if (code.startsWith('qemu') || code.startsWith('qmp.') || code.startsWith('process.')) {
    return code === 'qmp.timeout' ? ExitCodes.timeout : ExitCodes.qemu;
  }
  if (code === 'operation.timeout') return ExitCodes.timeout;
  if (code.endsWith('.corrupt') || code === 'fs.symlink-loop') return ExitCodes.corrupt;
  if (code.endsWith('.unsupported')) return ExitCodes.unsupported;
  if (code === 'connection.failed') return ExitCodes.connection;
  if (code === 'internal') return ExitCodes.internal;
  return ExitCodes.failure;
}
