/**
 * Hot-plug, ballooning and CPU hot-plug on one real guest kit guest under TCG, through the CLI
 * against a daemon, read back from inside the guest over its serial console: a disk attached
 * shows in /proc/partitions and goes away on detach, a NIC in /sys/class/net, setmem moves
 * MemTotal, setvcpus adds a CPU that the guest can online. One boot for the whole file.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ExitCodes } from '../../src/cli/exit-codes.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { DaemonHarness, waitFor } from './daemon-harness.js';

const G = 'hotplug';
const Ready = 'virtkit-guest: ready';
const MiB = 1024 * 1024;
let d: DaemonHarness;
let dir: string;
let consoleStream: Duplex;
let output = '';
let marks = 0;

/** Runs a shell command in the guest and resolves with what it printed (the lines between two markers). */
async function sh(command: string, timeoutMs = 30_000): Promise<string> {
  const n = ++marks;
  // The markers are computed by the guest's shell, so the echoed command line never matches them.
  consoleStream.write(`echo B$((${n}*7)); ${command}; echo E$((${n}*7))\n`);
  const begin = `B${n * 7}\r\n`;
  const end = `E${n * 7}\r\n`;
  await waitFor(`"${command}" to finish in the guest`, async () => output.includes(end), timeoutMs, 50);
  return output.slice(output.indexOf(begin) + begin.length, output.indexOf(end)).replace(/\r/g, '');
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return d.cli(args);
}

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
}

function memTotalKiB(meminfo: string): number {
  return Number(/MemTotal:\s+(\d+) kB/.exec(meminfo)?.[1]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-hotplug-'));
  const base = testGuestDefinition();
  const def = YAML.parse(await readFile(base, 'utf8')) as Record<string, Record<string, unknown>>;
  const boot = def['boot']!;
  for (const key of ['kernel', 'initrd']) boot[key] = resolve(dirname(base), String(boot[key]));
  await writeFile(join(dir, 'guest.yaml'), YAML.stringify({ ...def, name: G, memory: '256MiB', vcpus: 1, maxvcpus: 2 }));
  await writeFile(join(dir, 'data.raw'), Buffer.alloc(8 * MiB));
  d = await DaemonHarness.create();
  await d.start();
  await ok(['define', join(dir, 'guest.yaml')]);
  await ok(['start', G]);
  await d.waitConsole(G, Ready);
  consoleStream = await d.client().openConsole(G, 'write');
  consoleStream.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
}, 120_000);

