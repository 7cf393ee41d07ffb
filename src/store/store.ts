/**
 * The generic store over any `StoreBackend`: path and value checks, handles with an origin,
 * transactions, watches and the snoop hook.
 *
 * Watches are fed by the backend's change feed (`onChanges`), never by this layer's own
 * commits, so they hear every writer of a shared store alike. The store follows the feed
 * only while at least one watch is open. A change of this handle's own commit reaches the
 * watchers after snoop has recorded the commit and before the commit's promise resolves,
 * as if the commit had published it.
 */
import { channel } from 'node:diagnostics_channel';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { affects, assertValidPath, isValidPath } from './path.js';
import { TransactionView, conflictError } from './transaction.js';
import { asStoreUnavailable } from './unavailable.js';
import type {
  ChangesSinceOptions, Disposer, Mutation, Origin, SnoopCallback, SnoopOp, SnoopRecord, SnoopResult,
  Store, StoreBackend, StoreChange, Transaction, WatchCallback, WatchOptions,
} from './types.js';

/** Values are strings of at most this many UTF-8 bytes by default (1 MiB). */

/**
 * `virtkit:store` (node:diagnostics_channel): every store operation, `{ store, record }` with the
 * operation as a SnoopRecord, published only while someone subscribes (`virtkit probe --channel
 * store`), like the snoopers.
 */
export const StoreChannel = channel('virtkit:store');

/** Whether a `virtkit:store` message's `store` is `store`'s (any view of it, whatever its origin). */
export function isStoreOf(store: Store, published: unknown): boolean {
  return store instanceof StoreHandle ? store.isViewOf(published) : store === published;
}
export const DefaultMaxValueBytes = 1 << 20;

export interface StoreOptions {
  /** The origin of the handle returned (default `{}`, the daemon itself). */
  origin?: Origin;
  /** Largest value accepted, in UTF-8 bytes (default 1 MiB); larger ones get `argument.invalid`. */
  maxValueBytes?: number;
  /**
   * Receives exceptions thrown by watch and snoop callbacks (which never undo a commit or
   * stop other callbacks). Default: rethrown asynchronously, so a broken callback is loud.
   */
  onListenerError?: (err: unknown) => void;
  /** Runs after the backend is closed (the SQLite store releases its state dir lock here). */
  onClose?: () => void;
}

interface Watcher {
  readonly path: string;
  readonly callback: WatchCallback;
  readonly origin: Origin;
  /** Where a `store.compacted` of the live feed goes (the watch ends). */
  readonly onError: (err: unknown) => void;
  /** Highest revision delivered, so a replay and the live feed never repeat a change. */
  delivered: number;
  /** While a replay is in flight, live changes wait here. */
  pending: StoreChange[] | undefined;
  active: boolean;
}

/** Builds a store on `backend`; `openStore` (index.ts) does this with the SQLite backend. */
export function createStore(backend: StoreBackend, options: StoreOptions = {}): Store {
  return new StoreHandle(new StoreCore(backend, options), Object.freeze({ ...(options.origin ?? {}) }));
}

/** State shared by every handle of one store. */
class StoreCore {
  readonly maxValueBytes: number;
  private readonly snoopers = new Set<SnoopCallback>();
  private watchers: Watcher[] = [];
  /** The feed subscription, open exactly while there are watchers. */
  private unfollow: Disposer | undefined;
  /** Changes from the feed not yet delivered, in revision order. */
  private readonly queue: StoreChange[] = [];
  private dispatching = false;
  /** Commits of this store started and not yet reported (to snoop and their caller). */
  private commitsInFlight = 0;
  /** Queued changes up to this revision may go out even while other commits are in flight. */
  private releasedUpTo = 0;
  private nextTxId = 1;
  private closed = false;

  constructor(readonly backend: StoreBackend, private readonly options: StoreOptions) {
    this.maxValueBytes = options.maxValueBytes ?? DefaultMaxValueBytes;
  }

  get snooping(): boolean {
    return this.snoopers.size > 0 || StoreChannel.hasSubscribers;
  }

  allocateTxId(): number {
    return this.nextTxId++;
  }

  assertOpen(): void {
    if (this.closed) throw new VirtkitError('internal', 'the store is closed');
  }

