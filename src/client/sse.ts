/**
 * A small server-sent events reader: yields `{ id, data }` per message. Bounded: a message
 * larger than `maxMessageBytes` ends the stream with a typed error instead of growing forever.
 */
import type { Readable } from 'node:stream';
import { VirtkitError } from '../util/errors.js';

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

export async function* readSse(stream: Readable, maxMessageBytes = 1 << 20): AsyncGenerator<SseMessage> {
  let buffer = '';
  let msg: { id?: string; event?: string; data: string[] } = { data: [] };
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    buffer += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (msg.data.length > 0) {
          const out: SseMessage = { data: msg.data.join('\n') };
          if (msg.id !== undefined) out.id = msg.id;
          if (msg.event !== undefined) out.event = msg.event;
          yield out;
        }
        msg = { data: [] };
        size = 0;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      size += value.length;
      if (size > maxMessageBytes) throw new VirtkitError('request.too-large', `event stream message over ${maxMessageBytes} bytes`);
      if (field === 'data') msg.data.push(value);
      else if (field === 'id') msg.id = value;
      else if (field === 'event') msg.event = value;
    }
    if (buffer.length > maxMessageBytes) throw new VirtkitError('request.too-large', `event stream line over ${maxMessageBytes} bytes`);
  }
}
