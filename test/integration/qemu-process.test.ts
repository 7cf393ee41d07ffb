/**
 * The QEMU driver against real TCG guests from the guest kit: launch, console, pause/resume,
 * reboot and reset under on_reboot other than restart, a power-off kept for on_poweroff:
 * preserve, restart, the power button right after the ready marker, attach from a second
 * process, forced shutdown, exit classification, stale pidfiles and start failures; reset,
 * restart and panic handling on a QEMU whose guest OS need not be up; a lost QMP connection
 * reconnected; the capabilities probe.
 * Two guest boots side by side, then two reboots of the ACPI guest.
 */
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition, type DomainDefinition } from '../../src/conf/index.js';
import {
  QemuProcess, TypedQmpCommands, buildCommand, openConsole, probeCapabilities, resolveAccel, runPaths, watchConsoleFor, type QmpEvent,
} from '../../src/qemu/index.js';
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
  /** QMP events seen, as EVENT or EVENT:reason. */
  events: string[];
}

const eventName = (ev: QmpEvent): string => (typeof ev.data['reason'] === 'string' ? `${ev.event}:${ev.data['reason']}` : ev.event);

/** A definition's command line under TCG, started with -S, launched (and resumed unless `paused`). */
function launch(def: DomainDefinition, runDir: string, opts: { paused?: boolean; binary?: string } = {}): Promise<QemuProcess> {
  const command = buildCommand(def, { binary: opts.binary ?? 'qemu-system-x86_64', accel: 'tcg', runDir });
  return QemuProcess.launchCommand({ command: { ...command, argv: ['-S', ...command.argv] }, runDir, paused: opts.paused ?? false });
}

async function boot(def: DomainDefinition, runDir: string): Promise<Booted> {
  const proc = await launch(def, runDir, { paused: true });
  const console = await openConsole(runDir);
  let text = '';
  console.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  console.on('error', () => undefined); // QEMU going away resets the connection; its exit is checked through proc.exited
  const events: string[] = [];
  proc.qmp.on((ev) => events.push(eventName(ev)));
  const ready = watchConsoleFor(console, READY);
  await proc.resume();
  await withTimeout(ready.found, BOOT_TIMEOUT_MS, () => `no ready marker; console:\n${text}`);
  return { proc, console, output: () => text, runDir, events };
}

