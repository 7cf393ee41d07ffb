/**
 * QemuDomainDriver against real TCG guests from the guest kit: prepare, launch paused, resume,
 * typed lifecycle events (raw monitor stop/cont, a guest reboot with its firmware resets
 * folded, the on_poweroff policies restart, preserve and destroy on a guest `poweroff`), HMP
 * error answers, devices by id, adoption by a second driver, a clean stop; on QEMUs whose
 * guest OS need not be up: a panic under on_crash: restart and destroy, destroy(), SIGKILL.
 * Three guest boots (two side by side, then one), plus a reboot and a restart of the first.
 * Last, capabilities: probed once per driver, a failed probe not kept.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseDefinition, type DomainDefinition } from '../../src/conf/index.js';
import { QemuDomainDriver, type GuestHandle, type LifecycleEvent, type PreparedLaunch } from '../../src/qemu/index.js';
import { isVirtkitError, type VirtkitError } from '../../src/util/errors.js';
import { testGuestDefinition } from '../helpers/guests.js';

const READY = 'virtkit-guest: ready';
const BOOT_TIMEOUT_MS = 150_000;

/** A launched guest, its console captured from the first byte and its events recorded. */
interface Booted {
  guest: GuestHandle;
  prepared: PreparedLaunch;
  console: Duplex;
  output: () => string;
  events: LifecycleEvent[];
}

/** The guest kit guest's definition with some fields changed. */
async function definition(changes: Record<string, unknown>): Promise<DomainDefinition> {
  const path = testGuestDefinition();
  const doc = parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  return parseDefinition(stringify({ ...doc, ...changes }), { baseDir: dirname(path) });
}

function record(guest: GuestHandle): LifecycleEvent[] {
  const events: LifecycleEvent[] = [];
  guest.onEvent((ev) => events.push(ev));
  return events;
}

async function launchPaused(driver: QemuDomainDriver, def: DomainDefinition, runDir: string): Promise<{ guest: GuestHandle; prepared: PreparedLaunch; events: LifecycleEvent[] }> {
  const prepared = await driver.prepare(def, { runDir });
  const guest = await driver.launch(prepared, { paused: true });
  return { guest, prepared, events: record(guest) };
}

/** prepare -> launch with the console attached first (QEMU waits for it; no -S) -> ready marker. */
async function bootConsoleFirst(driver: QemuDomainDriver, def: DomainDefinition, runDir: string): Promise<Booted> {
  const prepared = await driver.prepare(def, { runDir });
  const guest = await driver.launch(prepared, { consoleFirst: true });
  const events = record(guest);
  const console = await guest.openConsole();
  let text = '';
  console.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  console.on('error', () => undefined);
  await waitForText({ output: () => text }, READY, 0, BOOT_TIMEOUT_MS);
  return { guest, prepared, console, output: () => text, events };
}

/** QEMU's arguments as it runs them. */
function cmdlineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

/** prepare -> launch paused -> console -> resume -> ready marker. */
async function boot(driver: QemuDomainDriver, def: DomainDefinition, runDir: string): Promise<Booted> {
  const { guest, prepared, events } = await launchPaused(driver, def, runDir);
  const console = await guest.openConsole();
  let text = '';
  console.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  console.on('error', () => undefined); // QEMU going away resets the connection; exits are checked through events
  await guest.resume();
  await waitForText({ output: () => text }, READY, 0, BOOT_TIMEOUT_MS);
  return { guest, prepared, console, output: () => text, events };
}

