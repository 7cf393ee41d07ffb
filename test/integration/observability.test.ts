/**
 * Observability against a real daemon and one real guest (TCG), shared by every case: a trace
 * of virtio-blk and virtqueue events while the guest reads and writes its disk (driven over the
 * console), analyzed by both examples; every refusal leaving nothing switched on; a client that
 * goes away mid-trace; a pcap of the guest's DHCP read back by tcpdump; domstats counters that
 * move; /metrics parsed strictly; the probes of a define/start/destroy sequence.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlappingWrites } from '../../examples/overlapping-writes.js';
import { VirtqueueLeaks } from '../../examples/virtqueue-leaks.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import type { VirtkitClient } from '../../src/client/index.js';
import { runAnalyzer, readTraceFile, type TraceRecord } from '../../src/observability/index.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { parsePromText } from '../helpers/prom-text.js';
import { CliPath, DaemonHarness, waitFor } from './daemon-harness.js';

const run = promisify(execFile);
const Name = 'testguest';
const Mac = '52:54:00:0b:5e:01';
const TraceEvents = ['virtio_blk_handle_read', 'virtio_blk_handle_write', 'virtio_blk_req_complete', 'virtqueue_pop', 'virtqueue_fill'];

let d: DaemonHarness;
let c: VirtkitClient;
let tmp: string;
let guestYaml: string;
/** The guest kit guest without the disk (a second guest cannot open the first one's image). */
let plainYaml: string;
let consoleStream: Duplex;
let consoleText = '';
let marks = 0;

/** Runs a shell command in the guest over its console; resolves with its exit status. */
async function sh(cmd: string, timeoutMs = 60_000): Promise<number> {
  const n = ++marks;
  const re = new RegExp(`MARK${n}-(\\d+)`);
  consoleStream.write(`${cmd}; echo MARK${n}-$?\n`);
  const m = await waitFor(`"${cmd}" in the guest`, async () => re.exec(consoleText) ?? undefined, timeoutMs, 50);
  return Number(m[1]);
}

