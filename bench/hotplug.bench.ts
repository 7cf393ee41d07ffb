/**
 * Hot-plug of a disk to visible-in-guest latency: `attach-disk` through the daemon's API
 * (checks, QMP blockdev-add x2 + device_add, the store transaction) against the same guest argv
 * run by bare QEMU with the same three QMP commands sent by hand. Both are timed from the
 * request until the guest's shell, already waiting in a loop for /sys/block/vda, prints its
 * marker; each run ends with an unplug (not timed) so the next one plugs the same disk again.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VirtkitClient } from '../src/client/index.js';
import { parseDefinition } from '../src/conf/index.js';
import { buildGuest, READY_MARKER } from '../src/guestkit/index.js';
import { buildCommand, probeCapabilities, resolveAccel, runPaths } from '../src/qemu/index.js';
import { QemuProcess } from '../src/qemu/process.js';
import { startBenchDaemon } from './daemon-process.js';
import { median, ratioLine } from './stats.js';

const RUNS = 5;

/** A console that collects what the guest prints and runs one "wait for the disk" loop per run. */
class GuestShell {
  private out = '';
  private n = 0;
  constructor(private readonly stream: Duplex) {
    stream.on('data', (c: Buffer) => { this.out = (this.out + c.toString('latin1')).slice(-4096); });
  }

  async waitFor(text: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no "${text}" on the guest console`);
      await sleep(2);
    }
  }

  /** Starts the guest's wait loop, then times `plug` until the guest saw the disk. */
  async timePlug(plug: () => Promise<unknown>): Promise<number> {
    const n = ++this.n;
    this.stream.write(`echo W$((${n}+1000)); while [ ! -e /sys/block/vda ]; do usleep 2000; done; echo SEEN$((${n}+1000))\n`);
    await this.waitFor(`W${n + 1000}\r\n`);
    const t0 = process.hrtime.bigint();
    await plug();
    await this.waitFor(`SEEN${n + 1000}\r\n`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }
}

const startDaemon = (stateDir: string): Promise<{ proc: ChildProcess; client: VirtkitClient }> => startBenchDaemon(stateDir);

async function openSocket(path: string): Promise<Duplex> {
  for (let i = 0; i < 200; i++) {
    const sock = await new Promise<Duplex | undefined>((r) => {
      const s = netConnect(path);
      s.once('connect', () => r(s));
      s.once('error', () => r(undefined));
    });
    if (sock) return sock;
    await sleep(25);
  }
  throw new Error(`cannot connect to ${path}`);
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'virtkit-bench-hotplug-'));
  let daemon: ChildProcess | undefined;
  let bare: QemuProcess | undefined;
  try {
    const guest = await buildGuest({ dir: join(work, 'guest'), name: 'hotplugbench' });
    const image = join(work, 'data.raw');
    await writeFile(image, Buffer.alloc(8 * 1024 * 1024));
    const text = await readFile(guest.definitionPath, 'utf8');
    const def = parseDefinition(text, { baseDir: dirname(guest.definitionPath) });

    // virtkit: the daemon, the API's attach-disk and detach-disk
    const started = await startDaemon(join(work, 'state'));
    daemon = started.proc;
    const c = started.client;
    await c.define(text, { baseDir: dirname(guest.definitionPath) });
    await c.start(def.name);
    const vkConsole = await c.openConsole(def.name, 'write', { history: true });
    const vkShell = new GuestShell(vkConsole);
    await vkShell.waitFor(READY_MARKER);

    // bare QEMU: the same argv, the same QMP by hand
    const caps = await probeCapabilities({ cacheDir: join(work, 'cache') });
    const { accel } = resolveAccel(def.accel, caps);
    const runDir = join(work, 'bare-run');
    bare = await QemuProcess.launchCommand({ command: buildCommand(def, { binary: caps.binary, accel, runDir }), runDir });
    const bareConsole = await openSocket(runPaths(runDir).consoleSocket);
    await bare.resume();
    const bareShell = new GuestShell(bareConsole);
    await bareShell.waitFor(READY_MARKER);
    const qmp = bare.qmp;
    const cache = { direct: false, 'no-flush': false };
    const barePlug = async (): Promise<void> => {
      await qmp.executeUntyped('blockdev-add', { driver: 'file', filename: image, 'node-name': 'vdb-file', 'read-only': false, cache });
      await qmp.executeUntyped('blockdev-add', { driver: 'raw', 'node-name': 'vdb-format', file: 'vdb-file', 'read-only': false, cache });
      await qmp.executeUntyped('device_add', { driver: 'virtio-blk-pci', id: 'vdb', drive: 'vdb-format', 'write-cache': 'on' });
    };
    const bareUnplug = async (): Promise<void> => {
      const deleted = new Promise<void>((r) => {
        const off = bare!.onQmpEvent((ev) => { if (ev.event === 'DEVICE_DELETED' && (ev.data as { device?: string }).device === 'vdb') { off(); r(); } });
      });
      await qmp.executeUntyped('device_del', { id: 'vdb' });
      await deleted;
      await qmp.executeUntyped('blockdev-del', { 'node-name': 'vdb-format' });
      await qmp.executeUntyped('blockdev-del', { 'node-name': 'vdb-file' });
    };

    console.log(`guest kit guest, accel ${accel}; ${RUNS} plugs each, alternating; timed from the request to the guest seeing /sys/block/vda`);
    const ours: number[] = [];
    const ref: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const o = await vkShell.timePlug(() => c.attachDisk(def.name, { source: image, target: 'vdb', live: true }));
      await c.detachDisk(def.name, 'vdb');
      const b = await bareShell.timePlug(barePlug);
      await bareUnplug();
      // the first round warms both up (page cache, the guest's first PCI rescan): not counted
      if (i > 0) { ours.push(o); ref.push(b); }
    }
    const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(`virtkit attach-disk to visible in guest (ms): ${fmt(ours)}`);
    console.log(`bare QMP hot-plug to visible in guest (ms):  ${fmt(ref)}`);
    console.log(ratioLine('disk hot-plug to visible in guest, median', median(ours), median(ref), 'ms', 'bare QEMU + QMP'));
    vkConsole.destroy();
    bareConsole.destroy();
    await c.destroy(def.name);
    c.close();
  } finally {
    await bare?.destroy().catch(() => undefined);
    daemon?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
