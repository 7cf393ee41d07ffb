/**
 * `GET /metrics`: Prometheus text (prom-client), one registry per daemon. Per running guest the
 * figures of `domstats` (observability-stats.ts, QMP part cached for a second); defined
 * domains by state; the daemon's own: API calls by method and outcome with a latency
 * histogram, store revision and changes since the daemon started, QEMU events by name, and
 * the daemon process's CPU and memory. Everything per guest is gathered at scrape time; between scrapes
 * the only cost is counting API calls and QEMU events, in plain numbers (observability-counts.ts).
 * This module, and prom-client with it, is imported at the first scrape.
 */
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { DomainStats } from '../api/index.js';
import type { Store } from '../store/index.js';
import { ApiLatencyBuckets, type DaemonCounts } from './observability-counts.js';

export interface MetricsSource {
  store: Store;
  /** Every defined domain's state (a store read). */
  domainStates: () => Promise<string[]>;
  /** The figures of every running guest. */
  runningStats: () => Promise<DomainStats[]>;
  /** API calls and QEMU events counted since the daemon started. */
  counts: DaemonCounts;
}

/**
 * The API latency histogram as prom-client prints a Histogram, from the counts: prom-client's
 * own Histogram cannot be given bucket counts, and the calls before the first scrape are in them.
 * The registry reads only these fields of a metric.
 */
