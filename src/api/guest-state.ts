/**
 * Save/restore, managed save, snapshots and memory dumps: schemas and method table entries
 * (merged into `Methods`). See docs/save-restore.md, docs/snapshots.md, docs/dumps.md.
 * Snapshot names are plain strings here: the daemon checks them itself, so a bad one is
 * refused with `snapshot.invalid-name` rather than a schema error.
 *
 * save, restore and dump name a file on the daemon's host that the daemon (root for the system
 * daemon) writes or reads, and a restore defines a guest from it: they need `admin`. A managed
 * save stays in the state dir and snapshots beside the guest's own disks: `write`.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MethodSpec } from './methods.js';
import { DomainInfo, DomainStateInfo } from './schemas.js';

const strict = { additionalProperties: false } as const;
const HostFile = Type.String({ minLength: 1, maxLength: 4096, description: 'absolute path on the daemon\'s host' });
const SnapshotName = Type.String({ maxLength: 1024 });

export const SnapshotParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), snapshot: SnapshotName }, strict);
export type SnapshotParams = Static<typeof SnapshotParams>;

export const SaveBody = Type.Object({ file: HostFile }, strict);
export type SaveBody = Static<typeof SaveBody>;

export const SaveResult = Type.Object({
  file: Type.String(),
  /** Length of the whole file, header included. */
  bytes: Type.Integer(),
});
export type SaveResult = Static<typeof SaveResult>;

export const RestoreBody = Type.Object({
  file: HostFile,
  /** Restore even though a disk changed since the save (its contents and the saved RAM may disagree). */
  force: Type.Optional(Type.Boolean()),
}, strict);
export type RestoreBody = Static<typeof RestoreBody>;

export const ManagedSaveRemoveResult = Type.Object({ removed: Type.Boolean() });
export type ManagedSaveRemoveResult = Static<typeof ManagedSaveRemoveResult>;

export const JobInfo = Type.Object({
  /** What runs: none, save, restore, dump, snapshot. */
  type: Type.Union(['none', 'save', 'restore', 'dump', 'snapshot'].map((t) => Type.Literal(t))),
  /** Bytes (or units) done and in all; total 0 while unknown. */
  done: Type.Optional(Type.Integer()),
  total: Type.Optional(Type.Integer()),
  startedAt: Type.Optional(Type.String()),
});
export type JobInfo = Static<typeof JobInfo>;

export const SnapshotCreateBody = Type.Object({
  /** Default: the current time in seconds since the epoch, as virsh names them. */
  name: Type.Optional(SnapshotName),
  /** External disk-only snapshot: a new qcow2 overlay per disk; otherwise internal (disks + RAM of a running guest). */
  diskOnly: Type.Optional(Type.Boolean()),
}, strict);
export type SnapshotCreateBody = Static<typeof SnapshotCreateBody>;

export const SnapshotDisk = Type.Object({
  id: Type.String(),
  /** Internal: the image holding the snapshot. External: the image frozen by it (now a backing file). */
  path: Type.String(),
  format: Type.String(),
  /** External: the overlay created for the disk. */
  overlay: Type.Optional(Type.String()),
});

export const SnapshotInfo = Type.Object({
  name: Type.String(),
  domain: Type.String(),
  kind: Type.Union([Type.Literal('internal'), Type.Literal('external')]),
  /** The guest's RAM is in the snapshot (internal snapshot of a running or paused guest). */
  memory: Type.Boolean(),
  /** The domain's state when the snapshot was taken. */
  state: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('shutoff')]),
  parent: Type.Optional(Type.String()),
  children: Type.Array(Type.String()),
  current: Type.Boolean(),
  createdAt: Type.String(),
  disks: Type.Array(SnapshotDisk),
});
export type SnapshotInfo = Static<typeof SnapshotInfo>;

export const SnapshotList = Type.Object({ snapshots: Type.Array(SnapshotInfo) });
export type SnapshotList = Static<typeof SnapshotList>;

export const DumpFormats = ['elf', 'kdump-zlib'] as const;
export const DumpBody = Type.Object({
  file: HostFile,
  format: Type.Optional(Type.Union(DumpFormats.map((f) => Type.Literal(f)))),
  /** Accepted for virsh compatibility: virtkit's dumps are always memory-only (`dump-guest-memory`). */
  memoryOnly: Type.Optional(Type.Boolean()),
}, strict);
export type DumpBody = Static<typeof DumpBody>;

export const DumpResult = Type.Object({ file: Type.String(), bytes: Type.Integer(), format: Type.String() });
export type DumpResult = Static<typeof DumpResult>;

const OkResult = Type.Object({ ok: Type.Literal(true) });
const Active = ['running', 'paused'] as const;
const Stopped = ['shutoff', 'crashed'] as const;
const NameOnly = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }, strict);

export const GuestStateMethods = {
  'domain.save': { http: 'POST', path: '/domains/:name/save', summary: 'Stop the guest into a file (its RAM and device state, the definition in the header)', params: NameOnly, body: SaveBody, result: SaveResult, states: Active, access: 'admin', long: true },
  'domain.restore': { http: 'POST', path: '/domains/restore', summary: 'Bring a saved guest back from its file (defining it if needed)', body: RestoreBody, result: DomainInfo, states: null, access: 'admin', long: true },
  'domain.managedSave': { http: 'POST', path: '/domains/:name/managedsave', summary: 'Save the guest into the state dir; the next start resumes from it', params: NameOnly, result: SaveResult, states: Active, access: 'write', long: true },
  'domain.managedSaveRemove': { http: 'DELETE', path: '/domains/:name/managedsave', summary: 'Discard the managed save (the next start boots)', params: NameOnly, result: ManagedSaveRemoveResult, states: Stopped, access: 'write', long: false },
  'domain.jobInfo': { http: 'GET', path: '/domains/:name/job', summary: 'Progress of the save, restore, dump or snapshot in progress', params: NameOnly, result: JobInfo, states: 'any', access: 'read', long: false },
  'domain.snapshotCreate': { http: 'POST', path: '/domains/:name/snapshots', summary: 'Take a snapshot: internal (disks + RAM) or external disk-only', params: NameOnly, body: SnapshotCreateBody, result: SnapshotInfo, status: 201, states: 'any', access: 'write', long: true },
  'domain.snapshotList': { http: 'GET', path: '/domains/:name/snapshots', summary: 'The domain\'s snapshots, oldest first, with parents', params: NameOnly, result: SnapshotList, states: 'any', access: 'read', long: false },
  'domain.snapshotInfo': { http: 'GET', path: '/domains/:name/snapshots/:snapshot', summary: 'One snapshot', params: SnapshotParams, result: SnapshotInfo, states: 'any', access: 'read', long: false },
  'domain.snapshotRevert': { http: 'POST', path: '/domains/:name/snapshots/:snapshot/revert', summary: 'Go back to a snapshot (disks, and RAM when it has it)', params: SnapshotParams, result: DomainStateInfo, states: 'any', access: 'write', long: true },
  'domain.snapshotDelete': { http: 'DELETE', path: '/domains/:name/snapshots/:snapshot', summary: 'Delete a snapshot (its children move to its parent)', params: SnapshotParams, result: OkResult, states: 'any', access: 'write', long: false },
  'domain.dump': { http: 'POST', path: '/domains/:name/dump', summary: 'Write the guest\'s memory to a file (ELF or kdump-zlib), without its cooperation', params: NameOnly, body: DumpBody, result: DumpResult, states: Active, access: 'admin', long: true },
} as const satisfies Record<string, MethodSpec>;
