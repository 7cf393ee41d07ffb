/**
 * Typed errors. Every failure a user can meet carries a stable dotted code
 * (`definition.invalid`, `image.corrupt`, ...). Callers match on `code`, never on message
 * text; `data` carries what the user needs to act (a field path, QEMU's stderr, an offset).
 */
export const ErrorCodes = [
  // definitions and arguments
  'definition.invalid',
  'definition.not-found',
  'argument.invalid',
  // definitions in other formats (docs/formats.md)
  'definition.xml-refused',
  'definition.unsupported',
  // domains (manager)
  'domain.not-found',
  'domain.exists',
  'domain.invalid-state',
  'domain.field-immutable',
  // QEMU driver
  'qemu.not-found',
  'qemu.failed-to-start',
  'qemu.exited',
  'qmp.disconnected',
  'qmp.timeout',
  'qmp.command-failed',
  'qmp.protocol',
  'process.stale',
  'process.not-running',
  'operation.timeout',
  'operation.unsupported',
  // hot-plug, memory and CPUs (docs/hotplug.md, docs/memory-cpus.md)
  'device.not-found',
  'device.exists',
  'device.detach-timeout',
  'image.format-mismatch',
  'memory.out-of-range',
  'vcpus.out-of-range',
  // guest kit
  'guestkit.missing-host-file',
  'cpio.invalid',
  // store
  'store.conflict',
  'store.not-found',
  'store.invalid-path',
  'store.locked',
  'store.compacted',
  'store.unavailable',
  // images and storage
  'image.not-found',
  'image.corrupt',
  'image.unsupported',
  'image.io',
  'qemu-img.failed',
  'nbd.protocol',
  'pool.not-found',
  'pool.exists',
  'pool.invalid',
  // networks (docs/networks.md)
  'network.not-found',
  'network.exists',
  'network.invalid',
  'network.in-use',
  'network.invalid-state',
  'network.host-failed',
  'volume.not-found',
  'volume.exists',
  'volume.in-use',
  'volume.invalid-name',
  // guest filesystems
  'fs.corrupt',
  'fs.unsupported',
  'fs.not-found',
  'fs.not-a-directory',
  'fs.is-a-directory',
  'fs.symlink-loop',
  'fs.too-large',
  'partition.not-found',
  'boot.no-entry',
  'boot.config-corrupt',
  // save/restore, snapshots, dumps (docs/save-restore.md, snapshots.md, dumps.md)
  'save.invalid',
  'save.truncated',
  'save.disks-changed',
  'snapshot.not-found',
  'snapshot.exists',
  'snapshot.invalid-name',
  'snapshot.disks-missing',
  'dump.invalid',
  // observability (docs/observability.md)
  'trace.no-match',
  'trace.unknown-event',
  'output.unwritable',
  // API transport
  'request.invalid',
  'request.too-large',
  'connection.failed',
  'connection.limit',
  'access.denied',
  'access.unauthenticated',
  'internal',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export type ErrorData = Record<string, unknown>;

export class VirtkitError extends Error {
  override readonly name = 'VirtkitError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data: ErrorData = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** `code: message`, the form the CLI prints. */
  describe(): string {
    return `${this.code}: ${this.message}`;
  }

  toJSON(): { code: ErrorCode; message: string; data: ErrorData } {
    return { code: this.code, message: this.message, data: this.data };
  }
}

export function isVirtkitError(err: unknown, code?: ErrorCode): err is VirtkitError {
  return err instanceof VirtkitError && (code === undefined || err.code === code);
}

/** Narrow an unknown thrown value to a message, for logs and wrapping. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