  snoop(origin: Origin, tx: number | '-', op: SnoopOp, path: string | undefined, value: string | undefined,
    result: SnoopResult, revision?: number): void {
    if (this.snoopers.size === 0 && !StoreChannel.hasSubscribers) return;
    const record: SnoopRecord = {
      time: Date.now(), origin, tx, op,
      ...(path === undefined ? {} : { path }),
      ...(value === undefined ? {} : { value }),
      result,
      ...(revision === undefined ? {} : { revision }),
    };
    if (StoreChannel.hasSubscribers) StoreChannel.publish({ store: this, record });
    for (const snooper of this.snoopers) {
      try {
        snooper(record);
      } catch (err) {
        this.reportListenerError(err);
      }
    }
  }

  addSnooper(callback: SnoopCallback): Disposer {
    this.snoopers.add(callback);
    return () => { this.snoopers.delete(callback); };
  }

  addWatcher(watcher: Watcher): void {
    this.watchers = [...this.watchers, watcher];
    if (this.unfollow === undefined) {
      // Live from what the backend knows now; a watch with `since` replays the rest itself.
      this.unfollow = this.backend.onChanges(this.backend.revision,
        (changes) => this.received(changes), (err) => this.feedFailed(err));
    }
  }

  removeWatcher(watcher: Watcher): void {
    watcher.active = false;
    this.watchers = this.watchers.filter((w) => w !== watcher);
    if (this.watchers.length === 0) this.stopFollowing();
  }

  /** Before a commit: its changes (arriving through the feed) wait until `commitEnded`. */
  commitStarted(): void {
    this.commitsInFlight++;
  }

  /**
   * After a commit, once snoop has recorded it: releases the queued changes up to its
   * `revision` (all of them when no other commit is in flight), so its caller resumes with
   * the watchers already told.
   */
  commitEnded(revision: number | undefined): void {
    this.commitsInFlight--;
    if (revision !== undefined && revision > this.releasedUpTo) this.releasedUpTo = revision;
    this.dispatch();
  }

  /** The feed's batches. */
  private received(changes: readonly StoreChange[]): void {
    for (const change of changes) this.queue.push(change);
    this.dispatch();
  }

  /**
   * Delivers queued changes to watchers, in revision order. A callback that commits in
   * turn only queues its changes, so every watcher sees every change in revision order.
   */
  private dispatch(): void {
    if (this.dispatching || this.queue.length === 0) return;
    this.dispatching = true;
    let i = 0;
    try {
      for (; i < this.queue.length; i++) {
        const change = this.queue[i]!;
        if (this.commitsInFlight > 0 && change.revision > this.releasedUpTo) break;
        for (const watcher of this.watchers) {
          if (!affects(change.op, change.path, watcher.path)) continue;
          if (watcher.pending !== undefined) watcher.pending.push(change);
          else this.deliver(watcher, change);
        }
      }
    } finally {
      this.queue.splice(0, i);
      this.dispatching = false;
    }
  }

  /** The feed ended with an error (`store.compacted`: it fell behind the log): so does every watch. */
  private feedFailed(err: unknown): void {
    this.unfollow = undefined;
    this.dropQueue();
    const watchers = this.watchers;
    this.watchers = [];
    for (const watcher of watchers) {
      watcher.active = false;
      this.snoop(watcher.origin, '-', 'unwatch', watcher.path, undefined, 'EIO');
      watcher.onError(err);
    }
  }

  private stopFollowing(): void {
    const unfollow = this.unfollow;
    this.unfollow = undefined;
    this.dropQueue();
    unfollow?.();
  }

  /** Forgets undelivered changes, unless a dispatch is walking the queue (it drops them itself). */
  private dropQueue(): void {
    if (!this.dispatching) this.queue.length = 0;
  }

  deliver(watcher: Watcher, change: StoreChange): void {
    if (!watcher.active || change.revision <= watcher.delivered) return;
    watcher.delivered = change.revision;
    this.snoop(watcher.origin, '-', 'watch-event', change.path, change.value, 'OK', change.revision);
    try {
      watcher.callback(change);
    } catch (err) {
      this.reportListenerError(err);
    }
  }

  reportListenerError(err: unknown): void {
    if (this.options.onListenerError !== undefined) {
      this.options.onListenerError(err);
    } else {
      queueMicrotask(() => { throw err; });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) w.active = false;
    this.watchers = [];
    this.stopFollowing();
    this.snoopers.clear();
    try {
      await this.backend.close();
    } finally {
      this.options.onClose?.();
    }
  }
}

