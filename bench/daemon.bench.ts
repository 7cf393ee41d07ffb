/**
 * The manager daemon: API call rates on one connection and with 50 concurrent clients,
 * start/destroy latency against bare QEMU driven the same way without the daemon (define +
 * undefine: define.bench.ts; the daemon's memory: memory.bench.ts and scale.bench.ts).
 * libvirt is measured in the same run through its Python binding when installed (see
 * references.ts); without it the ratios against libvirt are not measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type VirtkitClient } from '../src/client/index.js';
import { parseDefinition } from '../src/conf/index.js';
import { qemuProcessesUnder } from '../src/daemon/reconcile.js';
import { buildGuest } from '../src/guestkit/index.js';
import { probeCapabilities, resolveAccel } from '../src/qemu/caps.js';
import { buildCommand } from '../src/qemu/command/index.js';
import { QemuProcess } from '../src/qemu/process.js';
import { measureLibvirt } from './references.js';
import { startBenchDaemon } from './daemon-process.js';
import { median, ratioLine, targetLine, timeMs } from './stats.js';

/** Defined beside the bench's own domain: list answers for 11 domains. */
const IdleDomains = 10;

async function startDaemon(stateDir: string, nodeFlags: readonly string[] = []): Promise<ChildProcess> {
  const { proc, client } = await startBenchDaemon(stateDir, nodeFlags);
  client.close();
  return proc;
}

/** Calls per second of `fn` run back to back on each of `clients` for `ms`. */
async function rate(clients: VirtkitClient[], fn: (c: VirtkitClient) => Promise<unknown>, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let calls = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    while (Date.now() < deadline) {
      await fn(c);
      calls++;
    }
  }));
  return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function bareHttpRate(socketPath: string): Promise<number> {
  const body = JSON.stringify({ version: '0', pid: 1, stateDir: '/', runDir: '/', bootId: 'x', revision: 1, apiExtensions: [] });
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  const c = connect(socketPath, { maxSockets: 1 });
  try {
    await rate([c], (x) => x.daemonInfo(), 300);
    return await rate([c], (x) => x.daemonInfo(), 2000);
  } finally {
    c.close();
    server.close();
  }
}

const ClientProcesses = Math.max(2, Math.min(4, availableParallelism()));
const worker = join(dirname(fileURLToPath(import.meta.url)), 'daemon-load-worker.js');

