/**
 * The change feed of a backend that can read its change log at once but is not told when
 * another writer commits (SQLite: another process, or another connection in this one).
 * The backend hands over its own commits as they happen, so its own followers hear them
 * before the commit resolves. While anyone follows, a timer asks the backend every
 * `intervalMs` whether someone else committed (for SQLite one `PRAGMA data_version`) and,
 * if so, reads what they committed from the log. Nobody following: no timer, no cost.
 *
 * Each follower has its own cursor (the last revision it was handed), so a follower gets
 * every change after its starting point exactly once, in revision order, whatever mix of
 * own commits and polled ones produced them.
 */
import { VirtkitError } from '../util/errors.js';
import type { ChangeBatchCallback, Disposer, StoreChange } from './types.js';

/** How often, by default, a followed SQLite store looks for other writers' commits. */
export const DefaultFeedPollMs = 50;
/** Changes read from the log per step of a catch-up. */
const CatchUpBatch = 1000;

/** What the feed needs from its backend. Every method is synchronous and cheap when nothing changed. */
export interface PolledFeedSource {
  /** The last committed revision known (other writers' commits included once noticed). */
  readonly revision: number;
  /** Revisions at or below this one have left the log. */
  readonly compactedRevision: number;
  /** Picks up other writers' commits, if any (moving `revision`): true when there were some. */
  noticeOtherWriters(): boolean;
  /** At most `limit` logged changes after `revision`, oldest first. */
  readLog(revision: number, limit: number): StoreChange[];
}

interface Follower {
  /** The last revision handed to this follower. */
  cursor: number;
  readonly onChanges: ChangeBatchCallback;
  readonly onError: (err: unknown) => void;
  active: boolean;
}

export class PolledChangeFeed {
  private readonly followers = new Set<Follower>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly source: PolledFeedSource, private readonly intervalMs = DefaultFeedPollMs) {}

  /** How many subscriptions are open. */
  get followerCount(): number {
    return this.followers.size;
  }

  /** Whether the poll timer runs (exactly while someone follows). */
  get polling(): boolean {
    return this.timer !== undefined;
  }

  subscribe(after: number, onChanges: ChangeBatchCallback, onError: (err: unknown) => void): Disposer {
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new VirtkitError('argument.invalid', `a revision is a non-negative integer, got ${String(after)}`, { revision: after });
    }
    const follower: Follower = { cursor: after, onChanges, onError, active: true };
    this.followers.add(follower);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.poll(), this.intervalMs);
      // Following the store is no reason to keep the process alive.
      this.timer.unref();
    }
    // History first, but never from inside subscribe: the caller has not got its disposer yet.
    if (after < this.source.revision) queueMicrotask(() => this.catchUp(follower));
    return () => this.remove(follower);
  }

  /** The backend committed `changes` (consecutive revisions, the last one its revision now). */
  committed(changes: readonly StoreChange[]): void {
    if (this.followers.size === 0 || changes.length === 0) return;
    const first = changes[0]!.revision;
    // A Set iterates safely while followers leave (or join, with nothing to hand them).
    for (const follower of this.followers) {
      // The usual case hands over what the commit made, without reading it back; a
      // follower behind that (others committed meanwhile) reads the log up to it.
      if (follower.cursor === first - 1) this.hand(follower, changes);
      else this.catchUp(follower);
    }
  }

  /** One look for other writers' commits; the timer calls it, tests may too. */
  poll(): void {
    try {
      this.source.noticeOtherWriters();
    } catch (err) {
      // The store cannot be read: no follower can be promised a gap-free feed any more.
      for (const follower of [...this.followers]) this.fail(follower, err);
      return;
    }
    // Not only when this poll noticed something: a read may have noticed it first (and
    // moved the source's revision), and the followers still have to be told.
    for (const follower of [...this.followers]) this.catchUp(follower);
  }

  /** Ends every subscription silently (the backend is closing). */
  close(): void {
    for (const follower of this.followers) follower.active = false;
    this.followers.clear();
    this.stopTimer();
  }

  private catchUp(follower: Follower): void {
    try {
      while (follower.active && follower.cursor < this.source.revision) {
        if (follower.cursor < this.source.compactedRevision) {
          this.fail(follower, compactedError(follower.cursor, this.source.compactedRevision));
          return;
        }
        const batch = this.source.readLog(follower.cursor, CatchUpBatch);
        if (batch.length === 0) return;
        this.hand(follower, batch);
      }
    } catch (err) {
      this.fail(follower, err);
    }
  }

  private hand(follower: Follower, batch: readonly StoreChange[]): void {
    if (!follower.active) return;
    const fresh = batch[0]!.revision > follower.cursor ? batch : batch.filter((c) => c.revision > follower.cursor);
    if (fresh.length === 0) return;
    // Advanced before the call: a follower that commits from its callback re-enters here.
    follower.cursor = fresh[fresh.length - 1]!.revision;
    try {
      follower.onChanges(fresh);
    } catch (err) {
      // A follower's bug must not undo or fail the commit that fed it.
      queueMicrotask(() => { throw err; });
    }
  }

  private fail(follower: Follower, err: unknown): void {
    if (!follower.active) return;
    this.remove(follower);
    try {
      follower.onError(err);
    } catch (thrown) {
      queueMicrotask(() => { throw thrown; });
    }
  }

  private remove(follower: Follower): void {
    follower.active = false;
    this.followers.delete(follower);
    if (this.followers.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** `store.compacted` for a reader whose position `revision` fell out of the log. */
export function compactedError(revision: number, compacted: number): VirtkitError {
  return new VirtkitError('store.compacted',
    `changes after revision ${revision} are no longer kept (the log starts at ${compacted + 1}): read the current state again`,
    { revision, oldest: compacted + 1 });
}
