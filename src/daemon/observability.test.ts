/**
 * Observability on the fake driver, through the whole daemon: trace reference counts (two
 * tracers of one event, an event on before any trace), every refusal leaving nothing switched
 * on, a client that goes away, the capture's filter removed, statistics, /metrics parsed
 * strictly, and the probes of a define/start/destroy sequence.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePromText } from '../../test/helpers/prom-text.js';
import { connect, type ProbeRecord, type TraceRecord, type VirtkitClient } from '../client/index.js';
import { FakeDomainDriver, FakeHost, type FakeGuest } from '../qemu/driver/fake-driver.js';
import { isVirtkitError } from '../util/errors.js';
import { startDaemon, type RunningDaemon } from './index.js';

let dir: string;
let host: FakeHost;
let daemon: RunningDaemon;
let client: VirtkitClient;
let guest: FakeGuest;

const definition = (name: string): string =>
  `name: ${name}\nmemory: 64MiB\nboot:\n  loader: direct\n  kernel: ${process.execPath}\n` +
  'disks:\n  - id: disk0\n    source: /dev/null\n    format: raw\n    readonly: true\nnics:\n  - id: net0\n    mac: 52:54:00:12:34:56\n';

async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await sleep(20);
  }
  throw new Error(`timed out: ${what}`);
}

async function states(pattern = 'virtio*'): Promise<Record<string, string>> {
  const { events } = await client.traceEvents('web', pattern);
  return Object.fromEntries(events.map((e) => [e.name, `${e.state}/${e.tracers}`]));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isVirtkitError(err) ? err.code : String(err);
  }
}

/** Starts a trace and waits for the daemon to switch its events on. */
async function startTrace(events: string[], ac: AbortController): Promise<{ records: TraceRecord[]; done: Promise<unknown> }> {
  const records: TraceRecord[] = [];
  let started!: () => void;
  const on = new Promise<void>((r) => { started = r; });
  const done = (async () => {
    for await (const r of client.trace('web', { events, signal: ac.signal, onStarted: () => started() })) records.push(r);
  })();
  await Promise.race([on, done]);
  return { records, done };
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/vkobs-');
  host = new FakeHost();
  process.env.VIRTKIT_BOOT_ID = 'fake-boot';
  daemon = await startDaemon({ stateDir: join(dir, 'state'), logFile: join(dir, 'daemon.log'), driver: new FakeDomainDriver({ host }) });
  client = connect(daemon.dirs.socketPath);
  await client.define(definition('web'));
  await client.define(definition('idle'));
  await client.start('web');
  guest = host.guestNamed('web')!;
});

afterAll(async () => {
  client.close();
  for (const g of host.liveGuests()) g.die();
  await daemon.stop();
  delete process.env.VIRTKIT_BOOT_ID;
  await rm(dir, { recursive: true, force: true });
});

describe('trace', () => {
  it('streams typed records and counts tracers per event: the second tracer keeps an event on after the first leaves', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const first = await startTrace(['virtio_blk_*'], a);
    const second = await startTrace(['virtio_blk_handle_read'], b);
    expect(await states('virtio_blk_handle_*')).toEqual({ virtio_blk_handle_read: 'enabled/2', virtio_blk_handle_write: 'enabled/1' });
    guest.observed.traceHit('virtio_blk_handle_read', 'vdev 0x5600 req 0x7f00 sector 2048 nsectors 8');
    await until(() => first.records.length > 0 && second.records.length > 0, 'records');
    expect(first.records[0]).toMatchObject({ event: 'virtio_blk_handle_read', args: { vdev: '0x5600', req: '0x7f00', sector: 2048, nsectors: 8 } });
    a.abort();
    await first.done;
    await until(async () => (await states('virtio_blk_handle_*')).virtio_blk_handle_write === 'disabled/0', 'first trace released');
    expect((await states('virtio_blk_handle_read')).virtio_blk_handle_read).toBe('enabled/1');
    b.abort();
    await second.done;
    await until(async () => (await states('virtio_blk_handle_read')).virtio_blk_handle_read === 'disabled/0', 'second trace released');
  });

  it('two traces started at once share one log follower: a later trace sees each record once', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const [first, second] = await Promise.all([startTrace(['virtqueue_pop'], a), startTrace(['virtqueue_pop'], b)]);
    a.abort();
    b.abort();
    await Promise.all([first.done, second.done]);
    await until(async () => (await states('virtqueue_pop')).virtqueue_pop === 'disabled/0', 'both traces released');
    const c = new AbortController();
    const third = await startTrace(['virtqueue_pop', 'virtqueue_fill'], c);
    guest.observed.traceHit('virtqueue_pop', 'vq 0x1 elem 0x2 in_num 1 out_num 0');
    // The fill comes after the pop in the log: once it is here, any duplicate pop would be too.
    guest.observed.traceHit('virtqueue_fill', 'vq 0x1 elem 0x2 len 0 idx 0');
    await until(() => third.records.some((r) => r.event === 'virtqueue_fill'), 'records');
    expect(third.records.map((r) => r.event)).toEqual(['virtqueue_pop', 'virtqueue_fill']);
    c.abort();
    await third.done;
  });

  it('leaves an event on that was on before any trace (the shutdown trace of the command line)', async () => {
    const ac = new AbortController();
    const t = await startTrace(['qemu_system_shutdown_request'], ac);
    ac.abort();
    await t.done;
    await sleep(100);
    expect(await states('qemu_system_shutdown_request')).toEqual({ qemu_system_shutdown_request: 'enabled/0' });
    expect(guest.observed.setStateLog.filter((s) => s.name === 'qemu_system_shutdown_request')).toEqual([]);
  });

  it('refuses what matches nothing, unknown and left-out events, a stopped guest, with nothing left on', async () => {
    const allOff = async (): Promise<void> => {
      for (const [name, s] of Object.entries(await states())) expect(`${name} ${s}`).toBe(`${name} disabled/0`);
    };
    expect(await codeOf(startTrace(['nosuch_*'], new AbortController()))).toBe('trace.no-match');
    await allOff();
    expect(await codeOf(startTrace(['virtio_blk_handle_read', 'nosuch_event'], new AbortController()))).toBe('trace.unknown-event');
    await allOff();
    expect(await codeOf(startTrace(['dma_blk_io'], new AbortController()))).toBe('trace.unknown-event');
    expect(await codeOf(startTrace(['bad pattern!'], new AbortController()))).toBe('argument.invalid');
    expect(await codeOf(client.trace('idle', { events: ['virtio_*'] }).next())).toBe('domain.invalid-state');
    expect(await codeOf(client.trace('nosuch', { events: ['virtio_*'] }).next())).toBe('domain.not-found');
    await allOff();
  });

  it('ends with --duration and switches off', async () => {
    const records: TraceRecord[] = [];
    for await (const r of client.trace('web', { events: ['virtqueue_*'], duration: 0.3 })) records.push(r);
    expect(records).toEqual([]);
    expect(await states('virtqueue_*')).toEqual({ virtqueue_fill: 'disabled/0', virtqueue_pop: 'disabled/0' });
  });
});

