import type { ErrorCode } from '../util/errors.js';

/**
 * HTTP status of every error code. A `Record<ErrorCode, ...>`: a code added to
 * src/util/errors.ts without a row here fails the build, so no code travels with a status
 * nobody chose. docs/errors.md is rendered from this table and the exit-code one.
 */
export const HttpStatus: Record<ErrorCode, number> = {
  'definition.invalid': 400,
  'definition.not-found': 404,
  'argument.invalid': 400,
  'definition.xml-refused': 400,
  'definition.unsupported': 400,
  'domain.not-found': 404,
  'domain.exists': 409,
  'domain.invalid-state': 409,
  'domain.field-immutable': 409,
  'qemu.not-found': 500,
  'qemu.failed-to-start': 500,
  'qemu.exited': 500,
  'qmp.disconnected': 502,
  'qmp.timeout': 504,
  'qmp.command-failed': 422,
  'qmp.protocol': 502,
  'process.stale': 409,
  'process.not-running': 409,
  'operation.timeout': 504,
  'operation.unsupported': 422,
  'device.not-found': 404,
  'device.exists': 409,
  'device.detach-timeout': 504,
  'image.format-mismatch': 422,
  'memory.out-of-range': 422,
  'vcpus.out-of-range': 422,
  'trace.no-match': 404,
  'trace.unknown-event': 404,
  'output.unwritable': 400,
  'guestkit.missing-host-file': 500,
  'cpio.invalid': 400,
  'store.conflict': 503,
  'store.not-found': 404,
  'store.invalid-path': 400,
  'store.locked': 500,
  'store.compacted': 500,
  // The storage under the store failed (disk full, I/O error, read-only): retry later.
  'store.unavailable': 503,
  'image.not-found': 404,
  'image.corrupt': 422,
  'image.unsupported': 422,
  'image.io': 500,
  'qemu-img.failed': 500,
  'nbd.protocol': 502,
  'pool.not-found': 404,
  'pool.exists': 409,
  'pool.invalid': 400,
  'network.not-found': 404,
  'network.exists': 409,
  'network.invalid': 400,
  'network.in-use': 409,
  'network.invalid-state': 409,
  'network.host-failed': 500,
  'volume.not-found': 404,
  'volume.exists': 409,
  'volume.in-use': 409,
  'volume.invalid-name': 400,
  'fs.corrupt': 422,
  'fs.unsupported': 422,
  'fs.not-found': 404,
  'fs.not-a-directory': 400,
  'fs.is-a-directory': 400,
  'fs.symlink-loop': 422,
  'fs.too-large': 413,
  'partition.not-found': 404,
  'boot.no-entry': 422,
  'boot.config-corrupt': 422,
  'save.invalid': 422,
  'save.truncated': 422,
  'save.disks-changed': 409,
  'snapshot.not-found': 404,
  'snapshot.exists': 409,
  'snapshot.invalid-name': 400,
  'snapshot.disks-missing': 409,
  'dump.invalid': 422,
  'request.invalid': 400,
  'request.too-large': 413,
  'connection.failed': 502,
  'connection.limit': 503,
  'access.denied': 403,
  'access.unauthenticated': 401,
  'internal': 500,
};

export function httpStatusOf(code: ErrorCode): number {
  return HttpStatus[code];
}

/** The error code a client assumes for a status when the body carries none it knows. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'access.unauthenticated';
  if (status === 403) return 'access.denied';
  if (status === 413) return 'request.too-large';
  if (status >= 400 && status < 500) return 'request.invalid';
  return 'internal';
}
