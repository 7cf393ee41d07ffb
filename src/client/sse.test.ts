import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { readSse, type SseMessage } from './sse.js';

async function collect(chunks: string[], max?: number): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const m of readSse(Readable.from(chunks.map((c) => Buffer.from(c))), max)) out.push(m);
  return out;
}

describe('readSse', () => {
  it('parses ids, event names, multi-line data and ignores comments', async () => {
    const text = ': hello\n\nevent: cursor\ndata: {"seq":3}\n\nid: 4\ndata: a\ndata: b\n\r\n';
    expect(await collect([text])).toEqual([{ event: 'cursor', data: '{"seq":3}' }, { id: '4', data: 'a\nb' }]);
  });

  it('gives the same messages however the stream is cut (1,000 random splits)', async () => {
    const messages = Array.from({ length: 20 }, (_, i) => `id: ${i}\ndata: ${JSON.stringify({ n: i, s: 'x'.repeat(i) })}\n\n`).join('');
    const expected = await collect([messages]);
    let seed = 11;
    for (let round = 0; round < 1000; round++) {
      const chunks: string[] = [];
      let pos = 0;
      while (pos < messages.length) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const len = 1 + (seed % 40);
        chunks.push(messages.slice(pos, pos + len));
        pos += len;
      }
      expect(await collect(chunks)).toEqual(expected);
    }
  });

  it('ends with a typed error instead of buffering an endless line', async () => {
    const endless = Array.from({ length: 100 }, () => 'y'.repeat(1000));
    await expect(collect(['data: ', ...endless], 10_000)).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'request.too-large'));
  });
});