afterAll(async () => {
  consoleStream?.destroy();
  await d?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe.sequential('hot-plug on a running guest through the CLI', { timeout: 120_000 }, () => {
  it('attach-disk shows the disk in /proc/partitions and domblklist; detach-disk takes it away', async () => {
    expect(await sh('cat /proc/partitions')).not.toMatch(/vd[a-z]/);
    expect(await ok(['attach-disk', G, join(dir, 'data.raw'), 'vdb'])).toMatch(/Disk attached successfully/);
    // The guest names virtio disks in PCI order: its first virtio disk is vda, whatever the target.
    const partitions = await waitFor('the disk in /proc/partitions', async () => {
      const text = await sh('cat /proc/partitions');
      return /\s8192\s+vd[a-z]\b/.test(text) ? text : undefined;
    }, 30_000, 200);
    expect(partitions).toMatch(/\s8192\s+vda\b/);
    expect(JSON.parse(await ok(['domblklist', G, '--json']))).toEqual([
      { target: 'vdb', id: 'vdb', bus: 'virtio', format: 'raw', source: join(dir, 'data.raw'), readonly: false },
    ]);
    expect(JSON.parse(await ok(['dominfo', G, '--json']))).toMatchObject({ definitionDiffers: false });

    // the same target again, a missing file, the wrong format: typed errors, nothing changed
    const again = await cli(['attach-disk', G, join(dir, 'data.raw'), 'vdb']);
    expect([again.code, again.stderr]).toEqual([ExitCodes.invalidState, expect.stringMatching(/device\.exists/)]);
    const missing = await cli(['attach-disk', G, join(dir, 'missing.raw'), 'vdc']);
    expect([missing.code, missing.stderr]).toEqual([ExitCodes.notFound, expect.stringMatching(/image\.not-found/)]);
    const wrong = await cli(['attach-disk', G, join(dir, 'data.raw'), 'vdc', '--format', 'qcow2']);
    expect([wrong.code, wrong.stderr]).toEqual([ExitCodes.invalidInput, expect.stringMatching(/image\.format-mismatch/)]);
    expect(JSON.parse(await ok(['domblklist', G, '--json']))).toHaveLength(1);

    expect(await ok(['detach-disk', G, 'vdb'])).toMatch(/Disk detached successfully/);
    expect(await sh('cat /proc/partitions')).not.toMatch(/vd[a-z]/);
    expect(JSON.parse(await ok(['domblklist', G, '--json']))).toEqual([]);
    const gone = await cli(['detach-disk', G, 'vdb']);
    expect([gone.code, gone.stderr]).toEqual([ExitCodes.notFound, expect.stringMatching(/device\.not-found/)]);
  });

  it('attach-disk of a pool volume on the scsi bus: the guest\'s SCSI bus gets the target; --config alone waits for the next start', async () => {
    await mkdir(join(dir, 'pool'));
    await ok(['pool-define-as', 'hp', 'dir', join(dir, 'pool')]);
    await ok(['vol-create-as', 'hp', 'extra.qcow2', '16M', '--format', 'qcow2']);
    await ok(['attach-disk', G, 'hp/extra.qcow2', 'sdb', '--format', 'qcow2', '--bus', 'scsi']);
    // sdb is SCSI target 1 on the controller scsi0 (host 0 in the guest: it has no other)
    await waitFor('the SCSI device in the guest', async () => (await sh('ls /sys/bus/scsi/devices')).includes('0:0:1:0'), 30_000, 200);
    expect(JSON.parse(await ok(['domblklist', G, '--json']))).toEqual([
      { target: 'sdb', id: 'sdb', bus: 'scsi', format: 'qcow2', source: 'hp/extra.qcow2', readonly: false },
    ]);
    // a volume a defined guest uses is not deleted from under it
    expect((await cli(['vol-delete', 'hp', 'extra.qcow2'])).stderr).toMatch(/volume\.in-use/);
    await ok(['detach-disk', G, 'sdb']);
    expect(await sh('ls /sys/bus/scsi/devices')).not.toContain('0:0:1:0');

    await ok(['attach-disk', G, join(dir, 'data.raw'), 'vdc', '--config']);
    expect(JSON.parse(await ok(['domblklist', G, '--json']))).toEqual([]);
    expect(JSON.parse(await ok(['domblklist', G, '--inactive', '--json']))).toHaveLength(1);
    expect(JSON.parse(await ok(['dominfo', G, '--json']))).toMatchObject({ definitionDiffers: true });
    await ok(['detach-disk', G, 'vdc', '--config']);
    expect(JSON.parse(await ok(['dominfo', G, '--json']))).toMatchObject({ definitionDiffers: false });
  });

  it('attach-interface shows a NIC in /sys/class/net; detach-interface by MAC takes it away', async () => {
    expect((await sh('ls /sys/class/net')).split(/\s+/).filter(Boolean)).toEqual(['lo']);
    const change = JSON.parse(await ok(['attach-interface', G, '--mac', '52:54:00:9a:00:01', '--json'])) as { id: string; mac: string };
    expect(change).toMatchObject({ id: 'net0', mac: '52:54:00:9a:00:01', live: true, config: true });
    const nics = await waitFor('the NIC in /sys/class/net', async () => {
      const names = (await sh('ls /sys/class/net')).split(/\s+/).filter(Boolean);
      return names.length > 1 ? names : undefined;
    }, 30_000, 200);
    expect(nics).toEqual(['eth0', 'lo']);
    expect(await sh('cat /sys/class/net/eth0/address')).toBe('52:54:00:9a:00:01\n');
    expect(JSON.parse(await ok(['domiflist', G, '--json']))).toEqual([{ id: 'net0', type: 'user', model: 'virtio', mac: '52:54:00:9a:00:01' }]);
    // a restored QEMU would put the NIC at another PCI slot and refuse the stream: no save is written
    const saved = await cli(['save', G, join(dir, 'after-plug.save')]);
    expect([saved.code, saved.stderr]).toEqual([ExitCodes.unsupported, expect.stringMatching(/operation\.unsupported: .*hot-plugged or unplugged since it started \(net0\)/)]);
    expect(existsSync(join(dir, 'after-plug.save'))).toBe(false);
    expect(JSON.parse(await ok(['domstate', G, '--json']))).toMatchObject({ state: 'running' });
    await ok(['detach-interface', G, '52:54:00:9a:00:01']);
    expect((await sh('ls /sys/class/net')).split(/\s+/).filter(Boolean)).toEqual(['lo']);
  });

  it('setmem shrinks the guest\'s MemTotal by the balloon; dommemstat reports the balloon', async () => {
    const before = memTotalKiB(await sh('cat /proc/meminfo'));
    const set = JSON.parse(await ok(['setmem', G, '160MiB', '--json'])) as { target: number; actual: number; settled: boolean };
    expect(set).toEqual({ target: 160 * MiB, actual: 160 * MiB, settled: true });
    const after = memTotalKiB(await sh('cat /proc/meminfo'));
    // the balloon took 96 MiB out of the guest's total (deflate-on-oom is off)
    expect(before - after).toBe(96 * 1024);
    const stats = JSON.parse(await ok(['dommemstat', G, '--json'])) as { actual: number; pollIntervalSeconds: number };
    expect(stats).toMatchObject({ actual: 160 * MiB, pollIntervalSeconds: 2 });
    const above = await cli(['setmem', G, '512MiB']);
    expect([above.code, above.stderr]).toEqual([ExitCodes.invalidInput, expect.stringMatching(/memory\.out-of-range/)]);
    await ok(['setmem', G, '256MiB']);
    expect(memTotalKiB(await sh('cat /proc/meminfo'))).toBe(before);
  });

  it('setvcpus hot-plugs a CPU the guest onlines; vcpuinfo shows its thread; above maxvcpus is refused', async () => {
    expect(await sh('cat /sys/devices/system/cpu/online')).toBe('0\n');
    expect(JSON.parse(await ok(['setvcpus', G, '2', '--json']))).toEqual({ live: 2, config: 2 });
    await waitFor('cpu1 in the guest', async () => (await sh('ls /sys/devices/system/cpu')).includes('cpu1'), 30_000, 200);
    // the kernel leaves a hot-added CPU offline; udev's rule would online it, the guest kit guest has no udev
    await sh('[ "$(cat /sys/devices/system/cpu/cpu1/online)" = 1 ] || echo 1 > /sys/devices/system/cpu/cpu1/online');
    expect(await sh('cat /sys/devices/system/cpu/online')).toBe('0-1\n');
    const vcpus = JSON.parse(await ok(['vcpuinfo', G, '--json'])) as { vcpu: number; threadId: number; hotplugged: boolean }[];
    expect(vcpus.map((v) => [v.vcpu, v.hotplugged])).toEqual([[0, false], [1, true]]);
    // each vCPU is a thread of the guest's QEMU, not its main thread
    const { pid } = JSON.parse(await ok(['dominfo', G, '--json'])) as { pid: number };
    for (const v of vcpus) {
      expect(v.threadId).not.toBe(pid);
      expect(await readFile(`/proc/${pid}/task/${v.threadId}/stat`, 'utf8')).toMatch(new RegExp(`^${v.threadId} `));
    }
    const above = await cli(['setvcpus', G, '3']);
    expect([above.code, above.stderr]).toEqual([ExitCodes.invalidInput, expect.stringMatching(/vcpus\.out-of-range/)]);
    // the hot-plugged CPU goes again: the guest offlines and ejects it on QEMU's request
    expect(JSON.parse(await ok(['setvcpus', G, '1', '--live', '--json']))).toEqual({ live: 1 });
    expect(await sh('cat /sys/devices/system/cpu/online')).toBe('0\n');
    expect(JSON.parse(await ok(['vcpuinfo', G, '--json']))).toHaveLength(1);
    // dominfo tells the running guest's count, the saved one stays 2
    expect(JSON.parse(await ok(['dominfo', G, '--json']))).toMatchObject({ vcpus: 1, maxVcpus: 2, definitionDiffers: true });
  });
});
