/**
 * Networks on real guests, all inside a network namespace this file makes (nothing is sent
 * beyond it, nothing on the host's own interfaces is touched): a daemon started in the
 * namespace, a nat network with dnsmasq, two guest kit guests on it that take DHCP leases,
 * resolve each other by name through dnsmasq and ping each other and the bridge; an isolated
 * network with no route out; a bridge-mode network on a bridge the test made; the refusals
 * (overlapping subnet, unknown network, vhost: on without /dev/vhost-net, a wrong bandwidth
 * unit, destroying a network in use) leaving nothing behind; taps gone after kill -9 of QEMU
 * and of the daemon followed by a restart that adopts the network's dnsmasq. Before the
 * namespace is deleted, it is checked for leftovers: no tap, no nft table, no dnsmasq.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ExitCodes } from '../../src/cli/exit-codes.js';
import { policerAvailable } from '../../src/net/index.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { CliPath, DaemonHarness, waitFor } from './daemon-harness.js';

const NS = `vk-test-${randomBytes(4).toString('hex')}`;
const Ready = 'virtkit-guest: ready';
let d: DaemonHarness;
let dir: string;
const consoles = new Map<string, { stream: Duplex; output: string; marks: number }>();

function inNs(cmd: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', NS, cmd, ...args], { encoding: 'utf8' });
}

async function startDaemon(): Promise<void> {
  const proc = spawn('ip', ['netns', 'exec', NS, process.execPath, CliPath, 'daemon', '--state-dir', d.stateDir, '--log-level', 'debug'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  d.proc = proc;
  const c = d.client();
  await waitFor('the daemon in the namespace to answer', async () => {
    if (proc.exitCode !== null) throw new Error(`daemon exited: ${stderr}`);
    return (await c.daemonInfo().catch(() => undefined))?.pid === proc.pid;
  }, 30_000, 50);
}

async function ok(args: string[]): Promise<string> {
  const r = await d.cli(args);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
}

/** A refusal: the exit code and the error code the CLI prints in its message. */
async function refused(args: string[], code: string): Promise<string> {
  const r = await d.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(0);
  expect(r.stderr).toContain(code);
  return r.stderr;
}

async function openConsole(name: string): Promise<void> {
  const stream = await d.client().openConsole(name, 'write');
  const con = { stream, output: '', marks: 0 };
  stream.on('data', (chunk: Buffer) => { con.output += chunk.toString('utf8'); });
  consoles.set(name, con);
}

/** Runs a shell command in a guest; resolves with what it printed. */
async function sh(name: string, command: string, timeoutMs = 30_000): Promise<string> {
  const con = consoles.get(name)!;
  const n = ++con.marks;
  con.stream.write(`echo B$((${n}*7)); ${command}; echo E$((${n}*7))\n`);
  const begin = `B${n * 7}\r\n`;
  const end = `E${n * 7}\r\n`;
  await waitFor(`"${command}" to finish in ${name}`, async () => con.output.includes(end), timeoutMs, 50);
  return con.output.slice(con.output.indexOf(begin) + begin.length, con.output.indexOf(end)).replace(/\r/g, '');
}

/** A guest kit guest on these NICs; its /init asks for a DHCP lease under the guest's name (virtkit.net=dhcp, virtkit.hostname, docs/guestkit.md). */
async function guestDefinition(name: string, nics: unknown[]): Promise<string> {
  const base = testGuestDefinition();
  const def = YAML.parse(await readFile(base, 'utf8')) as Record<string, Record<string, unknown>>;
  const boot = def['boot']!;
  for (const key of ['kernel', 'initrd']) boot[key] = resolve(dirname(base), String(boot[key]));
  boot['cmdline'] = `${String(boot['cmdline'] ?? '')} virtkit.net=dhcp virtkit.hostname=${name}`.trim();
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, YAML.stringify({ ...def, name, nics }));
  return file;
}

function ourTaps(): string[] {
  return (JSON.parse(inNs('ip', ['-j', '-d', 'link', 'show'])) as { ifname: string; ifalias?: string }[])
    .filter((l) => l.ifalias?.startsWith('virtkit:')).map((l) => l.ifname);
}

function nftTables(): string[] {
  return inNs('nft', ['list', 'tables']).split('\n').filter((l) => l.trim() !== '');
}

function dnsmasqPids(): number[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')
    .filter((l) => l.includes('dnsmasq') && l.includes(d.stateDir)).map((l) => Number(l.trim().split(/\s+/)[0]));
}

