/**
 * Pools and volumes in the daemon: pool definitions kept in the store, volume operations done
 * by the directory-pool library (storage/pool), and the checks only the manager can make
 * because it knows the guests: a volume a defined guest names is not deleted, and a file an
 * active guest uses (by `volume:` or by `source:` path, through any link: compared by device
 * and inode, see storage/pool/in-use.ts) is not overwritten, deleted, resized, or copied or
 * downloaded while the guest may write it. At start, `resolveVolumes` turns a definition's
 * `pool/volume` disks into host paths, and waits for file operations in progress on any of the
 * guest's files (see `passFileLocks`).
 */
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  PoolMethods, VolumeContentPath, VolumeDownloadQuery as VolumeDownloadQuerySchema, VolumeInUseHeader, VolumeParams as VolumeParamsSchema,
} from '../api/index.js';
import type {
  PoolDefineBody, PoolInfo, PoolListQuery, PoolSummary, VolumeCloneBody, VolumeCreateBody, VolumeDownloadQuery, VolumeInfo,
  VolumeParams, VolumeResizeBody,
} from '../api/index.js';
import type { DomainDefinition } from '../conf/index.js';
import {
  checkPoolDefinition, checkVolumeName, diskFileChain, DirPool, identityKey, InUseFiles, listPoolNames, parseVolumeRef,
  readPoolDefinition, removePoolDefinition, requirePoolDefinition, writePoolDefinition, type ActiveDisk, type ActiveProcess,
  type FileIdentity, type FileUse, type PoolDefinition, type VolumeInfo as DirVolumeInfo,
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
}

function volumeInfoOf(pool: string, v: DirVolumeInfo): VolumeInfo {
  return { pool, ...v };
}

/**
 * What an operation does to a file, and so which guests' uses stop it: writing the file
 * (overwrite, delete, resize) is refused under any use, even as a read-only backing file;
 * reading it (copy, download) only under a use that may write it, since only that makes the
 * copy inconsistent.
 */
type FileAction = 'overwrite' | 'delete' | 'resize' | 'copy' | 'download';
const ReadingActions: ReadonlySet<FileAction> = new Set(['copy', 'download']);

/** A volume being downloaded: the bytes, and the guests that may write it meanwhile (with allowRunning). */
export interface OpenedVolume {
  stream: Readable;
  size: number;
  inUse: FileUse[];
}

