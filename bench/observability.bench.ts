/**
 * Observability costs: guest disk throughput (`dd` inside a TCG guest) before any trace, with
 * five trace events on, and after they were switched off again (target: off within 5% of
 * never); the trace records per second the daemon parses and streams to one client (lines
 * appended to the guest's qemu.log as QEMU's log backend writes them), against reading the same
 * lines raw; and `/metrics` scrape time with 100 defined and 10 running (paused) guests,
 * against a `list --all` of the same daemon.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type VirtkitClient } from '../src/client/index.js';
import { qemuProcessesUnder } from '../src/daemon/reconcile.js';
import { buildGuest } from '../src/guestkit/index.js';
import { startBenchDaemon } from './daemon-process.js';
import { median, ratioLine, timeMs } from './stats.js';

const exec = promisify(execFile);
const TraceEvents = ['virtio_blk_handle_read', 'virtio_blk_handle_write', 'virtio_blk_req_complete', 'virtqueue_pop', 'virtqueue_fill'];
const DdRuns = 5;
const DdMiB = 16;
const FloodLines = 200_000;

async function startDaemon(stateDir: string): Promise<ChildProcess> {
  const { proc, client } = await startBenchDaemon(stateDir);
  client.close();
  return proc;
}

class GuestShell {
  private text = '';
  private n = 0;
  constructor(private readonly con: Duplex) {
    con.on('data', (b: Buffer) => { this.text = (this.text + b.toString('latin1')).slice(-65536); });
  }

  async waitFor(re: RegExp, timeoutMs = 120_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(re)}`);
      await sleep(5);
    }
  }

  async sh(cmd: string): Promise<void> {
    const n = ++this.n;
    this.con.write(`${cmd}; echo BENCH${n}-$?\n`);
    const m = await this.waitFor(new RegExp(`BENCH${n}-(\\d+)`));
    if (m[1] !== '0') throw new Error(`${cmd}: exit ${m[1]}`);
  }
}

/** MiB/s of one `dd` reading the guest's disk at a fresh offset, the guest's cache dropped first. */
async function ddOnce(shell: GuestShell, offsetMiB: { next: number }): Promise<number> {
  const skip = offsetMiB.next;
  offsetMiB.next += DdMiB;
  await shell.sh('sync; echo 3 > /proc/sys/vm/drop_caches');
  const ms = await timeMs(() => shell.sh(`dd if=/dev/vda of=/dev/null bs=1M count=${DdMiB} skip=${skip} 2>/dev/null`));
  return DdMiB / (ms / 1000);
}

/**
 * Median throughput of two guests measured in alternation, so the load of a shared machine
 * falls on both alike: `a` never traced, `b` in the condition under test.
 */
async function ddPair(a: GuestShell, b: GuestShell, offA: { next: number }, offB: { next: number }): Promise<[number, number]> {
  const ra: number[] = [];
  const rb: number[] = [];
  for (let i = 0; i < DdRuns; i++) {
    ra.push(await ddOnce(a, offA));
    rb.push(await ddOnce(b, offB));
  }
  return [median(ra), median(rb)];
}