beforeAll(async () => {
  execFileSync('ip', ['netns', 'add', NS]);
  inNs('ip', ['link', 'set', 'lo', 'up']);
  dir = await mkdtemp(join(tmpdir(), 'vk-net-'));
  d = await DaemonHarness.create();
  await startDaemon();
  await writeFile(join(dir, 'lab.yaml'), 'name: lab\nmode: nat\nsubnet: 10.213.7.0/24\ndomain: lab.test\n');
  await ok(['net-define', join(dir, 'lab.yaml')]);
  await ok(['net-start', 'lab']);
  for (const g of ['g1', 'g2']) {
    await ok(['define', await guestDefinition(g, [{ network: 'lab', bandwidth: { inbound: '100Mbit' } }])]);
    await ok(['start', g]);
  }
  for (const g of ['g1', 'g2']) {
    await d.waitConsole(g, Ready);
    await openConsole(g);
  }
}, 180_000);

afterAll(async () => {
  for (const c of consoles.values()) c.stream.destroy();
  let leaks: string[] = [];
  if (d) {
    for (const g of ['g1', 'g2', 'g3']) await d.cli(['destroy', g]);
    for (const n of ['lab', 'iso', 'hostbr']) await d.cli(['net-destroy', n, '--force']);
    leaks = [...ourTaps(), ...nftTables(), ...dnsmasqPids().map(String)];
    // A failed case may leave this run's dnsmasq (its pid file is in this state dir): it must not outlive the test.
    for (const pid of dnsmasqPids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await d.cleanup();
  }
  execFileSync('ip', ['netns', 'del', NS]);
  await rm(dir, { recursive: true, force: true });
  expect(leaks, 'taps, nft tables or dnsmasq left in the namespace').toEqual([]);
}, 60_000);

describe.sequential('networks in a namespace of their own', { timeout: 120_000 }, () => {
  it('two guests on a nat network take leases, resolve each other by name and ping each other and the bridge', async () => {
    // The guest kit's /init took the leases (udhcpc with its default script); the default route
    // and resolv.conf are the lease's, not user networking's 10.0.2.x.
    await waitFor('both guests\' leases', async () =>
      (JSON.parse(await ok(['net-dhcp-leases', 'lab', '--json'])) as { domain?: string }[]).filter((l) => l.domain !== undefined).length === 2, 60_000, 250);
    expect(await sh('g1', 'ip route show default')).toContain('via 10.213.7.1');
    expect(await sh('g1', 'cat /etc/resolv.conf')).toContain('nameserver 10.213.7.1');
    const leases = JSON.parse(await ok(['net-dhcp-leases', 'lab', '--json'])) as { ip: string; hostname?: string; domain?: string }[];
    expect(leases.map((l) => l.domain).sort()).toEqual(['g1', 'g2']);
    const g2ip = leases.find((l) => l.domain === 'g2')!.ip;
    expect(g2ip).toMatch(/^10\.213\.7\./);
    const addrs = JSON.parse(await ok(['domifaddr', 'g2', '--json'])) as { address?: string; tap?: string }[];
    expect(addrs[0]!.address).toBe(`${g2ip}/24`);
    // domiflist as virsh: Type network, Source the network's name.
    expect(await ok(['domiflist', 'g2'])).toMatch(/^\s*net0\s+network\s+lab\s+virtio\s/m);
    // dominfo: vhost: auto resolved at start is no pending change, and each NIC's path is shown.
    const info = await ok(['dominfo', 'g2']);
    expect(info).toMatch(/^Definition:\s+live = saved$/m);
    expect(info).toMatch(/^NIC net0:\s+network lab, tap \S+, vhost (on|off) /m);
    expect(await sh('g1', 'nslookup g2 10.213.7.1')).toContain(g2ip);
    expect(await sh('g1', `ping -c 2 -W 5 ${g2ip} >/dev/null 2>&1; echo rc=$?`, 30_000)).toContain('rc=0');
    expect(await sh('g2', 'ping -c 2 -W 5 10.213.7.1 >/dev/null 2>&1; echo rc=$?', 30_000)).toContain('rc=0');
    // The bandwidth limit is on the tap, as tc shows it.
    expect(inNs('tc', ['qdisc', 'show', 'dev', addrs[0]!.tap!])).toContain('tbf');
    expect(JSON.parse(await ok(['net-info', 'lab', '--json']))).toMatchObject({ active: true, domains: ['g1', 'g2'] });
    // Each lease was an event of the network, with the address, MAC and host name.
    const events = (await ok(['event', '--since', '0', '--loop', '--timeout', '2', '--json', '--domain', 'lab'])).trim().split('\n')
      .map((l) => JSON.parse(l) as { type: string; reason?: string });
    expect(events.map((e) => e.type)).toEqual(['net-started', 'net-lease', 'net-lease']);
    expect(events.some((e) => e.reason?.startsWith(`${g2ip} `) && e.reason.endsWith(' g2'))).toBe(true);
  });

  it('an isolated network has no route out: no router handed out, forwarding dropped', async () => {
    await writeFile(join(dir, 'iso.yaml'), YAML.stringify({ name: 'iso', mode: 'isolated', subnet: '10.213.8.0/24' }));
    await ok(['net-define', join(dir, 'iso.yaml')]);
    await ok(['net-start', 'iso']);
    const routes = JSON.parse(inNs('ip', ['-j', 'route'])) as { dst: string; dev: string }[];
    expect(routes.find((r) => r.dst === '10.213.8.0/24')?.dev).toBe('vkbr-iso');
    expect(routes.some((r) => r.dst === 'default')).toBe(false);
    const table = inNs('nft', ['list', 'table', 'ip', 'virtkit-iso']);
    expect(table).toMatch(/iifname "vkbr-iso" drop/);
    expect(table).not.toContain('masquerade');
    const pid = (JSON.parse(await ok(['net-info', 'iso', '--json'])) as { dnsmasqPid: number }).dnsmasqPid;
    expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).toContain('--dhcp-option=option:router\0');
  });

  it('a bridge network joins guests to a bridge the test made; a missing bridge is refused', async () => {
    inNs('ip', ['link', 'add', 'vktestbr', 'type', 'bridge']);
    await writeFile(join(dir, 'hostbr.yaml'), 'name: hostbr\nmode: bridge\nbridge: vktestbr\n');
    await ok(['net-define', join(dir, 'hostbr.yaml')]);
    await ok(['net-start', 'hostbr']);
    await ok(['define', await guestDefinition('g3', [{ network: 'hostbr', vhost: 'off' }])]);
    await ok(['start', 'g3']);
    const tap = (JSON.parse(await ok(['domifaddr', 'g3', '--json'])) as { tap: string }[])[0]!.tap;
    expect((JSON.parse(inNs('ip', ['-j', 'link', 'show', tap])) as { master?: string }[])[0]!.master).toBe('vktestbr');
    await ok(['destroy', 'g3']);
    await waitFor('g3\'s tap to go', async () => !ourTaps().includes(tap), 10_000);
    await writeFile(join(dir, 'nobr.yaml'), 'name: nobr\nmode: bridge\nbridge: vknosuchbr\n');
    await ok(['net-define', join(dir, 'nobr.yaml')]);
    await refused(['net-start', 'nobr'], 'network.invalid');
    await ok(['net-undefine', 'nobr']);
    await ok(['net-destroy', 'hostbr']);
    inNs('ip', ['link', 'del', 'vktestbr']);
  });

  it('attach-interface --network plugs a NIC with its own tap on the bridge; detach removes the tap', async () => {
    const before = ourTaps().length;
    expect(await ok(['attach-interface', 'g1', '--network', 'lab', '--live'])).toMatch(/attached/);
    const nic = (JSON.parse(await ok(['domifaddr', 'g1', '--json'])) as { nic: string; tap?: string }[]).find((i) => i.nic !== 'net0')!;
    expect((JSON.parse(inNs('ip', ['-j', 'link', 'show', nic.tap!])) as { master?: string }[])[0]!.master).toBe('vkbr-lab');
    await waitFor('eth1 in the guest', async () => (await sh('g1', 'ls /sys/class/net')).includes('eth1'), 20_000);
    expect(await ok(['detach-interface', 'g1', nic.nic, '--live'])).toMatch(/detached/);
    expect(ourTaps()).toHaveLength(before);
    await refused(['attach-interface', 'g1', '--network', 'nosuch', '--live'], 'not defined');
    expect(ourTaps()).toHaveLength(before);
  });

  it('bad input is refused with typed errors and leaves nothing behind', async () => {
    const before = { taps: ourTaps().sort(), tables: nftTables() };
    await writeFile(join(dir, 'dup.yaml'), 'name: dup\nmode: nat\nsubnet: 10.213.7.128/25\n');
    await refused(['net-define', join(dir, 'dup.yaml')], 'overlaps network "lab"');
    await writeFile(join(dir, 'out.yaml'), 'name: out\nmode: nat\nsubnet: 10.213.9.0/24\ndhcp: {start: 10.213.10.2, end: 10.213.9.20}\n');
    await refused(['net-define', join(dir, 'out.yaml')], 'outside');
    const r = await d.cli(['net-start', 'nosuch']);
    expect(r.code).toBe(ExitCodes.notFound);
    // vhost: on without /dev/vhost-net: refused at start, no tap made.
    await ok(['define', await guestDefinition('g4', [{ network: 'lab', vhost: 'on' }])]);
    await refused(['start', 'g4'], '/dev/vhost-net');
    await ok(['undefine', 'g4']);
    // bandwidth.outbound on a kernel without act_police (this host's): refused at start, naming the module, no tap made.
    if (!policerAvailable()) {
      await ok(['define', await guestDefinition('g8', [{ network: 'lab', bandwidth: { outbound: '1Mbit' } }])]);
      expect(await refused(['start', 'g8'], 'operation.unsupported')).toContain('bandwidth.outbound needs the kernel module act_police');
      await ok(['undefine', 'g8']);
    }
    await ok(['define', await guestDefinition('g5', [{ network: 'nosuch' }])]);
    await refused(['start', 'g5'], 'not defined');
    await ok(['undefine', 'g5']);
    await refused(['define', await guestDefinition('g6', [{ network: 'lab', bandwidth: { inbound: '10Mfurlongs' } }])], 'rate like 10Mbit');
    // A MAC another domain's NIC on a network has: refused at define.
    const mac = (JSON.parse(await ok(['domifaddr', 'g1', '--json'])) as { mac: string }[])[0]!.mac;
    await refused(['define', await guestDefinition('g7', [{ network: 'lab', mac }])], 'is domain "g1"\'s');
    await refused(['net-destroy', 'lab'], 'network.in-use');
    expect({ taps: ourTaps().sort(), tables: nftTables() }).toEqual(before);
    // Forced: the guests are cut off (their taps stay, without a bridge); a new start joins them again.
    const leases = await ok(['net-dhcp-leases', 'lab', '--json']);
    await ok(['net-destroy', 'lab', '--force']);
    const masters = (): (string | undefined)[] => before.taps.map((t) => (JSON.parse(inNs('ip', ['-j', 'link', 'show', t])) as { master?: string }[])[0]!.master);
    expect(masters()).toEqual([undefined, undefined]);
    await ok(['net-start', 'lab']);
    expect(masters()).toEqual(['vkbr-lab', 'vkbr-lab']);
    expect(await ok(['net-dhcp-leases', 'lab', '--json'])).toBe(leases);
    expect(await sh('g1', 'ping -c 1 -W 5 10.213.7.1 >/dev/null 2>&1; echo rc=$?', 30_000)).toContain('rc=0');
  });

  it('taps go after kill -9 of QEMU, and of the daemon: the restart adopts dnsmasq and removes what dead guests left', async () => {
    const taps = ourTaps();
    expect(taps).toHaveLength(2);
    const qemus = await d.qemuPids();
    const info = JSON.parse(await ok(['dominfo', 'g2', '--json'])) as { pid?: number; state: string };
    const g2pid = info.pid ?? qemus[1]!.pid;
    process.kill(g2pid, 'SIGKILL');
    await waitFor('g2\'s tap to go', async () => ourTaps().length === 1, 15_000);
    const dnsmasq = dnsmasqPids();
    const labDnsmasq = (JSON.parse(await ok(['net-info', 'lab', '--json'])) as { dnsmasqPid: number }).dnsmasqPid;
    await d.kill9();
    // While the daemon is down, g1's QEMU dies too: its tap stays until the next daemon start.
    const g1 = (await d.qemuPids())[0]!.pid;
    process.kill(g1, 'SIGKILL');
    await waitFor('g1\'s QEMU to be gone', async () => (await d.qemuPids()).length === 0, 10_000);
    expect(ourTaps()).toHaveLength(1);
    await startDaemon();
    expect(ourTaps()).toEqual([]);
    expect(dnsmasqPids()).toEqual(dnsmasq);
    expect(JSON.parse(await ok(['net-info', 'lab', '--json']))).toMatchObject({ active: true, dnsmasqPid: labDnsmasq });
  });
});
