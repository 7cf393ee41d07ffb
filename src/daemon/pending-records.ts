/**
 * What the daemon observed but the store could not record yet. A QEMU that exited, a destroy
 * that was carried out, a guest that paused or rebooted by itself: these happened whatever the
 * store says, so when the store refuses the commit (`store.unavailable`: disk full, I/O error,
 * read-only) the record is kept here, in memory and in order, and written as soon as the store
 * accepts writes again: on a timer with backoff, and before any other write of the manager
 * (the manager's `tx` flushes first, so nothing it records can overtake an older observation).
 *
 * Meanwhile reads do not lie: `overlay(store)` is a store whose reads answer the paths a
 * pending record will write with the values it will write (a domain whose QEMU exited reads as
 * shutoff even while the store still says running). Transactions go to the store itself.
 *
 * Nothing here kills or stops anything: a store that cannot be written only delays records.
 * docs/reliability.md ("A full or failing disk under the state store") states the promise.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Disposer, Origin, Store, Transaction, WatchCallback, WatchOptions } from '../store/index.js';
import { storageFailureOf } from '../store/index.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';

export interface Observation {
  /** The domain it concerns. */
  readonly domain: string;
  /** What happened, as logs and `store.unavailable`'s `data.pending` name it: `demo stopped (destroyed)`. */
  readonly what: string;
  /**
   * Store paths the record sets (a string) or removes (null), as reads should answer them
   * while it waits. Only what callers read matters (the status, the live definition).
   */
  readonly overlay?: Readonly<Record<string, string | null>>;
  /** Writes the record in a transaction; reads the current state first, as any transaction. */
  readonly write: (tx: Transaction) => Promise<void>;
}

export interface PendingRecordsOptions {
  /** Commits a record's transaction (with the manager's conflict retries), as the daemon itself. */
  commit: (write: (tx: Transaction) => Promise<void>) => Promise<void>;
  log: FastifyBaseLogger;
  /** First wait before writing pending records again, doubled after each refusal up to `maxRetryMs`. */
  firstRetryMs?: number;
  maxRetryMs?: number;
}

export const DefaultFirstRetryMs = 250;
export const DefaultMaxRetryMs = 10_000;

export class PendingRecords {
  private readonly queue: Observation[] = [];
  /** Drains run one after the other, so records are written in the order they were observed. */
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private closed = false;
  private readonly firstRetryMs: number;
  private readonly maxRetryMs: number;

  constructor(private readonly opts: PendingRecordsOptions) {
    this.firstRetryMs = opts.firstRetryMs ?? DefaultFirstRetryMs;
    this.maxRetryMs = opts.maxRetryMs ?? DefaultMaxRetryMs;
    this.retryMs = this.firstRetryMs;
  }

  /** How many records wait for the store. */
  get size(): number {
    return this.queue.length;
  }

  /** What waits, oldest first (`demo stopped (destroyed)`). */
  describe(): string[] {
    return this.queue.map((o) => o.what);
  }

  /**
   * Records `observation` after every older pending one. Resolves true once written (or
   * dropped as unwritable for another reason than the storage, logged as an error), false when
   * the store refused it and it waits here (logged); never throws `store.unavailable`.
   */
  async record(observation: Observation): Promise<boolean> {
    this.queue.push(observation);
    try {
      await this.flush();
      return true;
    } catch (err) {
      if (!isVirtkitError(err, 'store.unavailable')) throw err;
      this.opts.log.warn({ domain: observation.domain, what: observation.what, pending: this.describe(), err: err.message },
        'the store cannot record what happened; kept in memory until it accepts writes');
      return false;
    }
  }

