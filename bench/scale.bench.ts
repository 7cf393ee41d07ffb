/**
 * The daemon at scale (target 4 of the performance work): 1,000 defined domains and 50 running
 * guests, against the same daemon with 11 domains measured first in the same run.
 *
 * - `list --all` latency through the CLI's typed client call (`list({ all: true })`, not the
 *   whole process), median of many calls: under 20 ms;
 * - `info` rates on one connection (median of three 1 s windows) and with 50 clients: within
 *   20% of the 11-domain figures;
 * - 100 event subscribers (100 open event WebSockets, in a process of their own) while a writer
 *   changes domains at a fixed pace: `info` on one connection slowed by at most 10% against the
 *   same writer with no subscriber (three windows of each, in turn);
 * - daemon RSS per additional defined domain (at most 0.1 MiB at 1,000) and per running guest
 *   (at most 0.5 MiB at 50).
 *
 * The guests are QEMU processes (TCG) started paused, with the smallest definition (no kernel,
 * no disk, 32 MiB): a paused guest never runs, so the daemon's side of a running guest (its QMP
 * connection, console, exit watch) is all there is. Every QEMU started under the bench's
 * directory is killed at the end, whatever happened.
 *
 *   node dist/bench/scale.bench.js subscribers SOCKET N   (the subscribers' process)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type VirtkitClient } from '../src/client/index.js';
import { qemuProcessesUnder } from '../src/daemon/reconcile.js';
import { aggregateRate, cpuSecondsOf, medianRate, rate } from './call-rates.js';
import { startBenchDaemon } from './daemon-process.js';
import { rssMiB } from './references.js';
import { median, targetLine } from './stats.js';

const Defined = 1000;
const Running = 50;
const Subscribers = 100;
/** The writer's pace while subscribers listen: one change every this many ms. */
const WriterIntervalMs = 10;

const definition = (name: string): string => `name: ${name}\nmemory: 32MiB\n`;

/** Median latency (ms) of `list({ all: true })` over `calls` calls, one after the other. */
async function listLatencyMs(c: VirtkitClient, calls: number): Promise<{ median: number; domains: number }> {
  const times: number[] = [];
  let domains = 0;
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    domains = (await c.list({ all: true })).domains.length;
    times.push(performance.now() - t0);
  }
  return { median: median(times), domains };
}

/** Defines `names` with `parallel` clients at once. */
async function defineAll(clients: VirtkitClient[], names: string[]): Promise<void> {
  let next = 0;
  await Promise.all(clients.map(async (c) => {
    while (next < names.length) {
      const name = names[next++]!;
      await c.define(definition(name));
    }
  }));
}

/** Settles the daemon's memory a moment, then reads its RSS (median of three reads). */
async function settledRss(pid: number): Promise<number> {
  await sleep(1500);
  const reads: number[] = [];
  for (let i = 0; i < 3; i++) {
    reads.push(await rssMiB(pid));
    await sleep(200);
  }
  return median(reads);
}

/**
 * A paced writer: toggles the autostart of a few domains every WriterIntervalMs until stopped.
 * `take` hands over the latencies (ms) of the commits since the last `take`.
 */
function startWriter(c: VirtkitClient, names: string[]): { take: () => number[]; stop: () => Promise<number> } {
  let stopped = false;
  let changes = 0;
  let latencies: number[] = [];
  const done = (async () => {
    let i = 0;
    while (!stopped) {
      const started = performance.now();
      await c.setAutostart(names[i % names.length]!, i % 2 === 0);
      latencies.push(performance.now() - started);
      changes++;
      i++;
      const left = WriterIntervalMs - (performance.now() - started);
      if (left > 0) await sleep(left);
    }
  })();
  return {
    take: () => { const taken = latencies; latencies = []; return taken; },
    stop: async () => { stopped = true; await done; return changes; },
  };
}

/** The subscribers' process: N event streams, counting what they receive; prints the count when told to stop. */
async function subscribers(socket: string, n: number): Promise<void> {
  const clients = Array.from({ length: n }, () => connect(socket));
  const abort = new AbortController();
  // One signal for all the streams: each adds its listener.
  setMaxListeners(2 * n + 10, abort.signal);
  let received = 0;
  let open = 0;
  const streams = clients.map(async (c) => {
    try {
      const events = c.events({ signal: abort.signal });
      let first = true;
      for await (const ev of events) {
        if (first) { open++; first = false; }
        if (ev.type === 'autostart') received++;
      }
    } catch {
      /* aborted */
    }
  });
  // Ready once every stream has received an event (the parent changes a domain until then).
  while (open < n) await sleep(20);
  process.stdout.write('ready\n');
  process.stdin.resume();
  await new Promise((r) => process.stdin.once('data', r));
  abort.abort();
  await Promise.race([Promise.all(streams), sleep(2000)]);
  for (const c of clients) c.close();
  process.stdout.write(`${JSON.stringify({ received, open })}\n`);
  process.exit(0);
}

