/**
 * Guest-to-guest throughput: busybox `nc` sending 16 MiB from one guest kit guest to another,
 * through a virtkit nat network (taps on a bridge, vhost off: these hosts have no
 * /dev/vhost-net) against QEMU user networking (the sender reaches the receiver through a
 * hostfwd port on the host, the only way between two slirp guests). Everything runs in a
 * network namespace made for the run; the daemon runs inside it. Timed on the host from the
 * sender's command to its end marker on the console; median of RUNS. Under TCG the figures
 * are the emulator's, so the ratio is what matters. Also: NIC hot-plug (attach-interface
 * --network) to the guest's DHCP lease.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { connect, type VirtkitClient } from '../src/client/index.js';
import { buildGuest, READY_MARKER } from '../src/guestkit/index.js';
import { median, ratioLine } from './stats.js';

const RUNS = 3;
const MiB = 16;
const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'virtkit.js');

class Shell {
  out = '';
  n = 0;
  constructor(readonly stream: Duplex) {
    stream.on('data', (c: Buffer) => { this.out = (this.out + c.toString('latin1')).slice(-65536); });
  }

  async waitFor(text: string, timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no "${text}" on the guest console`);
      await sleep(5);
    }
  }

  /** Runs a command and waits for its end; returns the milliseconds it took. */
  async run(command: string, timeoutMs?: number): Promise<number> {
    const n = ++this.n;
    const t0 = process.hrtime.bigint();
    this.stream.write(`${command}; echo D$((${n}+5000))\n`);
    await this.waitFor(`D${n + 5000}\r\n`, timeoutMs);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }

  /** Starts a command in the background (the receiver). */
  background(command: string): void {
    this.stream.write(`(${command}) >/dev/null 2>&1 &\n`);
  }
}