/** Runs `check` and reports EINVAL to snoop when it throws a typed error. */
function validated(core: StoreCore, origin: Origin, tx: number | '-', op: SnoopOp, path: unknown, check: () => void): void {
  try {
    check();
  } catch (err) {
    if (isVirtkitError(err)) core.snoop(origin, tx, op, typeof path === 'string' ? path : undefined, undefined, 'EINVAL');
    throw err;
  }
}

/** `validated` for a plain path check, without building a closure when the path is fine (reads are hot). */
function validatedPath(core: StoreCore, origin: Origin, tx: number | '-', op: SnoopOp, path: unknown): void {
  if (isValidPath(path)) return;
  validated(core, origin, tx, op, path, () => assertValidPath(path));
}

function checkMutablePath(path: unknown, op: string): void {
  assertValidPath(path);
  if (path === '/') throw new VirtkitError('store.invalid-path', `cannot ${op} the root`, { path, reason: `cannot ${op} the root` });
}

function checkValue(core: StoreCore, path: string, value: unknown): void {
  if (typeof value !== 'string') {
    throw new VirtkitError('argument.invalid', `the value for ${path} must be a string, got ${typeof value}`, { path, reason: 'not a string' });
  }
  if (value.length * 3 > core.maxValueBytes && Buffer.byteLength(value) > core.maxValueBytes) {
    throw new VirtkitError('argument.invalid', `the value for ${path} is larger than ${core.maxValueBytes} bytes`,
      { path, reason: 'too large', limit: core.maxValueBytes });
  }
  if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    throw new VirtkitError('argument.invalid', `the value for ${path} is not well-formed Unicode (lone surrogate)`,
      { path, reason: 'not well-formed' });
  }
}

class StoreHandle implements Store {
  constructor(private readonly core: StoreCore, readonly origin: Origin) {}

  /** See isStoreOf. */
  isViewOf(core: unknown): boolean {
    return core === this.core;
  }

  get revision(): number {
    return this.core.backend.revision;
  }

  as(origin: Origin): Store {
    return new StoreHandle(this.core, Object.freeze({ ...origin }));
  }

  async read(path: string): Promise<string | undefined> {
    const { core } = this;
    core.assertOpen();
    validatedPath(core, this.origin, '-', 'read', path);
    let node: Awaited<ReturnType<StoreBackend['get']>>;
    // Inline rather than through readingBackend: this is the hottest path of every API read.
    try {
      node = await core.backend.get(path);
    } catch (err) {
      throw asStoreUnavailable(err, 'be read');
    }
    core.snoop(this.origin, '-', 'read', path, node?.value, node === undefined ? 'ENOENT' : 'OK');
    return node?.value;
  }

  async readOrThrow(path: string): Promise<string> {
    const value = await this.read(path);
    if (value === undefined) throw notFound(path);
    return value;
  }

  async exists(path: string): Promise<boolean> {
    const { core } = this;
    core.assertOpen();
    validatedPath(core, this.origin, '-', 'exists', path);
    const found = (await readingBackend(() => core.backend.get(path))) !== undefined;
    core.snoop(this.origin, '-', 'exists', path, String(found), found ? 'OK' : 'ENOENT');
    return found;
  }

  async list(path: string): Promise<string[] | undefined> {
    const { core } = this;
    core.assertOpen();
    validatedPath(core, this.origin, '-', 'list', path);
    const children = await readingBackend(() => core.backend.children(path));
    core.snoop(this.origin, '-', 'list', path, children?.names.join(' '), children === undefined ? 'ENOENT' : 'OK');
    return children?.names;
  }

  async write(path: string, value: string): Promise<void> {
    this.core.assertOpen();
    validated(this.core, this.origin, '-', 'write', path, () => {
      checkMutablePath(path, 'write');
      checkValue(this.core, path, value);
    });
    await this.commitOne({ op: 'write', path, value }, value);
  }

  async mkdir(path: string): Promise<void> {
    this.core.assertOpen();
    validated(this.core, this.origin, '-', 'mkdir', path, () => assertValidPath(path));
    if (path === '/') {
      this.core.snoop(this.origin, '-', 'mkdir', path, undefined, 'OK');
      return;
    }
    await this.commitOne({ op: 'mkdir', path }, undefined);
  }