/** Aggregate calls/s of `connections` clients spread over ClientProcesses processes, for `ms` after a warm-up. */
async function aggregateRate(socket: string, method: 'list' | 'info', connections: number, ms: number): Promise<number> {
  const start = Date.now() + 1000;
  const end = start + ms;
  const counts = await Promise.all(Array.from({ length: ClientProcesses }, (_, i) => {
    const share = Math.floor(connections / ClientProcesses) + (i < connections % ClientProcesses ? 1 : 0);
    return new Promise<number>((resolvePromise, reject) => {
      const p = spawn(process.execPath, [worker, socket, String(share), method, String(start), String(end)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
      p.on('error', reject);
      p.on('close', (code) => {
        if (code === 0) resolvePromise((JSON.parse(out) as { calls: number }).calls);
        else reject(new Error(`client process exited with ${String(code)}`));
      });
    });
  }));
  return counts.reduce((a, b) => a + b, 0) / (ms / 1000);
}


export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-bench-');
  const stateDir = join(work, 's');
  let daemon: ChildProcess | undefined;
  const clients: VirtkitClient[] = [];
  try {
    const guest = await buildGuest({ dir: join(work, 'g'), name: 'bench' });
    const guestText = await readFile(guest.definitionPath, 'utf8');
    const baseDir = dirname(guest.definitionPath);
    const named = (name: string): string => guestText.replace(/^name: .*$/m, `name: ${name}`);

    daemon = await startDaemon(stateDir);
    const socket = join(stateDir, 'virtkit.sock');
    const one = connect(socket, { maxSockets: 1 });
    clients.push(one);
    // libvirt first, while nothing of virtkit's runs: same machine, same window.
    const libvirt = measureLibvirt(IdleDomains + 1);
    if (libvirt === undefined) console.log('libvirt: not installed, ratio not measured');
    else {
      console.log(`libvirt ${(libvirt.version / 1e6).toFixed(0)}.${((libvirt.version / 1e3) % 1e3).toFixed(0)} through its Python binding at ${libvirt.uri}`
        + `${libvirt.uri.startsWith('test:') ? ' (the in-process test driver: no RPC, so its rates are not comparable)' : ''}:`
        + ` dom.info ${libvirt.info.toFixed(0)} calls/s, listAllDomains (${libvirt.domains} domains) ${libvirt.list.toFixed(0)} calls/s`);
    }

    await one.define(named('bench'), { baseDir });
    for (let i = 0; i < IdleDomains; i++) await one.define(named(`idle${i}`), { baseDir });
    await rate([one], (c) => c.list({ all: true }), 300); // warm-up
    const listOne = await rate([one], (c) => c.list({ all: true }), 2000);
    const infoOne = await rate([one], (c) => c.info('bench'), 2000);
    // The floor on this machine: Node's own HTTP server answering a constant over the same
    // kind of socket, called by the same client.
    const floor = await bareHttpRate(join(work, 'bare.sock'));
    console.log(ratioLine('info, one connection, against a bare Node HTTP server', infoOne, floor, 'calls/s', 'bare http'));
    // 50 concurrent clients, spread over a few client processes: one Node process driving all
    // of them saturates its core before the daemon does.
    const listMany = await aggregateRate(socket, 'list', 50, 2000);
    const infoMany = await aggregateRate(socket, 'info', 50, 2000);
    console.log(`list, 50 concurrent clients in ${ClientProcesses} processes: virtkit ${listMany.toFixed(0)} calls/s aggregate (${(listMany / listOne).toFixed(2)}x one connection)`);
    console.log(`info, 50 concurrent clients in ${ClientProcesses} processes: virtkit ${infoMany.toFixed(0)} calls/s aggregate (${(infoMany / infoOne).toFixed(2)}x one connection)`);
    if (libvirt !== undefined) {
      console.log(targetLine('1 info, one connection, >= 2x libvirt dom.info', infoOne >= 2 * libvirt.info,
        ratioLine('info', infoOne, libvirt.info, 'calls/s', 'libvirt')));
      console.log(targetLine(`1 list (${IdleDomains + 1} domains), one connection, >= 2x libvirt listAllDomains`, listOne >= 2 * libvirt.list,
        ratioLine('list', listOne, libvirt.list, 'calls/s', 'libvirt')));
      console.log(targetLine('1 info, 50 clients, >= 4x libvirt one connection', infoMany >= 4 * libvirt.info,
        ratioLine('info x50', infoMany, libvirt.info, 'calls/s', 'libvirt one connection')));
    }

    // Start and destroy latency: the daemon against the same QEMU driven directly.
    const caps = await probeCapabilities({ cacheDir: join(stateDir, 'cache') });
    const def = parseDefinition(named('bare'), { baseDir });
    const { accel } = resolveAccel(def.accel, caps);
    const bareStart: number[] = [];
    const bareDestroy: number[] = [];
    const vkStart: number[] = [];
    const vkDestroy: number[] = [];
    for (let i = 0; i < 5; i++) {
      const runDir = join(work, `bare${i}`);
      let proc: QemuProcess | undefined;
      bareStart.push(await timeMs(async () => {
        proc = await QemuProcess.launchCommand({ command: buildCommand(def, { binary: caps.binary, accel, runDir }), runDir });
      }));
      bareDestroy.push(await timeMs(() => proc!.destroy()));
      vkStart.push(await timeMs(() => one.start('bench')));
      vkDestroy.push(await timeMs(() => one.destroy('bench')));
    }
    console.log(ratioLine('start -> running (median of 5)', median(vkStart), median(bareStart), 'ms', 'bare QEMU QMP-ready'));
    console.log(`  start overhead over bare QEMU: ${(median(vkStart) - median(bareStart)).toFixed(1)} ms (libvirt: virsh start ~350 ms per the issue)`);
    console.log(ratioLine('destroy -> shutoff (median of 5)', median(vkDestroy), median(bareDestroy), 'ms', 'bare QEMU quit'));
    console.log(`  destroy overhead over bare QEMU: ${(median(vkDestroy) - median(bareDestroy)).toFixed(1)} ms (libvirt: virsh destroy ~1.8 s per the issue)`);
  } finally {
    for (const c of clients) c.close();
    daemon?.kill('SIGKILL');
    // Any QEMU still running from the bench's directories goes with them.
    for (const { pid } of await qemuProcessesUnder(work)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await rm(work, { recursive: true, force: true });
  }
}