describe('netdump', () => {
  it('streams the filter-dump file and removes the filter at the end; refuses an unknown NIC', async () => {
    const res = await client.netdump('web', { duration: 0.3 });
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    expect(Buffer.concat(chunks).readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(guest.observed.objects.size).toBe(0);
    expect(await codeOf(client.netdump('web', { iface: 'net9' }))).toBe('argument.invalid');
    expect(await codeOf(client.netdump('idle'))).toBe('domain.invalid-state');
    expect(guest.observed.objects.size).toBe(0);
  });
});

describe('stats and metrics', () => {
  it('reports block counters per disk and the NICs', async () => {
    guest.observed.blockStats.set('disk0', { rd_bytes: 4096, wr_bytes: 0, rd_operations: 1, wr_operations: 0 });
    const s = await client.domainStats('web');
    expect(s.block).toEqual([expect.objectContaining({ id: 'disk0', rdBytes: 4096, rdOps: 1 })]);
    expect(s.net).toEqual([expect.objectContaining({ id: 'net0', mac: '52:54:00:12:34:56', rxBytes: null })]);
    expect(s.cpu.vcpus).toHaveLength(1);
    expect((await client.statsAll()).domains.map((d) => d.name)).toEqual(['web']);
    expect(await codeOf(client.statsAll(['idle']))).toBe('domain.invalid-state');
  });

  it('serves /metrics as valid Prometheus text with guest and daemon figures', async () => {
    const text = await client.metrics();
    const fams = parsePromText(text);
    expect(fams.get('virtkit_domains')?.samples).toEqual(expect.arrayContaining([{ name: 'virtkit_domains', labels: { state: 'running' }, value: 1 }]));
    expect(fams.get('virtkit_domain_block_read_bytes_total')?.samples).toEqual([{ name: 'virtkit_domain_block_read_bytes_total', labels: { domain: 'web', disk: 'disk0' }, value: 4096 }]);
    expect(fams.get('virtkit_api_calls_total')?.samples.some((s) => s.labels.method === 'domain.start' && s.labels.outcome === 'ok')).toBe(true);
    expect(fams.get('virtkit_api_call_duration_seconds')?.type).toBe('histogram');
    expect(fams.get('virtkit_store_revision')?.samples[0]?.value).toBeGreaterThan(0);
  });
});

describe('probe', () => {
  it('shows a define/start/destroy sequence: method, domain, caller, latency, outcome', async () => {
    const ac = new AbortController();
    const seen: ProbeRecord[] = [];
    let started!: () => void;
    const on = new Promise<void>((r) => { started = r; });
    const done = (async () => {
      for await (const r of client.probe({ channels: ['api', 'store'], signal: ac.signal, onStarted: () => started() })) seen.push(r);
    })();
    await on;
    await client.define(definition('probed'));
    await client.start('probed');
    await client.destroy('probed');
    await codeOf(client.start('nosuch'));
    await until(() => seen.some((r) => r.name === 'domain.start' && r.outcome === 'domain.not-found'), 'probe records');
    ac.abort();
    await done;
    const api = seen.filter((r) => r.channel === 'api');
    expect(api.map((r) => `${r.name} ${r.domain ?? ''} ${r.outcome}`)).toEqual(expect.arrayContaining([
      'domain.define  ok', 'domain.start probed ok', 'domain.destroy probed ok', 'domain.start nosuch domain.not-found',
    ]));
    const start = api.find((r) => r.name === 'domain.start')!;
    expect(start.pid).toBe(process.pid);
    expect(start.uid).toBe(process.getuid!());
    expect(start.latencyMs).toBeGreaterThanOrEqual(0);
    expect(seen.some((r) => r.channel === 'store' && r.name === 'commit')).toBe(true);
    expect(await codeOf(client.probe({ channels: ['nosuch'] }).next())).toBe('argument.invalid');
  });
});
