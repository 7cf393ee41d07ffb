/**
 * Live QEMU trace events (docs/observability.md, "trace"). A trace resolves its patterns with
 * `trace-event-get-state`, switches the events on with `trace-event-set-state`, follows the
 * guest's qemu.log (QEMU's `log` trace backend writes there: its stderr) and hands each
 * record, typed per the event's declaration, to its subscriber. Events are reference-counted
 * per guest: two traces of one event share it, and it goes off when the last one ends; an
 * event that was on before any trace (the command line's `-trace qemu_system_shutdown_request`)
 * is never switched off. All switching of one guest runs in order on one chain, so counts and
 * QEMU's states cannot cross.
 */
import type { TraceEventState, TraceRecord } from '../api/index.js';
import {
  followLog, hostTraceCatalog, parseTraceLine, runPaths, type GuestHandle, type LogFollower, type TraceEventDecl,
} from '../qemu/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';

type QemuState = TraceEventState['state'];

interface QueriedEvent {
  name: string;
  state: QemuState;
}

/** Most events one trace may switch on (a `*` would otherwise turn on thousands). */
export const MaxTracedEvents = 512;

function isPattern(text: string): boolean {
  return /[*?]/.test(text);
}

const EventNamePattern = /^[A-Za-z0-9_*?]{1,256}$/;

/** What `trace-event-get-state` says of `pattern`: typed errors for no match and unknown names. */
export async function queryEvents(handle: GuestHandle, pattern: string): Promise<QueriedEvent[]> {
  if (!EventNamePattern.test(pattern)) {
    throw new VirtkitError('argument.invalid', `trace event pattern ${JSON.stringify(pattern)}: expected an event name or a glob of letters, digits, _ * ?`, { pattern });
  }
  let list: unknown;
  try {
    list = await handle.monitor({ qmp: { execute: 'trace-event-get-state', arguments: { name: pattern } } });
  } catch (err) {
    if (isVirtkitError(err, 'qmp.command-failed') && /unknown event/.test(String(err.data.desc ?? err.message))) {
      throw new VirtkitError('trace.unknown-event', `this QEMU has no trace event "${pattern}" (virtkit trace NAME --list shows them)`, { event: pattern });
    }
    throw err;
  }
  const events = (Array.isArray(list) ? list : []) as { name: string; state: QemuState }[];
  const available = events.filter((e) => e.state !== 'unavailable');
  if (!isPattern(pattern) && events.length > 0 && available.length === 0) {
    throw new VirtkitError('trace.unknown-event', `trace event "${pattern}" was left out of this QEMU build`, { event: pattern });
  }
  if (isPattern(pattern) && available.length === 0) {
    throw new VirtkitError('trace.no-match', `trace event pattern "${pattern}" matches no event of this QEMU`, { pattern });
  }
  return available.map((e) => ({ name: e.name, state: e.state }));
}

/** Where a trace's records and its end go. */
export interface TraceSink {
  record(rec: TraceRecord): void;
  /** The sink's reader lags (its buffer is full): the log is not read further until it catches up. */
  congested?(): boolean;
}

export interface TraceSession {
  /** The events this trace holds on. */
  readonly events: readonly string[];
  /** Ends the trace: its events go off unless another trace holds them. Idempotent. */
  close(): Promise<void>;
}

/** One guest's traces: counts, the events on before any trace, the log follower. */
class GuestTraces {
  readonly refs = new Map<string, number>();
  /** Events QEMU had on when their first trace came: left on at the end. */
  readonly pinned = new Set<string>();
  readonly sinks = new Map<TraceSink, ReadonlySet<string>>();
  /**
   * The log follower, held as its start: two traces starting at once must share one start,
   * not each open a follower (the second would leak, delivering every record twice).
   */
  private follower: Promise<LogFollower> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** vCPU index by thread id, for records that carry the thread (`-msg timestamp=on`). */
  private vcpus = new Map<number, number>();

  constructor(readonly handle: GuestHandle, private readonly catalog: ReadonlyMap<string, TraceEventDecl>) {}