  async rm(path: string): Promise<boolean> {
    this.core.assertOpen();
    validated(this.core, this.origin, '-', 'rm', path, () => checkMutablePath(path, 'remove'));
    return this.commitOne({ op: 'rm', path }, undefined);
  }

  async transaction<T>(fn: (tx: Transaction) => T | Promise<T>): Promise<T> {
    const { core } = this;
    core.assertOpen();
    const tx = new TransactionHandle(core, this.origin, core.allocateTxId());
    core.snoop(this.origin, tx.id, 'tx-start', undefined, undefined, 'OK');
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      tx.finish();
      core.snoop(this.origin, tx.id, 'abort', undefined, undefined, 'OK');
      // A read inside the function may have met a failing storage.
      throw asStoreUnavailable(err, 'be read');
    }
    const plan = tx.finish();
    core.assertOpen();
    let outcome;
    core.commitStarted();
    try {
      outcome = await core.backend.commit(plan.checks, plan.mutations, this.origin);
    } catch (err) {
      core.snoop(this.origin, tx.id, 'commit', undefined, undefined, 'EIO');
      core.commitEnded(undefined);
      throw asStoreUnavailable(err, 'commit');
    }
    if (!outcome.ok) {
      core.snoop(this.origin, tx.id, 'commit', outcome.conflictPath, undefined, 'EAGAIN');
      core.commitEnded(undefined);
      throw conflictError(tx.id, outcome.conflictPath);
    }
    core.snoop(this.origin, tx.id, 'commit', undefined, undefined, 'OK', outcome.revision);
    core.commitEnded(outcome.revision);
    tx.runCommitCallbacks(outcome.revision, outcome.changes);
    return result;
  }

  watch(path: string, callback: WatchCallback, options: WatchOptions = {}): Disposer {
    const { core } = this;
    core.assertOpen();
    validated(core, this.origin, '-', 'watch', path, () => assertValidPath(path));
    const since = options.since;
    const onError = options.onError ?? ((err: unknown) => core.reportListenerError(err));
    const watcher: Watcher = {
      path, callback, origin: this.origin, onError, active: true,
      delivered: since ?? core.backend.revision,
      pending: since === undefined ? undefined : [],
    };
    core.addWatcher(watcher);
    core.snoop(this.origin, '-', 'watch', path, since === undefined ? undefined : String(since), 'OK');
    const dispose: Disposer = () => {
      if (!watcher.active) return;
      core.removeWatcher(watcher);
      core.snoop(this.origin, '-', 'unwatch', path, undefined, 'OK');
    };
    if (since !== undefined) this.replay(watcher, since, onError, dispose);
    return dispose;
  }

  async changesSince(revision: number, options: ChangesSinceOptions = {}): Promise<StoreChange[]> {
    this.core.assertOpen();
    if (options.prefix !== undefined) assertValidPath(options.prefix);
    const limit = options.limit ?? 1000;
    return readingBackend(() => this.core.backend.changesSince(revision, { ...(options.prefix === undefined ? {} : { prefix: options.prefix }), limit }));
  }

  onOperation(callback: SnoopCallback): Disposer {
    this.core.assertOpen();
    return this.core.addSnooper(callback);
  }

  close(): Promise<void> {
    return this.core.close();
  }

  /** Commits one mutation outside a transaction; resolves whether it changed anything. */
  private async commitOne(mutation: Mutation, value: string | undefined): Promise<boolean> {
    const { core } = this;
    let outcome;
    core.commitStarted();
    try {
      outcome = await core.backend.commit(undefined, [mutation], this.origin);
    } catch (err) {
      core.snoop(this.origin, '-', mutation.op, mutation.path, value, isVirtkitError(err) ? 'EINVAL' : 'EIO');
      core.commitEnded(undefined);
      throw asStoreUnavailable(err, 'commit');
    }
    if (!outcome.ok) {
      core.commitEnded(undefined);
      throw new VirtkitError('internal', 'a commit without checks reported a conflict');
    }
    const changed = outcome.changes.length > 0;
    core.snoop(this.origin, '-', mutation.op, mutation.path, value,
      changed || mutation.op !== 'rm' ? 'OK' : 'ENOENT', changed ? outcome.revision : undefined);
    core.commitEnded(outcome.revision);
    return changed;
  }

  /** Replays the log after `since` into `watcher`, then releases the live changes held meanwhile. */
  private replay(watcher: Watcher, since: number, onError: (err: unknown) => void, dispose: Disposer): void {
    const { core } = this;
    const fetchAll = async (): Promise<StoreChange[]> => {
      const out: StoreChange[] = [];
      for (let from = since; ;) {
        const batch = await core.backend.changesSince(from, { prefix: watcher.path, limit: 1000 });
        out.push(...batch);
        if (batch.length < 1000) return out;
        from = batch[batch.length - 1]!.revision;
      }
    };
    fetchAll().then((history) => {
      const held = watcher.pending ?? [];
      watcher.pending = undefined;
      for (const change of history) core.deliver(watcher, change);
      for (const change of held) core.deliver(watcher, change);
    }, (err: unknown) => {
      dispose();
      onError(err);
    });
  }
}