/** Counts the QMP commands named `command` sent on `socket` while `fn` runs. */
async function countCommands<T>(socket: string, command: string, fn: () => Promise<T>): Promise<{ result: T; count: number }> {
  let count = 0;
  const onCommand = (m: unknown): void => {
    const msg = m as { socket: string; command: string };
    if (msg.socket === socket && msg.command === command) count++;
  };
  subscribe('vm:qmp:command', onCommand);
  try {
    return { result: await fn(), count };
  } finally {
    unsubscribe('vm:qmp:command', onCommand);
  }
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
  /** The ACPI guest, kept after a power-off (on_poweroff: preserve), a reboot turned into a shutdown (on_reboot: destroy). */
  let acpi: Booted;
  let defAcpi: DomainDefinition;
  let noAcpi: Booted;
  const launched: QemuProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(DIST_QEMU)) throw new Error('dist/ is missing: run `npm run build` first (the attaching child process runs the built driver)');
    scratch = await mkdtemp(join(tmpdir(), 'virtkit-qemu-process-'));
    const [base, defNoAcpi] = await Promise.all([loadDefinition(testGuestDefinition()), loadDefinition(testGuestNoAcpiDefinition())]);
    defAcpi = { ...base, on_poweroff: 'preserve', on_reboot: 'destroy' };
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

  it('reboots cleanly and resets under on_reboot: destroy (reboot=shutdown): both reset, neither shuts down', async () => {
    expect(acpi.proc.actions).toEqual({ reboot: 'shutdown', shutdown: 'pause', panic: 'exit-failure' });
    const from = acpi.output().length;
    const before = acpi.events.length;
    await acpi.proc.reboot({ timeoutMs: 60_000 });
    const afterReboot = acpi.events.length;
    // and a reset while the guest boots again
    await acpi.proc.reset();
    await waitForText(acpi, READY, from, BOOT_TIMEOUT_MS);
    expect(acpi.output().slice(from)).toContain('power button pressed');
    // the reboot's power-off is the only SHUTDOWN: the resets stayed resets
    expect(acpi.events.slice(before).filter((e) => e.startsWith('SHUTDOWN'))).toEqual(['SHUTDOWN:guest-shutdown']);
    expect(acpi.events.slice(afterReboot)).toContain('RESET:host-qmp-system-reset');
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
      // take QMP back (QEMU serves one client at a time) for the next tests
      acpi.proc = await QemuProcess.attach(acpi.runDir);
      acpi.proc.qmp.on((ev) => acpi.events.push(eventName(ev)));
      launched.push(acpi.proc);
    }
    // QEMU's actions come from its command line
    expect(acpi.proc.actions).toEqual({ reboot: 'shutdown', shutdown: 'pause', panic: 'exit-failure' });
  });

  it('keeps a guest that powered off after the reboot (on_poweroff: preserve), restarts it, and the power button works right after ready', async () => {
    let from = acpi.output().length;
    const down = acpi.proc.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 60_000 });
    acpi.console.write('poweroff -f\n');
    expect((await down).data).toMatchObject({ guest: true, reason: 'guest-shutdown' });
    // the reboot restored QEMU's shutdown action to the definition's (pause), not poweroff
    await new Promise((r) => setTimeout(r, 500));
    expect(pidAlive(acpi.proc.pid)).toBe(true);
    expect(await acpi.proc.status()).toBe('shutdown');

    from = acpi.output().length;
    await acpi.proc.restartGuest();
    await waitForText(acpi, READY, from, BOOT_TIMEOUT_MS);
    // no sooner said ready than the button is pressed: one press, heard, and the guest kept
    const socket = runPaths(acpi.runDir).qmpSocket;
    const { result, count } = await countCommands(socket, 'system_powerdown', () => acpi.proc.shutdown({ timeoutMs: 60_000, preserve: true }));
    expect(result).toBe('clean');
    expect(count).toBe(1);
    expect(acpi.output().slice(from)).toContain('power button pressed');
    expect(pidAlive(acpi.proc.pid)).toBe(true);
    expect(await acpi.proc.status()).toBe('shutdown');
  });

  it('ends a preserved, powered-off guest cleanly when asked not to preserve it', async () => {
    expect(await acpi.proc.shutdown({ timeoutMs: 60_000, preserve: false })).toBe('clean');
    const exit = await acpi.proc.exited;
    expect(exit).toMatchObject({ reason: 'shutdown', guestInitiated: false, shutdownReason: 'guest-shutdown' });
    expect(exit.forcedBy).toBeUndefined();
    expect(pidAlive(acpi.proc.pid)).toBe(false);
  });

  it('lets a second process attach by run dir and stop a guest that ignores the power button, by force after the timeout', async () => {
    const pid = noAcpi.proc.pid;
    noAcpi.proc.detach(); // QEMU serves one QMP client at a time: hand it over
    const script = `
      import { QemuProcess } from ${JSON.stringify(DIST_QEMU)};
      const p = await QemuProcess.attach(process.argv[1]);
      const before = await p.status();
      const t0 = Date.now();
      const how = await p.shutdown({ timeoutMs: 3000, preserve: false });
      const ms = Date.now() - t0;
      const exit = await p.exited;
      console.log(JSON.stringify({ pid: p.pid, before, how, ms, exit }));`;
    const stdout = await new Promise<string>((res, rej) =>
      execFile(process.execPath, ['--input-type=module', '-e', script, noAcpi.runDir], { timeout: 120_000 }, (err, out, errOut) =>
        (err ? rej(new Error(`${err.message}\n${errOut}`)) : res(out))));
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { pid: number; before: string; how: string; ms: number; exit: Record<string, unknown> };
    expect(result).toMatchObject({ pid, before: 'running', how: 'forced', exit: { reason: 'destroyed', guestInitiated: false, forcedBy: 'quit', shutdownReason: 'host-qmp-quit' } });
    expect(result.ms).toBeGreaterThanOrEqual(3000);
    expect(pidAlive(pid)).toBe(false);
  });

  it('resets, restarts and ends a panicked, kept guest under reboot=shutdown, shutdown=pause, panic=exit-failure', async () => {
    // The guest OS need not be up: the firmware and the kernel's first steps run while QEMU
    // is poked through HMP (the keyboard controller's reset line, the pvpanic port).
    const base = await loadDefinition(testGuestNoAcpiDefinition());
    const def: DomainDefinition = { ...base, on_poweroff: 'restart', on_reboot: 'destroy', on_crash: 'destroy' };
    const proc = await launch(def, join(scratch, 'panic'));
    launched.push(proc);
    const events: string[] = [];
    proc.qmp.on((ev) => events.push(eventName(ev)));

    await proc.reset();
    expect(await proc.status()).toBe('running');
    expect(events.filter((e) => e.startsWith('SHUTDOWN'))).toEqual([]);
    expect(events).toContain('RESET:host-qmp-system-reset');

    // the reset left QEMU's reboot action as the definition wants it: a guest reset is a shutdown
    const guestReset = proc.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 30_000 });
    await proc.qmp.hmp('o /b 0x64 0xfe');
    expect((await guestReset).data).toMatchObject({ guest: true, reason: 'guest-reset' });
    expect(await proc.status()).toBe('shutdown');

    await proc.restartGuest();
    expect(await proc.status()).toBe('running');
    expect(events.filter((e) => e.startsWith('SHUTDOWN'))).toEqual(['SHUTDOWN:guest-reset']);

    // panic=exit-failure, but QEMU keeps the panicked guest (shutdown=pause); ending it is the
    // driver's policy (driver/events.ts), carried out here by hand
    const panicShutdown = proc.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 20_000 });
    await proc.qmp.hmp('o /b 0x505 1');
    expect((await panicShutdown).data).toMatchObject({ guest: true, reason: 'guest-panic' });
    expect(await proc.status()).toBe('guest-panicked');
    await proc.endKeptGuest();
    const exit = await withTimeout(proc.exited, 20_000, () => `QEMU still there after the panic; events: ${events.join(' ')}`);
    expect(exit).toMatchObject({ reason: 'crashed', guestInitiated: true, shutdownReason: 'guest-panic' });
    expect(events).toEqual(expect.arrayContaining(['GUEST_PANICKED', 'SHUTDOWN:guest-panic']));
    expect(pidAlive(proc.pid)).toBe(false);
  });

  it('reconnects a lost QMP connection, and classifies a QEMU killed from outside as crashed', async () => {
    const def = await loadDefinition(testGuestNoAcpiDefinition());
    const proc = await launch(def, join(scratch, 'killed'), { paused: true });
    launched.push(proc);
    expect(await proc.status()).toBe('prelaunch');
    // first a QMP connection lost while QEMU lives: reconnected, and QEMU is not taken for gone
    const changes: string[] = [];
    const restored = new Promise<void>((r) => proc.onMonitorChange((c) => { changes.push(c); if (c === 'restored') r(); }));
    const lost = proc.qmp;
    lost.close();
    await withTimeout(restored, 20_000, () => `QMP not reconnected; changes: ${changes.join(' ')}`);
    expect(changes).toEqual(['lost', 'restored']);
    expect(proc.qmp).not.toBe(lost);
    expect(await proc.status()).toBe('prelaunch');
    process.kill(proc.pid, 'SIGKILL');
    expect(await proc.exited).toMatchObject({ reason: 'crashed', guestInitiated: false, signal: 'SIGKILL' });
  });

  it('surfaces QEMU\'s own message when it fails to start', async () => {
    const def = await loadDefinition(testGuestDefinition());
    const missing = join(scratch, 'missing.qcow2');
    const broken: DomainDefinition = { ...def, disks: [{ id: 'vda', source: missing, format: 'qcow2', bus: 'virtio', target: 'vda', readonly: false, cache: 'writeback' }] };
    const err = await rejection(launch(broken, join(scratch, 'fail')));
    expect(err.code).toBe('qemu.failed-to-start');
    expect(err.message).toContain(`Could not open '${missing}': No such file or directory`);
    expect(String(err.data['stderr'])).toContain('Could not open');
  });

  it('reports a missing QEMU binary as qemu.not-found', async () => {
    const def = await loadDefinition(testGuestDefinition());
    const err = await rejection(launch(def, join(scratch, 'nobin'), { binary: '/nonexistent/qemu-system-x86_64' }));
    expect(err.code).toBe('qemu.not-found');
  });
});

