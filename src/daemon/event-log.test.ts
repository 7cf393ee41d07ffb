/**
 * Domain events across two connections on one store file: events committed by one writer
 * reach a follower of the other through the store's change feed, in order, resumable from
 * a cursor, with `store.compacted` when the cursor fell off the log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../api/schemas.js';
import { SqliteBackend, StoreFileName, createStore, openStore, type Store } from '../store/index.js';
import { isVirtkitError } from '../util/errors.js';
import { followEvents, recordEvent, replayEvents } from './event-log.js';

const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The daemon's store and a second connection on the same file, as another process opens it. */
function twoConnections(historyLimit?: number): { writer: Store; reader: Store; readerBackend: SqliteBackend } {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-events-'));
  dirs.push(dir);
  const options = historyLimit === undefined ? {} : { historyLimit };
  const writer = openStore(dir, { synchronous: 'normal', ...options });
  const readerBackend = new SqliteBackend(join(dir, StoreFileName), { shared: true, ...options });
  const reader = createStore(readerBackend);
  stores.push(writer, reader);
  return { writer, reader, readerBackend };
}

const web1 = { name: 'web1', uuid: '11111111-1111-4111-8111-111111111111' };
const web2 = { name: 'web2', uuid: '22222222-2222-4222-8222-222222222222' };

const brief = (events: readonly DomainEvent[]) => events.map((e) => `${e.seq} ${e.type} ${e.domain}`);

describe('events through the change feed', () => {
  it('a follower on one connection hears events committed on the other, in seq order', async () => {
    const { writer, reader, readerBackend } = twoConnections();
    const heard: DomainEvent[] = [];
    const stop = followEvents(reader, undefined, (ev) => heard.push(ev), (err) => { throw err; });
    await writer.transaction(async (tx) => {
      await tx.write('/domain/web1/state', 'running');
      await recordEvent(tx, 'started', web1);
    });
    await writer.transaction(async (tx) => recordEvent(tx, 'defined', web2));
    await writer.transaction(async (tx) => recordEvent(tx, 'stopped', web1, 'destroyed'));
    readerBackend.pollFeed();
    expect(brief(heard)).toEqual(['2 started web1', '3 defined web2', '4 stopped web1']);
    expect(heard[2]!.reason).toBe('destroyed');
    stop();
    expect(readerBackend.feedPolling).toBe(false);
  });

  it('resumes from a cursor: replay, then live, without gap or duplicate; replayEvents stops at the present', async () => {
    const { writer, reader, readerBackend } = twoConnections();
    await writer.transaction(async (tx) => recordEvent(tx, 'defined', web1));
    const cursor = writer.revision;
    await writer.transaction(async (tx) => recordEvent(tx, 'started', web1));
    await writer.transaction(async (tx) => recordEvent(tx, 'defined', web2));

    const replayed: DomainEvent[] = [];
    await replayEvents(reader, cursor, (ev) => replayed.push(ev));
    expect(brief(replayed)).toEqual(['2 started web1', '3 defined web2']);

    const heard: DomainEvent[] = [];
    followEvents(reader, cursor, (ev) => heard.push(ev), (err) => { throw err; });
    await writer.transaction(async (tx) => recordEvent(tx, 'suspended', web1));  // before the replay resolves
    await new Promise((resolve) => setImmediate(resolve));
    readerBackend.pollFeed();
    await writer.transaction(async (tx) => recordEvent(tx, 'resumed', web1));
    readerBackend.pollFeed();
    expect(brief(heard)).toEqual(['2 started web1', '3 defined web2', '4 suspended web1', '5 resumed web1']);
  });

  it('reports store.compacted for a cursor older than the log', async () => {
    const { writer, reader } = twoConnections(10);
    for (let i = 0; i < 1020; i++) await writer.transaction(async (tx) => recordEvent(tx, 'edited', web1));
    const err = await new Promise<unknown>((resolve) => {
      followEvents(reader, 1, () => resolve('unexpected event'), resolve);
    });
    expect(isVirtkitError(err, 'store.compacted'), String(err)).toBe(true);
  });
});
