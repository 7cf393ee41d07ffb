/**
 * Boot to the guest kit's ready marker, three ways, against the same reference in the same run:
 *
 * - bare qemu-system-x86_64 with buildCommand's argv, timed from its spawn, the marker read from
 *   its console socket (connected as soon as QEMU creates it);
 * - `virtkit run --until-ready`, timed from spawning the CLI to the marker on its stdout (which
 *   the CLI copies from the same kind of console socket);
 * - `virtkit start NAME` through a running daemon, timed from spawning that CLI to the marker on
 *   the console opened through the typed client when `start` returns (the daemon holds the
 *   guest's console and relays it over a WebSocket).
 *
 * Runs alternate so the three see the same machine load. Each side prints a timeline (median
 * milliseconds from its spawn): virtkit's own marks come from VIRTKIT_TIMELINE (src/util/timeline.ts),
 * written by the CLI and the daemon on one clock with this process's. Target 6 of the
 * performance issue is printed for `run` and for `start`: within 5% of bare QEMU, judged by the
 * median of the ratios of runs made side by side.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadDefinition } from '../src/conf/index.js';
import { buildGuest, READY_MARKER } from '../src/guestkit/index.js';
import { buildCommand, probeCapabilities, resolveAccel, runPaths } from '../src/qemu/index.js';
import type { VirtkitClient } from '../src/client/index.js';
import { benchCli, startBenchDaemon } from './daemon-process.js';
import { median } from './stats.js';

const RUNS = 7;
const TIMEOUT_MS = 120_000;
/** Target 6: within 5% of bare QEMU. */
const TARGET_RATIO = 1.05;
const NAME = 'benchguest';

/** Wall-clock milliseconds on the clock of VIRTKIT_TIMELINE's marks. */
const now = (): number => performance.timeOrigin + performance.now();

/** One run: the time of each mark, in ms from the run's spawn. */
type Timeline = Map<string, number>;

interface Mark {
  at: number;
  pid: number;
  mark: string;
}

function readMarks(file: string): Mark[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Mark);
}

/** The marks written to `file` at or after `from` (earlier lines belong to earlier runs), relative to `t0`. */
function timelineOf(file: string, t0: number, from: number, extra: Record<string, number>): Timeline {
  const tl: Timeline = new Map([['bench: spawn', 0]]);
  for (const m of readMarks(file)) if (m.at >= from) tl.set(m.mark, m.at - t0);
  for (const [k, v] of Object.entries(extra)) tl.set(k, v);
  return tl;
}

/** Resolves with the time `marker` shows in `stream`'s data (split across chunks or not). */
function markerIn(stream: NodeJS.ReadableStream): Promise<number> {
  return new Promise((resolve) => {
    let tail = '';
    const onData = (chunk: Buffer): void => {
      const text = tail + chunk.toString('latin1');
      if (text.includes(READY_MARKER)) {
        stream.off('data', onData);
        resolve(now());
      }
      tail = text.slice(-READY_MARKER.length);
    };
    stream.on('data', onData);
  });
}

