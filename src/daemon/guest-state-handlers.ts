/**
 * The HTTP handlers of the save/restore, snapshot and dump methods (api/guest-state.ts) that
 * take more than the domain's name; the others are bound by name (server.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { DumpBody, RestoreBody, SaveBody, SnapshotCreateBody, SnapshotParams } from '../api/index.js';
import type { Origin } from '../store/index.js';
import type { Manager } from './manager.js';

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

export type GuestStateHandled = 'domain.save' | 'domain.restore' | 'domain.snapshotCreate' | 'domain.snapshotInfo'
  | 'domain.snapshotRevert' | 'domain.snapshotDelete' | 'domain.dump';

export function guestStateHandlers(m: Manager): Record<GuestStateHandled, Handler> {
  const name = (req: FastifyRequest): string => (req.params as { name: string }).name;
  const snap = (req: FastifyRequest): SnapshotParams => req.params as SnapshotParams;
  return {
    'domain.save': (req, o) => m.save(o, name(req), (req.body as SaveBody).file),
    'domain.restore': (req, o) => m.restore(o, req.body as RestoreBody),
    'domain.snapshotCreate': (req, o) => m.snapshotCreate(o, name(req), (req.body as SnapshotCreateBody | undefined) ?? {}),
    'domain.snapshotInfo': (req, o) => m.snapshotInfo(o, snap(req).name, snap(req).snapshot),
    'domain.snapshotRevert': (req, o) => m.snapshotRevert(o, snap(req).name, snap(req).snapshot),
    'domain.snapshotDelete': async (req, o) => { await m.snapshotDelete(o, snap(req).name, snap(req).snapshot); return { ok: true }; },
    'domain.dump': (req, o) => m.dump(o, name(req), req.body as DumpBody),
  };
}