export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-obs-bench-');
  const stateDir = join(work, 's');
  let daemon: ChildProcess | undefined;
  const clients: VirtkitClient[] = [];
  try {
    const guest = await buildGuest({ dir: join(work, 'g'), name: 'bench' });
    const guestText = await readFile(guest.definitionPath, 'utf8');
    const baseDir = dirname(guest.definitionPath);
    daemon = await startDaemon(stateDir);
    const c = connect(join(stateDir, 'virtkit.sock'));
    clients.push(c);
    // Two guests: `never` is never traced, `bench` is traced and then switched off.
    const shells: GuestShell[] = [];
    const consoles: Duplex[] = [];
    for (const name of ['never', 'bench']) {
      const disk = join(work, `${name}.raw`);
      await exec('qemu-img', ['create', '-q', '-f', 'raw', disk, `${DdMiB * DdRuns * 3 + 16}M`]);
      await c.define(`${guestText.replace(/^name: .*$/m, `name: ${name}`)}\ndisks:\n  - id: disk0\n    source: ${disk}\n    format: raw\n    cache: none\n`, { baseDir });
      await c.start(name);
      const con = await c.openConsole(name, 'write', { history: true });
      consoles.push(con);
      shells.push(new GuestShell(con));
    }
    const [neverShell, shell] = shells as [GuestShell, GuestShell];
    for (const s of shells) await s.waitFor(/virtkit-guest: ready/);
    const offNever = { next: 0 };
    const offset = { next: 0 };

    // 1. disk throughput: both guests untraced (how the two compare by themselves), then `bench`
    // traced (5 events, a live client reading the records), then `bench` with them switched off.
    const [baseNever, baseBench] = await ddPair(neverShell, shell, offNever, offset);
    const bias = baseBench / baseNever;
    const ac = new AbortController();
    let records = 0;
    let started!: () => void;
    const on = new Promise<void>((r) => { started = r; });
    const reader = (async () => {
      for await (const _r of c.trace('bench', { events: TraceEvents, signal: ac.signal, onStarted: () => started() })) records++;
    })();
    await on;
    const [never1, traced] = await ddPair(neverShell, shell, offNever, offset);
    ac.abort();
    await reader;
    // The daemon switches the events off once it sees the client gone.
    for (let i = 0; ; i++) {
      const { events } = await c.traceEvents('bench', 'virt*');
      if (!events.some((e) => e.state === 'enabled')) break;
      if (i > 100) throw new Error('trace events left on after the trace');
      await sleep(100);
    }
    const [never2, off] = await ddPair(neverShell, shell, offNever, offset);
    console.log(`guest dd of ${DdMiB} MiB (median of ${DdRuns}, TCG, two guests in alternation): both untraced ${baseBench.toFixed(1)} beside ${baseNever.toFixed(1)} MiB/s; 5 events on ${traced.toFixed(1)} MiB/s (${records} records streamed) beside never traced ${never1.toFixed(1)}; switched off ${off.toFixed(1)} MiB/s beside never traced ${never2.toFixed(1)}`);
    // Each ratio is divided by the guests' own ratio while neither was traced.
    console.log(ratioLine('dd throughput, events switched off vs a guest never traced (target within 5%)', off / bias, never2, 'MiB/s', 'never traced'));
    console.log(ratioLine('dd throughput, 5 events on vs a guest never traced', traced / bias, never1, 'MiB/s', 'never traced'));
    for (const con of consoles) con.destroy();
    await c.destroy('never');

    // 2. records per second to one client: lines appended to qemu.log as the log backend writes them
    const qemuLog = join(stateDir, 'run', (await c.info('bench')).uuid, 'qemu.log');
    const line = (i: number): string => `virtqueue_pop vq 0x55d4c0a1b2c0 elem 0x7f3a${(i % 65536).toString(16).padStart(8, '0')} in_num 1 out_num 2\n`;
    const flood = Array.from({ length: FloodLines }, (_v, i) => line(i)).join('');
    const floodAc = new AbortController();
    let got = 0;
    let floodStarted!: () => void;
    const floodOn = new Promise<void>((r) => { floodStarted = r; });
    let t0 = 0n;
    let done!: () => void;
    const allIn = new Promise<void>((r) => { done = r; });
    const floodReader = (async () => {
      for await (const _r of c.trace('bench', { events: ['virtqueue_pop'], signal: floodAc.signal, onStarted: () => floodStarted() })) {
        if (++got === FloodLines) done();
      }
    })();
    await floodOn;
    t0 = process.hrtime.bigint();
    await appendFile(qemuLog, flood);
    await Promise.race([allIn, sleep(120_000)]);
    const streamS = Number(process.hrtime.bigint() - t0) / 1e9;
    floodAc.abort();
    await floodReader;
    const rawMs = await timeMs(async () => {
      const text = await readFile(qemuLog, 'utf8');
      let n = 0;
      for (const l of text.split('\n')) if (l.startsWith('virtqueue_pop ')) n++;
      if (n < FloodLines) throw new Error('flood lines missing');
    });
    console.log(ratioLine(`trace records streamed to one client (${got} of ${FloodLines})`, got / streamS, FloodLines / (rawMs / 1000), 'records/s', 'raw read+split of the log'));
    await c.destroy('bench');

    // 3. /metrics with 100 defined and 10 running (paused) guests
    for (let i = 0; i < 100; i++) await c.define(guestText.replace(/^name: .*$/m, `name: m${i}`), { baseDir });
    for (let i = 0; i < 10; i++) await c.start(`m${i}`, { paused: true });
    await c.metrics();
    const fresh: number[] = [];
    const cached: number[] = [];
    const lists: number[] = [];
    for (let i = 0; i < 10; i++) {
      // Past the per-guest QMP cache (1 s): a scrape every second pays this one.
      await sleep(1_100);
      fresh.push(await timeMs(() => c.metrics()));
      cached.push(await timeMs(() => c.metrics()));
      lists.push(await timeMs(() => c.list({ all: true })));
    }
    console.log(ratioLine('/metrics scrape, 100 defined and 10 running guests, QMP figures fresh (median of 10)', median(fresh), median(lists), 'ms', 'list --all'));
    console.log(ratioLine('/metrics scrape, same, within the 1 s cache', median(cached), median(lists), 'ms', 'list --all'));
    console.log(`/metrics every second with 100 guests: ${(median(fresh) / 10).toFixed(2)}% of one core (wall time; the daemon mostly waits on QMP)`);
    for (let i = 0; i < 10; i++) await c.destroy(`m${i}`);
  } finally {
    for (const cl of clients) cl.close();
    daemon?.kill('SIGTERM');
    await sleep(500);
    daemon?.kill('SIGKILL');
    // Any QEMU still running from the bench's directories goes with them.
    for (const { pid } of await qemuProcessesUnder(work)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await rm(work, { recursive: true, force: true });
  }
}
