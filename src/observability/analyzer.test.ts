import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlappingWrites } from '../../examples/overlapping-writes.js';
import { VirtqueueLeaks } from '../../examples/virtqueue-leaks.js';
import { isVirtkitError } from '../util/errors.js';
import { Analyzer, parseRecordLine, runAnalyzer, type TraceArgs, type TraceRecord } from './index.js';

const rec = (event: string, args: TraceArgs, time = '2026-01-01T00:00:00.000Z'): TraceRecord => ({ event, time, args });

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'vk-analyzer-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

class Recorder extends Analyzer {
  calls: string[] = [];
  override begin(): void { this.calls.push('begin'); }
  virtqueue_pop({ elem }: TraceArgs): void { this.calls.push(`pop ${String(elem)}`); }
  override catchall(event: string): void { this.calls.push(`catchall ${event}`); }
  override end(): void { this.calls.push('end'); }
}

describe('runAnalyzer', () => {
  it('calls the method named after the event with its named args, catchall for the rest, begin and end around', async () => {
    const a = await runAnalyzer(new Recorder(), [rec('virtqueue_pop', { elem: '0x1' }), rec('virtio_notify', {}), rec('constructor', {}), rec('toString', {}), rec('end', {})]);
    expect(a.calls).toEqual(['begin', 'pop 0x1', 'catchall virtio_notify', 'catchall constructor', 'catchall toString', 'catchall end', 'end']);
  });

  it('reads a recorded trace (JSON lines) and names the file and line of a bad one', async () => {
    const good = join(dir, 'good.jsonl');
    await writeFile(good, `${JSON.stringify(rec('virtqueue_pop', { elem: '0x2' }))}\n\n${JSON.stringify(rec('x', {}))}\n`);
    expect((await runAnalyzer(new Recorder(), good)).calls).toEqual(['begin', 'pop 0x2', 'catchall x', 'end']);
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, `${JSON.stringify(rec('virtqueue_pop', {}))}\n{"event":"x","time":"t","args":{"a":[1]}}\n`);
    await expect(runAnalyzer(new Recorder(), bad)).rejects.toMatchObject({ code: 'argument.invalid', data: { line: 2 } });
    await expect(runAnalyzer(new Recorder(), join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'argument.invalid' });
  });

  it('fuzz: mutated record lines parse or fail with a typed error, nothing else', () => {
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const base = JSON.stringify({ event: 'virtqueue_pop', time: '2026-01-01T00:00:00Z', tid: 3, args: { vq: '0x1', elem: '0x2', in_num: 1, ok: true } });
    const alphabet = '{}[]":,0123456789abcdefnulltrue \\';
    for (let i = 0; i < 4000; i++) {
      const chars = base.split('');
      for (let e = 0; e < 1 + rand(5); e++) {
        const pos = rand(chars.length + 1);
        if (rand(2) === 0) chars.splice(pos, 1);
        else chars.splice(pos, 0, alphabet[rand(alphabet.length)]!);
      }
      try {
        const r = parseRecordLine(chars.join(''), { path: 'f', line: i });
        expect(typeof r.event).toBe('string');
      } catch (err) {
        expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
      }
    }
  });
});

describe('the examples', () => {
  it('virtqueue-leaks: an element popped and never filled is outstanding; fills before the trace are counted apart', async () => {
    const a = await runAnalyzer(new VirtqueueLeaks(), [
      rec('virtqueue_pop', { vq: '0xa', elem: '0x1' }, 't1'), rec('virtqueue_pop', { vq: '0xa', elem: '0x2' }, 't2'),
      rec('virtqueue_fill', { vq: '0xa', elem: '0x1', len: 1, idx: 0 }), rec('virtqueue_fill', { vq: '0xa', elem: '0x9', len: 1, idx: 0 }),
      rec('virtqueue_pop', { vq: '0xa', elem: '0x1' }, 't3'), rec('virtqueue_fill', { vq: '0xa', elem: '0x1', len: 1, idx: 0 }),
    ]);
    expect(a.leaks).toEqual([{ vq: '0xa', elem: '0x2', time: 't2' }]);
    expect([a.pops, a.fills, a.unmatchedFills]).toEqual([3, 3, 1]);
    expect(a.report()).toContain('elem 0x2 popped at t2, never filled');
  });

  it('overlapping-writes: a write over a range still in flight on the same disk, not on another disk or after completion', async () => {
    const w = (vdev: string, req: string, sector: number, nsectors: number): TraceRecord => rec('virtio_blk_handle_write', { vdev, req, sector, nsectors });
    const done = (vdev: string, req: string): TraceRecord => rec('virtio_blk_req_complete', { vdev, req, status: 0 });
    const a = await runAnalyzer(new OverlappingWrites(), [
      w('d1', 'r1', 0, 8), w('d1', 'r2', 8, 8), w('d2', 'r3', 0, 8), w('d1', 'r4', 4, 2), done('d1', 'r1'), w('d1', 'r5', 0, 2),
    ]);
    expect(a.overlaps.map((o) => `${o.first.req}<${o.second.req}`)).toEqual(['r1<r4']);
    expect(a.maxInflight).toBe(4);
  });
});
