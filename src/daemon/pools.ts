/**
 * Pools and volumes in the daemon: pool definitions kept in the store, volume operations done
 * by the directory-pool library (storage/pool), and the checks only the manager can make
 * because it knows the guests: a volume a defined guest names (directly, or under a volume it
 * names) is not deleted, and one a running guest has open is not rewritten or resized. At start,
 * `resolveVolumes` turns a definition's `pool/volume` disks into host paths.
 */
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PoolMethods, VolumeContentPath, VolumeParams as VolumeParamsSchema } from '../api/index.js';
import type {
  PoolDefineBody, PoolInfo, PoolListQuery, PoolSummary, VolumeCloneBody, VolumeCreateBody, VolumeInfo, VolumeParams,
  VolumeResizeBody,
} from '../api/index.js';
import type { DomainDefinition } from '../conf/index.js';
import {
  checkPoolDefinition, checkVolumeName, DirPool, listPoolNames, parseVolumeRef, readPoolDefinition, removePoolDefinition,
  requirePoolDefinition, writePoolDefinition, type PoolDefinition, type VolumeInfo as DirVolumeInfo,
} from '../storage/pool/index.js';
import { withRetry, type Origin, type Store, type StoreReader, type Transaction } from '../store/index.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';
import { isActive, listDomainNames, readDomain } from './domain-records.js';
import { KeyedMutex } from './keyed-mutex.js';

/** A first try and up to 8 retries when a concurrent commit conflicts. */
const ConflictAttempts = 9;

/** A defined guest's disk naming a volume. */
interface VolumeUser {
  domain: string;
  volume: string;
  active: boolean;
}

function volumeInfoOf(pool: string, v: DirVolumeInfo): VolumeInfo {
  return { pool, ...v };
}

export class PoolService {
  private readonly locks = new KeyedMutex();

  constructor(private readonly store: Store) {}

  private async tx<T>(origin: Origin, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const store = this.store.as(origin);
    // Commits are serialized by SQLite, so a conflict is retried at once, without backoff.
    return withRetry(() => store.transaction(fn), { attempts: ConflictAttempts, backoffMs: 0 });
  }

  private async open(origin: Origin, name: string): Promise<{ def: PoolDefinition; dir: DirPool }> {
    const def = await requirePoolDefinition(this.store.as(origin), name);
    return { def, dir: await DirPool.open(def.path) };
  }

  private async infoOf(def: PoolDefinition): Promise<PoolInfo> {
    const base = { name: def.name, type: def.type, path: def.path };
    let dir: DirPool;
    try {
      dir = await DirPool.open(def.path);
    } catch (err) {
      return { ...base, state: 'inactive', volumes: 0, problem: errorMessage(err) };
    }
    const [stats, volumes] = await Promise.all([dir.stats(), dir.list()]);
    return { ...base, state: 'running', ...stats, volumes: volumes.length };
  }

  // ---- pools ---------------------------------------------------------------------------

  async list(origin: Origin, query: PoolListQuery): Promise<PoolSummary[]> {
    const r = this.store.as(origin);
    const out: PoolSummary[] = [];
    for (const name of await listPoolNames(r)) {
      const def = await readPoolDefinition(r, name);
      if (!def) continue;
      const state = await DirPool.open(def.path).then(() => 'running' as const, () => 'inactive' as const);
      if (state === 'inactive' && query.all !== true) continue;
      out.push({ name: def.name, type: def.type, path: def.path, state });
    }
    return out;
  }

  async define(origin: Origin, body: PoolDefineBody): Promise<PoolInfo> {
    const def = checkPoolDefinition(body);
    const dir = await DirPool.open(def.path);
    const saved = await this.tx(origin, async (tx) => {
      if (await readPoolDefinition(tx, def.name)) throw new VirtkitError('pool.exists', `a pool named "${def.name}" is already defined`, { pool: def.name });
      // Two pools on one directory would let one pool's checks miss the other's guests.
      for (const other of await listPoolNames(tx)) {
        const o = await readPoolDefinition(tx, other);
        const real = o ? await DirPool.open(o.path).then((p) => p.path, () => undefined) : undefined;
        if (o && (o.path === def.path || real === dir.path)) {
          throw new VirtkitError('pool.exists', `pool "${o.name}" already uses the directory ${def.path}`, { pool: o.name, path: def.path });
        }
      }
      await writePoolDefinition(tx, def);
      return def;
    });
    return this.infoOf(saved);
  }

  async info(origin: Origin, name: string): Promise<PoolInfo> {
    return this.infoOf(await requirePoolDefinition(this.store.as(origin), name));
  }

  /** Nothing about the directory is cached, so a refresh is a fresh look (and fails if the directory is gone). */
  async refresh(origin: Origin, name: string): Promise<PoolInfo> {
    const { def } = await this.open(origin, name);
    return this.infoOf(def);
  }

