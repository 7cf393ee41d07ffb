/**
 * Group commit: commits that arrive while the event loop is busy wait for its next turn and
 * are then written together, as one SQLite transaction and so one fsync, instead of one fsync
 * each. Durability is unchanged: every caller's promise settles only after the COMMIT that
 * covers its write has returned (with synchronous=FULL, after the WAL was synced). A crash
 * before that COMMIT loses the whole group, and no caller of the group was told it committed.
 *
 * Sequential callers pay one event-loop turn (microseconds) and get one fsync each, as before;
 * concurrent callers (50 clients defining at once) share one.
 */
import { setImmediate } from 'node:timers';

export interface GroupEntry<Request, Result> {
  readonly request: Request;
  resolve(result: Result): void;
  reject(err: unknown): void;
}

/** Most commits written in one group: bounds how long one fsync holds the event loop. */
export const MaxGroupSize = 256;

export class CommitGroupQueue<Request, Result> {
  private pending: Array<GroupEntry<Request, Result>> = [];
  private scheduled = false;
  /** Groups written so far, and commits in them (tests and the bench read these). */
  groups = 0;
  grouped = 0;

  /** `flush` writes a group and settles every entry of it, each exactly once. */
  constructor(private readonly flush: (entries: ReadonlyArray<GroupEntry<Request, Result>>) => void) {}

  enqueue(request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.pending.push({ request, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate from node:timers, not the global one: fake timers in tests must not hold commits.
        setImmediate(() => this.drain());
      }
    });
  }

  /** Writes everything queued now (close calls it so no caller is left waiting). */
  drain(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const group = this.pending.splice(0, MaxGroupSize);
      this.groups++;
      this.grouped += group.length;
      try {
        this.flush(group);
      } catch (err) {
        // flush settles its entries itself; this is a last resort so none is left hanging.
        for (const e of group) e.reject(err);
      }
    }
  }

  get size(): number {
    return this.pending.length;
  }
}