  /** Runs `op` after every earlier switching of this guest. */
  serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(op, op);
    this.chain = run.catch(() => undefined);
    return run;
  }

  async setState(name: string, enable: boolean): Promise<void> {
    await this.handle.monitor({ qmp: { execute: 'trace-event-set-state', arguments: { name, enable } } });
  }

  async follow(): Promise<void> {
    this.follower ??= this.startFollower();
    const starting = this.follower;
    try {
      await starting;
    } catch (err) {
      if (this.follower === starting) this.follower = undefined;
      throw err;
    }
  }

  private async startFollower(): Promise<LogFollower> {
    const cpus = await this.handle.monitor({ qmp: { execute: 'query-cpus-fast' } }).catch(() => []);
    for (const c of (Array.isArray(cpus) ? cpus : []) as { 'cpu-index': number; 'thread-id': number }[]) this.vcpus.set(c['thread-id'], c['cpu-index']);
    return followLog(runPaths(this.handle.runDir).qemuLog, (lines) => this.dispatch(lines), {
      holdWhile: () => { for (const sink of this.sinks.keys()) if (sink.congested?.()) return true; return false; },
    });
  }

  /** Whether a log follower is open or opening (tests: none once the last trace ended). */
  get following(): boolean {
    return this.follower !== undefined;
  }

  unfollowIfIdle(): void {
    if (this.sinks.size > 0) return;
    this.stopFollowing();
  }

  /** Closes the follower (once it has started, if it is starting). */
  stopFollowing(): void {
    const f = this.follower;
    if (!f) return;
    this.follower = undefined;
    void f.then((follower) => follower.close(), () => undefined);
  }

  private dispatch(lines: string[]): void {
    const known = new Set(this.refs.keys());
    const now = new Date();
    for (const line of lines) {
      const rec = parseTraceLine(line, this.catalog, known, now);
      if (!rec) continue;
      if (rec.tid !== undefined && this.vcpus.has(rec.tid)) rec.vcpu = this.vcpus.get(rec.tid)!;
      for (const [sink, events] of this.sinks) if (events.has(rec.event)) sink.record(rec);
    }
  }
}

/** Every guest's traces in this daemon. */
export class TraceRegistry {
  private readonly guests = new Map<GuestHandle, GuestTraces>();

  constructor(private readonly catalogPath?: string) {}

  /** How many log followers are open or opening, over every guest (one per traced guest at most). */
  followers(): number {
    let n = 0;
    for (const g of this.guests.values()) if (g.following) n += 1;
    return n;
  }

  /** The daemon stops: every follower closes, so nothing keeps the process alive. */
  closeAll(): void {
    for (const g of this.guests.values()) { g.sinks.clear(); g.stopFollowing(); }
  }

  /** How many traces hold `event` of this guest. */
  tracers(handle: GuestHandle, event: string): number {
    return this.guests.get(handle)?.refs.get(event) ?? 0;
  }

  async list(handle: GuestHandle, pattern: string): Promise<TraceEventState[]> {
    const events = await queryEvents(handle, pattern).catch((err: unknown) => {
      if (isVirtkitError(err, 'trace.no-match')) return [];
      throw err;
    });
    return events.map((e) => ({ ...e, tracers: this.tracers(handle, e.name) }));
  }

  /**
   * Starts a trace of the events `patterns` name. Fails with a typed error (nothing left on)
   * when a pattern matches nothing, an event is unknown, or QEMU refuses.
   */
  async open(handle: GuestHandle, patterns: readonly string[], sink: TraceSink): Promise<TraceSession> {
    if (patterns.length === 0) throw new VirtkitError('argument.invalid', 'a trace needs at least one --event PATTERN', { path: 'event' });
    const found = new Map<string, QemuState>();
    for (const p of patterns) for (const e of await queryEvents(handle, p)) found.set(e.name, e.state);
    if (found.size > MaxTracedEvents) {
      throw new VirtkitError('argument.invalid', `the patterns match ${found.size} events; a trace takes at most ${MaxTracedEvents}`, { path: 'event', matched: found.size });
    }
    const catalog = await hostTraceCatalog(this.catalogPath);
    let g = this.guests.get(handle);
    if (!g) {
      g = new GuestTraces(handle, catalog);
      this.guests.set(handle, g);
      void handle.exited.then(() => this.guests.delete(handle));
    }
    const guest = g;
    const events = [...found.keys()].sort();
    const held: string[] = [];
    const release = (names: readonly string[]): Promise<void> => guest.serial(async () => {
      for (const name of names) {
        const n = (guest.refs.get(name) ?? 1) - 1;
        if (n > 0) { guest.refs.set(name, n); continue; }
        guest.refs.delete(name);
        if (guest.pinned.delete(name)) continue;
        await guest.setState(name, false).catch(() => undefined);
      }
    });
    try {
      await guest.serial(async () => {
        for (const name of events) {
          const n = guest.refs.get(name) ?? 0;
          if (n === 0) {
            if (found.get(name) === 'enabled') guest.pinned.add(name);
            else await guest.setState(name, true);
          }
          guest.refs.set(name, n + 1);
          held.push(name);
        }
      });
      guest.sinks.set(sink, new Set(events));
      await guest.follow();
    } catch (err) {
      guest.sinks.delete(sink);
      guest.unfollowIfIdle();
      await release(held);
      throw err;
    }
    let closed: Promise<void> | undefined;
    return {
      events,
      close: () => closed ??= (async () => {
        guest.sinks.delete(sink);
        guest.unfollowIfIdle();
        // A guest that is gone has nothing to switch off.
        if (this.guests.get(handle) === guest) await release(held);
      })(),
    };
  }
}