  /**
   * Writes every pending record, oldest first. Resolves when none is left; throws
   * `store.unavailable` (with `data.pending`) when the store still refuses them.
   */
  flush(): Promise<void> {
    const run = this.chain.then(() => this.drain());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** `err` with `data.pending` naming what waits, when it is `store.unavailable` and something does. */
  withPending(err: unknown): unknown {
    if (!isVirtkitError(err, 'store.unavailable') || this.queue.length === 0 || err.data['pending'] !== undefined) return err;
    const pending = this.describe();
    return new VirtkitError('store.unavailable', `${err.message}; not recorded yet: ${pending.join(', ')}`,
      { ...err.data, pending }, { cause: err });
  }

  /** What reads of `path` answer while records wait: the newest pending value, null for removed, undefined when none touches it. */
  overlaid(path: string): string | null | undefined {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const overlay = this.queue[i]!.overlay;
      if (overlay !== undefined && Object.hasOwn(overlay, path)) return overlay[path] ?? null;
    }
    return undefined;
  }

  /** `store` whose reads see the pending records (see the file comment). */
  overlay(store: Store): Store {
    return new OverlayStore(store, this);
  }

  /** Stops retrying (daemon stop). What is still pending is lost with the process, as any memory. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async drain(): Promise<void> {
    let wrote = 0;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      try {
        await this.opts.commit(head.write);
      } catch (err) {
        if (storageFailureOf(err) !== undefined) {
          this.retryLater();
          throw this.withPending(err);
        }
        // Not the storage: this record can never be written (a bug, or conflicts that never
        // ended). Dropping it must not keep the ones behind it from being written.
        this.opts.log.error({ domain: head.domain, what: head.what, err: errorMessage(err) }, 'recording what happened failed');
      }
      this.queue.shift();
      wrote++;
    }
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.retryMs !== this.firstRetryMs) this.opts.log.info({ wrote }, 'the store accepts writes again; pending records written');
    this.retryMs = this.firstRetryMs;
  }

  private retryLater(): void {
    if (this.closed || this.timer !== undefined) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.maxRetryMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A refusal schedules the next try itself; nothing else to do with it here.
      this.flush().catch(() => undefined);
    }, wait);
    // Pending records alone do not keep a stopping process alive.
    this.timer.unref();
  }
}

/** A store whose reads see pending records; everything else is the store's own. */
class OverlayStore implements Store {
  constructor(private readonly inner: Store, private readonly records: PendingRecords) {}

  get revision(): number { return this.inner.revision; }
  get origin(): Origin { return this.inner.origin; }

  as(origin: Origin): Store {
    return new OverlayStore(this.inner.as(origin), this.records);
  }

  // Not async: with nothing pending (nearly always) a read is the store's own promise, with no
  // extra promise and turn of the microtask queue on the API's hottest path.
  read(path: string): Promise<string | undefined> {
    if (this.records.size > 0) {
      const value = this.records.overlaid(path);
      if (value !== undefined) return Promise.resolve(value ?? undefined);
    }
    return this.inner.read(path);
  }

  async readOrThrow(path: string): Promise<string> {
    const value = await this.read(path);
    if (value === undefined) throw new VirtkitError('store.not-found', `no such store path: ${path}`, { path });
    return value;
  }

  async exists(path: string): Promise<boolean> {
    if (this.records.size > 0) {
      const value = this.records.overlaid(path);
      if (value !== undefined) return value !== null;
    }
    return this.inner.exists(path);
  }

  list(path: string): Promise<string[] | undefined> { return this.inner.list(path); }
  write(path: string, value: string): Promise<void> { return this.inner.write(path, value); }
  mkdir(path: string): Promise<void> { return this.inner.mkdir(path); }
  rm(path: string): Promise<boolean> { return this.inner.rm(path); }
  transaction<T>(fn: (tx: Transaction) => T | Promise<T>): Promise<T> { return this.inner.transaction(fn); }
  watch(path: string, callback: WatchCallback, options?: WatchOptions): Disposer { return this.inner.watch(path, callback, options); }
  changesSince(...args: Parameters<Store['changesSince']>): ReturnType<Store['changesSince']> { return this.inner.changesSince(...args); }
  onOperation(...args: Parameters<Store['onOperation']>): Disposer { return this.inner.onOperation(...args); }
  close(): Promise<void> { return this.inner.close(); }
}
