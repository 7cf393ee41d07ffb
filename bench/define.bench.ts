/**
 * Durable defines: define + undefine x100 one after the other through the typed client,
 * against the SQLite floor measured in the same run (the same number of commits, 200, of one
 * small row each, WAL with synchronous=FULL, on the same filesystem); 50 clients defining at
 * once (their commits share fsyncs), against libvirt's sequential define + undefine rate of
 * the same run; and what each commit writes and syncs, counted with strace on the daemon when
 * strace is installed. Beside them, for what bounds the figures: the same transactions made on
 * the store directly (no daemon, no client) against the same floor, and the daemon's CPU time
 * per operation. Targets: issue 15, target 2 (docs/performance.md).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type VirtkitClient } from '../src/client/index.js';
import { parseDefinition } from '../src/conf/index.js';
import { buildGuest } from '../src/guestkit/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { startBenchDaemon } from './daemon-process.js';
import { measureLibvirt, sqliteCommitFloorMs } from './references.js';
import { median, ratioLine, targetLine, timeMs } from './stats.js';

const Rounds = 3;
const Clients = 50;

interface SyscallCounts { fsync: number; pwrite: number }

/** Counts the fsync/fdatasync and pwrite64 calls of `pid` (all threads) while `fn` runs; undefined without strace. */
async function countSyscalls(pid: number, dir: string, fn: () => Promise<void>): Promise<SyscallCounts | undefined> {
  if (spawnSync('strace', ['-V'], { stdio: 'ignore' }).status !== 0) return undefined;
  const out = join(dir, `strace-${Date.now()}.txt`);
  const tracer = spawn('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync,pwrite64', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => tracer.once('exit', (code) => resolve(code)));
  // strace attaches to each thread before it counts anything: give it a moment.
  await sleep(500);
  if (tracer.exitCode !== null) return undefined;
  await fn();
  tracer.kill('SIGINT');
  await exited;
  const text = await readFile(out, 'utf8').catch(() => '');
  const calls = (name: string): number => Number(new RegExp(`^\\s*[\\d.]+\\s+[\\d.]+\\s+\\d+\\s+(\\d+)(?:\\s+\\d+)?\\s+${name}$`, 'm').exec(text)?.[1] ?? 0);
  if (!/syscall/.test(text)) return undefined;
  return { fsync: calls('fsync') + calls('fdatasync'), pwrite: calls('pwrite64') };
}

/** User + system CPU time of `pid` so far, in ms (all its threads). */
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * The store's side of define + undefine x100, without the daemon: the same transactions the
 * manager makes (the domain's nodes, its UUID's entry, the event), on a store in `dir`.
 */
async function storeAloneMs(dir: string, definition: object): Promise<number> {
  const store: Store = openStore(dir);
  const uuids: string[] = [];
  const define = (name: string, uuid: string): Promise<void> => store.transaction(async (tx) => {
    if (await tx.exists(`/domain/${name}`) || (await tx.read(`/uuid/${uuid}`)) !== undefined) throw new Error(`${name} exists`);
    await tx.write(`/domain/${name}/uuid`, uuid);
    await tx.write(`/domain/${name}/definition`, JSON.stringify({ ...definition, name, uuid }));
    await tx.write(`/domain/${name}/status`, '{"state":"shutoff"}');
    await tx.write(`/domain/${name}/autostart`, 'false');
    await tx.write(`/domain/${name}/tainted`, '[]');
    await tx.write(`/uuid/${uuid}`, name);
    await tx.write('/event', JSON.stringify({ type: 'defined', domain: name, uuid, time: new Date().toISOString() }));
  });
  const undefine = (name: string, uuid: string): Promise<void> => store.transaction(async (tx) => {
    await tx.read(`/domain/${name}/uuid`);
    await tx.read(`/domain/${name}/status`);
    await tx.rm(`/domain/${name}`);
    await tx.rm(`/uuid/${uuid}`);
    await tx.write('/event', JSON.stringify({ type: 'undefined', domain: name, uuid, time: new Date().toISOString() }));
  });
  try {
    for (let i = 0; i < 20; i++) {
      const uuid = randomUUID();
      await define(`warm${i}`, uuid);
      await undefine(`warm${i}`, uuid);
    }
    return await timeMs(async () => {
      for (let i = 0; i < 100; i++) {
        uuids.push(randomUUID());
        await define(`d${i}`, uuids[i]!);
      }
      for (let i = 0; i < 100; i++) await undefine(`d${i}`, uuids[i]!);
    });
  } finally {
    await store.close();
  }
}

