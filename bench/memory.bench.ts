/**
 * The daemon's memory when idle (target 3 of docs/performance.md): Node's own floor (a process
 * that only waits), the idle daemon's RSS fresh and settled, the same daemon with V8's default
 * young-generation growth while it starts (what `young-generation.ts` avoids), libvirtd's RSS
 * when one runs, the RSS after the first use of everything loaded lazily, and each module's
 * own cost (the per-module accounting). Per-domain and per-guest figures: scale.bench.ts.
 *
 * Every daemon here is waited for by its "listening" line on stderr, not by an API call: a call
 * would load what an idle daemon has not loaded (a route's serializer, ajv).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { connect } from '../src/client/index.js';
import { median, targetLine } from './stats.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'bin', 'virtkit.js');
/** After start-up, before the first reading: long enough for the last start-up work (autostart, the log's first lines) to end. */
const FreshMs = 500;
/**
 * How long an idle daemon is left before "settled": V8's memory reducer, when a full GC has
 * armed it, gives back unused heap within about 8 s of its first check and repeats while the
 * process is idle; 35 s is well past both. (An idle daemon whose start made no full GC never
 * runs it: its settled figure is its fresh one.)
 */
const SettleMs = 35_000;
const TargetMiB = 55;

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** CPU time (user + system) of a process so far, ms. */
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Spawns `args` with node and resolves once its stderr says the daemon listens. */
async function startListening(args: string[], stateDir: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: root });
  let stderr = '';
  await new Promise<void>((ready, fail) => {
    proc.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (stderr.includes('listening on')) ready();
    });
    proc.once('exit', () => fail(new Error(`daemon on ${stateDir} exited: ${stderr}`)));
  });
  return proc;
}

/** `virtkit daemon`, as shipped. */
function shippedDaemon(stateDir: string, nodeFlags: readonly string[] = []): Promise<ChildProcess> {
  return startListening([...nodeFlags, cli, 'daemon', '--state-dir', stateDir, '--log-level', 'warn'], stateDir);
}

/**
 * The same daemon started through `startDaemon` with V8's defaults: everything as shipped but
 * the young generation, which grows as V8 lets it while the daemon loads and starts.
 */
function defaultYoungGenerationDaemon(stateDir: string): Promise<ChildProcess> {
  const daemon = pathToFileURL(join(root, 'dist', 'src', 'daemon', 'index.js')).href;
  // commander too, which the CLI loads before the daemon.
  const script = `await import('commander');
const { startDaemon } = await import(${JSON.stringify(daemon)});
await startDaemon({ stateDir: ${JSON.stringify(stateDir)}, logLevel: 'warn' });
process.stderr.write('listening on\\n');
setInterval(() => {}, 1e9);`;
  return startListening(['--input-type=module', '-e', script], stateDir);
}

/**
 * The daemon's CPU per `info` call (user + system, µs), over `calls` calls on one connection
 * after a warm-up: what the young generation's size costs a call, where a timing would move
 * with the other work on the machine.
 */
async function cpuPerInfoUs(socket: string, pid: number, calls: number, first: boolean): Promise<number> {
  const c = connect(socket, { maxSockets: 1 });
  try {
    if (first) await c.define('name: cpu\nmemory: 256MiB\nballoon: false\n');
    for (let i = 0; i < 1000; i++) await c.info('cpu');
    const before = await cpuMs(pid);
    for (let i = 0; i < calls; i++) await c.info('cpu');
    return ((await cpuMs(pid)) - before) * 1000 / calls;
  } finally {
    c.close();
  }
}

/** A Node process that only waits: Node's own floor. */
function floorProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
}

/** libvirtd's RSS when exactly one runs on this machine. */
function libvirtdRssMiB(): number | undefined {
  const ps = spawnSync('ps', ['-C', 'libvirtd', '-o', 'rss='], { encoding: 'utf8' });
  const kb = (ps.stdout ?? '').trim().split('\n').map(Number).filter((n) => n > 0);
  return kb.length === 1 ? kb[0]! / 1024 : undefined;
}

/** What a module costs alone: a fresh Node importing it, after a GC, against one importing nothing. */
function moduleCost(specifier: string | undefined): { rss: number; heap: number } {
  const script = `${specifier === undefined ? '' : `await import(${JSON.stringify(specifier)});`}
globalThis.gc(); globalThis.gc();
await new Promise((r) => setTimeout(r, 300));
const { readFileSync } = await import('node:fs');
const rss = Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
process.stdout.write(JSON.stringify({ rss, heap: process.memoryUsage().heapUsed / 1048576 }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`importing ${specifier ?? 'nothing'} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { rss: number; heap: number };
}