export async function run(): Promise<void> {
  const ns = `vk-bench-${randomBytes(3).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), 'vk-netbench-'));
  const stateDir = await mkdtemp('/tmp/vkb-');
  let daemon: ChildProcess | undefined;
  let client: VirtkitClient | undefined;
  const streams: Duplex[] = [];
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    await buildGuest({ dir: join(dir, 'guest'), name: 'nb', acpi: false });
    const base = YAML.parse(await readFile(join(dir, 'guest', 'guest.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    for (const k of ['kernel', 'initrd']) base['boot']![k] = join(dir, 'guest', String(base['boot']![k]));
    daemon = spawn('ip', ['netns', 'exec', ns, process.execPath, cli, 'daemon', '--state-dir', stateDir, '--log-level', 'warn'], { stdio: 'ignore' });
    client = connect(join(stateDir, 'virtkit.sock'));
    for (let i = 0; i < 300 && !(await client.daemonInfo().then(() => true, () => false)); i++) await sleep(50);
    const c = client;
    await c.networkDefine({ name: 'bench', mode: 'nat', subnet: '10.77.0.0/24' });
    await c.networkStart('bench');
    const guests: [string, unknown[]][] = [
      ['tap1', [{ network: 'bench', vhost: 'off' }]], ['tap2', [{ network: 'bench', vhost: 'off' }]],
      ['user1', [{}]], ['user2', [{ hostfwd: ['tcp::15001-:5001'] }]],
    ];
    const shells = new Map<string, Shell>();
    for (const [name, nics] of guests) {
      await c.define(YAML.stringify({ ...base, name, memory: '256MiB', nics }));
      await c.start(name);
    }
    for (const [name] of guests) {
      const stream = await c.openConsole(name, 'write');
      streams.push(stream);
      const sh = new Shell(stream);
      shells.set(name, sh);
      const log = async (): Promise<string> => c.consoleLog(name);
      for (let i = 0; i < 1200 && !(await log()).includes(READY_MARKER); i++) await sleep(100);
      stream.write('\n');
    }
    // The tap guests take their addresses from dnsmasq.
    const script = "printf '#!/bin/sh\\n[ \"$1\" = bound ] && ip addr flush dev $interface && ip addr add $ip/$mask dev $interface\\nexit 0\\n' > /tmp/d.sh; chmod +x /tmp/d.sh";
    for (const g of ['tap1', 'tap2']) {
      await shells.get(g)!.run(script);
      await shells.get(g)!.run('udhcpc -i eth0 -q -n -t 5 -s /tmp/d.sh >/dev/null 2>&1', 60_000);
    }
    const lease = (await c.domainAddresses('tap2')).interfaces[0]!.address!.split('/')[0]!;
    const send = `dd if=/dev/zero bs=64k count=${MiB * 16} 2>/dev/null | nc`;
    const measure = async (receiver: Shell, sender: Shell, target: string): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        receiver.background('rm -f /tmp/rcv; nc -l -p 5001 | wc -c > /tmp/rcv');
        await sleep(300);
        times.push(await sender.run(`${send} ${target}`));
      }
      // The last run's bytes all arrived (a refused connection would time nothing).
      await sleep(500);
      await receiver.run('cat /tmp/rcv');
      if (!receiver.out.includes(`${MiB * 1024 * 1024}`)) throw new Error(`the receiver did not get ${MiB} MiB: ${receiver.out.slice(-200)}`);
      return times;
    };
    const tap = median(await measure(shells.get('tap2')!, shells.get('tap1')!, `${lease} 5001`));
    const user = median(await measure(shells.get('user2')!, shells.get('user1')!, '10.0.2.2 15001'));
    // NIC hot-plug to lease: from the attach request until udhcpc in the guest, already waiting
    // for the new interface, has its lease. Unplugged (not timed) between runs.
    const plugTimes: number[] = [];
    const sh1 = shells.get('tap1')!;
    for (let i = 0; i < RUNS; i++) {
      const n = ++sh1.n;
      sh1.stream.write(`(while [ ! -e /sys/class/net/eth1 ]; do usleep 2000; done; ip link set eth1 up; udhcpc -i eth1 -q -n -t 10 -s /tmp/d.sh >/dev/null 2>&1 && echo LEASED$((${n}+7000))) &\n`);
      await sleep(200);
      const t0 = process.hrtime.bigint();
      const change = await c.attachInterface('tap1', { network: 'bench', live: true });
      await sh1.waitFor(`LEASED${n + 7000}`, 60_000);
      plugTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await c.detachInterface('tap1', change.id, { live: true });
    }
    console.log(`NIC hot-plug to DHCP lease (attach-interface --network, udhcpc waiting in the guest): median ${median(plugTimes).toFixed(0)} ms of ${RUNS} (no reference tool here: libvirt is not installed)`);
    const mbps = (ms: number): number => (MiB * 8 * 1.048576) / (ms / 1000);
    console.log(ratioLine(`guest-to-guest throughput, ${MiB} MiB over busybox nc (Mbit/s, higher is better)`, mbps(tap), mbps(user), 'Mbit/s', 'QEMU user networking via hostfwd'));
    console.log(`  tap path (nat network, vhost off): median ${tap.toFixed(0)} ms; user networking: median ${user.toFixed(0)} ms; vhost on: not measured (no /dev/vhost-net here)`);
  } finally {
    for (const s of streams) s.destroy();
    if (client) {
      for (const g of ['tap1', 'tap2', 'user1', 'user2']) await client.destroy(g).catch(() => undefined);
      await client.networkDestroy('bench', true).catch(() => undefined);
      client.close();
    }
    daemon?.kill('SIGTERM');
    await sleep(500);
    // A run that failed half-way may leave its dnsmasq (pid file in this run's state dir).
    for (const line of execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')) {
      if (line.includes('dnsmasq') && line.includes(stateDir)) {
        try { process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL'); } catch { /* gone */ }
      }
    }
    execFileSync('ip', ['netns', 'del', ns]);
    await rm(dir, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  }
}
