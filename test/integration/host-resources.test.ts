/**
 * Resource limits, shared folders, screens and keys on one real guest kit guest under TCG,
 * through the CLI against a daemon: a guest held to cpu_quota 20 while it spins, host files
 * read through virtio-fs and a read-only 9p share, a screenshot that is a valid PNG of the VGA
 * text screen, keys, the VNC socket asking for the password set over QMP; then its cgroup and
 * virtiofsd gone after destroy, and after a kill -9 of QEMU while no daemon watched. One
 * guest, booted twice.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ExitCodes } from '../../src/cli/exit-codes.js';
import { cgroupLayoutOf, GuestCgroup } from '../../src/qemu/cgroup/index.js';
import { crc32, pngSize } from '../../src/qemu/screens/index.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { countOf, DaemonHarness, waitFor } from './daemon-harness.js';

const G = 'limits';
const Ready = 'virtkit-guest: ready';
let d: DaemonHarness;
let dir: string;
let share: string;
let consoleStream: Duplex | undefined;
let output = '';
let marks = 0;
let uuid = '';

async function sh(command: string, timeoutMs = 30_000): Promise<string> {
  const n = ++marks;
  consoleStream!.write(`echo B$((${n}*7)); ${command}; echo E$((${n}*7))\n`);
  const begin = `B${n * 7}\r\n`;
  const end = `E${n * 7}\r\n`;
  await waitFor(`"${command}" to finish in the guest`, async () => output.includes(end), timeoutMs, 50);
  return output.slice(output.indexOf(begin) + begin.length, output.indexOf(end)).replace(/\r/g, '');
}

async function ok(args: string[]): Promise<string> {
  const r = await d.cli(args);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
}

async function bootAndAttach(): Promise<void> {
  // the console log keeps earlier boots: wait for one more ready marker than it has now
  const before = countOf(await d.client().consoleLog(G), Ready);
  await ok(['start', G]);
  await d.waitConsole(G, Ready, before);
  consoleStream?.destroy();
  output = '';
  consoleStream = await d.client().openConsole(G, 'write');
  consoleStream.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
}

async function qemuPid(): Promise<number> {
  return (JSON.parse(await ok(['dominfo', G, '--json'])) as { pid: number }).pid;
}

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function guestGroup(): Promise<GuestCgroup> {
  const layout = cgroupLayoutOf(await readFile('/proc/self/mountinfo', 'utf8'), await readFile('/proc/self/cgroup', 'utf8'));
  if (!layout) throw new Error('no cgroup layout on this host');
  return GuestCgroup.of(layout, uuid);
}

async function virtiofsdPids(): Promise<number[]> {
  const runDir = join(d.runDir, uuid);
  const text = await readFile(join(runDir, 'virtiofsd.0.pid'), 'utf8').catch(() => '');
  return text.trim() === '' ? [] : [Number(text.trim())];
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-limits-'));
  share = join(dir, 'share');
  await mkdir(share);
  await writeFile(join(share, 'hello.txt'), 'hello from the host\n');
  const base = testGuestDefinition();
  const def = YAML.parse(await readFile(base, 'utf8')) as Record<string, Record<string, unknown>>;
  const boot = def['boot']!;
  for (const key of ['kernel', 'initrd']) boot[key] = resolve(dirname(base), String(boot[key]));
  boot['cmdline'] = `${String(boot['cmdline'])} virtkit.mount=share virtkit.mount=ro:/mnt/ro`;
  await writeFile(join(dir, 'guest.yaml'), YAML.stringify({
    // cpu_quota is set once the guest runs: a boot held to a fifth of a CPU takes five times as long
    ...def, name: G, accel: 'tcg', cpu_shares: 256, memory_limit: '2GiB', graphics: 'vnc', vnc_password: true,
    filesystems: [{ source: share, target: 'share' }, { source: share, target: 'ro', readonly: true }],
  }));
  d = await DaemonHarness.create();
  await d.start();
  await ok(['define', join(dir, 'guest.yaml')]);
  uuid = (JSON.parse(await ok(['dominfo', G, '--json'])) as { uuid: string }).uuid;
  await bootAndAttach();
}, 120_000);

afterAll(async () => {
  consoleStream?.destroy();
  await d?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe.sequential('resource limits, shared folders, screens and keys on a running guest', { timeout: 120_000 }, () => {
  it('reads a host file through virtio-fs and through a read-only 9p share that refuses writes', async () => {
    const mounts = await sh('grep -E " /mnt/(share|ro) " /proc/mounts');
    expect(mounts).toMatch(/^share \/mnt\/share virtiofs /m);
    expect(mounts).toMatch(/^ro \/mnt\/ro 9p ro?/m);
    expect(await sh('cat /mnt/share/hello.txt')).toBe('hello from the host\n');
    expect(await sh('cat /mnt/ro/hello.txt')).toBe('hello from the host\n');
    expect(await sh('echo x > /mnt/ro/new.txt 2>/dev/null; echo rc=$?')).toMatch(/rc=[1-9]/);
    expect(existsSync(join(share, 'new.txt'))).toBe(false);
    await sh('echo from the guest > /mnt/share/back.txt; sync');
    expect(await readFile(join(share, 'back.txt'), 'utf8')).toBe('from the guest\n');
  });

  it('starts QEMU in its own cgroup with the definition\'s limits', async () => {
    const group = await guestGroup();
    expect(await group.pids()).toContain(await qemuPid());
    expect(await group.read()).toEqual({ cpu_shares: 256, memory_limit: 2 * 1024 ** 3 });
    const sched = JSON.parse(await ok(['schedinfo', G, '--json'])) as { cpu_shares?: number; cgroup?: { dirs: string[] } };
    expect(sched).toMatchObject({ cpu_shares: 256, source: 'live', cgroup: { dirs: group.dirs() } });
  });

  it('holds a spinning guest to cpu_quota 20 (about a fifth of one host CPU)', async () => {
    const pid = await qemuPid();
    const group = await guestGroup();
    expect(await ok(['schedinfo', G, '--set', 'cpu_quota=20'])).toMatch(/cpu_quota\s+: 20% of one host CPU/);
    expect((await readFile(join(group.dir('cpu'), 'cpu.cfs_quota_us'), 'utf8')).trim()).toBe('20000');
    await sh('(while :; do :; done) & echo $! > /tmp/spin.pid');
    const t0 = process.hrtime.bigint();
    const c0 = await cpuTicks(pid);
    await new Promise((r) => setTimeout(r, 3000));
    const c1 = await cpuTicks(pid);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const share = (c1 - c0) / 100 / seconds;
    await sh('kill $(cat /tmp/spin.pid)');
    await ok(['schedinfo', G, '--set', 'cpu_quota=none']);
    // unlimited, TCG spinning takes a whole CPU; the quota allows 0.2 (plus accounting slack)
    expect(share).toBeLessThan(0.35);
    expect(await readFile(join(group.dir('cpu'), 'cpu.stat'), 'utf8')).toMatch(/nr_throttled [1-9]/);
  });

  it('schedinfo and memtune change the running guest\'s cgroup and the saved definition', async () => {
    const group = await guestGroup();
    await ok(['schedinfo', G, '--set', 'cpu_shares=512']);
    expect((await readFile(join(group.dir('cpu'), 'cpu.shares'), 'utf8')).trim()).toBe('512');
    expect(await ok(['memtune', G, '--hard-limit', '1GiB'])).toMatch(/hard_limit\s+: 1048576 \(1GiB\)/);
    expect((await readFile(join(group.dir('memory'), 'memory.limit_in_bytes'), 'utf8')).trim()).toBe(String(1024 ** 3));
    expect(YAML.parse(await ok(['dumpdef', G]))).toMatchObject({ cpu_shares: 512, memory_limit: 1024 ** 3 });
    // --config only: the guest keeps its limit, the saved definition loses it
    await ok(['memtune', G, '--hard-limit', 'unlimited', '--config']);
    expect((await readFile(join(group.dir('memory'), 'memory.limit_in_bytes'), 'utf8')).trim()).toBe(String(1024 ** 3));
    expect(YAML.parse(await ok(['dumpdef', G]))).not.toHaveProperty('memory_limit');
    const bad = await d.cli(['schedinfo', G, '--set', 'cpu_weight=3']);
    expect([bad.code, bad.stderr]).toEqual([ExitCodes.invalidInput, expect.stringMatching(/argument\.invalid/)]);
  });

  it('screenshot writes a valid PNG of the VGA text screen; send-key presses keys; bad key names are refused', async () => {
    const file = join(dir, 'screen.png');
    expect(await ok(['screenshot', G, file])).toMatch(/Screenshot saved to .*screen\.png/);
    const png = await readFile(file);
    const size = pngSize(png);
    expect(size).toEqual({ width: 720, height: 400 });
    // every chunk's CRC holds, and IDAT inflates to one filter byte + RGB per row
    let at = 8;
    const idat: Buffer[] = [];
    while (at < png.length) {
      const length = png.readUInt32BE(at);
      const type = png.subarray(at + 4, at + 8);
      const data = png.subarray(at + 8, at + 8 + length);
      expect(png.readUInt32BE(at + 8 + length)).toBe(crc32(type, data));
      if (type.toString('latin1') === 'IDAT') idat.push(data);
      at += 12 + length;
    }
    expect(inflateSync(Buffer.concat(idat)).length).toBe((720 * 3 + 1) * 400);
    await ok(['send-key', G, 'KEY_LEFTSHIFT', 'KEY_A']);
    const bad = await d.cli(['send-key', G, 'KEY_NOSUCH']);
    expect([bad.code, bad.stderr]).toEqual([ExitCodes.invalidInput, expect.stringMatching(/argument\.invalid: keys: "KEY_NOSUCH"/)]);
  });

  it('vncdisplay names the VNC socket, which asks for the password set over QMP', async () => {
    const socket = (await ok(['vncdisplay', G])).trim();
    expect((await stat(socket)).isSocket()).toBe(true);
    const set = await ok(['vncdisplay', G, '--password']);
    expect(set).toMatch(new RegExp(`^${socket}\\npassword: [A-Za-z0-9]{8}\\n$`));
    const argv = await readFile(`/proc/${await qemuPid()}/cmdline`, 'utf8');
    expect(argv).not.toContain(/password: (\S+)/.exec(set)![1]!);
    // RFB handshake: version, then the security types offered: 2 (VNC authentication) only
    const types = await new Promise<Buffer>((resolvePromise, reject) => {
      const s = netConnect(socket);
      let got = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length === 12) s.write('RFB 003.008\n');
        if (got.length >= 12 + 1 + got[12]!) { s.destroy(); resolvePromise(got.subarray(13, 13 + got[12]!)); }
      });
      s.on('error', reject);
    });
    expect([...types]).toEqual([2]);
  });

  it('destroy removes the cgroup and stops virtiofsd', async () => {
    const group = await guestGroup();
    const helpers = await virtiofsdPids();
    expect(helpers.length).toBe(1);
    await ok(['destroy', G]);
    expect(await group.exists()).toBe(false);
    for (const pid of helpers) expect(alive(pid)).toBe(false);
  });

  it('a daemon restart keeps a running guest\'s virtiofsd as its own; after a kill -9 of QEMU while no daemon watched, the next one removes the group and the helper', async () => {
    await bootAndAttach();
    consoleStream?.destroy();
    consoleStream = undefined;
    const group = await guestGroup();
    const pid = await qemuPid();
    const helpers = await virtiofsdPids();
    await d.kill9();
    await d.start();
    expect((JSON.parse(await ok(['domstate', G, '--json'])) as { state: string }).state).toBe('running');
    for (const helper of helpers) expect(alive(helper)).toBe(true);
    expect(await group.pids()).toContain(pid);
    // proven ours: not reported among the look-alikes that name the run root
    const leftAlone = (await readFile(d.logPath, 'utf8')).split('\n').filter((line) => line.includes('not proven ours'));
    for (const helper of helpers) expect(leftAlone.filter((line) => line.includes(`"pid":${helper},`))).toEqual([]);
    await d.kill9();
    process.kill(pid, 'SIGKILL');
    await waitFor('QEMU to die', async () => !alive(pid), 10_000, 50);
    expect(await group.exists()).toBe(true);
    await d.start();
    expect((JSON.parse(await ok(['domstate', G, '--json'])) as { state: string }).state).not.toBe('running');
    expect(await group.exists()).toBe(false);
    for (const helper of helpers) await waitFor('virtiofsd to be gone', async () => !alive(helper), 10_000, 50);
  });
});