  /** Removes the definition only; the directory and its files stay. Refused while a defined guest names one of its volumes. */
  async undefine(origin: Origin, name: string): Promise<void> {
    await this.tx(origin, async (tx) => {
      await requirePoolDefinition(tx, name);
      const users = (await volumeUsers(tx)).filter((u) => parseVolumeRef(u.volume).pool === name);
      if (users.length > 0) {
        throw new VirtkitError('volume.in-use', `pool "${name}" has volumes used by ${describeUsers(users)}; undefine or edit those guests first`,
          { pool: name, domains: unique(users.map((u) => u.domain)), volumes: unique(users.map((u) => u.volume)) });
      }
      await removePoolDefinition(tx, name);
    });
  }

  // ---- volumes -------------------------------------------------------------------------

  async volumes(origin: Origin, pool: string): Promise<VolumeInfo[]> {
    const { dir } = await this.open(origin, pool);
    return (await dir.list()).map((v) => volumeInfoOf(pool, v));
  }

  async volumeInfo(origin: Origin, pool: string, volume: string): Promise<VolumeInfo> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    return volumeInfoOf(pool, await dir.info(volume));
  }

  async createVolume(origin: Origin, pool: string, body: VolumeCreateBody): Promise<VolumeInfo> {
    checkVolumeName(body.name);
    if (body.backing !== undefined) checkVolumeName(body.backing);
    const { dir } = await this.open(origin, pool);
    return this.locks.run(`${pool}/${body.name}`, async () => volumeInfoOf(pool, await dir.create({
      name: body.name, format: body.format, capacity: body.capacity, ...(body.backing !== undefined ? { backing: body.backing } : {}),
    })));
  }

  async cloneVolume(origin: Origin, pool: string, volume: string, body: VolumeCloneBody): Promise<VolumeInfo> {
    checkVolumeName(volume);
    checkVolumeName(body.name);
    const { dir } = await this.open(origin, pool);
    await this.refuseWhileRunning(origin, dir, pool, volume, 'copy');
    return this.locks.run(`${pool}/${body.name}`, async () => volumeInfoOf(pool, await dir.clone(volume, body.name)));
  }

  async resizeVolume(origin: Origin, pool: string, volume: string, body: VolumeResizeBody): Promise<VolumeInfo> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    return this.locks.run(`${pool}/${volume}`, async () => {
      await this.refuseWhileRunning(origin, dir, pool, volume, 'resize');
      return volumeInfoOf(pool, await dir.resize(volume, body.capacity, { shrink: body.shrink === true }));
    });
  }

  async deleteVolume(origin: Origin, pool: string, volume: string): Promise<void> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    await this.locks.run(`${pool}/${volume}`, async () => {
      await dir.info(volume);
      const ref = `${pool}/${volume}`;
      const users = (await volumeUsers(this.store.as(origin))).filter((u) => u.volume === ref);
      if (users.length > 0) {
        throw new VirtkitError('volume.in-use', `volume ${ref} is used by ${describeUsers(users)}`,
          { volume: ref, domains: unique(users.map((u) => u.domain)) });
      }
      const dependents = await dir.dependents(volume);
      if (dependents.length > 0) {
        throw new VirtkitError('volume.in-use', `volume ${ref} is the backing file of ${dependents.map((d) => `"${d}"`).join(', ')}`,
          { volume: ref, volumes: dependents });
      }
      await dir.delete(volume);
    });
  }

  /** Replaces a volume's bytes with what `source` delivers (see DirPool.beginUpload). */
  async uploadVolume(origin: Origin, pool: string, volume: string, source: Readable): Promise<VolumeInfo> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    return this.locks.run(`${pool}/${volume}`, async () => {
      await this.refuseWhileRunning(origin, dir, pool, volume, 'overwrite');
      const upload = await dir.beginUpload(volume);
      try {
        await pipeline(source, upload.stream);
      } catch (err) {
        await upload.abort();
        throw new VirtkitError('request.invalid', `upload of ${pool}/${volume} did not complete: ${errorMessage(err)}`, { volume: `${pool}/${volume}` }, { cause: err });
      }
      return volumeInfoOf(pool, await upload.commit());
    });
  }

  async openVolume(origin: Origin, pool: string, volume: string): Promise<{ stream: Readable; size: number }> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    const { handle, size } = await dir.openRead(volume);
    // Exactly the bytes there were at open time, even if the file grows meanwhile.
    return { stream: handle.createReadStream(size > 0 ? { start: 0, end: size - 1 } : { start: 0, end: -1 }), size };
  }

  /** Running guests whose disks sit on `volume` or on a volume backed by it. */
  private async refuseWhileRunning(origin: Origin, dir: DirPool, pool: string, volume: string, action: string): Promise<void> {
    const affected = new Set([volume, ...await dir.dependents(volume)].map((v) => `${pool}/${v}`));
    const users = (await volumeUsers(this.store.as(origin))).filter((u) => u.active && affected.has(u.volume));
    if (users.length > 0) {
      throw new VirtkitError('volume.in-use', `cannot ${action} ${pool}/${volume} while ${describeUsers(users)} runs on it; stop the guest first`,
        { volume: `${pool}/${volume}`, domains: unique(users.map((u) => u.domain)) });
    }
  }

  // ---- start ---------------------------------------------------------------------------

  /**
   * Host paths of a definition's `pool/volume` disks, for the argv builder. Each volume's
   * backing chain is checked (inside its pool, formats recorded) and its format must be the one
   * the disk states.
   * @throws pool.not-found, volume.not-found, volume.invalid-name, image.* naming the disk and volume;
   *         definition.invalid when the disk's format is not the volume's.
   */
  async resolveVolumes(def: DomainDefinition): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [i, disk] of def.disks.entries()) {
      if (disk.volume === undefined) continue;
      const ref = disk.volume;
      try {
        const { pool, volume } = parseVolumeRef(ref);
        const poolDef = await readPoolDefinition(this.store, pool);
        if (!poolDef) throw new VirtkitError('pool.not-found', `no pool named "${pool}"`, { pool });
        const dir = await DirPool.open(poolDef.path);
        await dir.chain(volume);
        const info = await dir.info(volume);
        if (info.format !== disk.format) {
          throw new VirtkitError('definition.invalid', `the volume is ${info.format} but the disk says format ${disk.format}`,
            { path: `disks[${i}].format`, rule: 'volume-format' });
        }
        out[ref] = info.path;
      } catch (err) {
        if (!isVirtkitError(err)) throw err;
        throw new VirtkitError(err.code, `disks[${i}].volume ${ref}: ${err.message}`, { ...err.data, volume: ref, disk: i }, { cause: err });
      }
    }
    return out;
  }
}

