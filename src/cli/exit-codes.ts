import type { ErrorCode } from '../util/errors.js';

/**
 * Stable exit codes (docs/cli.md, docs/errors.md). 0 success, 1 a generic failure, 2 bad usage;
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
  accessDenied: 11,
  storeUnavailable: 12,
  /** A walk or listing went on past damaged parts of a guest filesystem (reported on stderr). */
  partial: 13,
  internal: 70,
} as const;

export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

const E = ExitCodes;

/**
 * The exit code of every error code. A `Record<ErrorCode, ...>`: a code added to
 * src/util/errors.ts without a row here fails the build.
 */
export const ExitCodeOf: Record<ErrorCode, ExitCode> = {
  'definition.invalid': E.invalidInput,
  'definition.not-found': E.notFound,
  'argument.invalid': E.invalidInput,
  'definition.xml-refused': E.invalidInput,
  'definition.unsupported': E.invalidInput,
  'domain.not-found': E.notFound,
  'domain.exists': E.invalidState,
  'domain.invalid-state': E.invalidState,
  'domain.field-immutable': E.invalidState,
  // No QEMU to run is a missing thing, not a QEMU failure.
  'qemu.not-found': E.notFound,
  'qemu.failed-to-start': E.qemu,
  'qemu.exited': E.qemu,
  'qmp.disconnected': E.qemu,
  'qmp.timeout': E.timeout,
  'qmp.command-failed': E.qemu,
  'qmp.protocol': E.qemu,
  'process.stale': E.qemu,
  'process.not-running': E.qemu,
  'operation.timeout': E.timeout,
  'operation.unsupported': E.unsupported,
  'device.not-found': E.notFound,
  'device.exists': E.invalidState,
  'device.detach-timeout': E.timeout,
  'image.format-mismatch': E.invalidInput,
  'memory.out-of-range': E.invalidInput,
  'vcpus.out-of-range': E.invalidInput,
  'trace.no-match': E.notFound,
  'trace.unknown-event': E.notFound,
  'output.unwritable': E.invalidInput,
  'guestkit.missing-host-file': E.failure,
  'cpio.invalid': E.failure,
  'store.conflict': E.failure,
  'store.not-found': E.notFound,
  'store.invalid-path': E.failure,
  'store.locked': E.invalidState,
  'store.compacted': E.failure,
  // Not a bug and not the caller's fault: the host's storage must be fixed first.
  'store.unavailable': E.storeUnavailable,
  'image.not-found': E.notFound,
  'image.corrupt': E.corrupt,
  'image.unsupported': E.unsupported,
  'image.io': E.failure,
  'qemu-img.failed': E.qemu,
  'nbd.protocol': E.failure,
  'pool.not-found': E.notFound,
  'pool.exists': E.invalidState,
  'pool.invalid': E.invalidInput,
  'network.not-found': E.notFound,
  'network.exists': E.invalidState,
  'network.invalid': E.invalidInput,
  'network.in-use': E.invalidState,
  'network.invalid-state': E.invalidState,
  'network.host-failed': E.failure,
  'volume.not-found': E.notFound,
  'volume.exists': E.invalidState,
  'volume.in-use': E.invalidState,
  'volume.invalid-name': E.invalidInput,
  'fs.corrupt': E.corrupt,
  'fs.unsupported': E.unsupported,
  'fs.not-found': E.notFound,
  'fs.not-a-directory': E.failure,
  'fs.is-a-directory': E.failure,
  'fs.symlink-loop': E.corrupt,
  'fs.too-large': E.failure,
  'partition.not-found': E.notFound,
  'boot.no-entry': E.failure,
  'boot.config-corrupt': E.corrupt,
  'save.invalid': E.corrupt,
  'save.truncated': E.corrupt,
  'save.disks-changed': E.invalidState,
  'snapshot.not-found': E.notFound,
  'snapshot.exists': E.invalidState,
  'snapshot.invalid-name': E.invalidInput,
  'snapshot.disks-missing': E.invalidState,
  'dump.invalid': E.corrupt,
  'request.invalid': E.invalidInput,
  'request.too-large': E.invalidInput,
  'connection.failed': E.connection,
  'connection.limit': E.connection,
  'access.denied': E.accessDenied,
  // Only the web listener answers it (the CLI uses the socket): the daemon could not be used with that token.
  'access.unauthenticated': E.connection,
  'internal': E.internal,
};

export function exitCodeFor(code: ErrorCode): ExitCode {
  return ExitCodeOf[code];
}