export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-bench-define-');
  const clients: VirtkitClient[] = [];
  let daemon: Awaited<ReturnType<typeof startBenchDaemon>>['proc'] | undefined;
  try {
    const guest = await buildGuest({ dir: join(work, 'g'), name: 'bench' });
    const guestText = await readFile(guest.definitionPath, 'utf8');
    const baseDir = dirname(guest.definitionPath);
    const named = (name: string): string => guestText.replace(/^name: .*$/m, `name: ${name}`);

    // libvirt first, while nothing of virtkit's runs.
    const libvirt = measureLibvirt(1);
    if (libvirt === undefined) console.log('libvirt: not installed, ratio not measured');
    else console.log(`libvirt at ${libvirt.uri}: define+undefine x100 ${libvirt.defineUndefine100Ms.toFixed(0)} ms`
      + `${libvirt.uri.startsWith('test:') ? ' (the in-process test driver: nothing written to disk, not comparable)' : ''}`);

    const started = await startBenchDaemon(join(work, 's'));
    daemon = started.proc;
    const one = started.client;
    clients.push(one);
    const pair100 = async (prefix: string): Promise<void> => {
      for (let i = 0; i < 100; i++) await one.define(named(`${prefix}${i}`), { baseDir });
      for (let i = 0; i < 100; i++) await one.undefine(`${prefix}${i}`);
    };
    // A daemon lives long: let V8 compile the define path before it is timed.
    for (let i = 0; i < 100; i++) {
      await one.define(named(`warm${i}`), { baseDir });
      await one.undefine(`warm${i}`);
    }

    // Sequential: each round measures the floor right after virtkit, so both see the same disk.
    const ours: number[] = [];
    const floors: number[] = [];
    const alone: number[] = [];
    const daemonCpu: number[] = [];
    const definition = parseDefinition(named('alone'), { baseDir });
    for (let r = 0; r < Rounds; r++) {
      const cpu0 = await cpuMs(daemon.pid!);
      ours.push(await timeMs(() => pair100(`seq${r}-`)));
      daemonCpu.push((await cpuMs(daemon.pid!)) - cpu0);
      const floorDir = join(work, `floor${r}`);
      await mkdir(floorDir);
      floors.push(sqliteCommitFloorMs(floorDir, 200));
      alone.push(await storeAloneMs(join(work, `alone${r}`), definition));
    }
    const seqMs = median(ours);
    const floorMs = median(floors);
    console.log(`define+undefine x100 sequential, each round: virtkit ${ours.map((x) => x.toFixed(0)).join(', ')} ms; `
      + `floor ${floors.map((x) => x.toFixed(0)).join(', ')} ms`);
    console.log(targetLine('2 define+undefine x100 sequential, within 1.5x of the SQLite floor', seqMs <= 1.5 * floorMs,
      ratioLine('define+undefine x100 (median of 3)', seqMs, floorMs, 'ms', '200 SQLite commits (synchronous=FULL)')));
    if (libvirt !== undefined) console.log(ratioLine('define+undefine x100 sequential', seqMs, libvirt.defineUndefine100Ms, 'ms', 'libvirt'));
    console.log(ratioLine('the store alone, the same 200 transactions (no daemon, no client; median of 3)', median(alone), floorMs,
      'ms', '200 SQLite commits'));
    console.log(`daemon CPU time (all threads) per define or undefine: ${(median(daemonCpu) / 200 * 1000).toFixed(0)} us `
      + `(the floor's whole commit: ${(floorMs / 200 * 1000).toFixed(0)} us)`);

    // 50 clients at once: define 50, then undefine them, all at once.
    const many = Array.from({ length: Clients }, () => connect(join(work, 's', 'virtkit.sock'), { maxSockets: 1 }));
    clients.push(...many);
    await Promise.all(many.map((c) => c.daemonInfo()));
    const burst = async (prefix: string): Promise<void> => {
      await Promise.all(many.map((c, i) => c.define(named(`${prefix}${i}`), { baseDir })));
      await Promise.all(many.map((c, i) => c.undefine(`${prefix}${i}`)));
    };
    await burst('pwarm');
    const bursts: number[] = [];
    for (let r = 0; r < Rounds; r++) bursts.push(await timeMs(() => burst(`par${r}-`)));
    const concurrentRate = (2 * Clients) / (median(bursts) / 1000);
    console.log(`define+undefine, ${Clients} clients at once: ${median(bursts).toFixed(0)} ms for ${2 * Clients} operations (median of 3), `
      + `${concurrentRate.toFixed(0)} ops/s aggregate; sequential ${(200 / (seqMs / 1000)).toFixed(0)} ops/s`);
    if (libvirt !== undefined) {
      const theirs = 200 / (libvirt.defineUndefine100Ms / 1000);
      console.log(targetLine(`2 define+undefine with ${Clients} clients, aggregate >= 5x libvirt sequential`, concurrentRate >= 5 * theirs,
        ratioLine(`define/undefine x${Clients} concurrent`, concurrentRate, theirs, 'ops/s', 'libvirt sequential')));
    }

    // What each commit syncs and writes (WAL frames, and the checkpoints' page writes).
    const seqCounts = await countSyscalls(daemon.pid!, work, () => pair100('traced-'));
    if (seqCounts === undefined) {
      console.log('fsyncs per commit: not counted (strace is not installed or cannot attach)');
    } else {
      const burstCounts = await countSyscalls(daemon.pid!, work, () => burst('tracedpar-'));
      // A WAL frame is two pwrite64 calls (its header, its page); checkpoints add the pages copied to store.db.
      await mkdir(join(work, 'floor-traced'));
      const floorCounts = await countSyscalls(process.pid, work, async () => { sqliteCommitFloorMs(join(work, 'floor-traced'), 200); });
      console.log(`fsyncs per commit, sequential: ${(seqCounts.fsync / 200).toFixed(2)} (${seqCounts.fsync} for 200 commits), `
        + `pwrite64 calls per commit ${(seqCounts.pwrite / 200).toFixed(1)}`
        + `${floorCounts === undefined ? '' : `; the floor: ${(floorCounts.fsync / 200).toFixed(2)} fsyncs and ${(floorCounts.pwrite / 200).toFixed(1)} pwrite64 calls per commit`}`);
      if (burstCounts !== undefined) {
        console.log(`fsyncs per commit, ${Clients} clients at once: ${(burstCounts.fsync / (2 * Clients)).toFixed(2)} `
          + `(${burstCounts.fsync} for ${2 * Clients} commits), pwrite64 calls per commit ${(burstCounts.pwrite / (2 * Clients)).toFixed(1)}`);
      }
    }
  } finally {
    for (const c of clients) c.close();
    daemon?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