describe('capabilities of the installed QEMU', () => {
  it('probes version, machines, accelerators, CPU models and devices, then serves them from the cache', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'virtkit-caps-'));
    try {
      // A QEMU that counts its own runs: the second probe must start none (a cache read).
      const runs = join(cacheDir, 'runs');
      const binary = join(cacheDir, 'qemu-counting');
      await writeFile(binary, `#!/bin/sh\necho run >> '${runs}'\nexec qemu-system-x86_64 "$@"\n`, { mode: 0o755 });
      const caps = await probeCapabilities({ cacheDir, binary });
      expect(caps.version.major).toBeGreaterThanOrEqual(7);
      expect(caps.accelerators).toContain('tcg');
      expect(caps.machines.some((m) => m.name === 'pc' || m.alias === 'pc')).toBe(true);
      expect(caps.cpuModels).toContain('qemu64');
      expect(caps.devices).toEqual(expect.arrayContaining(['virtio-blk-pci', 'virtio-net-pci', 'pvpanic']));
      expect(caps.kvm.reason).not.toBe('');
      const auto = resolveAccel('auto', caps);
      expect(auto.accel).toBe(caps.kvm.usable ? 'kvm' : 'tcg');
      const cacheFiles = async (): Promise<string[]> => (await readdir(cacheDir)).filter((f) => f !== 'runs' && f !== 'qemu-counting');
      expect(await cacheFiles()).toHaveLength(1);
      const runsAfterProbe = (await readFile(runs, 'utf8')).split('\n').length;
      expect(runsAfterProbe).toBeGreaterThan(1);
      expect(await probeCapabilities({ cacheDir, binary })).toEqual(caps);
      expect((await readFile(runs, 'utf8')).split('\n').length).toBe(runsAfterProbe);
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