/** A CLI process left running (trace, netdump, probe), with what it printed so far. */
function background(args: string[]): { p: ChildProcess; out: () => string; err: () => string; exit: Promise<number> } {
  const p = spawn(process.execPath, [CliPath, ...args], { env: { ...process.env, VIRTKIT_CONNECT: d.socketPath }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  p.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exit = new Promise<number>((resolve) => p.on('close', (code) => resolve(code ?? -1)));
  return { p, out: () => stdout, err: () => stderr, exit };
}

/** Every virtio / virtqueue event is off and held by no tracer. */
async function nothingTraced(): Promise<void> {
  const { events } = await c.traceEvents(Name, 'virt*');
  const on = events.filter((e) => e.state === 'enabled' || e.tracers > 0).map((e) => e.name);
  expect(on).toEqual([]);
}

beforeAll(async () => {
  tmp = await mkdtemp('/tmp/vkobsi-');
  const disk = join(tmp, 'disk.raw');
  await run('qemu-img', ['create', '-q', '-f', 'raw', disk, '32M']);
  plainYaml = await readFile(testGuestDefinition(), 'utf8');
  guestYaml = `${plainYaml}\ndisks:\n  - id: disk0\n    source: ${disk}\n    format: raw\n    cache: none\nnics:\n  - id: net0\n    mac: '${Mac}'\n`;
  d = await DaemonHarness.create();
  await d.start();
  c = d.client();
  await c.define(guestYaml, { baseDir: dirname(testGuestDefinition()) });
  await c.start(Name);
  consoleStream = await c.openConsole(Name, 'write', { history: true });
  consoleStream.on('data', (b: Buffer) => { consoleText += b.toString('latin1'); });
  await waitFor('the guest to be ready', async () => consoleText.includes('virtkit-guest: ready'), 90_000, 100);
}, 120_000);

afterAll(async () => {
  consoleStream?.destroy();
  await d?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

describe('trace', () => {
  let records: TraceRecord[] = [];
  const recorded = (): string => join(tmp, 'blk.jsonl');

  it('records typed virtio-blk and virtqueue events while the guest reads and writes its disk, and switches them off at the end', async () => {
    const t = background(['trace', Name, ...TraceEvents.flatMap((e) => ['--event', e]), '--output', recorded()]);
    await waitFor('the trace to start', async () => t.err().includes('tracing 5 event(s)'), 30_000, 50);
    const { events } = await c.traceEvents(Name, 'virt*');
    expect(events.filter((e) => e.state === 'enabled').map((e) => `${e.name}/${e.tracers}`).sort()).toEqual(TraceEvents.map((e) => `${e}/1`).sort());
    expect(await sh('dd if=/dev/vda of=/dev/null bs=4k count=128 skip=256')).toBe(0);
    expect(await sh('dd if=/dev/zero of=/dev/vda bs=4k count=64 seek=2048 && sync')).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    t.p.kill('SIGINT');
    expect(await t.exit).toBe(0);
    records = [];
    for await (const r of readTraceFile(recorded())) records.push(r);
    const read = records.find((r) => r.event === 'virtio_blk_handle_read');
    expect(read?.args).toMatchObject({ vdev: expect.stringMatching(/^0x[0-9a-f]+$/), req: expect.stringMatching(/^0x/), sector: expect.any(Number), nsectors: expect.any(Number) });
    expect(records.some((r) => r.event === 'virtio_blk_handle_read' && Number(r.args.sector) >= 256 * 8)).toBe(true);
    expect(records.some((r) => r.event === 'virtio_blk_handle_write')).toBe(true);
    expect(records.some((r) => r.event === 'virtqueue_pop')).toBe(true);
    await waitFor('the events to go off', async () => { await nothingTraced(); return true; }, 10_000, 100);
  });

  it('the recorded trace goes through both example analyzers', async () => {
    const leaks = await runAnalyzer(new VirtqueueLeaks(), recorded());
    const pops = records.filter((r) => r.event === 'virtqueue_pop').length;
    expect(leaks.pops).toBe(pops);
    expect(leaks.fills).toBeGreaterThan(0);
    // Outstanding at the end: popped, never filled within the trace (in flight when it stopped).
    for (const l of leaks.leaks) expect(records.some((r) => r.event === 'virtqueue_fill' && r.args.elem === l.elem && r.time >= l.time)).toBe(false);
    const writes = await runAnalyzer(new OverlappingWrites(), recorded());
    expect(writes.writes).toBe(records.filter((r) => r.event === 'virtio_blk_handle_write').length);
    expect(writes.completions).toBeGreaterThan(0);
    for (const o of writes.overlaps) {
      expect(o.first.vdev).toBe(o.second.vdev);
      expect(o.first.sector < o.second.sector + o.second.nsectors && o.second.sector < o.first.sector + o.first.nsectors).toBe(true);
    }
  });

  it('the built examples refuse a missing or non-JSON file with the error\'s message and exit code, not a stack trace', async () => {
    const bad = join(tmp, 'not-a-trace.jsonl');
    await writeFile(bad, 'not json\n');
    for (const [example, file, said] of [['overlapping-writes', join(tmp, 'missing.jsonl'), /missing\.jsonl: ENOENT/], ['virtqueue-leaks', bad, /not-a-trace\.jsonl:1: not a trace record/]] as const) {
      const r = await run(process.execPath, [join(dirname(CliPath), '..', 'dist', 'examples', `${example}.js`), file]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
      expect(r.code).toBe(exitCodeFor('argument.invalid'));
      expect(r.stderr).toMatch(said);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('refuses bad input with typed errors and exit codes, leaving nothing on', async () => {
    const none = await d.cli(['trace', Name, '--event', 'nosuch_*', '--duration', '1']);
    expect([none.code, none.stderr]).toEqual([3, expect.stringContaining('trace.no-match')]);
    await nothingTraced();
    const unknown = await d.cli(['trace', Name, '--event', 'virtqueue_pop', '--event', 'nosuch_event', '--duration', '1']);
    expect([unknown.code, unknown.stderr]).toEqual([3, expect.stringContaining('trace.unknown-event')]);
    await nothingTraced();
    const unwritable = await d.cli(['trace', Name, '--event', 'virtqueue_pop', '--output', join(tmp, 'no', 'such', 'dir.jsonl')]);
    expect([unwritable.code, unwritable.stderr]).toEqual([5, expect.stringContaining('output.unwritable')]);
    await nothingTraced();
    const list = await d.cli(['trace', Name, '--list', 'virtio_blk_handle_*', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      { name: 'virtio_blk_handle_read', state: 'disabled', tracers: 0 }, { name: 'virtio_blk_handle_write', state: 'disabled', tracers: 0 },
    ].map((e) => expect.objectContaining(e)));
    await c.define(guestYaml.replace(`name: ${Name}`, 'name: stopped'), { baseDir: dirname(testGuestDefinition()) });
    const stopped = await d.cli(['trace', 'stopped', '--event', 'virtqueue_pop']);
    expect([stopped.code, stopped.stderr]).toEqual([4, expect.stringContaining('not running')]);
    const dumpStopped = await d.cli(['netdump', 'stopped', join(tmp, 'x.pcap'), '--duration', '1']);
    expect(dumpStopped.code).toBe(4);
  });
});

describe('netdump', () => {
  it('captures the guest\'s DHCP exchange to a pcap tcpdump reads, with the guest\'s MAC, and removes the filter', async () => {
    const pcap = join(tmp, 'dhcp.pcap');
    const n = background(['netdump', Name, pcap, '--count', '4', '--duration', '60']);
    await waitFor('the capture to start', async () => n.err().includes('capturing'), 30_000, 50);
    expect(await sh('ip link set eth0 up; udhcpc -i eth0 -n -q -t 3 -s /bin/true')).toBe(0);
    expect(await n.exit).toBe(0);
    const { stdout } = await run('tcpdump', ['-r', pcap, '-e', '-n'], { env: { ...process.env, LC_ALL: 'C' } });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(stdout).toContain(Mac);
    expect(stdout).toMatch(/BOOTP\/DHCP/);
    const objects = await c.monitorCommand(Name, { qmp: { execute: 'qom-list', arguments: { path: '/objects' } } }) as { name: string }[];
    expect(objects.map((o) => o.name).filter((o) => o.includes('netdump'))).toEqual([]);
  });
});

describe('domstats and metrics', () => {
  it('block and CPU counters move while the guest works', async () => {
    const before = await c.domainStats(Name);
    expect(await sh('dd if=/dev/vda of=/dev/null bs=64k count=64 skip=128')).toBe(0);
    const after = await waitFor('the stats cache to turn over', async () => {
      const s = await c.domainStats(Name);
      return s.block[0]!.rdBytes > before.block[0]!.rdBytes ? s : undefined;
    }, 10_000, 300);
    expect(after.block.map((b) => b.id)).toContain('disk0');
    expect(after.block[0]!.rdBytes - before.block[0]!.rdBytes).toBeGreaterThanOrEqual(64 * 64 * 1024);
    expect(after.cpu.timeSeconds).toBeGreaterThan(before.cpu.timeSeconds);
    expect(after.cpu.vcpus[0]!.timeSeconds).toBeGreaterThan(0);
    expect(after.memory.rssBytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(after.net).toEqual([expect.objectContaining({ id: 'net0', mac: Mac })]);
    const cli = await d.cli(['domstats', Name]);
    expect(cli.stdout).toContain(`Domain: '${Name}'`);
    expect(cli.stdout).toMatch(/block\.0\.rd\.bytes=\d+/);
  });

  it('/metrics is valid Prometheus text with the guest\'s and the daemon\'s figures', async () => {
    const fams = parsePromText(await c.metrics());
    const sample = (name: string, labels: Record<string, string>): number | undefined =>
      fams.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(sample('virtkit_domain_block_read_bytes_total', { domain: Name, disk: 'disk0' })).toBeGreaterThan(0);
    expect(sample('virtkit_domain_cpu_seconds_total', { domain: Name })).toBeGreaterThan(0);
    expect(sample('virtkit_domains', { state: 'running' })).toBe(1);
    expect(sample('virtkit_domains', { state: 'shutoff' })).toBe(1);
    expect(sample('virtkit_api_calls_total', { method: 'domain.start', outcome: 'ok' })).toBe(1);
    expect(fams.get('virtkit_api_call_duration_seconds')?.type).toBe('histogram');
  });
});

describe('probe', () => {
  it('shows a define/start/destroy sequence with caller, latency and outcome', async () => {
    const p = background(['probe', '--json', '--channel', 'api', '--channel', 'qmp']);
    await waitFor('the probe to attach', async () => p.err().includes('probing api, qmp'), 30_000, 50);
    await c.define(plainYaml.replace(`name: ${Name}`, 'name: probed'), { baseDir: dirname(testGuestDefinition()) });
    await c.start('probed', { paused: true });
    await c.destroy('probed');
    await waitFor('the probe lines', async () => p.out().includes('"domain.destroy"'), 20_000, 100);
    p.p.kill('SIGINT');
    await p.exit;
    const lines = p.out().trim().split('\n').map((l) => JSON.parse(l) as { channel: string; name: string; domain?: string; outcome?: string; uid?: number; pid?: number; latencyMs?: number });
    const api = lines.filter((l) => l.channel === 'api').map((l) => `${l.name} ${l.domain ?? ''} ${l.outcome}`);
    expect(api).toEqual(expect.arrayContaining(['domain.define  ok', 'domain.start probed ok', 'domain.destroy probed ok']));
    const start = lines.find((l) => l.channel === 'api' && l.name === 'domain.start')!;
    expect(start.uid).toBe(process.getuid!());
    expect(start.pid).toBe(process.pid);
    expect(start.latencyMs).toBeGreaterThan(0);
    expect(lines.some((l) => l.channel === 'qmp' && l.domain === 'probed')).toBe(true);
  });
});
