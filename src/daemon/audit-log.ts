/**
 * The audit log, STATE_DIR/audit.log: one JSON line per write or admin call, and per refusal,
 * saying who (the kernel's uid, gid and pid of the caller), what (method, domain) and how it
 * ended. Appended with one write(2) per line on a file opened O_APPEND, mode 0600: lines from
 * concurrent calls never interleave, and a daemon killed mid-way loses at most the line of the
 * call it was running. Rotation is left to the host (logrotate copytruncate works).
 */
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import type { AccessClass } from '../api/index.js';

export interface AuditRecord {
  /** ISO 8601, UTC. */
  time: string;
  /** The caller, from SO_PEERCRED; null when the kernel could not tell. */
  uid: number | null;
  gid: number | null;
  pid: number | null;
  /** A method of the table (`domain.start`) or a stream (`domain.console`, `volume.upload`). */
  method: string;
  access: AccessClass;
  domain?: string;
  outcome: 'ok' | 'error';
  /** The error code when the outcome is an error (`access.denied` for a refusal). */
  code?: string;
}

export class AuditLog {
  private fd: number | undefined;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
  }

  /** Opens (creating) the log for appending; an existing file is made 0600 too. */
  static open(path: string): AuditLog {
    const fd = openSync(path, 'a', 0o600);
    try {
      fchmodSync(fd, 0o600);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new AuditLog(path, fd);
  }

  /** Appends one line. Throws when the write fails (disk full): the caller decides what to tell. */
  record(entry: Omit<AuditRecord, 'time'>): void {
    if (this.fd === undefined) return;
    const line = JSON.stringify({ time: new Date().toISOString(), ...entry } satisfies AuditRecord);
    writeSync(this.fd, `${line}\n`);
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
