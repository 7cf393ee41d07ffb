/**
 * Live domain state for every view: the list once, then the event stream (no polling). An
 * event changes the row at once by its type, then the row is read again for the details the
 * event does not carry. The stream reconnects and resumes by itself after a daemon restart.
 */
import { useEffect, useState } from 'preact/hooks';
import type { DomainEvent, DomainState, DomainSummary } from 'virtkit/client/browser';
import { client } from './session';

type Listener = () => void;

const StateAfter: Partial<Record<DomainEvent['type'], DomainState>> = {
  started: 'running', resumed: 'running', rebooted: 'running', reset: 'running',
  suspended: 'paused', stopped: 'shutoff',
  // `shutdown` is the request (the power button pressed): the guest runs until `stopped`.
};

export interface Connection {
  state: 'connecting' | 'live' | 'error';
  error?: string;
}

class LiveDomains {
  domains = new Map<string, DomainSummary>();
  events: DomainEvent[] = [];
  connection: Connection = { state: 'connecting' };
  /** performance.now() of the last change pushed, for the event-to-screen benchmark. */
  private readonly listeners = new Set<Listener>();
  /** The newest event seq applied per domain: a row read for an older event must not overwrite a newer one. */
  private readonly latest = new Map<string, number>();
  private started = false;

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    void this.run();
  }

  async refresh(): Promise<void> {
    const { domains } = await client.list({ all: true });
    this.domains = new Map(domains.map((d) => [d.name, d]));
    this.changed();
  }

  private async run(): Promise<void> {
    try {
      const { revision } = await client.daemonInfo();
      await this.refresh();
      this.connection = { state: 'live' };
      this.changed();
      for await (const ev of client.events({ since: revision })) {
        this.connection = { state: 'live' };
        this.apply(ev);
      }
    } catch (err) {
      this.connection = { state: 'error', error: (err as Error).message };
      this.changed();
      this.started = false;
      setTimeout(() => this.start(), 2000);
    }
  }

  private apply(ev: DomainEvent): void {
    this.events = [...this.events.slice(-499), ev];
    const known = this.domains.get(ev.domain);
    if (ev.type === 'undefined') this.domains.delete(ev.domain);
    else if (known && StateAfter[ev.type]) {
      const state = ev.type === 'stopped' && ev.reason === 'crashed' ? 'crashed' : StateAfter[ev.type]!;
      this.domains.set(ev.domain, { ...known, state });
    }
    this.changed();
    this.latest.set(ev.domain, ev.seq);
    if (ev.type !== 'undefined') {
      client.info(ev.domain).then((info) => {
        // Replies can come back out of order: only the read for the newest event counts.
        if (this.latest.get(ev.domain) !== ev.seq) return;
        const row: DomainSummary = { name: info.name, uuid: info.uuid, state: info.state, autostart: info.autostart, tainted: info.tainted,
          ...(info.degraded ? { degraded: true } : {}) };
        if (!this.domains.has(ev.domain) && ev.type !== 'defined') return;
        this.domains.set(ev.domain, row);
        this.changed();
      }, () => undefined);
    }
  }
}

export const live = new LiveDomains();

/** Re-renders the calling component on every change of the live state. */
export function useLive(): LiveDomains {
  const [, setTick] = useState(0);
  useEffect(() => {
    live.start();
    return live.subscribe(() => setTick((t) => t + 1));
  }, []);
  return live;
}