function exitOf(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no ready marker within ${TIMEOUT_MS} ms`)), TIMEOUT_MS))),
  ]);
}

/** `virtkit run --until-ready`: spawn to the marker on its stdout. */
async function timeRun(definitionPath: string, runtimeDir: string, timelineFile: string): Promise<Timeline> {
  const t0 = now();
  const child = spawn(process.execPath, [benchCli, 'run', definitionPath, '--until-ready', '--timeout', String(TIMEOUT_MS / 1000)],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, VIRTKIT_TIMELINE: timelineFile } });
  const exited = exitOf(child);
  const seen = await withTimeout(markerIn(child.stdout), 'virtkit run');
  const code = await exited;
  if (code !== 0) throw new Error(`virtkit run --until-ready exited ${String(code)}`);
  return timelineOf(timelineFile, t0, t0, { 'bench: marker on stdout': seen - t0 });
}

/** Connects to a unix socket as soon as it accepts (tried every millisecond: the reference's best case). */
async function connectSoon(path: string, alive: () => boolean): Promise<Socket> {
  for (;;) {
    const sock = await new Promise<Socket | undefined>((resolve) => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
    if (sock) return sock;
    if (!alive()) throw new Error(`bare QEMU exited before ${path} accepted`);
    await sleep(1);
  }
}

/**
 * Bare QEMU with the given argv: spawn to the marker on its console socket. Its QMP greeting is
 * read too (QEMU greets once its main loop runs, i.e. once the machine is created and the CPUs
 * started): where QEMU's own start-up ends.
 */
async function timeBare(binary: string, argv: string[], runDir: string): Promise<Timeline> {
  const paths = runPaths(runDir);
  await Promise.all([paths.qmpSocket, paths.consoleSocket, paths.pidFile].map((p) => rm(p, { force: true })));
  const t0 = now();
  const qemu = spawn(binary, argv, { stdio: 'ignore' });
  const exited = exitOf(qemu);
  const alive = (): boolean => qemu.exitCode === null && qemu.signalCode === null;
  const marks: Record<string, number> = {};
  try {
    const greeting = connectSoon(paths.qmpSocket, alive).then((qmp) => new Promise<void>((resolve) => {
      qmp.once('data', () => {
        marks['qmp: greeting'] = now() - t0;
        qmp.destroy();
        resolve();
      });
    }));
    const console = await connectSoon(paths.consoleSocket, alive);
    marks['console: connected'] = now() - t0;
    console.once('data', () => (marks['console: first byte'] = now() - t0));
    marks['console: marker seen'] = (await withTimeout(markerIn(console), 'bare QEMU')) - t0;
    console.destroy();
    await greeting;
    return new Map([['bench: spawn', 0], ...Object.entries(marks)]);
  } finally {
    qemu.kill('SIGKILL');
    await exited;
  }
}

/**
 * `virtkit start NAME` through the daemon, then the guest's console opened through the typed
 * client once start returned (read-only, no history: the console log holds earlier boots'
 * markers): from the spawn to the marker relayed by the daemon. The guest is destroyed afterwards.
 */
async function timeStart(client: VirtkitClient, socket: string, timelineFile: string): Promise<Timeline> {
  const t0 = now();
  const start = spawn(process.execPath, [benchCli, 'start', NAME], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, VIRTKIT_CONNECT: socket } });
  const code = await exitOf(start);
  const started = now();
  if (code !== 0) throw new Error(`virtkit start exited ${String(code)}`);
  const console = await client.openConsole(NAME, 'read');
  const attached = now();
  try {
    const seen = await withTimeout(markerIn(console), 'virtkit start, console through the daemon');
    return timelineOf(timelineFile, t0, t0, {
      'cli: start returned': started - t0, 'client: console attached': attached - t0, 'client: marker seen': seen - t0,
    });
  } finally {
    console.destroy();
    await client.destroy(NAME);
  }
}

/** Median time of each mark over the runs, in the order of the medians. */
function printTimeline(title: string, runs: Timeline[]): void {
  const names = new Set(runs.flatMap((r) => [...r.keys()]));
  const rows = [...names].map((n) => {
    const xs = runs.map((r) => r.get(n)).filter((x): x is number => x !== undefined);
    return { n, ms: median(xs), count: xs.length };
  }).sort((a, b) => a.ms - b.ms);
  console.log(`${title} (median ms from the spawn, ${runs.length} runs):`);
  for (const r of rows) console.log(`  ${r.ms.toFixed(1).padStart(8)}  ${r.n}${r.count < runs.length ? ` (in ${r.count} runs)` : ''}`);
}

const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');

function targetLine(what: string, ours: number[], bare: number[]): string {
  const paired = median(ours.map((o, i) => o / bare[i]!));
  const figures = `median of paired ratios ${paired.toFixed(3)}; medians ${median(ours).toFixed(0)} ms vs bare QEMU ${median(bare).toFixed(0)} ms, ratio ${(median(ours) / median(bare)).toFixed(3)}`;
  return paired <= TARGET_RATIO
    ? `target 6 ${what} within 5% of bare QEMU: reached (${figures})`
    : `target 6 ${what} within 5% of bare QEMU: NOT REACHED (${figures})`;
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'virtkit-bench-boot-'));
  let daemon: Awaited<ReturnType<typeof startBenchDaemon>> | undefined;
  try {
    const guest = await buildGuest({ dir: join(work, 'guest'), name: NAME });
    const def = await loadDefinition(guest.definitionPath);
    const caps = await probeCapabilities();
    const { accel, reason } = resolveAccel(def.accel, caps);
    const bareRunDir = join(work, 'bare-run');
    const cmd = buildCommand(def, { binary: caps.binary, accel, runDir: bareRunDir });
    await mkdir(bareRunDir, { mode: 0o700 });
    console.log(`guest kit guest, accel ${accel} (${reason}); ${RUNS} runs each, alternating`);

    const runtimeDir = join(work, 'xdg');
    const runTimeline = join(work, 'run-timeline.jsonl');
    const daemonTimeline = join(work, 'daemon-timeline.jsonl');
    // the daemon writes its marks to its own file (the variable is read when it starts)
    process.env['VIRTKIT_TIMELINE'] = daemonTimeline;
    try {
      daemon = await startBenchDaemon(join(work, 'state'));
    } finally {
      delete process.env['VIRTKIT_TIMELINE'];
    }
    const client = daemon.client;
    const socket = join(work, 'state', 'virtkit.sock');
    await client.define(readFileSync(guest.definitionPath, 'utf8'), { baseDir: join(work, 'guest') });

    // one unmeasured run each: page cache, capabilities cache
    await timeRun(guest.definitionPath, runtimeDir, runTimeline);
    await timeBare(cmd.binary, cmd.argv, bareRunDir);
    await timeStart(client, socket, daemonTimeline);

    const bare: Timeline[] = [];
    const runs: Timeline[] = [];
    const starts: Timeline[] = [];
    for (let i = 0; i < RUNS; i++) {
      bare.push(await timeBare(cmd.binary, cmd.argv, bareRunDir));
      runs.push(await timeRun(guest.definitionPath, runtimeDir, runTimeline));
      starts.push(await timeStart(client, socket, daemonTimeline));
    }
    printTimeline('timeline, bare qemu-system-x86_64', bare);
    printTimeline('timeline, virtkit run --until-ready', runs);
    printTimeline('timeline, virtkit start, then the console through the client', starts);

    const bareMs = bare.map((t) => t.get('console: marker seen')!);
    const runMs = runs.map((t) => t.get('bench: marker on stdout')!);
    const startMs = starts.map((t) => t.get('client: marker seen')!);
    console.log(`bare qemu-system-x86_64 to marker (ms):          ${fmt(bareMs)}`);
    console.log(`virtkit run --until-ready to marker (ms):        ${fmt(runMs)}`);
    console.log(`virtkit start, console to marker (ms):           ${fmt(startMs)}`);
    // What virtkit adds, accounted from the timelines rather than from the boots' totals (which
    // move by seconds with the machine's load): the time before QEMU is spawned, QEMU's spawn
    // to its QMP greeting (the CPUs start right after it: cont is already queued) against bare
    // QEMU's (whose CPUs start just before it), and the marker's way from the console to the
    // reader. The boot in between is the same QEMU with the same machine.
    const med = (ts: Timeline[], f: (t: Timeline) => number): number => median(ts.map(f));
    const bareGreeting = med(bare, (t) => t.get('qmp: greeting')!);
    const account = (what: string, ts: Timeline[], end: string, seenBy: string | undefined): void => {
      const before = med(ts, (t) => t.get('qemu: spawned')!);
      const greeting = med(ts, (t) => t.get('qmp: greeting')!);
      const relay = seenBy === undefined ? 0 : med(ts, (t) => t.get(end)! - t.get(seenBy)!);
      const added = greeting - bareGreeting + relay;
      console.log(`${what}: QEMU spawned at ${before.toFixed(1)} ms, its QMP greeting at ${greeting.toFixed(1)} ms (bare QEMU's ${bareGreeting.toFixed(1)} ms after its spawn)`
        + `${seenBy === undefined ? '; the console relay through the daemon is not marked' : `; marker relayed to the reader in ${relay.toFixed(1)} ms`}; accounted overhead ${added.toFixed(1)} ms`
        + ` = ${(100 * added / median(bareMs)).toFixed(1)}% of the bare boot's median`);
    };
    account('virtkit run', runs, 'bench: marker on stdout', 'console: marker seen');
    account('virtkit start', starts, 'client: marker seen', undefined);
    console.log(targetLine('virtkit run --until-ready to the ready marker', runMs, bareMs));
    console.log(targetLine('virtkit start to the ready marker (console through the daemon)', startMs, bareMs));
  } finally {
    if (daemon) {
      await daemon.client.destroy(NAME).catch(() => undefined); // a run that failed half-way
      daemon.client.close();
      const gone = daemon.proc.exitCode === null ? exitOf(daemon.proc) : Promise.resolve(null);
      daemon.proc.kill('SIGTERM');
      await gone;
    }
    await rm(work, { recursive: true, force: true });
  }
}
