import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { readMessages, whenOpen, type WebSocketLike } from './websocket.js';

type Listener = (ev: { data?: unknown; code?: number; reason?: string }) => void;

/** A WebSocket stand-in driven by the test. */
class FakeSocket implements WebSocketLike {
  binaryType = 'blob';
  readyState = 0;
  closedWith: number | undefined;
  private listeners = new Map<string, Listener[]>();
  send(): void { /* unused */ }
  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 2;
  }
  addEventListener(type: string, listener: (ev: never) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener as Listener]);
  }
  emit(type: string, ev: { data?: unknown; code?: number; reason?: string } = {}): void {
    if (type === 'open') this.readyState = 1;
    if (type === 'close') this.readyState = 3;
    for (const l of this.listeners.get(type) ?? []) l(ev);
  }
}

describe('readMessages', () => {
  it('yields text and bytes in order (whatever form the bytes come in), then returns the close', async () => {
    const ws = new FakeSocket();
    const messages = readMessages(ws);
    expect(ws.binaryType).toBe('arraybuffer');
    ws.emit('open');
    ws.emit('message', { data: 'one' });
    ws.emit('message', { data: new Uint8Array([1, 2]).buffer });
    ws.emit('message', { data: new Uint8Array([3]) });
    ws.emit('message', { data: new DataView(new Uint8Array([9, 4, 9]).buffer, 1, 1) });
    ws.emit('close', { code: 4001, reason: 'slow' });
    const got: unknown[] = [];
    let next = await messages.next();
    while (!next.done) {
      got.push(typeof next.value === 'string' ? next.value : [...next.value]);
      next = await messages.next();
    }
    expect(got).toEqual(['one', [1, 2], [3], [4]]);
    expect(next.value).toEqual({ code: 4001, reason: 'slow' });
  });

  it('waits for messages that come later, and closes the socket when the reader stops early', async () => {
    const ws = new FakeSocket();
    const messages = readMessages(ws);
    ws.emit('open');
    const pending = messages.next();
    ws.emit('message', { data: 'late' });
    expect(await pending).toEqual({ done: false, value: 'late' });
    await messages.return({ code: 1000, reason: '' });
    expect(ws.closedWith).toBe(1000);
  });
});

describe('whenOpen', () => {
  it('resolves on open', async () => {
    const ws = new FakeSocket();
    const opened = whenOpen(ws, 'ws://x/events');
    ws.emit('open');
    expect(await opened).toBe(ws);
  });

  it('rejects a socket that closes first with connection.failed, or with the refusal it is given', async () => {
    const a = new FakeSocket();
    const failed = whenOpen(a, 'ws://x/events');
    a.emit('error');
    a.emit('close', { code: 1006, reason: '' });
    await expect(failed).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'connection.failed'));

    const b = new FakeSocket();
    const refused = whenOpen(b, 'ws://x/c', async () => new Error('domain is not running'));
    b.emit('close', { code: 1006, reason: '' });
    await expect(refused).rejects.toThrow('domain is not running');
  });
});