export class PoolService {
  private readonly locks = new KeyedMutex();
  /**
   * One operation at a time per file identity (`dev:ino`). A volume operation holds its file's
   * lock from the in-use check to its end; a start passes through the lock of every file of the
   * guest after recording the guest `starting` (see passFileLocks), so either the operation's
   * check sees the guest or the start waits for the operation to end.
   */
  private readonly fileLocks = new KeyedMutex();

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
    // The source file's lock is held through the copy: a guest writing it cannot start meanwhile.
    // Name locks are always taken before file locks, so no two operations wait on each other.
    return this.locks.run(`${pool}/${body.name}`, () => this.whileUnused(origin, dir, pool, volume, 'copy', async () =>
      volumeInfoOf(pool, await dir.clone(volume, body.name))));
  }

  async resizeVolume(origin: Origin, pool: string, volume: string, body: VolumeResizeBody): Promise<VolumeInfo> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    return this.locks.run(`${pool}/${volume}`, () => this.whileUnused(origin, dir, pool, volume, 'resize', async () =>
      volumeInfoOf(pool, await dir.resize(volume, body.capacity, { shrink: body.shrink === true }))));
  }

  async deleteVolume(origin: Origin, pool: string, volume: string): Promise<void> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    await this.locks.run(`${pool}/${volume}`, () => this.whileUnused(origin, dir, pool, volume, 'delete', async () => {
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
    }));
  }

  /** Replaces a volume's bytes with what `source` delivers (see DirPool.beginUpload). */
  async uploadVolume(origin: Origin, pool: string, volume: string, source: Readable): Promise<VolumeInfo> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    return this.locks.run(`${pool}/${volume}`, () => this.whileUnused(origin, dir, pool, volume, 'overwrite', async () => {
      const upload = await dir.beginUpload(volume);
      try {
        await pipeline(source, upload.stream);
      } catch (err) {
        await upload.abort();
        throw new VirtkitError('request.invalid', `upload of ${pool}/${volume} did not complete: ${errorMessage(err)}`, { volume: `${pool}/${volume}` }, { cause: err });
      }
      return volumeInfoOf(pool, await upload.commit());
    }));
  }

  /**
   * The volume's bytes as they are at open time. Refused (`volume.in-use`) while an active
   * guest may write the file, unless `allowRunning`: then the copy may be inconsistent, and
   * `inUse` names the guests. Without it the file's lock is held until the stream ends, so no
   * guest that writes it starts meanwhile.
   */
  async openVolume(origin: Origin, pool: string, volume: string, opts: { allowRunning?: boolean } = {}): Promise<OpenedVolume> {
    checkVolumeName(volume);
    const { dir } = await this.open(origin, pool);
    const streamOf = ({ handle, size }: { handle: FileHandle; size: number }): Readable =>
      // Exactly the bytes there were at open time, even if the file grows meanwhile.
      handle.createReadStream(size > 0 ? { start: 0, end: size - 1 } : { start: 0, end: -1 });
    if (opts.allowRunning === true) {
      const id = await dir.identityOf(volume);
      const inUse = this.usersFor(await this.inUseFiles(origin), id, 'download');
      const opened = await dir.openRead(volume);
      return { stream: streamOf(opened), size: opened.size, inUse };
    }
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const opened = await new Promise<{ handle: FileHandle; size: number }>((resolve, reject) => {
      this.whileUnused(origin, dir, pool, volume, 'download', async () => {
        resolve(await dir.openRead(volume));
        await held;
      }).catch((err: unknown) => { release(); reject(err); });
    });
    const stream = streamOf(opened);
    stream.once('close', release);
    return { stream, size: opened.size, inUse: [] };
  }

  // ---- in use --------------------------------------------------------------------------

  /**
   * Every file active guests (starting, running or paused) use, by identity: the disks of the
   * definitions they run (volumes resolved to their files), with their qcow2 backing chains,
   * and the files their QEMU processes have open.
   */
  async inUseFiles(origin: Origin): Promise<InUseFiles> {
    const r = this.store.as(origin);
    const disks: ActiveDisk[] = [];
    const processes: ActiveProcess[] = [];
    for (const name of await listDomainNames(r)) {
      const rec = await readDomain(r, name);
      if (!rec || !isActive(rec.status)) continue;
      for (const disk of (rec.live ?? rec.definition).disks) {
        const path = disk.source ?? (disk.volume !== undefined ? await this.volumePathOf(r, disk.volume) : undefined);
        if (path !== undefined) disks.push({ domain: name, disk: disk.id, path, format: disk.format, readonly: disk.readonly });
      }
      if (rec.status.state === 'running' || rec.status.state === 'paused') processes.push({ domain: name, pid: rec.status.pid, uuid: rec.uuid });
    }
    return InUseFiles.collect(disks, processes);
  }

  /** The host path a `pool/volume` reference names now; undefined when the pool or its directory is gone. */
  private async volumePathOf(r: StoreReader, ref: string): Promise<string | undefined> {
    try {
      const { pool, volume } = parseVolumeRef(ref);
      const def = await readPoolDefinition(r, pool);
      return def ? (await DirPool.open(def.path)).pathOf(volume) : undefined;
    } catch {
      return undefined;
    }
  }

  private usersFor(files: InUseFiles, id: FileIdentity, action: FileAction): FileUse[] {
    return files.usersOf(id).filter((u) => !ReadingActions.has(action) || u.writable);
  }

  /**
   * Runs `fn` holding the volume file's lock, once no active guest uses the file in a way
   * `action` conflicts with.
   * @throws volume.in-use naming each guest, its disk id and the path it uses the file by.
   */
  private async whileUnused<T>(origin: Origin, dir: DirPool, pool: string, volume: string, action: FileAction,
    fn: () => Promise<T>): Promise<T> {
    const id = await dir.identityOf(volume);
    return this.fileLocks.run(identityKey(id), async () => {
      const users = this.usersFor(await this.inUseFiles(origin), id, action);
      if (users.length > 0) throw inUseError(`${pool}/${volume}`, action, users);
      return fn();
    });
  }

  /**
   * Waits for the volume operations in progress on any file of `def`'s disks (their backing
   * chains included). Called by a start after it recorded the guest `starting`: an operation
   * that takes a file's lock later sees the guest in its in-use check.
   */
  private async passFileLocks(def: DomainDefinition, volumePaths: Record<string, string>): Promise<void> {
    for (const disk of def.disks) {
      const path = disk.source ?? (disk.volume !== undefined ? volumePaths[disk.volume] : undefined);
      if (path === undefined) continue;
      for (const f of await diskFileChain(path, disk.format)) await this.fileLocks.run(identityKey(f.id), async () => undefined);
    }
  }

  // ---- start ---------------------------------------------------------------------------

  /**
   * Host paths of a definition's `pool/volume` disks, for the argv builder. Each volume's
   * backing chain is checked (inside its pool, formats recorded) and its format must be the one
   * the disk states. Returns once no volume operation is in progress on any file of the guest's
   * disks (`source:` paths included).
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
    await this.passFileLocks(def, out);
    return out;
  }
}

async function volumeUsers(r: StoreReader): Promise<VolumeUser[]> {
  const out: VolumeUser[] = [];
  for (const name of await listDomainNames(r)) {
    const rec = await readDomain(r, name);
    if (!rec) continue;
    for (const disk of rec.definition.disks) {
      if (disk.volume !== undefined) out.push({ domain: name, volume: disk.volume });
    }
  }
  return out;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function describeUse(u: FileUse): string {
  const how = u.disk !== undefined ? `disk ${u.disk}${u.role === 'backing' ? ', as a backing file' : ''}` : 'a file its QEMU has open';
  return `guest "${u.domain}" (${how}: ${u.path})`;
}

function inUseError(ref: string, action: FileAction, users: FileUse[]): VirtkitError {
  const hint = action === 'download'
    ? 'stop the guest first, or pass --allow-running (allowRunning=true) for a copy that may be inconsistent'
    : 'stop the guest first';
  return new VirtkitError('volume.in-use', `cannot ${action} ${ref}: it is in use by ${users.map(describeUse).join(', ')}; ${hint}`, {
    volume: ref, action, domains: unique(users.map((u) => u.domain)),
    users: users.map((u) => ({ domain: u.domain, ...(u.disk !== undefined ? { disk: u.disk } : {}), path: u.path, role: u.role, writable: u.writable })),
  });
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
    scope.get(VolumeContentPath, { schema: { params: VolumeParamsSchema, querystring: VolumeDownloadQuerySchema } }, async (req: FastifyRequest, reply: FastifyReply) => {
      const { pool, volume } = req.params as VolumeParams;
      const query = req.query as VolumeDownloadQuery;
      const { stream, size, inUse } = await s.openVolume({}, pool, volume, { allowRunning: query.allowRunning === true });
      if (inUse.length > 0) {
        req.log.warn({ volume: `${pool}/${volume}`, users: inUse }, 'download of a volume a running guest may write');
        void reply.header(VolumeInUseHeader, JSON.stringify(inUse.map((u) => ({ domain: u.domain, ...(u.disk !== undefined ? { disk: u.disk } : {}) }))));
      }
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
