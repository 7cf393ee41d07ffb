/**
 * The pool and volume part of the API contract: schemas and method table entries (merged into
 * `Methods`), plus the two streaming endpoints for volume contents. Names in params and bodies
 * are plain strings here: the daemon checks them itself, so a bad volume name is refused with
 * `volume.invalid-name` rather than a schema error.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MethodSpec } from './methods.js';

const strict = { additionalProperties: false } as const;
// No pattern and no minimum: the daemon's own checks answer with volume.invalid-name / pool.invalid.
const NameText = Type.String({ maxLength: 1024 });

export const PoolParams = Type.Object({ pool: NameText }, strict);
export type PoolParams = Static<typeof PoolParams>;
export const VolumeParams = Type.Object({ pool: NameText, volume: NameText }, strict);
export type VolumeParams = Static<typeof VolumeParams>;

export const VolumeFormatSchema = Type.Union([Type.Literal('raw'), Type.Literal('qcow2')]);

export const PoolDefineBody = Type.Object({
  name: NameText,
  type: Type.Literal('dir'),
  /** Absolute path of an existing directory. */
  path: Type.String({ minLength: 1, maxLength: 4096 }),
}, strict);
export type PoolDefineBody = Static<typeof PoolDefineBody>;

export const PoolSummary = Type.Object({
  name: Type.String(),
  type: Type.Literal('dir'),
  path: Type.String(),
  /** 'running' when the directory is there, 'inactive' when it cannot be reached. */
  state: Type.Union([Type.Literal('running'), Type.Literal('inactive')]),
});
export type PoolSummary = Static<typeof PoolSummary>;

export const PoolInfo = Type.Object({
  name: Type.String(),
  type: Type.Literal('dir'),
  path: Type.String(),
  state: Type.Union([Type.Literal('running'), Type.Literal('inactive')]),
  /** Of the filesystem holding the directory (statfs), in bytes; absent while inactive. */
  capacity: Type.Optional(Type.Integer()),
  allocation: Type.Optional(Type.Integer()),
  available: Type.Optional(Type.Integer()),
  volumes: Type.Integer(),
  /** Why the pool is inactive. */
  problem: Type.Optional(Type.String()),
});
export type PoolInfo = Static<typeof PoolInfo>;

export const PoolList = Type.Object({ pools: Type.Array(PoolSummary) });
export type PoolList = Static<typeof PoolList>;

export const PoolListQuery = Type.Object({
  all: Type.Optional(Type.Boolean({ description: 'include inactive pools' })),
}, strict);
export type PoolListQuery = Static<typeof PoolListQuery>;

export const VolumeInfo = Type.Object({
  name: Type.String(),
  pool: Type.String(),
  format: VolumeFormatSchema,
  path: Type.String(),
  /** Guest-visible size in bytes. */
  capacity: Type.Integer(),
  /** Bytes the file occupies on the host. */
  allocation: Type.Integer(),
  backing: Type.Optional(Type.Object({
    volume: Type.Optional(Type.String()),
    path: Type.String(),
    format: Type.Optional(Type.String()),
  })),
  /** Set in listings when the file cannot be read as its format. */
  problem: Type.Optional(Type.String()),
});
export type VolumeInfo = Static<typeof VolumeInfo>;

export const VolumeList = Type.Object({ volumes: Type.Array(VolumeInfo) });
export type VolumeList = Static<typeof VolumeList>;

export const VolumeCreateBody = Type.Object({
  name: NameText,
  /** Virtual size in bytes. */
  capacity: Type.Integer({ minimum: 0 }),
  format: VolumeFormatSchema,
  /** A volume of the same pool to back this one (qcow2). */
  backing: Type.Optional(NameText),
}, strict);
export type VolumeCreateBody = Static<typeof VolumeCreateBody>;

export const VolumeCloneBody = Type.Object({ name: NameText }, strict);
export type VolumeCloneBody = Static<typeof VolumeCloneBody>;

