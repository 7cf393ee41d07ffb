/**
 * The QEMU driver against real TCG guests from the guest kit: launch, console, pause/resume,
 * attach from a second process, ACPI and forced shutdown, exit classification, stale
 * pidfiles and start failures; the capabilities probe. Two guest boots in all, run side by side.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition, type DomainDefinition } from '../../src/conf/index.js';
import { QemuProcess, TypedQmpCommands, openConsole, probeCapabilities, resolveAccel, watchConsoleFor } from '../../src/qemu/index.js';
import { isVirtkitError, type VirtkitError } from '../../src/util/errors.js';
import { testGuestDefinition, testGuestNoAcpiDefinition } from '../helpers/guests.js';

const READY = 'virtkit-guest: ready';
const BOOT_TIMEOUT_MS = 150_000;
const DIST_QEMU = resolve(import.meta.dirname, '../../dist/src/qemu/index.js');

/** A launched guest with its console captured from the first byte. */
interface Booted {
  proc: QemuProcess;
  console: Socket;
  output: () => string;
  runDir: string;
}

async function boot(def: DomainDefinition, runDir: string): Promise<Booted> {
  const proc = await QemuProcess.launch({ def, ctx: { binary: 'qemu-system-x86_64', accel: 'tcg', runDir }, paused: true });
  const console = await openConsole(runDir);
  let text = '';
  console.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const ready = watchConsoleFor(console, READY);
  await proc.resume();
  await withTimeout(ready.found, BOOT_TIMEOUT_MS, () => `no ready marker; console:\n${text}`);
  return { proc, console, output: () => text, runDir };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitForText(b: Booted, text: string, from: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  while (!b.output().slice(from).includes(text)) {
    if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} on the console:\n${b.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return b.output().slice(from);
}

async function rejection(p: Promise<unknown>): Promise<VirtkitError> {
  try {
    await p;
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** Alive and not a zombie waiting to be reaped. */
function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^Z/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

describe('QemuProcess with real guests', () => {
  let scratch: string;
  let acpi: Booted;
  let noAcpi: Booted;
  const launched: QemuProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(DIST_QEMU)) throw new Error('dist/ is missing: run `npm run build` first (the attaching child process runs the built driver)');
    scratch = await mkdtemp(join(tmpdir(), 'virtkit-qemu-process-'));
    const [defAcpi, defNoAcpi] = await Promise.all([loadDefinition(testGuestDefinition()), loadDefinition(testGuestNoAcpiDefinition())]);
    [acpi, noAcpi] = await Promise.all([boot(defAcpi, join(scratch, 'acpi')), boot(defNoAcpi, join(scratch, 'noacpi'))]);
    launched.push(acpi.proc, noAcpi.proc);
  });

  afterAll(async () => {
    for (const p of launched) {
      if (pidAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
    }
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('runs a command typed on the serial console', async () => {
    const from = acpi.output().length;
    acpi.console.write('echo virtkit-$((6*7))\n');
    await waitForText(acpi, 'virtkit-42', from, 60_000);
  });

  it('pauses and resumes, visible in query-status and HMP', async () => {
    await acpi.proc.pause();
    expect(await acpi.proc.status()).toBe('paused');
    expect(await acpi.proc.qmp.hmp('info status')).toContain('paused');
    await acpi.proc.resume();
    expect(await acpi.proc.status()).toBe('running');
  });

  it('reboots cleanly: ACPI power-off, reset, and the guest comes back', async () => {
    const from = acpi.output().length;
    await acpi.proc.reboot({ timeoutMs: 60_000 });
    await waitForText(acpi, READY, from, BOOT_TIMEOUT_MS);
    expect(acpi.output().slice(from)).toContain('power button pressed');
    expect(await acpi.proc.status()).toBe('running');
    expect(pidAlive(acpi.proc.pid)).toBe(true);
  });

  it('refuses stale pidfiles: a dead pid, a live non-QEMU pid, a QEMU of another run dir', async () => {
    const dir = join(scratch, 'stale');
    await mkdir(dir);
    for (const pid of [0x3ffffff0, process.pid, acpi.proc.pid]) {
      await writeFile(join(dir, 'qemu.pid'), `${pid}\n`);
      const err = await rejection(QemuProcess.attach(dir));
      expect(err.code).toBe('process.stale');
    }
    await writeFile(join(dir, 'qemu.pid'), 'not a pid\n');
    expect((await rejection(QemuProcess.attach(dir))).code).toBe('process.stale');
    // the right run dir but the wrong uuid
    acpi.proc.detach();
    try {
      expect((await rejection(QemuProcess.attach(acpi.runDir, { uuid: '00000000-0000-4000-8000-000000000000' }))).code).toBe('process.stale');
    } finally {
      // take QMP back (QEMU serves one client at a time) for the next test
      acpi.proc = await QemuProcess.attach(acpi.runDir);
      launched.push(acpi.proc);
    }
  });

  it('lets a second process attach by run dir and stop the guest through ACPI', async () => {
    const pid = acpi.proc.pid;
    acpi.proc.detach(); // QEMU serves one QMP client at a time: hand it over
    const script = `
      import { QemuProcess } from ${JSON.stringify(DIST_QEMU)};
      const p = await QemuProcess.attach(process.argv[1]);
      const before = await p.status();
      const how = await p.shutdown({ timeoutMs: 60000 });
      const exit = await p.exited;
      console.log(JSON.stringify({ pid: p.pid, before, how, exit }));`;
    const stdout = await new Promise<string>((res, rej) =>
      execFile(process.execPath, ['--input-type=module', '-e', script, acpi.runDir], { timeout: 120_000 }, (err, out, errOut) =>
        (err ? rej(new Error(`${err.message}\n${errOut}`)) : res(out))));
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { pid: number; before: string; how: string; exit: { reason: string; guestInitiated: boolean } };
    expect(result).toMatchObject({ pid, before: 'running', how: 'clean', exit: { reason: 'shutdown', guestInitiated: false } });
    expect(pidAlive(pid)).toBe(false);
    await waitForText(acpi, 'power button pressed', 0, 5_000);
  });

  it('stops a guest that ignores the power button by force after the timeout', async () => {
    const t0 = Date.now();
    expect(await noAcpi.proc.shutdown({ timeoutMs: 3000 })).toBe('forced');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
    const exit = await noAcpi.proc.exited;
    expect(exit).toMatchObject({ reason: 'destroyed', guestInitiated: false, forcedBy: 'quit', shutdownReason: 'host-qmp-quit' });
    expect(pidAlive(noAcpi.proc.pid)).toBe(false);
  });

  it('classifies a QEMU killed from outside as crashed', async () => {
    const def = await loadDefinition(testGuestNoAcpiDefinition());
    const proc = await QemuProcess.launch({ def, ctx: { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: join(scratch, 'killed') }, paused: true });
    launched.push(proc);
    expect(await proc.status()).toBe('prelaunch');
    process.kill(proc.pid, 'SIGKILL');
    expect(await proc.exited).toMatchObject({ reason: 'crashed', guestInitiated: false, signal: 'SIGKILL' });
  });

  it('surfaces QEMU\'s own message when it fails to start', async () => {
    const def = await loadDefinition(testGuestDefinition());
    const missing = join(scratch, 'missing.qcow2');
    const broken: DomainDefinition = { ...def, disks: [{ source: missing, format: 'qcow2', bus: 'virtio', readonly: false, cache: 'writeback' }] };
    const err = await rejection(QemuProcess.launch({ def: broken, ctx: { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: join(scratch, 'fail') } }));
    expect(err.code).toBe('qemu.failed-to-start');
    expect(err.message).toContain(`Could not open '${missing}': No such file or directory`);
    expect(String(err.data['stderr'])).toContain('Could not open');
  });

  it('reports a missing QEMU binary as qemu.not-found', async () => {
    const def = await loadDefinition(testGuestDefinition());
    const err = await rejection(QemuProcess.launch({ def, ctx: { binary: '/nonexistent/qemu-system-x86_64', accel: 'tcg', runDir: join(scratch, 'nobin') } }));
    expect(err.code).toBe('qemu.not-found');
  });
});

describe('capabilities of the installed QEMU', () => {
  it('probes version, machines, accelerators, CPU models and devices, then serves them from the cache', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'virtkit-caps-'));
    try {
      const caps = await probeCapabilities({ cacheDir });
      expect(caps.version.major).toBeGreaterThanOrEqual(7);
      expect(caps.accelerators).toContain('tcg');
      expect(caps.machines.some((m) => m.name === 'pc' || m.alias === 'pc')).toBe(true);
      expect(caps.cpuModels).toContain('qemu64');
      expect(caps.devices).toEqual(expect.arrayContaining(['virtio-blk-pci', 'virtio-net-pci', 'pvpanic']));
      expect(caps.kvm.reason).not.toBe('');
      const auto = resolveAccel('auto', caps);
      expect(auto.accel).toBe(caps.kvm.usable ? 'kvm' : 'tcg');
      expect((await readdir(cacheDir)).length).toBe(1);
      const t0 = Date.now();
      expect(await probeCapabilities({ cacheDir })).toEqual(caps);
      expect(Date.now() - t0).toBeLessThan(5000); // no QEMU started: a file read
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('types only commands and events this QEMU has (query-qmp-schema)', async () => {
    const runDir = await mkdtemp(join(tmpdir(), 'virtkit-schema-'));
    const proc = await QemuProcess.launchCommand({
      command: { binary: 'qemu-system-x86_64', env: {}, argv: ['-S', '-nodefaults', '-no-user-config', '-machine', 'none', '-display', 'none',
        '-qmp', `unix:${join(runDir, 'qmp.sock')},server=on,wait=off`] },
      runDir, paused: true, detached: false,
    });
    try {
      const schema = (await proc.qmp.executeUntyped('query-qmp-schema')) as { name: string; 'meta-type': string }[];
      const commands = new Set(schema.filter((e) => e['meta-type'] === 'command').map((e) => e.name));
      const events = new Set(schema.filter((e) => e['meta-type'] === 'event').map((e) => e.name));
      expect(TypedQmpCommands.filter((c) => !commands.has(c))).toEqual([]);
      expect(['SHUTDOWN', 'POWERDOWN', 'RESET', 'STOP', 'RESUME', 'GUEST_PANICKED'].filter((e) => !events.has(e))).toEqual([]);
    } finally {
      await proc.destroy();
      await rm(runDir, { recursive: true, force: true });
    }
  });

  it('reports a missing binary as qemu.not-found', async () => {
    expect((await rejection(probeCapabilities({ binary: 'qemu-system-nonexistent-arch' }))).code).toBe('qemu.not-found');
  });
});
