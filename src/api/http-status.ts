import type { ErrorCode } from '../util/errors.js';

/**
 * HTTP status of an error code. Codes follow naming conventions (`*.not-found`, `*.exists`,
 * `*.invalid`, `*.corrupt`, ...), so the suffix decides by default and the table below names
 * the codes whose status is a deliberate exception. A code added elsewhere in the tree thus
 * travels with a sensible status at once; the unit test lists how every code maps.
 */
const Exceptions: Partial<Record<ErrorCode, number>> = {
  'domain.invalid-state': 409,
  'domain.field-immutable': 409,
  'volume.in-use': 409,
  'process.stale': 409,
  'process.not-running': 409,
  'store.conflict': 503,
  'qmp.command-failed': 422,
  'qmp.disconnected': 502,
  'qmp.protocol': 502,
  'nbd.protocol': 502,
  'connection.failed': 502,
  'qmp.timeout': 504,
  'operation.timeout': 504,
  'boot.no-entry': 422,
  'fs.symlink-loop': 422,
  'fs.not-a-directory': 400,
  'fs.is-a-directory': 400,
  'argument.invalid': 400,
};

export function httpStatusOf(code: ErrorCode): number {
  const exception = Exceptions[code];
  if (exception !== undefined) return exception;
  if (code.endsWith('.not-found')) return code.startsWith('qemu') ? 500 : 404;
  if (code.endsWith('.exists')) return 409;
  if (code.endsWith('.invalid') || code.endsWith('.invalid-name') || code.endsWith('.invalid-path')) return 400;
  if (code.endsWith('.too-large')) return 413;
  if (code.endsWith('.corrupt') || code.endsWith('.unsupported')) return 422;
  return 500;
}

/** The error code a client assumes for a status when the body carries none it knows. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 413) return 'request.too-large';
  if (status >= 400 && status < 500) return 'request.invalid';
  return 'internal';
}