class TransactionHandle implements Transaction {
  private readonly view: TransactionView;
  private finished = false;
  private readonly commitCallbacks: Array<(revision: number, changes: readonly StoreChange[]) => void> = [];

  constructor(private readonly core: StoreCore, private readonly origin: Origin, readonly id: number) {
    this.view = new TransactionView(core.backend);
  }

  async read(path: string): Promise<string | undefined> {
    this.assertActive();
    validatedPath(this.core, this.origin, this.id, 'read', path);
    const value = await this.view.read(path);
    this.core.snoop(this.origin, this.id, 'read', path, value, value === undefined ? 'ENOENT' : 'OK');
    return value;
  }

  async readOrThrow(path: string): Promise<string> {
    const value = await this.read(path);
    if (value === undefined) throw notFound(path);
    return value;
  }

  async exists(path: string): Promise<boolean> {
    this.assertActive();
    validatedPath(this.core, this.origin, this.id, 'exists', path);
    const found = await this.view.exists(path);
    this.core.snoop(this.origin, this.id, 'exists', path, String(found), found ? 'OK' : 'ENOENT');
    return found;
  }

  async list(path: string): Promise<string[] | undefined> {
    this.assertActive();
    validatedPath(this.core, this.origin, this.id, 'list', path);
    const names = await this.view.list(path);
    this.core.snoop(this.origin, this.id, 'list', path, names?.join(' '), names === undefined ? 'ENOENT' : 'OK');
    return names;
  }

  write(path: string, value: string): Promise<void> {
    try {
      this.check('write', path, () => {
        checkMutablePath(path, 'write');
        checkValue(this.core, path, value);
      });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.view.write(path, value);
    this.core.snoop(this.origin, this.id, 'write', path, value, 'OK');
    return Promise.resolve();
  }

  mkdir(path: string): Promise<void> {
    try {
      this.check('mkdir', path, () => assertValidPath(path));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.view.mkdir(path);
    this.core.snoop(this.origin, this.id, 'mkdir', path, undefined, 'OK');
    return Promise.resolve();
  }

  async rm(path: string): Promise<boolean> {
    this.check('rm', path, () => checkMutablePath(path, 'remove'));
    const existed = await this.view.rm(path);
    this.core.snoop(this.origin, this.id, 'rm', path, undefined, existed ? 'OK' : 'ENOENT');
    return existed;
  }

  onCommit(callback: (revision: number, changes: readonly StoreChange[]) => void): void {
    this.assertActive();
    this.commitCallbacks.push(callback);
  }

  /** Ends the transaction's use by its function and hands over what to commit. */
  finish(): ReturnType<TransactionView['commitPlan']> {
    this.finished = true;
    return this.view.commitPlan();
  }

  runCommitCallbacks(revision: number, changes: readonly StoreChange[]): void {
    for (const callback of this.commitCallbacks) {
      try {
        callback(revision, changes);
      } catch (err) {
        this.core.reportListenerError(err);
      }
    }
  }

  private check(op: SnoopOp, path: unknown, validate: () => void): void {
    this.assertActive();
    validated(this.core, this.origin, this.id, op, path, validate);
  }

  private assertActive(): void {
    this.core.assertOpen();
    if (this.finished) {
      throw new VirtkitError('internal', `transaction ${this.id} is already finished: use the transaction only inside its function`);
    }
  }
}

/** A backend read whose storage failure (an I/O error) surfaces as `store.unavailable`. */
async function readingBackend<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw asStoreUnavailable(err, 'be read');
  }
}

function notFound(path: string): VirtkitError {
  return new VirtkitError('store.not-found', `no such store path: ${path}`, { path });
}