function latencyHistogram(counts: DaemonCounts, registry: Registry): void {
  const name = 'virtkit_api_call_duration_seconds';
  const help = 'API call latency, by method';
  const metric = {
    name, help, type: 'histogram', aggregator: 'sum',
    get: async () => {
      const values: { value: number; labels: Record<string, string | number>; sharedLabels: Record<string, string>; metricName: string }[] = [];
      for (const [method, l] of counts.apiLatency) {
        const sharedLabels = { method };
        let cumulative = 0;
        ApiLatencyBuckets.forEach((le, i) => {
          cumulative += l.buckets[i]!;
          values.push({ value: cumulative, labels: { le }, sharedLabels, metricName: `${name}_bucket` });
        });
        values.push({ value: l.count, labels: { le: '+Inf' }, sharedLabels, metricName: `${name}_bucket` });
        values.push({ value: l.sum, labels: {}, sharedLabels, metricName: `${name}_sum` });
        values.push({ value: l.count, labels: {}, sharedLabels, metricName: `${name}_count` });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.registerMetric(metric as unknown as Metric);
}

export class DaemonMetrics {
  readonly registry = new Registry();
  /** The guests' figures of the scrape in progress. */
  private gathered: Promise<DomainStats[]> | undefined;
  /** Scrapes at once share one (a registry is not re-entrant per scrape otherwise). */
  private scrape: Promise<string> | undefined;

  constructor(source: MetricsSource) {
    const r = this.registry;
    // The daemon's own process: a few figures read from Node itself (prom-client's default set
    // reads /proc/self, file descriptors included, on every scrape: most of a scrape's cost).
    new Counter({ name: 'virtkit_daemon_cpu_seconds_total', help: 'CPU time of the daemon process (user + system)', registers: [r], collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    } });
    new Gauge({ name: 'virtkit_daemon_resident_memory_bytes', help: 'Resident set of the daemon process', registers: [r], collect() { this.set(process.memoryUsage.rss()); } });
    new Gauge({ name: 'virtkit_daemon_heap_used_bytes', help: 'V8 heap in use by the daemon', registers: [r], collect() { this.set(process.memoryUsage().heapUsed); } });
    new Gauge({ name: 'virtkit_daemon_start_time_seconds', help: 'When the daemon started (Unix time)', registers: [r], collect() { this.set(Math.round(Date.now() / 1000 - process.uptime())); } });
    const { counts } = source;
    new Counter({
      name: 'virtkit_api_calls_total', help: 'API calls answered, by method and outcome (ok or the error code)', labelNames: ['method', 'outcome'], registers: [r],
      collect() {
        this.reset();
        for (const [method, outcomes] of counts.apiCalls) for (const [outcome, n] of outcomes) this.inc({ method, outcome }, n);
      },
    });
    latencyHistogram(counts, r);
    new Counter({
      name: 'virtkit_qemu_events_total', help: 'QEMU (QMP) events received, by event', labelNames: ['event'], registers: [r],
      collect() {
        this.reset();
        for (const [event, n] of counts.qemuEvents) this.inc({ event }, n);
      },
    });

    const startRevision = source.store.revision;
    new Gauge({ name: 'virtkit_store_revision', help: 'The state store\'s current revision', registers: [r], collect() { this.set(source.store.revision); } });
    new Counter({
      name: 'virtkit_store_changes_total', help: 'Changes committed to the state store since the daemon started', registers: [r],
      collect() { this.reset(); this.inc(source.store.revision - startRevision); },
    });
    new Gauge({
      name: 'virtkit_domains', help: 'Defined domains, by state', labelNames: ['state'], registers: [r],
      async collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const s of await source.domainStates()) counts.set(s, (counts.get(s) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });

    // Per guest: one gather per scrape (text() opens and closes it), shared by every metric below.
    const stats = (): Promise<DomainStats[]> => this.gathered ??= source.runningStats();
    const perGuest = (name: string, help: string, labelNames: string[], kind: 'counter' | 'gauge',
      fill: (s: DomainStats, set: (labels: Record<string, string>, v: number) => void) => void): void => {
      const labels = ['domain', ...labelNames];
      if (kind === 'counter') {
        new Counter({ name, help, labelNames: labels, registers: [r], async collect() {
          this.reset();
          for (const s of await stats()) fill(s, (l, v) => this.inc({ domain: s.name, ...l }, v));
        } });
      } else {
        new Gauge({ name, help, labelNames: labels, registers: [r], async collect() {
          this.reset();
          for (const s of await stats()) fill(s, (l, v) => this.set({ domain: s.name, ...l }, v));
        } });
      }
    };
    perGuest('virtkit_domain_cpu_seconds_total', 'CPU time of the guest\'s QEMU process (all threads)', [], 'counter', (s, set) => set({}, s.cpu.timeSeconds));
    perGuest('virtkit_domain_vcpu_seconds_total', 'CPU time of each vCPU thread', ['vcpu'], 'counter', (s, set) => {
      for (const v of s.cpu.vcpus) if (v.timeSeconds !== null) set({ vcpu: String(v.index) }, v.timeSeconds);
    });
    perGuest('virtkit_domain_memory_rss_bytes', 'Resident set of the guest\'s QEMU process', [], 'gauge', (s, set) => set({}, s.memory.rssBytes));
    perGuest('virtkit_domain_memory_defined_bytes', 'Guest RAM as defined', [], 'gauge', (s, set) => set({}, s.memory.definedBytes));
    perGuest('virtkit_domain_balloon_bytes', 'Current balloon size (guests with a balloon)', [], 'gauge', (s, set) => {
      if (s.memory.balloonBytes !== undefined) set({}, s.memory.balloonBytes);
    });
    perGuest('virtkit_domain_block_read_bytes_total', 'Bytes read per disk (query-blockstats)', ['disk'], 'counter', (s, set) => { for (const b of s.block) set({ disk: b.id }, b.rdBytes); });
    perGuest('virtkit_domain_block_write_bytes_total', 'Bytes written per disk', ['disk'], 'counter', (s, set) => { for (const b of s.block) set({ disk: b.id }, b.wrBytes); });
    perGuest('virtkit_domain_block_read_ops_total', 'Read requests per disk', ['disk'], 'counter', (s, set) => { for (const b of s.block) set({ disk: b.id }, b.rdOps); });
    perGuest('virtkit_domain_block_write_ops_total', 'Write requests per disk', ['disk'], 'counter', (s, set) => { for (const b of s.block) set({ disk: b.id }, b.wrOps); });
    perGuest('virtkit_domain_nic_info', 'The guest\'s NICs (QEMU keeps no byte counters for user networking)', ['nic', 'mac', 'model', 'network'], 'gauge',
      (s, set) => { for (const n of s.net) set({ nic: n.id, mac: n.mac, model: n.model, network: n.network }, 1); });
  }

  text(): Promise<string> {
    this.scrape ??= this.registry.metrics().finally(() => {
      this.gathered = undefined;
      this.scrape = undefined;
    });
    return this.scrape;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.registry.clear();
  }
}