async function volumeUsers(r: StoreReader): Promise<VolumeUser[]> {
  const out: VolumeUser[] = [];
  for (const name of await listDomainNames(r)) {
    const rec = await readDomain(r, name);
    if (!rec) continue;
    for (const disk of rec.definition.disks) {
      if (disk.volume !== undefined) out.push({ domain: name, volume: disk.volume, active: isActive(rec.status) });
    }
  }
  return out;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function describeUsers(users: VolumeUser[]): string {
  const names = unique(users.map((u) => u.domain));
  return `${names.length === 1 ? 'guest' : 'guests'} ${names.map((n) => `"${n}"`).join(', ')}`;
}

type PoolMethodName = keyof typeof PoolMethods;
type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

/** The JSON handlers of the pool methods, merged into the daemon's handler table. */
export function poolHandlers(s: PoolService): Record<PoolMethodName, Handler> {
  const p = (req: FastifyRequest): VolumeParams => req.params as VolumeParams;
  return {
    'pool.list': async (req, o) => ({ pools: await s.list(o, req.query as PoolListQuery) }),
    'pool.define': (req, o) => s.define(o, req.body as PoolDefineBody),
    'pool.info': (req, o) => s.info(o, p(req).pool),
    'pool.refresh': (req, o) => s.refresh(o, p(req).pool),
    'pool.undefine': async (req, o) => { await s.undefine(o, p(req).pool); return { ok: true }; },
    'volume.list': async (req, o) => ({ volumes: await s.volumes(o, p(req).pool) }),
    'volume.create': (req, o) => s.createVolume(o, p(req).pool, req.body as VolumeCreateBody),
    'volume.info': (req, o) => s.volumeInfo(o, p(req).pool, p(req).volume),
    'volume.clone': (req, o) => s.cloneVolume(o, p(req).pool, p(req).volume, req.body as VolumeCloneBody),
    'volume.resize': (req, o) => s.resizeVolume(o, p(req).pool, p(req).volume, req.body as VolumeResizeBody),
    'volume.delete': async (req, o) => { await s.deleteVolume(o, p(req).pool, p(req).volume); return { ok: true }; },
  };
}

/**
 * The streamed volume contents (`VolumeContentPath`): GET sends the file, PUT with
 * `application/octet-stream` replaces it. Registered in a scope of their own so the raw body
 * parser (which hands the request stream over unbuffered, without the JSON body limit)
 * applies to these routes only.
 */
export async function registerVolumeContentRoutes(app: FastifyInstance, s: PoolService): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => { done(null, payload); });
    scope.get(VolumeContentPath, { schema: { params: VolumeParamsSchema } }, async (req: FastifyRequest, reply: FastifyReply) => {
      const { pool, volume } = req.params as VolumeParams;
      const { stream, size } = await s.openVolume({}, pool, volume);
      void reply.header('content-type', 'application/octet-stream').header('content-length', String(size));
      return reply.send(stream);
    });
    scope.put(VolumeContentPath, { schema: { params: VolumeParamsSchema } }, async (req: FastifyRequest) => {
      const { pool, volume } = req.params as VolumeParams;
      if (!(req.headers['content-type'] ?? '').startsWith('application/octet-stream')) {
        throw new VirtkitError('request.invalid', 'a volume upload is sent as content-type application/octet-stream');
      }
      return s.uploadVolume({}, pool, volume, req.body as Readable);
    });
  });
}
