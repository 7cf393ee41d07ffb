/**
 * Domain events over the event WebSocket, for both client entries: replayed from a cursor,
 * then followed; when the daemon goes away (restart, crash) or drops a reader that fell
 * behind, the iterator reconnects and resumes after the last event it yielded, so nothing
 * is missed and nothing is repeated.
 */
import { StreamCloseCodes } from '../api/wire/index.js';
import type { DomainEvent } from '../api/index.js';
import { isVirtkitError } from '../util/errors.js';
import { decodeEventMessage, eventsPath } from './protocol.js';
import { closeSocket, type CloseInfo, type WebSocketLike } from './websocket.js';

export interface EventsOptions {
  /** Replay events after this sequence number first (0 = from the beginning of the store's history). */
  since?: number;
  /** Keep following live events (default true); false ends after the replay. */
  follow?: boolean;
  signal?: AbortSignal;
  /** Delay between reconnect attempts while the daemon is away. */
  retryMs?: number;
}

/** An open stream socket and its messages (listened to from before it opened). */
export interface OpenedSocket {
  ws: WebSocketLike;
  messages: AsyncGenerator<string | Uint8Array, CloseInfo>;
}

/**
 * Opens the stream at `path` (path and query); rejects with the daemon's typed error when it
 * refuses, `connection.failed` when it cannot be reached.
 */
export type StreamOpener = (path: string) => Promise<OpenedSocket>;

export async function* followEventStream(open: StreamOpener, opts: EventsOptions = {}): AsyncGenerator<DomainEvent> {
  let cursor = opts.since;
  const follow = opts.follow ?? true;
  const retryMs = opts.retryMs ?? 200;
  for (;;) {
    if (opts.signal?.aborted) return;
    let opened: OpenedSocket;
    try {
      opened = await open(eventsPath(cursor, follow));
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (!isVirtkitError(err, 'connection.failed')) throw err;
      await sleep(retryMs, opts.signal);
      continue;
    }
    const { ws, messages } = opened;
    const onAbort = (): void => closeSocket(ws);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let close: CloseInfo;
    try {
      for (;;) {
        const next = await messages.next();
        if (next.done) {
          close = next.value;
          break;
        }
        if (typeof next.value !== 'string') continue;
        const msg = decodeEventMessage(next.value);
        // The daemon opens every stream with the revision it starts from, so a client that
        // asked for "live only" still has a cursor to resume from after a reconnect.
        if (msg.kind === 'cursor') cursor ??= msg.seq;
        else if (msg.kind === 'error') throw msg.error;
        else if (cursor === undefined || msg.event.seq > cursor) {
          cursor = msg.event.seq;
          yield msg.event;
        }
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await messages.return({ code: 1000, reason: '' });
    }
    if (opts.signal?.aborted) return;
    if (close.code === StreamCloseCodes.done && !follow) return;
    // Going away, a dropped slow reader, a connection that broke: come back and resume.
    await sleep(retryMs, opts.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => { clearTimeout(t); resolve(); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