const dist = (path: string): string => pathToFileURL(join(root, 'dist', 'src', path)).href;

/** The per-module accounting: packages, then virtkit's layers as the daemon imports them. */
const Modules: [string, string, string][] = [
  ['fastify', 'fastify', 'at start'],
  ['@sinclair/typebox (with its compiler)', '@sinclair/typebox/compiler', 'at start (schemas, definition validation)'],
  ['better-sqlite3', 'better-sqlite3', 'at start'],
  ['yaml', 'yaml', 'at start (definitions)'],
  ['commander', 'commander', 'at start (the CLI)'],
  ['ws', 'ws', 'first WebSocket upgrade, or --http'],
  ['prom-client', 'prom-client', 'first /metrics scrape'],
  ['ajv (fastify\'s validator compiler)', 'ajv', 'first validated call'],
  ['fast-json-stringify', 'fast-json-stringify', 'first call of a route or RPC method'],
  ['fast-xml-parser', 'fast-xml-parser', 'never by the daemon (the CLI converts)'],
  ['dist/src/conf/index.js', dist('conf/index.js'), 'at start'],
  ['dist/src/api/index.js (method table, schemas)', dist('api/index.js'), 'at start'],
  ['dist/src/qemu/index.js', dist('qemu/index.js'), 'at start'],
  ['dist/src/daemon/start.js (all the daemon loads at start)', dist('daemon/start.js'), 'at start'],
];

