/**
 * Domain events live in the store: every event is one write of `/event` inside the transaction
 * that made the state change it reports, so the event and the change commit together and the
 * event's sequence number is the store revision of that write. Replaying `since` a cursor is
 * the store's own change log (a watch with `since`), which survives daemon restarts.
 *
 * Following reads the store's change feed (a watch is fed by the backend's `onChanges`), not
 * this process's commits: an event committed by another writer of the same store (another
 * connection, later another host of an etcd cluster) reaches followers the same way, in
 * revision order.
 */
import type { DomainEvent, EventType } from '../api/index.js';
import type { Disposer, Store, StoreChange, Transaction } from '../store/index.js';

export const EventPath = '/event';

export type EventPayload = Omit<DomainEvent, 'seq' | 'time'>;

export async function recordEvent(tx: Transaction, type: EventType, domain: { name: string; uuid: string }, reason?: string): Promise<void> {
  const body: Omit<DomainEvent, 'seq'> = { type, domain: domain.name, uuid: domain.uuid, time: new Date().toISOString() };
  if (reason !== undefined) body.reason = reason;
  await tx.write(EventPath, JSON.stringify(body));
}

export function eventFromChange(change: StoreChange): DomainEvent | undefined {
  if (change.op !== 'write' || change.path !== EventPath || change.value === undefined) return undefined;
  try {
    return { ...(JSON.parse(change.value) as Omit<DomainEvent, 'seq'>), seq: change.revision };
  } catch {
    return undefined;
  }
}

/**
 * Calls `onEvent` for every event after `since` (replayed from the store's log), then for
 * each new one as the store's change feed delivers it, each once and in `seq` order.
 * `since` undefined: live events only. `onError` gets `store.compacted` when `since` is
 * older than the log, or when the feed fell behind it; following ends then.
 */
export function followEvents(store: Store, since: number | undefined, onEvent: (ev: DomainEvent) => void,
  onError: (err: unknown) => void): Disposer {
  return store.watch(EventPath, (change) => {
    const ev = eventFromChange(change);
    if (ev) onEvent(ev);
  }, since === undefined ? { onError } : { since, onError });
}

/** Events after `since` up to the store's current revision, oldest first (for `follow=false`). */
export async function replayEvents(store: Store, since: number, onEvent: (ev: DomainEvent) => void): Promise<void> {
  const until = store.revision;
  let from = since;
  for (;;) {
    const batch = await store.changesSince(from, { prefix: EventPath, limit: 1000 });
    for (const change of batch) {
      if (change.revision > until) return;
      const ev = eventFromChange(change);
      if (ev) onEvent(ev);
    }
    if (batch.length < 1000) return;
    from = batch[batch.length - 1]!.revision;
  }
}
