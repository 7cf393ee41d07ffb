/**
 * A virtqueue leak finder: elements QEMU popped off a virtqueue (`virtqueue_pop`) and never
 * filled back (`virtqueue_fill`), i.e. requests the device took and never answered. Run it on
 * a recorded trace:
 *
 *   virtkit trace NAME --event virtqueue_pop --event virtqueue_fill --output vq.jsonl --duration 10
 *   node dist/examples/virtqueue-leaks.js vq.jsonl
 *
 * or live: `await runAnalyzer(new VirtqueueLeaks(), client.trace(name, { events: [...] }))`.
 * An element still outstanding when the trace ends was popped at its end, or leaked: a real
 * leak shows up as an element that stays outstanding trace after trace.
 */
import { pathToFileURL } from 'node:url';
import { Analyzer, runAnalyzer, type TraceArgs, type TraceRecord } from '../src/observability/index.js';
import { runExampleMain } from './example-main.js';

export interface Outstanding {
  vq: string;
  elem: string;
  /** When it was popped. */
  time: string;
}

export class VirtqueueLeaks extends Analyzer {
  pops = 0;
  fills = 0;
  /** Fills of an element that was not popped within the trace (popped before it started). */
  unmatchedFills = 0;
  private readonly inflight = new Map<string, Outstanding>();
  /** What is still outstanding at the end, oldest first. */
  leaks: Outstanding[] = [];

  virtqueue_pop({ vq, elem }: TraceArgs, rec: TraceRecord): void {
    this.pops++;
    this.inflight.set(`${String(vq)}/${String(elem)}`, { vq: String(vq), elem: String(elem), time: rec.time });
  }

  virtqueue_fill({ vq, elem }: TraceArgs): void {
    this.fills++;
    if (!this.inflight.delete(`${String(vq)}/${String(elem)}`)) this.unmatchedFills++;
  }

  override end(): void {
    this.leaks = [...this.inflight.values()].sort((a, b) => a.time.localeCompare(b.time));
  }

  report(): string {
    const lines = [`${this.pops} popped, ${this.fills} filled, ${this.leaks.length} outstanding`];
    for (const l of this.leaks) lines.push(`  vq ${l.vq} elem ${l.elem} popped at ${l.time}, never filled`);
    return lines.join('\n');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExampleMain('virtqueue-leaks', async (file) => (await runAnalyzer(new VirtqueueLeaks(), file)).report());
}
