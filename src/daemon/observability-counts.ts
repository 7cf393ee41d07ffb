/**
 * What `/metrics` counts between scrapes, as plain numbers: API calls by method and outcome,
 * their latency histogram by method, and QEMU events by name. Counting starts with the daemon;
 * prom-client (about 11 MiB of a daemon's memory) is loaded only when `/metrics` is first scraped
 * (observability-metrics.ts), and reads these counts at each scrape. Nothing here allocates
 * per call beyond the first call of a method or outcome.
 */
import type { QmpEvent } from '../qemu/index.js';
import { QmpChannels } from '../qemu/index.js';
import { observeApiCalls } from './observability-probes.js';

/** Upper bounds of the API latency histogram, in seconds (the +Inf bucket is the count). */
export const ApiLatencyBuckets: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** One method's latencies: calls per bucket (not cumulative), their sum and count. */
export interface LatencyCounts {
  readonly buckets: number[];
  sum: number;
  count: number;
}

export class DaemonCounts {
  /** API calls answered, by method, then by outcome (`ok` or the error code). */
  readonly apiCalls = new Map<string, Map<string, number>>();
  readonly apiLatency = new Map<string, LatencyCounts>();
  /** QEMU (QMP) events received, by event name. */
  readonly qemuEvents = new Map<string, number>();
  private readonly detach: (() => void)[] = [];

  constructor() {
    this.detach.push(observeApiCalls((method, outcome, seconds) => this.apiCall(method, outcome, seconds)));
    const onEvent = (m: unknown): void => {
      const name = (m as { event: QmpEvent }).event.event;
      this.qemuEvents.set(name, (this.qemuEvents.get(name) ?? 0) + 1);
    };
    QmpChannels.event.subscribe(onEvent);
    this.detach.push(() => QmpChannels.event.unsubscribe(onEvent));
  }

  apiCall(method: string, outcome: string, seconds: number): void {
    let outcomes = this.apiCalls.get(method);
    if (!outcomes) this.apiCalls.set(method, outcomes = new Map());
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    let latency = this.apiLatency.get(method);
    if (!latency) this.apiLatency.set(method, latency = { buckets: ApiLatencyBuckets.map(() => 0), sum: 0, count: 0 });
    // Beyond the last bound it counts in +Inf only, which is the count.
    const bucket = ApiLatencyBuckets.findIndex((bound) => seconds <= bound);
    if (bucket >= 0) latency.buckets[bucket]! += 1;
    latency.sum += seconds;
    latency.count += 1;
  }

  close(): void {
    for (const d of this.detach.splice(0)) d();
  }
}