export const VolumeResizeBody = Type.Object({
  capacity: Type.Integer({ minimum: 0 }),
  /** Allow a smaller size (data past the new end is lost). */
  shrink: Type.Optional(Type.Boolean()),
}, strict);
export type VolumeResizeBody = Static<typeof VolumeResizeBody>;

const OkResult = Type.Object({ ok: Type.Literal(true) });

export const PoolMethods = {
  'pool.list': { http: 'GET', path: '/pools', summary: 'List pools (reachable ones unless all=true)', query: PoolListQuery, result: PoolList, states: null, access: 'read', long: false },
  'pool.define': { http: 'POST', path: '/pools', summary: 'Define a directory pool', body: PoolDefineBody, result: PoolInfo, status: 201, states: null, access: 'admin', long: false },
  'pool.info': { http: 'GET', path: '/pools/:pool', summary: 'Pool information: filesystem capacity, allocation, available, volume count', params: PoolParams, result: PoolInfo, states: null, access: 'read', long: false },
  'pool.refresh': { http: 'POST', path: '/pools/:pool/refresh', summary: 'Rescan the pool directory', params: PoolParams, result: PoolInfo, states: null, access: 'write', long: false },
  'pool.undefine': { http: 'DELETE', path: '/pools/:pool', summary: 'Remove a pool definition (the directory stays); refused while defined guests use its volumes', params: PoolParams, result: OkResult, states: null, access: 'admin', long: false },
  'volume.list': { http: 'GET', path: '/pools/:pool/volumes', summary: 'List the volumes of a pool', params: PoolParams, result: VolumeList, states: null, access: 'read', long: false },
  'volume.create': { http: 'POST', path: '/pools/:pool/volumes', summary: 'Create a volume (qcow2 or raw, optionally backed by another volume)', params: PoolParams, body: VolumeCreateBody, result: VolumeInfo, status: 201, states: null, access: 'write', long: false },
  'volume.info': { http: 'GET', path: '/pools/:pool/volumes/:volume', summary: 'Volume information', params: VolumeParams, result: VolumeInfo, states: null, access: 'read', long: false },
  'volume.clone': { http: 'POST', path: '/pools/:pool/volumes/:volume/clone', summary: 'Copy a volume (backing chain flattened) under a new name', params: VolumeParams, body: VolumeCloneBody, result: VolumeInfo, status: 201, states: null, access: 'write', long: true },
  'volume.resize': { http: 'POST', path: '/pools/:pool/volumes/:volume/resize', summary: 'Change a volume\'s capacity (smaller only with shrink)', params: VolumeParams, body: VolumeResizeBody, result: VolumeInfo, states: null, access: 'write', long: false },
  'volume.delete': { http: 'DELETE', path: '/pools/:pool/volumes/:volume', summary: 'Delete a volume; refused while a defined guest or another volume uses it', params: VolumeParams, result: OkResult, states: null, access: 'write', long: false },
} as const satisfies Record<string, MethodSpec>;

/**
 * Volume contents, streamed (not in the JSON table):
 * - `GET /pools/:pool/volumes/:volume/content[?allowRunning=true]`: the file's bytes,
 *   `content-length` set. Refused with `volume.in-use` while a running guest may write the
 *   file, unless `allowRunning` (then `VolumeInUseHeader` names the guests).
 * - `PUT /pools/:pool/volumes/:volume/content` with `content-type: application/octet-stream`:
 *   replaces the file's bytes; answers VolumeInfo. A qcow2 upload must parse and may only be
 *   backed by volumes of the same pool.
 */
export const VolumeContentPath = '/pools/:pool/volumes/:volume/content';

/** The query of the content GET. */
export const VolumeDownloadQuery = Type.Object({
  /**
   * Download even while a running guest may write the file (the copy may be inconsistent).
   * Without it such a download is refused with `volume.in-use`.
   */
  allowRunning: Type.Optional(Type.Boolean()),
}, strict);
export type VolumeDownloadQuery = Static<typeof VolumeDownloadQuery>;

/**
 * Response header of a download made with `allowRunning` while guests may write the file:
 * JSON `[{ domain, disk? }]`, so the client can warn.
 */
export const VolumeInUseHeader = 'virtkit-volume-in-use';
