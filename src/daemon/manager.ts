/**
 * The lifecycle manager: every operation on a domain, each state change committed to the
 * store in one transaction together with its event. The in-memory side is only what cannot
 * live in a database: the driver's guest handles and console multiplexers, rebuilt from the
 * store and the run directories when the daemon starts (reconcile.ts).
 *
 * The manager speaks to guests only through the DomainDriver contract (qemu/driver/types.ts):
 * it asks for operations and records the typed lifecycle events the driver reports
 * (guest-events.ts). The driver carries out on_poweroff / on_reboot / on_crash and classifies
 * how QEMU ended; the manager sends no QMP of its own except the audited monitor passthrough.
 */
import { lstatSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import YAML from 'yaml';
import type {
  DefineBody, DomainInfo, DomainStateInfo, DomainSummary, EventType, HostShutdownResult, MonitorBody, ShutdownResult,
  StopReason,
} from '../api/index.js';
import type {
  DumpBody, DumpResult, JobInfo, ManagedSaveRemoveResult, RestoreBody, SaveResult, SnapshotCreateBody, SnapshotInfo, SnapshotList,
} from '../api/index.js';
import { assertStateAllowed, type StatefulMethod } from '../api/index.js';
import { formatDefinition, parseDefinition, validateDefinition, type DomainDefinition } from '../conf/index.js';
import type { DomainDriver, ExitInfo, GuestHandle, LifecycleEvent } from '../qemu/index.js';
import { withRetry, type Origin, type Store, type Transaction } from '../store/index.js';
import { VirtkitError, errorMessage } from '../util/errors.js';
import { mark } from '../util/timeline.js';
import { crashPoint, crashPointSoon } from './crash-points.js';
import {
  JobTable, dumpGuest, hasManagedSave, managedRestoreOf, managedSavePath, managedSaveRemove, restoreGuest, saveGuest,
  type GuestStateHost, type RestoreSource,
} from './guest-state.js';
import { createSnapshot, deleteSnapshot, listSnapshots, revertSnapshot, snapshotInfo } from './snapshots.js';
import type { DeviceContext } from './devices.js';
import { ConsoleMux, readTail, ConsoleHistoryBytes } from './console-mux.js';
import {
  BootIdPath, definitionDiffers, domainPath, isActive, listDomainNames, readDomain, removeLive, requireDomain, uuidPath,
  preconditionState, visibleState, writeLive, writeNewDomain, writeStatus, type DomainRecord, type DomainStatus,
} from './domain-records.js';
import { recordEvent } from './event-log.js';
import { recordedChangeOf } from './guest-events.js';
import { KeyedMutex } from './keyed-mutex.js';
import { PendingRecords } from './pending-records.js';
import { DomainInfoCache } from './info-cache.js';
import { checkNetworkMacs, type NetworkService } from './networks.js';

export interface ManagerOptions {
  store: Store;
  /** Parent of the per-guest run directories. */
  runRoot: string;
  log: FastifyBaseLogger;
  /** The hypervisor side of every guest: QemuDomainDriver, or the fake in tests. */
  driver: DomainDriver;
  /** Host paths of a definition's `pool/volume` disks (daemon/pools.ts), handed to the driver's prepare. */
  resolveVolumes?: (def: DomainDefinition) => Promise<Record<string, string>>;
  /** Where managed saves live (STATE/save); default RUN_ROOT/save. */
  saveDir?: string;
  /** Networks (daemon/networks.ts): taps made before QEMU starts and removed when it is gone. */
  networks?: NetworkService;
  /** Parent of each domain's UEFI variable store directory (`<dir>/<uuid>/OVMF_VARS.fd`); default `<runRoot>/nvram`. */
  nvramDir?: string;
}

/** A guest this daemon holds a driver handle for. */
interface Live {
  handle: GuestHandle;
  console: ConsoleMux;
  /** Set by destroy so the exit is recorded with the reason the user caused. */
  intent?: StopReason;
  /** Resolves once the exit is committed to the store. */
  recorded: Promise<void>;
  /** The driver lost the guest's monitor (QMP) and is reconnecting: monitor calls fail meanwhile. */
  degraded: boolean;
  unsubscribe: () => void;
}

/**
 * Definition fields that may change while the guest runs. on_host_shutdown and
 * shutdown_timeout are the manager's own policy, read from the saved definition when it stops
 * the guest, so they apply at once. on_poweroff / on_reboot / on_crash are carried out by the
 * driver from the definition the guest was started with (QEMU's `-action` is set at start):
 * a change is saved and applies at the next start. title, description and notes are words for
 * people. Everything else describes the machine and is refused while it runs.
 */
const MutableWhileRunning = new Set(['on_host_shutdown', 'shutdown_timeout', 'on_poweroff', 'on_reboot', 'on_crash', 'title', 'description', 'notes']);

/** A first try and up to 8 retries when a concurrent commit conflicts. */
const ConflictAttempts = 9;

export class Manager {
  /** The store as the manager reads it: with what waits in `records` (pending-records.ts). */
  private readonly store: Store;
  /** What the daemon observed but the store could not record yet, written as soon as it can be. */
  private readonly records: PendingRecords;
  /** `list`'s rows as of a store revision, reused while the revision stays. */
  private listRows: { revision: number; rows: readonly DomainSummary[] } | undefined;
  /** `info` derived once per revision of a domain's values (info-cache.ts). */
  private readonly infoCache = new DomainInfoCache(infoOf);
  private readonly live = new Map<string, Live>();
  private readonly locks = new KeyedMutex();
  /** Recordings of driver events still in flight (see settled()). */
  private readonly pending = new Set<Promise<unknown>>();
  readonly runRoot: string;
  private readonly log: FastifyBaseLogger;
  readonly driver: DomainDriver;
  private readonly resolveVolumes: ManagerOptions['resolveVolumes'];
  readonly networks: NetworkService | undefined;
  private readonly saveDir: string;
  private readonly nvramDir: string;
  private readonly jobs = new JobTable();

  constructor(opts: ManagerOptions) {
    this.records = new PendingRecords({ log: opts.log, commit: (write) => this.commitNow({}, write) });
    this.store = this.records.overlay(opts.store);
    this.runRoot = opts.runRoot;
    this.log = opts.log;
    this.driver = opts.driver;
    this.resolveVolumes = opts.resolveVolumes;
    this.networks = opts.networks;
    this.saveDir = opts.saveDir ?? join(opts.runRoot, 'save');
    this.nvramDir = opts.nvramDir ?? join(opts.runRoot, 'nvram');
  }

  /**
   * Runs `fn` in a transaction as `origin`, rerunning it when a concurrent commit conflicts.
   * What waits to be recorded is written first, so no write overtakes an older observation;
   * while the store refuses writes this throws `store.unavailable` naming what waits.
   */
  private async tx<T>(origin: Origin, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    try {
      await this.records.flush();
      return await this.commitNow(origin, fn);
    } catch (err) {
      throw this.records.withPending(err);
    }
  }

  /** One transaction with the conflict retries, nothing written before it. */
  private commitNow<T>(origin: Origin, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const store = this.store.as(origin);
    // Commits are serialized by SQLite, so a conflict is retried at once, without backoff.
    return withRetry(() => store.transaction(fn), { attempts: ConflictAttempts, backoffMs: 0 });
  }

  runDirOf(uuid: string): string {
    return join(this.runRoot, uuid);
  }

  /**
   * Resolves once every driver event reported so far is committed to the store (and the exits
   * reported so far are recorded). Tests use it after making a fake guest act by itself.
   */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  // ---- reads ---------------------------------------------------------------------------

  async list(origin: Origin, all: boolean): Promise<DomainSummary[]> {
    const store = this.store.as(origin);
    // The rows are a function of the store's contents: while its revision has not moved since
    // they were read, they are reused (the listing itself is still read, so snoop shows the call).
    const revision = store.revision;
    const names = await listDomainNames(store);
    let rows = this.listRows?.revision === revision ? this.listRows.rows : undefined;
    if (rows === undefined) {
      const fresh: DomainSummary[] = [];
      rows = fresh;
      for (const name of names) {
        // One read after the other: the store answers at once, and a Promise.all per domain
        // only adds allocations to the hottest call.
        const uuid = await store.read(domainPath(name, 'uuid'));
        const status = await store.read(domainPath(name, 'status'));
        const autostart = await store.read(domainPath(name, 'autostart'));
        const tainted = await store.read(domainPath(name, 'tainted'));
        if (uuid === undefined || status === undefined) continue;
        const state = visibleState(JSON.parse(status) as DomainStatus);
        // Nearly every domain is untainted: no JSON parse for the empty list.
        const taints = tainted === undefined || tainted === '[]' ? [] : JSON.parse(tainted) as string[];
        fresh.push({ name, uuid, state, autostart: autostart === 'true', tainted: taints });
      }
      // Kept only when nothing committed while they were read.
      if (store.revision === revision) this.listRows = { revision, rows };
    }
    const out: DomainSummary[] = [];
    for (const row of rows) {
      if (!all && row.state !== 'running' && row.state !== 'paused') continue;
      out.push({ ...row, tainted: [...row.tainted], ...this.degradedOf(row.name) });
    }
    return out;
  }

  async info(origin: Origin, name: string): Promise<DomainInfo> {
    const info = await this.infoCache.info(this.store.as(origin), name);
    return { ...info, ...this.degradedOf(name), ...((await hasManagedSave(this.saveDir, info.uuid)) ? { managedSave: true } : {}) };
  }

  /** `{ degraded: true }` while the driver reconnects the monitor of a guest this daemon holds. */
  private degradedOf(name: string): { degraded?: true } {
    return this.live.get(name)?.degraded ? { degraded: true } : {};
  }

  async state(origin: Origin, name: string): Promise<DomainStateInfo> {
    return stateOf(await requireDomain(this.store.as(origin), name));
  }

  /**
   * The saved definition as text; with `live`, the one the running guest was started with
   * (refused with domain.invalid-state when it does not run).
   */
  async definitionText(origin: Origin, name: string, format: 'yaml' | 'json', opts: { live?: boolean } = {}): Promise<string> {
    const rec = await requireDomain(this.store.as(origin), name);
    if (!opts.live) return formatDefinition(rec.definition, format);
    if (rec.status.state !== 'running' && rec.status.state !== 'paused') {
      throw new VirtkitError('domain.invalid-state', `"${name}" is not running: it has no live definition`,
        { name, state: visibleState(rec.status), allowed: ['running', 'paused'] });
    }
    return formatDefinition(rec.live ?? rec.definition, format);
  }

  // ---- define / undefine / edit --------------------------------------------------------

  async define(origin: Origin, body: DefineBody): Promise<DomainInfo> {
    const def = parseDefinition(body.text, definitionOptions(body));
    return this.locks.run(def.name, async () => {
      const rec = await this.tx(origin, async (tx) => {
        if (await tx.exists(domainPath(def.name))) {
          throw new VirtkitError('domain.exists', `a domain named "${def.name}" is already defined; use "virtkit edit" to change it`, { name: def.name });
        }
        const owner = await tx.read(uuidPath(def.uuid));
        if (owner !== undefined) {
          throw new VirtkitError('domain.exists', `UUID ${def.uuid} already belongs to domain "${owner}"`, { uuid: def.uuid, name: owner });
        }
        if (this.networks) await checkNetworkMacs(tx, def);
        await writeNewDomain(tx, def);
        await recordEvent(tx, 'defined', def);
        crashPoint('define.in-transaction');
        return requireDomain(tx, def.name);
      });
      this.log.info({ domain: def.name, uuid: def.uuid }, 'domain defined');
      return infoOf(rec);
    });
  }

  async undefine(origin: Origin, name: string, force: boolean): Promise<void> {
    const rec = await requireDomain(this.store.as(origin), name);
    assertStateAllowed('domain.undefine', name, preconditionState(rec.status), { force });
    if (isActive(rec.status)) await this.destroy(origin, name);
    await this.locks.run(name, async () => {
      await this.tx(origin, async (tx) => {
        const cur = await requireDomain(tx, name);
        // started meanwhile: refused as any undefine of a running domain
        assertStateAllowed('domain.undefine', name, preconditionState(cur.status));
        await tx.rm(domainPath(name));
        await tx.rm(uuidPath(cur.uuid));
        await recordEvent(tx, 'undefined', cur);
      });
      // Its run dir, its UEFI variable store (docs/firmware.md) and its managed save go with it
      // (a plain save file is the user's: restore defines the domain again). Most domains have
      // none of them: an lstat (microseconds) spares three trips through the thread pool.
      await Promise.all([this.runDirOf(rec.uuid), join(this.nvramDir, rec.uuid), managedSavePath(this.saveDir, rec.uuid)]
        .filter((path) => lstatSync(path, { throwIfNoEntry: false }) !== undefined)
        .map((path) => rm(path, { recursive: true, force: true })));
    });
    this.log.info({ domain: name }, 'domain undefined');
  }

  async updateDefinition(origin: Origin, name: string, body: DefineBody): Promise<DomainInfo> {
    return this.locks.run(name, async () => {
      const rec = await requireDomain(this.store.as(origin), name);
      const def = parseKeepingUuid(body, rec.uuid);
      if (def.name !== name) {
        throw new VirtkitError('domain.field-immutable', `the name cannot be changed by edit ("${name}" -> "${def.name}")`, { fields: ['name'] });
      }
      if (def.uuid !== rec.uuid) {
        throw new VirtkitError('domain.field-immutable', `the uuid cannot be changed (${rec.uuid} -> ${def.uuid})`, { fields: ['uuid'] });
      }
      const updated = await this.tx(origin, async (tx) => {
        const cur = await requireDomain(tx, name);
        if (isActive(cur.status)) {
          const changed = changedFields(cur.definition, def).filter((f) => !MutableWhileRunning.has(f));
          if (changed.length > 0) {
            throw new VirtkitError('domain.field-immutable',
              `cannot change ${changed.join(', ')} while "${name}" is running; shut it down first`, { fields: changed });
          }
        }
        await tx.write(domainPath(name, 'definition'), JSON.stringify(def));
        await recordEvent(tx, 'edited', cur);
        return requireDomain(tx, name);
      });
      return infoOf(updated);
    });
  }

  async setAutostart(origin: Origin, name: string, enabled: boolean): Promise<DomainSummary> {
    const rec = await this.tx(origin, async (tx) => {
      const cur = await requireDomain(tx, name);
      await tx.write(domainPath(name, 'autostart'), String(enabled));
      await recordEvent(tx, 'autostart', cur, enabled ? 'enabled' : 'disabled');
      return { ...cur, autostart: enabled };
    });
    return { name: rec.name, uuid: rec.uuid, state: visibleState(rec.status), autostart: rec.autostart, tainted: rec.tainted, ...this.degradedOf(name) };
  }

  // ---- start ---------------------------------------------------------------------------

  async start(origin: Origin, name: string, opts: { paused?: boolean; restore?: RestoreSource } = {}): Promise<DomainInfo> {
    mark('daemon: start called');
    return this.locks.run(name, async () => {
      // A managed save is resumed instead of a boot (guest-state.ts); checked before anything changes.
      const pre = await requireDomain(this.store.as(origin), name);
      assertStateAllowed('domain.start', name, preconditionState(pre.status));
      const restore = opts.restore ?? await managedRestoreOf(this.saveDir, pre);
      const paused = opts.paused === true || restore?.paused === true;
      const { runDir, rec } = await this.tx(origin, async (tx) => {
        const cur = await requireDomain(tx, name);
        assertStateAllowed('domain.start', name, preconditionState(cur.status));
        const dir = this.runDirOf(cur.uuid);
        // Recorded before QEMU exists: a crash from here on is reconciled from this run dir.
        await writeStatus(tx, name, { state: 'starting', runDir: dir });
        // Raw QEMU arguments or environment: tainted from this run on (its own event: a
        // transaction carries one).
        await this.taint(tx, name, passthroughTaints(cur.definition));
        return { runDir: dir, rec: cur };
      });
      crashPoint('start.recorded');
      let handle: GuestHandle;
      try {
        const def = restore?.definition ?? rec.definition;
        const volumePaths = await this.resolveVolumes?.(def);
        const withTaps = this.networks ? await this.networks.prepareNics(name, def) : def;
        const prepared = await this.driver.prepare(withTaps, { runDir, stateDir: join(this.nvramDir, rec.uuid), ...(volumePaths ? { volumePaths } : {}) });
        handle = await this.driver.launch(prepared, { paused, ...(restore ? { incoming: { path: restore.path, offset: restore.offset } } : {}) });
        crashPoint('start.spawned');
      } catch (err) {
        await this.networks?.releaseNics(name);
        const failed: DomainStatus = { state: 'shutoff', reason: 'failed', runDir };
        await this.records.record({
          domain: name, what: `${name} failed to start`, overlay: statusOverlay(name, failed),
          write: async (tx) => {
            await writeStatus(tx, name, failed);
            await recordEvent(tx, 'stopped', rec, 'failed');
          },
        });
        this.log.warn({ domain: name, err: errorMessage(err) }, 'start failed');
        throw err;
      }
      const status: DomainStatus = { state: paused ? 'paused' : 'running', runDir, pid: handle.pid, accel: handle.accel };
      const liveDefinition = handle.liveDefinition();
      // QEMU runs now: a store that cannot record it only delays the record; the guest is ours.
      await this.records.record({
        domain: name, what: `${name} started`, overlay: statusOverlay(name, status, liveDefinition),
        write: async (tx) => {
          await writeStatus(tx, name, status);
          await writeLive(tx, name, liveDefinition);
          await recordEvent(tx, 'started', rec, restore ? 'restored' : opts.paused ? 'paused' : undefined);
        },
      });
      await this.adopt(rec, handle);
      if (restore?.managed) await rm(restore.path, { force: true });
      this.log.info({ domain: name, pid: handle.pid, accel: handle.accel, restored: restore !== undefined }, 'domain started');
      mark('daemon: start recorded, console held');
      return infoOf(await requireDomain(this.store.as(origin), name));
    });
  }

  /**
   * Marks the domain tainted for each reason it does not carry yet (docs/manager.md: custom-argv,
   * custom-env, custom-monitor), in the caller's transaction, which must record no other event
   * (the event log keeps one per transaction): one `tainted` event naming the new reasons,
   * comma-separated.
   */
  private async taint(tx: Transaction, name: string, reasons: TaintReason[]): Promise<void> {
    if (reasons.length === 0) return;
    const cur = await requireDomain(tx, name);
    const added = reasons.filter((r) => !cur.tainted.includes(r));
    if (added.length === 0) return;
    await tx.write(domainPath(name, 'tainted'), JSON.stringify([...cur.tainted, ...added]));
    await recordEvent(tx, 'tainted', cur, added.join(','));
    this.log.warn({ domain: name, reasons: added }, 'domain tainted');
  }

  /** Takes charge of a guest handle: lifecycle events, console, exit. */
  async adopt(rec: Pick<DomainRecord, 'name' | 'uuid'>, handle: GuestHandle): Promise<void> {
    const console = new ConsoleMux();
    const live: Live = { handle, console, recorded: Promise.resolve(), unsubscribe: () => undefined, degraded: false };
    live.unsubscribe = handle.onEvent((ev) => this.onGuestEvent(rec, live, ev));
    live.recorded = handle.exited.then((exit) => this.recordExit(rec, live, exit)).catch((err: unknown) => {
      this.log.error({ domain: rec.name, err: errorMessage(err) }, 'recording the guest exit failed');
    });
    this.live.set(rec.name, live);
    try {
      await console.attach(handle.consoleLogPath, () => handle.openConsole());
    } catch (err) {
      this.log.warn({ domain: rec.name, err: errorMessage(err) }, 'console not available');
    }
  }

  /** Records what a driver event says happened (guest-events.ts has the table). */
  private onGuestEvent(rec: Pick<DomainRecord, 'name' | 'uuid'>, live: Live, ev: LifecycleEvent): void {
    if (ev.type === 'exited') {
      this.track(live.recorded);
      return;
    }
    if (ev.type === 'monitor-lost' || ev.type === 'monitor-restored') {
      // Not a lifecycle state: the guest runs on; only the monitor calls wait for the reconnection.
      live.degraded = ev.type === 'monitor-lost';
      this.log.warn({ domain: rec.name, event: ev.type }, ev.type === 'monitor-lost' ? 'guest monitor lost: degraded, reconnecting' : 'guest monitor restored');
      return;
    }
    if (ev.type === 'crashed') this.log.warn({ domain: rec.name, event: ev }, 'guest event');
    const change = recordedChangeOf(ev);
    if (!change) return;
    this.track((async () => {
      // What reads show meanwhile if the store cannot record it: the state it is in now (older
      // pending records included) with the event's state change.
      const seen = await readDomain(this.store, rec.name);
      const overlay = seen && change.state && (seen.status.state === 'running' || seen.status.state === 'paused')
        ? statusOverlay(rec.name, { ...seen.status, state: change.state }) : undefined;
      await this.records.record({
        domain: rec.name, what: `${rec.name} ${change.event} (${change.reason})`, ...(overlay ? { overlay } : {}),
        write: async (tx) => {
          const cur = await readDomain(tx, rec.name);
          if (!cur || cur.uuid !== rec.uuid || (cur.status.state !== 'running' && cur.status.state !== 'paused')) return;
          if (change.state && cur.status.state !== change.state) await writeStatus(tx, rec.name, { ...cur.status, state: change.state });
          else if (change.onlyOnChange) return;
          await recordEvent(tx, change.event, cur, change.reason);
        },
      });
    })().catch((err: unknown) => this.log.error({ domain: rec.name, event: ev.type, err: errorMessage(err) }, 'recording a guest event failed')));
  }

  private async recordExit(rec: Pick<DomainRecord, 'name' | 'uuid'>, live: Live, exit: ExitInfo): Promise<void> {
    live.console.close();
    live.unsubscribe();
    const reason: StopReason = live.intent ?? exit.reason;
    const runDir = live.handle.runDir;
    const status: DomainStatus = reason === 'crashed'
      ? { state: 'crashed', reason: 'crashed', runDir }
      : { state: 'shutoff', reason, runDir };
    // QEMU is gone whatever the store says: the handle goes now, the record as soon as the
    // store takes it (reads show the domain stopped meanwhile).
    if (this.live.get(rec.name) === live) this.live.delete(rec.name);
    await this.networks?.releaseNics(rec.name).catch((err: unknown) => this.log.warn({ domain: rec.name, err: errorMessage(err) }, 'removing the guest\'s taps failed'));
    await this.records.record({
      domain: rec.name, what: `${rec.name} stopped (${reason})`, overlay: statusOverlay(rec.name, status, null),
      write: async (tx) => {
        const cur = await readDomain(tx, rec.name);
        if (!cur || cur.uuid !== rec.uuid) return;
        await writeStatus(tx, rec.name, status);
        await removeLive(tx, rec.name);
        await recordEvent(tx, 'stopped', cur, reason);
      },
    });
    this.log.info({ domain: rec.name, reason, guestInitiated: exit.guestInitiated, shutdownReason: exit.shutdownReason }, 'domain stopped');
  }

  // ---- stop ----------------------------------------------------------------------------

  /**
   * The domain's live handle, once the method table's precondition for `method` holds (the
   * same check the daemon made before dispatch, made again here under the domain's lock).
   */
  private requireLive(name: string, rec: DomainRecord, method: StatefulMethod): Live {
    const live = this.live.get(name);
    // Active in the store but no handle yet (the start has not finished): refused as not running.
    assertStateAllowed(method, name, live ? preconditionState(rec.status) : 'shutoff');
    return live as Live;
  }

  async shutdown(origin: Origin, name: string, timeoutSeconds?: number): Promise<ShutdownResult> {
    const rec = await requireDomain(this.store.as(origin), name);
    const live = this.requireLive(name, rec, 'domain.shutdown');
    await this.tx(origin, (tx) => recordEvent(tx, 'shutdown', rec));
    const timeoutMs = (timeoutSeconds ?? rec.definition.shutdown_timeout) * 1000;
    // The exit reason comes from the driver: 'shutdown' when the guest powered off, 'destroyed'
    // when it had to be forced after the timeout. A guest kept after its power-off is ended too:
    // a shutdown the manager was asked for ends in shutoff whatever on_poweroff says.
    const stopping = live.handle.stop({ timeoutMs, preserve: false });
    // The power button is pressed now; the guest needs far longer than this to react.
    crashPointSoon('shutdown.requested', 20);
    const outcome = await stopping;
    await live.recorded;
    return { state: stateOf(await requireDomain(this.store.as(origin), name)).state, outcome };
  }

  async destroy(origin: Origin, name: string): Promise<DomainStateInfo> {
    const rec = await requireDomain(this.store.as(origin), name);
    const live = this.requireLive(name, rec, 'domain.destroy');
    live.intent = 'destroyed';
    await live.handle.destroy();
    await live.recorded;
    return stateOf(await requireDomain(this.store.as(origin), name));
  }

  // ---- running-guest operations --------------------------------------------------------

  private async onLive(origin: Origin, name: string, method: StatefulMethod, fn: (live: Live, rec: DomainRecord) => Promise<void>,
    after?: { event: EventType; state?: 'running' | 'paused' }): Promise<DomainRecord> {
    return this.locks.run(name, async () => {
      const rec = await requireDomain(this.store.as(origin), name);
      const live = this.requireLive(name, rec, method);
      assertMonitorUp(name, live);
      await fn(live, rec);
      if (!after) return rec;
      return this.tx(origin, async (tx) => {
        const cur = await requireDomain(tx, name);
        if (after.state && (cur.status.state === 'running' || cur.status.state === 'paused')) {
          await writeStatus(tx, name, { ...cur.status, state: after.state });
        }
        await recordEvent(tx, after.event, cur);
        return requireDomain(tx, name);
      });
    });
  }

  async suspend(origin: Origin, name: string): Promise<DomainStateInfo> {
    return stateOf(await this.onLive(origin, name, 'domain.suspend', async (live) => {
      await live.handle.pause();
    }, { event: 'suspended', state: 'paused' }));
  }

  async resume(origin: Origin, name: string): Promise<DomainStateInfo> {
    return stateOf(await this.onLive(origin, name, 'domain.resume', async (live) => {
      await live.handle.resume();
    }, { event: 'resumed', state: 'running' }));
  }

  async reboot(origin: Origin, name: string): Promise<void> {
    // Not while paused (the table says running only): a paused guest cannot see the power button.
    await this.onLive(origin, name, 'domain.reboot', async (live) => {
      await live.handle.reboot();
    }, { event: 'rebooted' });
  }

  async reset(origin: Origin, name: string): Promise<void> {
    await this.onLive(origin, name, 'domain.reset', (live) => live.handle.reset(), { event: 'reset' });
  }

  /** Raw QMP/HMP passthrough. The guest is marked tainted: the manager no longer vouches for its state. */
  async monitorCommand(origin: Origin, name: string, body: MonitorBody): Promise<unknown> {
    const rec = await requireDomain(this.store.as(origin), name);
    const live = this.requireLive(name, rec, 'domain.monitorCommand');
    assertMonitorUp(name, live);
    const command = 'qmp' in body ? body.qmp.execute : body.hmp;
    this.log.warn({ domain: name, command, pid: origin.pid }, 'domain tainted: custom monitor command');
    if (!rec.tainted.includes('custom-monitor')) await this.tx(origin, (tx) => this.taint(tx, name, ['custom-monitor']));
    if ('qmp' in body) {
      const args = body.qmp.arguments as Record<string, unknown> | undefined;
      return live.handle.monitor({ qmp: { execute: body.qmp.execute, ...(args ? { arguments: args } : {}) } });
    }
    return live.handle.monitor({ hmp: body.hmp });
  }

  // ---- observability (the streams and figures are src/daemon/observability*.ts) ----------

  /** The handle of a running domain whose monitor is up; undefined otherwise. */
  observedGuest(name: string): GuestHandle | undefined {
    const live = this.live.get(name);
    return live && !live.degraded ? live.handle : undefined;
  }

  /** Names of the domains that run now. */
  runningNames(): string[] {
    return [...this.live.keys()];
  }

  // ---- devices, memory and CPUs (the logic is devices.ts's) ------------------------------

  /**
   * Runs a device, memory or CPU operation under the domain's lock, with the record read under
   * it and the driver's handle when the guest runs (devices.ts records what changed).
   */
  async withDevices<T>(origin: Origin, name: string, fn: (ctx: DeviceContext) => Promise<T>): Promise<T> {
    return this.locks.run(name, async () => {
      const rec = await requireDomain(this.store.as(origin), name);
      const live = isActive(rec.status) ? this.live.get(name) : undefined;
      if (live) assertMonitorUp(name, live);
      return fn({
        rec, handle: live?.handle,
        commit: (write) => this.tx(origin, write),
        volumePaths: async (def) => (await this.resolveVolumes?.(def)) ?? {},
        ...(this.networks ? {
          prepareNic: async (nic) => (await this.networks!.prepareNics(name, { ...(rec.live ?? rec.definition), nics: [nic] })).nics[0]!,
          releaseNic: (nicId) => this.networks!.releaseNic(name, nicId),
        } : {}),
      });
    });
  }

  // ---- save/restore, snapshots, memory dumps (the logic is guest-state.ts's and snapshots.ts's) ----

  private guestStateHost(): GuestStateHost {
    return {
      store: this.store,
      saveDir: this.saveDir,
      jobs: this.jobs,
      tx: (origin, fn) => this.tx(origin, fn),
      lock: (name, fn) => this.locks.run(name, fn),
      requireLive: (name, rec, method) => {
        const live = this.requireLive(name, rec, method);
        assertMonitorUp(name, live);
        return {
          handle: live.handle,
          setIntent: (reason) => { if (reason === undefined) delete live.intent; else live.intent = reason; },
          recorded: () => live.recorded,
        };
      },
      diskPaths: async (def) => {
        const volumes = (await this.resolveVolumes?.(def)) ?? {};
        return def.disks.map((d) => ({ id: d.id, path: d.source ?? volumes[d.volume ?? ''] ?? '', format: d.format, readonly: d.readonly }));
      },
      start: (origin, name, opts) => this.start(origin, name, opts),
      destroy: (origin, name) => this.destroy(origin, name),
    };
  }

  save(origin: Origin, name: string, file: string): Promise<SaveResult> {
    return saveGuest(this.guestStateHost(), origin, name, file, 'domain.save');
  }

  async managedSave(origin: Origin, name: string): Promise<SaveResult> {
    const rec = await requireDomain(this.store.as(origin), name);
    await mkdir(this.saveDir, { recursive: true, mode: 0o700 });
    return saveGuest(this.guestStateHost(), origin, name, managedSavePath(this.saveDir, rec.uuid), 'domain.managedSave');
  }

  managedSaveRemove(origin: Origin, name: string): Promise<ManagedSaveRemoveResult> {
    return managedSaveRemove(this.guestStateHost(), origin, name);
  }

  restore(origin: Origin, body: RestoreBody): Promise<DomainInfo> {
    return restoreGuest(this.guestStateHost(), origin, body.file, body.force === true);
  }

  async jobInfo(origin: Origin, name: string): Promise<JobInfo> {
    await requireDomain(this.store.as(origin), name);
    return this.jobs.info(name);
  }

  snapshotCreate(origin: Origin, name: string, body: SnapshotCreateBody): Promise<SnapshotInfo> {
    return createSnapshot(this.guestStateHost(), origin, name, body);
  }

  async snapshotList(origin: Origin, name: string): Promise<SnapshotList> {
    return { snapshots: await listSnapshots(this.guestStateHost(), origin, name) };
  }

  snapshotInfo(origin: Origin, name: string, snapshot: string): Promise<SnapshotInfo> {
    return snapshotInfo(this.guestStateHost(), origin, name, snapshot);
  }

  snapshotRevert(origin: Origin, name: string, snapshot: string): Promise<DomainStateInfo> {
    return revertSnapshot(this.guestStateHost(), origin, name, snapshot);
  }

  snapshotDelete(origin: Origin, name: string, snapshot: string): Promise<void> {
    return deleteSnapshot(this.guestStateHost(), origin, name, snapshot);
  }

  dump(origin: Origin, name: string, body: DumpBody): Promise<DumpResult> {
    return dumpGuest(this.guestStateHost(), origin, name, body);
  }

  // ---- console -------------------------------------------------------------------------

  consoleOf(name: string): ConsoleMux | undefined {
    return this.live.get(name)?.console;
  }

  /** The run directory of a guest this daemon holds running (the web listener's VNC bridge finds vnc.sock there). */
  runDirOfLive(name: string): string | undefined {
    return this.live.get(name)?.handle.runDir;
  }

  async consoleLog(origin: Origin, name: string): Promise<string> {
    const rec = await requireDomain(this.store.as(origin), name);
    const mux = this.live.get(name)?.console;
    const bytes = mux ? mux.history.contents() : await readTail(join(this.runDirOf(rec.uuid), 'console.log'), ConsoleHistoryBytes);
    return bytes.toString('utf8');
  }

  // ---- host shutdown -------------------------------------------------------------------

  async hostShutdown(origin: Origin, timeoutSeconds?: number): Promise<HostShutdownResult> {
    const names = [...this.live.keys()];
    const domains = await Promise.all(names.map(async (name) => {
      const t0 = Date.now();
      const rec = await readDomain(this.store.as(origin), name);
      const policy = rec?.definition.on_host_shutdown ?? 'shutdown';
      const seconds = (): number => (Date.now() - t0) / 1000;
      try {
        if (!rec || policy === 'none') return { name, policy, outcome: 'skipped' as const, seconds: seconds() };
        if (policy === 'destroy') {
          await this.destroy(origin, name);
          return { name, policy, outcome: 'destroyed' as const, seconds: seconds() };
        }
        const r = await this.shutdown(origin, name, timeoutSeconds ?? rec.definition.shutdown_timeout);
        return { name, policy, outcome: r.outcome, seconds: seconds() };
      } catch (err) {
        return { name, policy, outcome: 'failed' as const, seconds: seconds(), error: errorMessage(err) };
      }
    }));
    this.log.info({ domains }, 'host shutdown done');
    return { domains };
  }

  // ---- autostart -----------------------------------------------------------------------

  /** Starts autostart domains if this is the first daemon start since the host booted. */
  async autostartOnce(bootId: string): Promise<string[]> {
    const first = await this.tx({}, async (tx) => {
      if ((await tx.read(BootIdPath)) === bootId) return false;
      // Recorded first: autostart runs at most once per boot even if the daemon dies mid-way.
      await tx.write(BootIdPath, bootId);
      return true;
    });
    if (!first) return [];
    const names: string[] = [];
    for (const name of await listDomainNames(this.store)) {
      const rec = await readDomain(this.store, name);
      if (rec?.autostart && !isActive(rec.status)) names.push(name);
    }
    const started: string[] = [];
    await Promise.all(names.map(async (name) => {
      try {
        await this.start({ client: 'autostart' }, name);
        started.push(name);
      } catch (err) {
        this.log.error({ domain: name, err: errorMessage(err) }, 'autostart failed');
      }
    }));
    this.log.info({ bootId, started }, 'autostart ran for this boot');
    return started;
  }

  // ---- reconcile support ---------------------------------------------------------------

  liveNames(): string[] {
    return [...this.live.keys()];
  }

  /** Records, for a domain the store thinks is active, that its QEMU is gone. */
  async markGone(rec: DomainRecord, reason: StopReason): Promise<void> {
    const status: DomainStatus = reason === 'crashed'
      ? { state: 'crashed', reason: 'crashed', ...(rec.status.runDir ? { runDir: rec.status.runDir } : {}) }
      : { state: 'shutoff', reason, ...(rec.status.runDir ? { runDir: rec.status.runDir } : {}) };
    await this.records.record({
      domain: rec.name, what: `${rec.name} stopped (${reason})`, overlay: statusOverlay(rec.name, status, null),
      write: async (tx) => {
        await writeStatus(tx, rec.name, status);
        await removeLive(tx, rec.name);
        await recordEvent(tx, 'stopped', rec, reason);
      },
    });
  }

  async markAdopted(rec: DomainRecord, handle: GuestHandle, state: 'running' | 'paused'): Promise<void> {
    const status: DomainStatus = { state, runDir: handle.runDir, pid: handle.pid, accel: handle.accel };
    // A guest adopted mid-start has no live definition recorded yet.
    const liveDefinition = rec.live === undefined ? handle.liveDefinition() : undefined;
    // A store that cannot record the adoption does not make the guest any less ours.
    await this.records.record({
      domain: rec.name, what: `${rec.name} re-attached (${state})`, overlay: statusOverlay(rec.name, status, liveDefinition),
      write: async (tx) => {
        await writeStatus(tx, rec.name, status);
        if (liveDefinition !== undefined) await writeLive(tx, rec.name, liveDefinition);
        if (rec.status.state === 'starting') await recordEvent(tx, 'started', rec, 'recovered');
      },
    });
  }

  /** Drops every guest handle without touching the guests (daemon stop). */
  detachAll(): void {
    this.records.close();
    for (const live of this.live.values()) {
      live.console.close();
      live.unsubscribe();
      live.handle.detach();
    }
    this.live.clear();
  }
}

/** Why a domain is tainted: the manager no longer vouches for what its QEMU does. */
export type TaintReason = 'custom-argv' | 'custom-env' | 'custom-monitor';

/** The taints a start with this definition brings: raw QEMU arguments, raw environment variables. */
export function passthroughTaints(def: DomainDefinition): TaintReason[] {
  const out: TaintReason[] = [];
  if (def.qemu.args.length > 0) out.push('custom-argv');
  if (Object.keys(def.qemu.env).length > 0) out.push('custom-env');
  return out;
}

/** Monitor calls are refused while the driver reconnects a lost monitor (the domain shows `degraded`). */
function assertMonitorUp(name: string, live: Live): void {
  if (live.degraded) {
    throw new VirtkitError('qmp.disconnected', `the monitor of "${name}" was lost and is being reconnected; try again shortly`, { name, degraded: true });
  }
}

/**
 * What reads of a domain answer while a record of it waits: its status and, when given, its
 * live definition (null: removed, as when it stopped).
 */
function statusOverlay(name: string, status: DomainStatus, live?: DomainDefinition | null): Record<string, string | null> {
  const overlay: Record<string, string | null> = { [domainPath(name, 'status')]: JSON.stringify(status) };
  if (live !== undefined) overlay[domainPath(name, 'live')] = live === null ? null : JSON.stringify(live);
  return overlay;
}

function definitionOptions(body: DefineBody): { format?: 'yaml' | 'json'; baseDir?: string } {
  return { ...(body.format ? { format: body.format } : {}), ...(body.baseDir ? { baseDir: body.baseDir } : {}) };
}

/** Parses an edited definition; a document without `uuid` keeps the domain's. */
function parseKeepingUuid(body: DefineBody, uuid: string): DomainDefinition {
  let obj: unknown;
  try {
    obj = body.format === 'json' ? JSON.parse(body.text) : YAML.parse(body.text);
  } catch {
    return parseDefinition(body.text, definitionOptions(body)); // produces the parser's own typed error
  }
  if (obj && typeof obj === 'object' && !Array.isArray(obj) && !('uuid' in obj)) {
    obj = { ...obj, uuid };
  }
  return validateDefinition(obj, body.baseDir ? { baseDir: body.baseDir } : {});
}

function changedFields(a: DomainDefinition, b: DomainDefinition): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify((a as Record<string, unknown>)[k]) !== JSON.stringify((b as Record<string, unknown>)[k])).sort();
}

export function stateOf(rec: DomainRecord): DomainStateInfo {
  const out: DomainStateInfo = { state: visibleState(rec.status) };
  if ((rec.status.state === 'shutoff' || rec.status.state === 'crashed') && rec.status.reason) out.reason = rec.status.reason;
  return out;
}

export function infoOf(rec: DomainRecord): DomainInfo {
  // a running guest's CPUs are the live definition's: setvcpus --live changes them and not the saved one
  const cpus = (rec.status.state === 'running' || rec.status.state === 'paused') && rec.live ? rec.live : rec.definition;
  const info: DomainInfo = {
    name: rec.name,
    uuid: rec.uuid,
    ...stateOf(rec),
    memory: rec.definition.memory,
    vcpus: cpus.vcpus,
    ...(cpus.maxvcpus !== undefined ? { maxVcpus: cpus.maxvcpus } : {}),
    autostart: rec.autostart,
    tainted: rec.tainted,
  };
  if (rec.status.state === 'running' || rec.status.state === 'paused') {
    info.pid = rec.status.pid;
    info.accel = rec.status.accel;
    info.definitionDiffers = definitionDiffers(rec);
  }
  if (rec.status.runDir) info.runDir = rec.status.runDir;
  return info;
}