async function waitForText(b: { output: () => string }, text: string, from: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!b.output().slice(from).includes(text)) {
    if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} on the console:\n${b.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForEvent(events: LifecycleEvent[], from: number, pred: (ev: LifecycleEvent) => boolean, ms: number): Promise<LifecycleEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ev = events.slice(from).find(pred);
    if (ev) return ev;
    if (Date.now() > deadline) throw new Error(`event not seen; events: ${JSON.stringify(events.slice(from))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^Z/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** The ids of `-device` JSON arguments of a command line, by driver. */
function deviceIds(argv: readonly string[]): { id: string; driver: string }[] {
  const out: { id: string; driver: string }[] = [];
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] !== '-device' || !argv[i + 1]!.startsWith('{')) continue;
    const props = JSON.parse(argv[i + 1]!) as { id?: string; driver: string };
    if (props.id !== undefined) out.push({ id: props.id, driver: props.driver });
  }
  return out;
}

describe('QemuDomainDriver with real guests', () => {
  let scratch: string;
  const driver = new QemuDomainDriver();
  /** on_poweroff: restart, with a disk and a NIC; accel auto. */
  let a: Booted;
  let defA: DomainDefinition;
  /** on_poweroff: preserve. */
  let p: Booted;
  const pids: number[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'virtkit-qemu-driver-'));
    const disk = join(scratch, 'data.raw');
    await writeFile(disk, Buffer.alloc(1024 * 1024));
    defA = await definition({ on_poweroff: 'restart', nics: [{ model: 'virtio' }], disks: [{ source: disk, format: 'raw', readonly: true }] });
    const defP = await definition({ name: 'preserver', accel: 'tcg', on_poweroff: 'preserve' });
    [a, p] = await Promise.all([boot(driver, defA, join(scratch, 'a')), bootConsoleFirst(driver, defP, join(scratch, 'p'))]);
    pids.push(a.guest.pid, p.guest.pid);
  });

  afterAll(async () => {
    for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('prepares (accelerator with its reason) and launches paused under -S: started, then resumed by the host', async () => {
    expect(a.prepared.command.argv).not.toContain('-S');
    expect(cmdlineOf(a.guest.pid)).toContain('-S');
    expect(a.prepared.accelReason).toMatch(/^auto: /);
    expect(a.guest.accel).toBe(a.prepared.accel);
    expect(a.events.slice(0, 2)).toEqual([{ type: 'started', paused: true }, { type: 'resumed', by: 'host' }]);
    expect(await a.guest.state()).toBe('running');
    const caps = await driver.capabilities();
    expect(caps.accelerators).toContain('tcg');
    expect(caps.kvm.usable).toBe(a.prepared.accel === 'kvm');
  });

  it('attaches the console first without -S: QEMU waited for that connection, which got every byte the guest printed', async () => {
    const argv = cmdlineOf(p.guest.pid);
    expect(argv).not.toContain('-S');
    expect(argv.find((a) => a.startsWith('socket,id=console,'))).toMatch(/,server=on,wait=on,/);
    // QEMU said it waited for a client before it went on creating the machine
    expect(await readFile(join(scratch, 'p', 'qemu.log'), 'utf8')).toContain('waiting for connection');
    expect(p.events[0]).toEqual({ type: 'started', paused: false });
    // what the held connection passed on is what QEMU logged, from the first byte
    const seen = p.output();
    expect(seen).toContain(READY);
    const logged = await readFile(join(scratch, 'p', 'console.log'), 'latin1');
    expect(logged.startsWith(seen)).toBe(true);
    // the held connection is handed out once; the next openConsole is a connection of its own
    expect(p.console).not.toBe(await p.guest.openConsole().then((c) => { c.destroy(); return c; }));
  });

  it('reports a raw monitor stop and cont as paused/resumed by the monitor', async () => {
    const from = a.events.length;
    await a.guest.monitor({ hmp: 'stop' });
    await waitForEvent(a.events, from, (ev) => ev.type === 'paused', 10_000);
    expect(await a.guest.state()).toBe('paused');
    await a.guest.monitor({ qmp: { execute: 'cont' } });
    await waitForEvent(a.events, from, (ev) => ev.type === 'resumed', 10_000);
    expect(a.events.slice(from)).toEqual([{ type: 'paused', by: 'monitor' }, { type: 'resumed', by: 'monitor' }]);
  });

  it('throws QEMU\'s text for an HMP error, returns the text otherwise', async () => {
    const err = await rejection(a.guest.monitor({ hmp: 'bogus' }));
    expect(err.code).toBe('qmp.command-failed');
    expect(err.message).toContain('unknown command: \'bogus\'');
    expect((await rejection(a.guest.monitor({ hmp: 'device_del nosuch' }))).message).toContain('Device \'nosuch\' not found');
    expect(await a.guest.monitor({ hmp: 'info status' })).toContain('VM status: running');
    expect((await rejection(a.guest.monitor({ qmp: { execute: 'no-such-command' } }))).code).toBe('qmp.command-failed');
  });

  it('lists the devices by the ids of the command line, with their kinds; the live definition is the launched one', async () => {
    const devices = await a.guest.devices();
    const expected = deviceIds(a.prepared.command.argv);
    const disk = expected.find((d) => d.driver === 'virtio-blk-pci');
    const nic = expected.find((d) => d.driver === 'virtio-net-pci');
    expect(disk).toBeDefined();
    expect(nic).toBeDefined();
    expect(devices).toContainEqual({ id: disk!.id, kind: 'disk' });
    expect(devices).toContainEqual({ id: nic!.id, kind: 'nic' });
    expect(devices.map((d) => d.id).sort()).toEqual(expected.map((d) => d.id).sort());
    // the definition's own ids, where it carries them
    for (const d of [...defA.disks, ...defA.nics] as { id?: string }[]) if (d.id !== undefined) expect(devices.map((x) => x.id)).toContain(d.id);
    expect(a.guest.liveDefinition()).toEqual(defA);
  });

  it('reports a guest reboot as one reset by the guest, its firmware\'s resets folded in', async () => {
    const from = a.events.length;
    const text = a.output().length;
    a.console.write('reboot -f\n');
    await waitForText(a, READY, text, BOOT_TIMEOUT_MS);
    expect(a.events.slice(from)).toEqual([{ type: 'reset', by: 'guest' }]);
  });

  it('on_poweroff: restart: the guest powers off, the driver resets and resumes it in the same QEMU', async () => {
    const from = a.events.length;
    const text = a.output().length;
    a.console.write('poweroff -f\n');
    await waitForText(a, READY, text, BOOT_TIMEOUT_MS);
    expect(a.events.slice(from)).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'restart' },
      { type: 'reset', by: 'host' },
    ]);
    expect(await a.guest.state()).toBe('running');
  });

  it('lets a second driver adopt the guest by run dir (uuid checked), then stops it cleanly', async () => {
    const runDir = a.guest.runDir;
    a.guest.detach(); // QEMU serves one QMP client at a time: hand it over
    const other = new QemuDomainDriver();
    const wrong = await rejection(other.attach({ ...defA, uuid: '00000000-0000-4000-8000-000000000000' }, runDir));
    expect(wrong.code).toBe('process.stale');
    const adopted = await other.attach(defA, runDir);
    const events = record(adopted);
    expect(adopted.pid).toBe(a.guest.pid);
    expect(adopted.accel).toBe(a.prepared.accel);
    expect(await adopted.state()).toBe('running');
    expect(await adopted.stop({ timeoutMs: 60_000 })).toBe('clean');
    const exit = await adopted.exited;
    expect(exit).toMatchObject({ reason: 'shutdown', guestInitiated: false, shutdownReason: 'guest-shutdown' });
    // nothing restarted the guest: the stop was asked for
    expect(events).toEqual([{ type: 'shutdown', by: 'host', reason: 'guest-shutdown' }, { type: 'exited', exit }]);
    expect(pidAlive(adopted.pid)).toBe(false);
  });

  it('on_poweroff: preserve: the guest powers off and stays, paused by the policy; a stop without preserve then ends QEMU cleanly', async () => {
    const from = p.events.length;
    p.console.write('poweroff -f\n');
    await waitForEvent(p.events, from, (ev) => ev.type === 'paused', 60_000);
    expect(p.events.slice(from)).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'preserve' },
      { type: 'paused', by: 'policy', reason: 'poweroff-preserve' },
    ]);
    expect(await p.guest.state()).toBe('shutdown');
    expect(pidAlive(p.guest.pid)).toBe(true);
    expect(await p.guest.stop({ timeoutMs: 30_000, preserve: false })).toBe('clean');
    expect((await p.guest.exited).reason).toBe('shutdown');
    expect(p.events.at(-1)).toMatchObject({ type: 'exited' });
  });

  it('on_poweroff: destroy: the guest powers off and QEMU exits by itself', async () => {
    const c = await boot(driver, await definition({ name: 'destroyer', accel: 'tcg' }), join(scratch, 'c'));
    pids.push(c.guest.pid);
    c.console.write('poweroff -f\n');
    const exit = await c.guest.exited;
    expect(exit).toMatchObject({ reason: 'shutdown', guestInitiated: true, shutdownReason: 'guest-shutdown' });
    expect(c.events.slice(2)).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'destroy' },
      { type: 'exited', exit },
    ]);
  });

  it('on_crash: restart answers a panic with a reset; destroy() then ends QEMU (guest OS not needed)', async () => {
    const def = await definition({ name: 'panicker', accel: 'tcg', on_crash: 'restart' });
    const prepared = await driver.prepare(def, { runDir: join(scratch, 'panic') });
    const guest = await driver.launch(prepared);
    pids.push(guest.pid);
    const events = record(guest);
    // nothing had to come first: QEMU ran the CPUs by itself, no -S and no `cont`
    expect(cmdlineOf(guest.pid)).not.toContain('-S');
    // the pvpanic port, poked from the monitor
    await guest.monitor({ hmp: 'o /b 0x505 1' });
    await waitForEvent(events, 0, (ev) => ev.type === 'reset', 20_000);
    expect(events).toEqual([
      { type: 'started', paused: false },
      { type: 'crashed', action: 'restart' },
      { type: 'policy', what: 'crash', action: 'restart' },
      { type: 'reset', by: 'host' },
    ]);
    expect(await guest.state()).toBe('running');
    const exit = await guest.destroy();
    expect(exit).toMatchObject({ reason: 'destroyed', forcedBy: 'quit' });
    expect(events.at(-1)).toEqual({ type: 'exited', exit });
    expect(pidAlive(guest.pid)).toBe(false);
  });

  it('on_crash: destroy ends a panicked guest QEMU keeps (panic=exit-failure under shutdown=pause, for on_poweroff: preserve)', async () => {
    const def = await definition({ name: 'panic-destroy', accel: 'tcg', on_crash: 'destroy', on_poweroff: 'preserve' });
    const guest = await driver.launch(await driver.prepare(def, { runDir: join(scratch, 'panic-destroy') }));
    pids.push(guest.pid);
    const events = record(guest);
    await guest.monitor({ hmp: 'o /b 0x505 1' });
    const exit = await guest.exited;
    expect(exit).toMatchObject({ reason: 'crashed', guestInitiated: true, shutdownReason: 'guest-panic' });
    expect(events).toEqual([
      { type: 'started', paused: false },
      { type: 'crashed', action: 'destroy' },
      { type: 'policy', what: 'crash', action: 'destroy' },
      { type: 'exited', exit },
    ]);
    expect(pidAlive(guest.pid)).toBe(false);
  });

  it('reports a QEMU killed by SIGKILL as exited, crashed', async () => {
    const { guest, events } = await launchPaused(driver, await definition({ name: 'killed', accel: 'tcg' }), join(scratch, 'killed'));
    pids.push(guest.pid);
    expect(await guest.state()).toBe('prelaunch');
    process.kill(guest.pid, 'SIGKILL');
    const exit = await guest.exited;
    expect(exit).toMatchObject({ reason: 'crashed', guestInitiated: false, signal: 'SIGKILL' });
    expect(events).toEqual([{ type: 'started', paused: true }, { type: 'exited', exit }]);
  });

  it('surfaces QEMU\'s own message when it fails to start', async () => {
    const missing = join(scratch, 'missing.qcow2');
    const def = await definition({ name: 'broken', accel: 'tcg', disks: [{ source: missing, format: 'qcow2' }] });
    const prepared = await driver.prepare(def, { runDir: join(scratch, 'broken') });
    const err = await rejection(driver.launch(prepared));
    expect(err.code).toBe('qemu.failed-to-start');
    expect(err.message).toContain(`Could not open '${missing}'`);
  });
});

describe('QemuDomainDriver capabilities', () => {
  it('probes once per driver and keeps the result in memory; a failed probe is not kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'virtkit-driver-caps-'));
    try {
      const binary = join(dir, 'bin', 'qemu-system-x86_64');
      const cacheDir = join(dir, 'cache');
      const driver = new QemuDomainDriver({ binary, cacheDir });
      expect((await rejection(driver.capabilities())).code).toBe('qemu.not-found');
      // QEMU appears: the next call probes again instead of repeating the failure
      await mkdir(dirname(binary));
      await symlink(await realQemu(), binary);
      const caps = await driver.capabilities();
      expect(caps.binary).toBe(binary);
      expect(caps.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(caps.accelerators).toContain('tcg');
      expect(caps.kvm.reason).not.toBe('');
      // the on-disk cache is caps.ts's; the driver does not even read it again
      await rm(cacheDir, { recursive: true, force: true });
      expect(await driver.capabilities()).toEqual(caps);
      expect(existsSync(cacheDir)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The installed qemu-system-x86_64, as a path. */
async function realQemu(): Promise<string> {
  for (const d of (process.env['PATH'] ?? '').split(':')) {
    const p = join(d, 'qemu-system-x86_64');
    if (d.startsWith('/') && existsSync(p)) return realpath(p);
  }
  throw new Error('qemu-system-x86_64 is not on PATH');
}
