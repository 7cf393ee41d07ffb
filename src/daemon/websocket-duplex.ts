/**
 * The daemon's side of a stream WebSocket: sends that never wait and never buffer without
 * end, and a WebSocket as the byte Duplex the console mux takes.
 *
 * The console mux writes every chunk of guest output to every reader without waiting for
 * any of them (one slow reader must not stall the guest or the others), and an event stream
 * writes events as they commit. So a reader that stops reading would make the daemon buffer
 * forever; instead, once more than `maxBufferedBytes` wait unsent, the socket is closed with
 * `StreamCloseCodes.slowReader` and its reason says why.
 */
import { Duplex } from 'node:stream';
// Types only: the instance's own state constants are read, so ws loads with the first upgrade (streams.ts).
import type { RawData, WebSocket } from 'ws';
import { StreamCloseCodes } from '../api/index.js';

/** What one stream may keep waiting for a reader before it is dropped. */
export const DefaultMaxBufferedBytes = 1024 * 1024;

/**
 * Sends one message unless the reader is too far behind, in which case the socket is closed
 * with the slow-reader code. Returns whether the message was queued.
 */
export function sendBounded(ws: WebSocket, data: Buffer | string, maxBufferedBytes: number): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (ws.bufferedAmount + size > maxBufferedBytes) {
    ws.close(StreamCloseCodes.slowReader, `reader too slow: over ${maxBufferedBytes} bytes waiting`);
    return false;
  }
  ws.send(data, { binary: typeof data !== 'string' });
  return true;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * A WebSocket as a byte Duplex: binary frames out, any frame in (a browser terminal may send
 * text frames; their bytes are taken as they are). Ending or destroying the Duplex closes the
 * socket (1000, or 1011 after an error); the socket closing destroys the Duplex.
 */
export function websocketDuplex(ws: WebSocket, maxBufferedBytes = DefaultMaxBufferedBytes): Duplex {
  const closeSocket = (code: number, reason: string): void => {
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
  };
  const duplex = new Duplex({
    read() {
      ws.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      sendBounded(ws, chunk, maxBufferedBytes);
      callback();
    },
    final(callback) {
      closeSocket(1000, 'console closed');
      callback();
    },
    destroy(err, callback) {
      closeSocket(err ? 1011 : 1000, err ? 'console failed' : 'console closed');
      callback(err);
    },
  });
  ws.on('message', (data: RawData) => {
    if (!duplex.push(toBuffer(data))) ws.pause();
  });
  ws.on('close', () => {
    duplex.push(null);
    duplex.destroy();
  });
  ws.on('error', (err) => duplex.destroy(err));
  return duplex;
}