/** Starts the subscribers' process and waits until every stream has received an event (`poke` makes one). */
async function startSubscribers(socket: string, n: number, poke: () => Promise<unknown>): Promise<{ proc: ChildProcess; stop: () => Promise<{ received: number; open: number }> }> {
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), 'subscribers', socket, String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const deadline = Date.now() + 30_000;
  while (!out.includes('ready\n')) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill('SIGKILL');
      throw new Error('the subscribers did not start');
    }
    await poke();
    await sleep(100);
  }
  return {
    proc,
    stop: async () => {
      proc.stdin!.write('stop\n');
      await new Promise((r) => proc.once('close', r));
      return JSON.parse(out.slice(out.indexOf('ready\n') + 6)) as { received: number; open: number };
    },
  };
}

export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-bench-scale-');
  const stateDir = join(work, 's');
  const socket = join(stateDir, 'virtkit.sock');
  let daemon: ChildProcess | undefined;
  let subs: ChildProcess | undefined;
  const clients: VirtkitClient[] = [];
  try {
    // VIRTKIT_BENCH_DAEMON_FLAGS: Node flags for the daemon, e.g. `--cpu-prof --cpu-prof-dir=DIR`
    // (the profile is written when the daemon ends, which it does with SIGTERM at the end).
    const started = await startBenchDaemon(stateDir, (process.env.VIRTKIT_BENCH_DAEMON_FLAGS ?? '').split(' ').filter(Boolean));
    daemon = started.proc;
    const one = started.client;
    clients.push(one);
    const pid = daemon.pid!;

    // 11 domains: the reference figures of this run.
    const first = Array.from({ length: 11 }, (_, i) => (i === 0 ? 'bench' : `d${String(i).padStart(4, '0')}`));
    await defineAll([one], first);
    await rate([one], (c) => c.info('bench'), 300);
    const infoSmall = await medianRate([one], (c) => c.info('bench'));
    const infoSmallMany = await aggregateRate(socket, 'info', 50, 2000);
    const listSmall = await listLatencyMs(one, 200);
    const rssSmall = await settledRss(pid);
    console.log(`11 domains: info ${infoSmall.toFixed(0)} calls/s one connection, ${infoSmallMany.toFixed(0)} calls/s with 50 clients; `
      + `list --all ${listSmall.median.toFixed(2)} ms (median of 200); daemon RSS ${rssSmall.toFixed(1)} MiB`);

    // 1,000 defined.
    const definers = Array.from({ length: 10 }, () => connect(socket));
    clients.push(...definers);
    const more = Array.from({ length: Defined - first.length }, (_, i) => `d${String(i + first.length).padStart(4, '0')}`);
    const tDefine = performance.now();
    await defineAll(definers, more);
    const defineMs = performance.now() - tDefine;
    const rssDefined = await settledRss(pid);
    const perDefined = (rssDefined - rssSmall) / more.length;
    console.log(`${Defined} domains defined (${more.length} in ${defineMs.toFixed(0)} ms, 10 clients at once): daemon RSS ${rssDefined.toFixed(1)} MiB, `
      + `${perDefined.toFixed(4)} MiB per additional defined domain`);

    // 50 of them running, started paused.
    const runningNames = more.slice(0, Running);
    const tStart = performance.now();
    let nextStart = 0;
    await Promise.all(definers.slice(0, 5).map(async (c) => {
      while (nextStart < runningNames.length) await c.start(runningNames[nextStart++]!, { paused: true });
    }));
    const startMs = performance.now() - tStart;
    const rssRunning = await settledRss(pid);
    const perRunning = (rssRunning - rssDefined) / Running;
    console.log(`${Running} guests running (started paused, 5 at a time, ${startMs.toFixed(0)} ms): daemon RSS ${rssRunning.toFixed(1)} MiB, `
      + `${perRunning.toFixed(3)} MiB per running guest`);

    // The same measures at scale.
    const listBig = await listLatencyMs(one, 50);
    await rate([one], (c) => c.info('bench'), 300);
    const infoBig = await medianRate([one], (c) => c.info('bench'));
    const infoBigMany = await aggregateRate(socket, 'info', 50, 2000);
    const infoRunning = await medianRate([one], (c) => c.info(runningNames[0]!));
    console.log(`at ${Defined} defined, ${Running} running: list --all ${listBig.median.toFixed(2)} ms (median of 50, ${listBig.domains} domains); `
      + `info ${infoBig.toFixed(0)} calls/s one connection (of a running guest: ${infoRunning.toFixed(0)}), ${infoBigMany.toFixed(0)} calls/s with 50 clients`);

    // Events: one paced writer throughout, and windows without and with 100 subscribers in
    // turn, three of each (the subscribers' process starts before each "with" window and stops
    // after it), compared by their medians: the load of the shared machine moves within seconds.
    // The writer's commits are durable (an fsync each, in the daemon's event loop), so their
    // latency in each kind of window is printed beside.
    const writerClient = connect(socket);
    clients.push(writerClient);
    const toggled = more.slice(Running, Running + 20);
    const writer = startWriter(writerClient, toggled);
    const quietRates: number[] = [];
    const loudRates: number[] = [];
    const commitMs = { quiet: [] as number[], loud: [] as number[] };
    let daemonCpuQuiet = 0;
    let daemonCpuLoud = 0;
    let subsCpu = 0;
    let received = 0;
    let opened = 0;
    await sleep(300);
    for (let round = 0; round < 3; round++) {
      writer.take();
      let cpu0 = cpuSecondsOf(pid);
      quietRates.push(await rate([one], (c) => c.info('bench'), 1000));
      daemonCpuQuiet += cpuSecondsOf(pid) - cpu0;
      commitMs.quiet.push(...writer.take());
      // Ready once every stream has had an event: the writer makes them.
      const sub = await startSubscribers(socket, Subscribers, () => sleep(0));
      subs = sub.proc;
      writer.take();
      cpu0 = cpuSecondsOf(pid);
      const subsCpu0 = cpuSecondsOf(sub.proc.pid!);
      loudRates.push(await rate([one], (c) => c.info('bench'), 1000));
      daemonCpuLoud += cpuSecondsOf(pid) - cpu0;
      subsCpu += cpuSecondsOf(sub.proc.pid!) - subsCpu0;
      commitMs.loud.push(...writer.take());
      const got = await sub.stop();
      subs = undefined;
      received += got.received;
      opened += got.open;
    }
    const changes = await writer.stop();
    const infoWriter = median(quietRates);
    const infoSubscribed = median(loudRates);
    console.log(`events: a writer changing a domain every ${WriterIntervalMs} ms (${changes} changes in all; a commit took `
      + `${median(commitMs.quiet).toFixed(1)} ms median without subscribers, ${median(commitMs.loud).toFixed(1)} ms with them); `
      + `info ${quietRates.map((r) => r.toFixed(0)).join('/')} calls/s without subscribers, ${loudRates.map((r) => r.toFixed(0)).join('/')} with ${Subscribers} `
      + `(${opened / 3} of them open each time, ${(received / Math.max(1, opened)).toFixed(0)} autostart events each)`);
    console.log(`  CPU over the three windows of each kind: the daemon ${daemonCpuQuiet.toFixed(2)} s without subscribers, ${daemonCpuLoud.toFixed(2)} s with them; `
      + `the subscribers' process ${subsCpu.toFixed(2)} s (the machine has 2 cores, shared with the bench's client)`);

    console.log(targetLine(`4 list --all at ${Defined} defined / ${Running} running under 20 ms`, listBig.median < 20,
      `${listBig.median.toFixed(2)} ms (11 domains: ${listSmall.median.toFixed(2)} ms)`));
    console.log(targetLine('4 info one connection at scale within 20% of 11 domains', infoBig >= 0.8 * infoSmall,
      `${infoBig.toFixed(0)} against ${infoSmall.toFixed(0)} calls/s, ratio ${(infoBig / infoSmall).toFixed(3)}`));
    console.log(targetLine('4 info 50 clients at scale within 20% of 11 domains', infoBigMany >= 0.8 * infoSmallMany,
      `${infoBigMany.toFixed(0)} against ${infoSmallMany.toFixed(0)} calls/s, ratio ${(infoBigMany / infoSmallMany).toFixed(3)}`));
    console.log(targetLine(`4 events to ${Subscribers} subscribers slow calls by at most 10%`, infoSubscribed >= 0.9 * infoWriter,
      `info ${infoSubscribed.toFixed(0)} against ${infoWriter.toFixed(0)} calls/s, ratio ${(infoSubscribed / infoWriter).toFixed(3)}`));
    console.log(targetLine(`3/4 daemon RSS per additional defined domain at ${Defined} <= 0.1 MiB`, perDefined <= 0.1,
      `${perDefined.toFixed(4)} MiB (${rssSmall.toFixed(1)} -> ${rssDefined.toFixed(1)} MiB)`));
    console.log(targetLine(`3/4 daemon RSS per running paused guest at ${Running} <= 0.5 MiB`, perRunning <= 0.5,
      `${perRunning.toFixed(3)} MiB (${rssDefined.toFixed(1)} -> ${rssRunning.toFixed(1)} MiB)`));

    let nextStop = 0;
    await Promise.all(definers.slice(0, 5).map(async (c) => {
      while (nextStop < runningNames.length) await c.destroy(runningNames[nextStop++]!).catch(() => undefined);
    }));
  } finally {
    subs?.kill('SIGKILL');
    for (const c of clients) c.close();
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      daemon.kill('SIGKILL');
    }
    // Any QEMU still running from the bench's directory goes with it.
    for (const { pid } of await qemuProcessesUnder(work)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'subscribers') {
  await subscribers(process.argv[3]!, Number(process.argv[4]));
}
