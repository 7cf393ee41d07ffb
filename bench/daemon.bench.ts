/**
 * The manager daemon: API call rates on one connection and with 50 concurrent clients (over
 * the typed client's RPC channel, and over the REST routes, each beside a bare Node server
 * speaking the same protocol),
 * start/destroy latency against bare QEMU driven the same way without the daemon (define +
 * undefine: define.bench.ts; the daemon's memory: memory.bench.ts and scale.bench.ts).
 * libvirt is measured in the same run through its Python binding when installed (see
 * references.ts); without it the ratios against libvirt are not measured.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { connect, type VirtkitClient } from '../src/client/index.js';
import { parseDefinition } from '../src/conf/index.js';
import { qemuProcessesUnder } from '../src/daemon/reconcile.js';
import { buildGuest } from '../src/guestkit/index.js';
import { probeCapabilities, resolveAccel } from '../src/qemu/caps.js';
import { buildCommand } from '../src/qemu/command/index.js';
import { QemuProcess } from '../src/qemu/process.js';
import { measureLibvirt } from './references.js';
import { startBenchDaemon } from './daemon-process.js';
import { ClientProcesses, aggregateRate, bareChannelRate, bareHttpRate, cpuPerCall, medianRate, rate } from './call-rates.js';
import { median, ratioLine, targetLine, timeMs } from './stats.js';

/** Defined beside the bench's own domain: list answers for 11 domains. */
const IdleDomains = 10;

async function startDaemon(stateDir: string, nodeFlags: readonly string[] = []): Promise<ChildProcess> {
  const { proc, client } = await startBenchDaemon(stateDir, nodeFlags);
  client.close();
  return proc;
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
    // Calls through the typed client's default transport, the RPC channel (docs/api.md), then
    // the REST routes (one HTTP request per call) for comparison.
    await rate([one], (c) => c.list({ all: true }), 300); // warm-up
    await rate([one], (c) => c.info('bench'), 300);
    // One-second windows of each in turn, three of each, and the median of each: the load of the
    // shared machine moves within seconds, and falls on both alike.
    const listWindows: number[] = [];
    const infoWindows: number[] = [];
    for (let i = 0; i < 3; i++) {
      listWindows.push(await rate([one], (c) => c.list({ all: true }), 1000));
      infoWindows.push(await rate([one], (c) => c.info('bench'), 1000));
    }
    const listOne = median(listWindows);
    const infoOne = median(infoWindows);
    const rest = connect(socket, { maxSockets: 1, transport: 'http' });
    clients.push(rest);
    await rate([rest], (c) => c.info('bench'), 300);
    const infoRest = await medianRate([rest], (c) => c.info('bench'));
    const listRest = await medianRate([rest], (c) => c.list({ all: true }));
    // The floors on this machine: bare Node servers answering a constant over the same kind of
    // socket, called by the same client: one speaking HTTP, one the channel's framing.
    const floor = await bareHttpRate(join(work, 'bare.sock'));
    const channelFloor = await bareChannelRate(join(work, 'bare-channel.sock'));
    console.log(ratioLine('info, one connection, RPC channel, against a bare Node server speaking its framing', infoOne, channelFloor, 'calls/s', 'bare channel'));
    console.log(ratioLine('info, one connection, REST routes, against a bare Node HTTP server', infoRest, floor, 'calls/s', 'bare http'));
    console.log(`list, one connection, REST routes: virtkit ${listRest.toFixed(0)} calls/s (RPC channel ${listOne.toFixed(0)})`);
    // CPU per call of each side (load-independent, unlike the rates above).
    const cpu = {
      infoRpc: await cpuPerCall(daemon.pid!, one, (c) => c.info('bench')),
      listRpc: await cpuPerCall(daemon.pid!, one, (c) => c.list({ all: true })),
      infoRest: await cpuPerCall(daemon.pid!, rest, (c) => c.info('bench')),
      listRest: await cpuPerCall(daemon.pid!, rest, (c) => c.list({ all: true })),
    };
    for (const [what, { daemonUs, clientUs }] of Object.entries(cpu)) {
      console.log(`CPU per call, ${what}: daemon ${daemonUs.toFixed(1)} us, client ${clientUs.toFixed(1)} us (10,000 calls one after the other)`);
    }
    // 50 concurrent clients (a connection each), spread over a few client processes: one Node
    // process driving all of them saturates its core before the daemon does.
    const listMany = await aggregateRate(socket, 'list', 50, 2000);
    const infoMany = await aggregateRate(socket, 'info', 50, 2000);
    const infoManyRest = await aggregateRate(socket, 'info', 50, 2000, 'http');
    console.log(`list, 50 concurrent clients in ${ClientProcesses} processes: virtkit ${listMany.toFixed(0)} calls/s aggregate (${(listMany / listOne).toFixed(2)}x one connection)`);
    console.log(`info, 50 concurrent clients in ${ClientProcesses} processes: virtkit ${infoMany.toFixed(0)} calls/s aggregate (${(infoMany / infoOne).toFixed(2)}x one connection; `
      + `REST routes ${infoManyRest.toFixed(0)} calls/s)`);
    if (libvirt !== undefined) {
      // libvirt again, after virtkit's rates: on a shared machine the load moves within a run,
      // so the ratios take the mean of libvirt before and after.
      const again = measureLibvirt(IdleDomains + 1);
      const lvInfo = again === undefined ? libvirt.info : (libvirt.info + again.info) / 2;
      const lvList = again === undefined ? libvirt.list : (libvirt.list + again.list) / 2;
      if (again !== undefined) {
        console.log(`libvirt again after virtkit's rates: dom.info ${again.info.toFixed(0)} calls/s, listAllDomains ${again.list.toFixed(0)} calls/s; the ratios use the mean`);
      }
      console.log(targetLine('1 info, one connection, >= 2x libvirt dom.info', infoOne >= 2 * lvInfo,
        ratioLine('info', infoOne, lvInfo, 'calls/s', 'libvirt')));
      console.log(targetLine(`1 list (${IdleDomains + 1} domains), one connection, >= 2x libvirt listAllDomains`, listOne >= 2 * lvList,
        ratioLine('list', listOne, lvList, 'calls/s', 'libvirt')));
      console.log(targetLine('1 info, 50 clients, >= 4x libvirt one connection', infoMany >= 4 * lvInfo,
        ratioLine('info x50', infoMany, lvInfo, 'calls/s', 'libvirt one connection')));
      console.log(`  REST routes against libvirt: info ${(infoRest / lvInfo).toFixed(2)}x, list ${(listRest / lvList).toFixed(2)}x, info x50 ${(infoManyRest / lvInfo).toFixed(2)}x`);
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