export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-bench-mem-');
  const procs: ChildProcess[] = [];
  try {
    // Started one after the other so that their start-ups do not share the cores.
    const floor = floorProcess();
    procs.push(floor);
    const shipped = await shippedDaemon(join(work, 'shipped'));
    procs.push(shipped);
    await sleep(FreshMs);
    const fresh = await rssMiB(shipped.pid!);
    const settledSince = Date.now();
    const defaults = await defaultYoungGenerationDaemon(join(work, 'defaults'));
    procs.push(defaults);
    await sleep(FreshMs);
    const defaultsFresh = await rssMiB(defaults.pid!);
    const nodeFloor = await rssMiB(floor.pid!);
    const libvirtd = libvirtdRssMiB();

    // A third daemon, used once for everything that loads lazily, while the first two settle.
    const usedDir = join(work, 'used');
    const used = await shippedDaemon(usedDir);
    procs.push(used);
    await sleep(FreshMs);
    const usedIdle = await rssMiB(used.pid!);
    const c = connect(join(usedDir, 'virtkit.sock'));
    await c.define('name: lazy\nmemory: 256MiB\nballoon: false\n');
    await c.list({ all: true });
    await c.info('lazy');
    await c.metrics();
    const ws = new WebSocket(`ws+unix:${join(usedDir, 'virtkit.sock')}:/events?since=0`);
    await new Promise((r, f) => { ws.once('message', r); ws.once('error', f); });
    ws.close();
    c.close();
    await sleep(FreshMs);
    const usedAfter = await rssMiB(used.pid!);

    // Start-up CPU (process start to listening) of each kind, started in turn, median of 5: one
    // start moves with the machine's load more than the two differ.
    const startCpu = { held: [] as number[], defaults: [] as number[] };
    for (let i = 0; i < 5; i++) {
      const held = await shippedDaemon(join(work, `cpu-held${i}`));
      startCpu.held.push(await cpuMs(held.pid!));
      held.kill('SIGKILL');
      const byDefault = await defaultYoungGenerationDaemon(join(work, `cpu-default${i}`));
      startCpu.defaults.push(await cpuMs(byDefault.pid!));
      byDefault.kill('SIGKILL');
    }

    const modules: { name: string; when: string; rss: number; heap: number }[] = [];
    const none = moduleCost(undefined);
    for (const [name, specifier, when] of Modules) {
      const m = moduleCost(specifier);
      modules.push({ name, when, rss: m.rss - none.rss, heap: m.heap - none.heap });
    }

    const left = SettleMs - (Date.now() - settledSince);
    if (left > 0) await sleep(left);
    const settledAfterS = (Date.now() - settledSince) / 1000;
    const settled = await rssMiB(shipped.pid!);
    const defaultsSettled = await rssMiB(defaults.pid!);
    const floorSettled = await rssMiB(floor.pid!);

    // The cost of a small young generation for calls, once the idle figures are read: held only
    // while starting (as shipped) and capped for the daemon's whole life (node
    // --max-semi-space-size=1), each against V8's default; two rounds in turn, the lower kept.
    const CpuCalls = 10_000;
    const cappedDir = join(work, 'capped');
    const capped = await shippedDaemon(cappedDir, ['--max-semi-space-size=1']);
    procs.push(capped);
    await sleep(FreshMs);
    const cappedFresh = await rssMiB(capped.pid!);
    const cpu = { shipped: Infinity, defaults: Infinity, capped: Infinity };
    const targets = { shipped: [join(work, 'shipped'), shipped], defaults: [join(work, 'defaults'), defaults], capped: [cappedDir, capped] } as const;
    for (let round = 0; round < 2; round++) {
      for (const key of ['shipped', 'defaults', 'capped'] as const) {
        const [dir, proc] = targets[key];
        cpu[key] = Math.min(cpu[key], await cpuPerInfoUs(join(dir, 'virtkit.sock'), proc.pid!, CpuCalls, round === 0));
      }
    }

    console.log(`Node's own floor (a process that only waits): ${nodeFloor.toFixed(1)} MiB, ${floorSettled.toFixed(1)} MiB after ${(SettleMs / 1000).toFixed(0)} s`);
    console.log(`daemon idle, fresh (${FreshMs} ms after it listens): ${fresh.toFixed(1)} MiB, ${(fresh - nodeFloor).toFixed(1)} MiB over Node's floor, ratio ${(fresh / nodeFloor).toFixed(3)}`);
    console.log(`daemon idle, settled (${settledAfterS.toFixed(0)} s idle): ${settled.toFixed(1)} MiB, ${(settled - floorSettled).toFixed(1)} MiB over Node's floor, ratio ${(settled / floorSettled).toFixed(3)}`);
    console.log(`the same daemon with V8's default young-generation growth while it starts: ${defaultsFresh.toFixed(1)} MiB fresh, ${defaultsSettled.toFixed(1)} MiB settled; `
      + `start-up CPU (median of 5) ${median(startCpu.held).toFixed(0)} ms held, ${median(startCpu.defaults).toFixed(0)} ms default`);
    console.log(`daemon CPU per info call (${CpuCalls} calls on one connection, the lower of two rounds): ${cpu.shipped.toFixed(1)} us as shipped, `
      + `${cpu.defaults.toFixed(1)} us with V8's default growth, ${cpu.capped.toFixed(1)} us with node --max-semi-space-size=1 (${cappedFresh.toFixed(1)} MiB fresh): `
      + `ratios ${(cpu.shipped / cpu.defaults).toFixed(3)} and ${(cpu.capped / cpu.defaults).toFixed(3)} to the default`);
    console.log(`after the first use of what loads lazily (define, list, info, /metrics, an event WebSocket): ${usedAfter.toFixed(1)} MiB (idle before: ${usedIdle.toFixed(1)} MiB)`);
    console.log(libvirtd === undefined ? 'libvirtd: not running, not measured'
      : `libvirtd (running on this machine): ${libvirtd.toFixed(1)} MiB; ratio of the settled daemon to it ${(settled / libvirtd).toFixed(3)}`);
    console.log(targetLine(`3 daemon RSS idle (settled) <= ${TargetMiB} MiB`, settled <= TargetMiB,
      `virtkit ${settled.toFixed(1)} MiB, Node's floor ${floorSettled.toFixed(1)} MiB${libvirtd === undefined ? '' : `, libvirtd ${libvirtd.toFixed(1)} MiB`}`));
    console.log(`\neach module alone: a fresh Node importing it, after a GC, less one importing nothing (${none.rss.toFixed(1)} MiB RSS, ${none.heap.toFixed(1)} MiB heap);`);
    console.log('they share Node\'s own modules (http, net, crypto), so they do not add up:');
    console.log(`${'module'.padEnd(58)} ${'RSS MiB'.padStart(8)} ${'heap MiB'.padStart(9)}  loaded by the daemon`);
    for (const m of modules) console.log(`${m.name.padEnd(58)} ${m.rss.toFixed(1).padStart(8)} ${m.heap.toFixed(1).padStart(9)}  ${m.when}`);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
