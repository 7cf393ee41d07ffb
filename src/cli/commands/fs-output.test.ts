import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { StreamedOutput } from './fs-output.js';

function sink(): { stream: PassThrough; text: () => string; writes: () => number } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8'), writes: () => chunks.length };
}

describe('StreamedOutput', () => {
  test('asks for a flush once half its buffer is used, and writes what it holds then, before the listing ends', async () => {
    const s = sink();
    const out = new StreamedOutput(s.stream);
    let lines = 0;
    while (!out.write(`entry-${lines++}\n`));
    expect(s.writes()).toBe(0);
    await out.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(s.writes()).toBe(1);
    expect(s.text().split('\n')).toHaveLength(lines + 1);
  });

  test('keeps text and bytes exact across buffer boundaries, long and multi-byte lines included', async () => {
    const s = sink();
    const out = new StreamedOutput(s.stream);
    const expected: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const line = i % 500 === 0 ? `${'é'.repeat(30_000)}\n` : `caf\u00e9-${i}/\u{1f600}\n`;
      expected.push(line);
      if (out.write(line)) await out.flush();
    }
    out.writeBytes(Buffer.from([0xff, 0x00]));
    await out.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(s.text()).toBe(expected.join('') + Buffer.from([0xff, 0x00]).toString('utf8'));
  });
});
