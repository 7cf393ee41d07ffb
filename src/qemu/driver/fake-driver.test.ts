/**
 * The fake driver's state machine: the event sequences and exit classifications the QEMU
 * driver produces (events.ts, process.ts), for every policy, stop path and test hook.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateDefinition, type DomainDefinition } from '../../conf/index.js';
import { isVirtkitError } from '../../util/errors.js';
import { FakeDomainDriver, FakeHost, FakeReadyMarker, type FakeGuest } from './fake-driver.js';
import type { GuestHandle, LifecycleEvent } from './types.js';

let dir: string;
let host: FakeHost;
let driver: FakeDomainDriver;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-fakedrv-'));
  await writeFile(join(dir, 'vmlinuz'), 'k');
  host = new FakeHost();
  driver = new FakeDomainDriver({ host });
});

afterEach(async () => {
  for (const g of host.liveGuests()) g.die();
  await rm(dir, { recursive: true, force: true });
});

function definition(name: string, extra: Record<string, unknown> = {}): DomainDefinition {
  return validateDefinition({ name, memory: '64MiB', boot: { loader: 'direct', kernel: 'vmlinuz' }, ...extra }, { baseDir: dir });
}

async function launch(def: DomainDefinition, paused = false): Promise<{ handle: GuestHandle; guest: FakeGuest; events: LifecycleEvent[] }> {
  const prepared = await driver.prepare(def, { runDir: join(dir, 'run', def.uuid) });
  const handle = await driver.launch(prepared, { paused });
  const events: LifecycleEvent[] = [];
  handle.onEvent((ev) => events.push(ev));
  await tick();
  return { handle, guest: host.guestAt(handle.runDir)!, events };
}

/** Lets the fake guest's reactions (a power button heard, a shell line) happen. */
async function tick(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return isVirtkitError(err) ? err.code : `plain: ${String(err)}`;
  }
  return 'ok';
}

const types = (events: LifecycleEvent[]): string[] => events.map((e) => e.type);

describe('launch and the host\'s own operations', () => {
  it('starts running (or in prelaunch when paused) and reports started first', async () => {
    const { handle, events } = await launch(definition('a'));
    expect(events[0]).toEqual({ type: 'started', paused: false });
    expect(await handle.state()).toBe('running');
    const p = await launch(definition('b'), true);
    expect(await p.handle.state()).toBe('prelaunch');
    await p.handle.resume();
    expect(await p.handle.state()).toBe('running');
  });

  it('pause, resume, reset carry by: host', async () => {
    const { handle, events } = await launch(definition('a'));
    await handle.pause();
    expect(await handle.state()).toBe('paused');
    await handle.resume();
    await handle.reset();
    expect(events.slice(1)).toEqual([{ type: 'paused', by: 'host' }, { type: 'resumed', by: 'host' }, { type: 'reset', by: 'host' }]);
  });

  it('refuses what QEMU refuses: a missing kernel, a second QEMU in the same run dir', async () => {
    const def = definition('a');
    const prepared = await driver.prepare(def, { runDir: join(dir, 'run', 'x') });
    await driver.launch(prepared);
    expect(await codeOf(driver.launch(prepared))).toBe('domain.invalid-state');
    await rm(join(dir, 'vmlinuz'));
    const other = await driver.prepare(definition('b'), { runDir: join(dir, 'run', 'y') });
    expect(await codeOf(driver.launch(other))).toBe('qemu.failed-to-start');
  });

  it('prepare refuses a volume disk without a resolved path, as the command builder does', async () => {
    const def = definition('v', { disks: [{ volume: 'pool1/disk.qcow2', format: 'qcow2' }] });
    expect(await codeOf(driver.prepare(def, { runDir: join(dir, 'run', 'v') }))).toBe('volume.not-found');
  });
});

describe('the guest stops itself: on_poweroff, on_reboot, on_crash', () => {
  it('power-off under destroy: QEMU exits, a guest-initiated shutdown', async () => {
    const { handle, guest, events } = await launch(definition('a'));
    guest.powerOff();
    const exit = await handle.exited;
    expect(exit).toMatchObject({ reason: 'shutdown', guestInitiated: true, shutdownReason: 'guest-shutdown' });
    expect(events.slice(1)).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-shutdown' },
      { type: 'policy', what: 'poweroff', action: 'destroy' },
      { type: 'exited', exit },
    ]);
    expect(await codeOf(handle.state())).toBe('qmp.disconnected');
  });

  it('power-off under restart: reset and running again in the same QEMU', async () => {
    const { handle, guest, events } = await launch(definition('a', { on_poweroff: 'restart' }));
    guest.powerOff();
    expect(types(events.slice(1))).toEqual(['shutdown', 'policy', 'reset']);
    expect(events[2]).toEqual({ type: 'policy', what: 'poweroff', action: 'restart' });
    expect(await handle.state()).toBe('running');
  });

  it('power-off under preserve: kept stopped; cont is refused until a reset', async () => {
    const { handle, guest, events } = await launch(definition('a', { on_poweroff: 'preserve' }));
    guest.powerOff();
    expect(events.slice(2)).toEqual([{ type: 'policy', what: 'poweroff', action: 'preserve' }, { type: 'paused', by: 'policy', reason: 'poweroff-preserve' }]);
    expect(await handle.state()).toBe('shutdown');
    expect(await codeOf(handle.resume())).toBe('qmp.command-failed');
    await handle.reset();
    expect(await handle.state()).toBe('prelaunch');
    await handle.resume();
    expect(await handle.state()).toBe('running');
  });

  it('a guest reboot under restart is QEMU\'s own reset (by guest); under destroy it ends QEMU', async () => {
    const a = await launch(definition('a'));
    a.guest.reboot();
    expect(a.events.slice(1)).toEqual([{ type: 'reset', by: 'guest' }]);
    const b = await launch(definition('b', { on_reboot: 'destroy' }));
    b.guest.reboot();
    expect(await b.handle.exited).toMatchObject({ reason: 'shutdown', guestInitiated: true, shutdownReason: 'guest-reset' });
    expect(b.events.slice(1, 3)).toEqual([
      { type: 'shutdown', by: 'guest', reason: 'guest-reset' },
      { type: 'policy', what: 'reboot', action: 'destroy' },
    ]);
  });

  it('a panic under each on_crash', async () => {
    const d = await launch(definition('d'));
    d.guest.panic();
    expect(await d.handle.exited).toMatchObject({ reason: 'crashed', guestInitiated: true, shutdownReason: 'guest-panic' });
    expect(types(d.events.slice(1))).toEqual(['crashed', 'policy', 'exited']);
    const r = await launch(definition('r', { on_crash: 'restart' }));
    r.guest.panic();
    expect(types(r.events.slice(1))).toEqual(['crashed', 'policy', 'reset']);
    expect(await r.handle.state()).toBe('running');
    const p = await launch(definition('p', { on_crash: 'preserve' }));
    p.guest.panic();
    expect(p.events.at(-1)).toEqual({ type: 'paused', by: 'policy', reason: 'crash-preserve' });
    expect(await p.handle.state()).toBe('crashed');
    // a panicked guest hears no button
    expect(await p.handle.stop({ timeoutMs: 1000 })).toBe('forced');
    expect(await p.handle.exited).toMatchObject({ reason: 'crashed', forcedBy: 'quit' });
  });

  it('QEMU dying is a crash nobody initiated', async () => {
    const { handle, guest } = await launch(definition('a'));
    guest.die();
    expect(await handle.exited).toEqual({ reason: 'crashed', guestInitiated: false, exitCode: null, signal: 'SIGKILL' });
  });
});

describe('stop and destroy', () => {
  it('a clean stop: the host\'s power-off, no policy, QEMU exits', async () => {
    const { handle, events } = await launch(definition('a', { on_poweroff: 'restart' }));
    expect(await handle.stop({ timeoutMs: 5000 })).toBe('clean');
    expect(await handle.exited).toMatchObject({ reason: 'shutdown', guestInitiated: false });
    expect(types(events.slice(1))).toEqual(['shutdown', 'exited']);
    expect(events[1]).toMatchObject({ by: 'host' });
  });

  it('a guest that ignores the button is forced after the timeout', async () => {
    const { handle, guest } = await launch(definition('a'));
    guest.ignoresPowerButton = true;
    expect(await handle.stop({ timeoutMs: 20 })).toBe('forced');
    expect(await handle.exited).toMatchObject({ reason: 'destroyed', guestInitiated: false, forcedBy: 'quit' });
  });

  it('stop of a guest kept after its power-off: left there with preserve, ended without', async () => {
    const a = await launch(definition('a', { on_poweroff: 'preserve' }));
    expect(await a.handle.stop({ timeoutMs: 5000 })).toBe('clean');
    expect(await a.handle.state()).toBe('shutdown');
    expect(await a.handle.stop({ timeoutMs: 5000, preserve: false })).toBe('clean');
    expect(await a.handle.exited).toMatchObject({ reason: 'shutdown' });
  });

  it('destroy is the host\'s doing', async () => {
    const { handle } = await launch(definition('a'));
    expect(await handle.destroy()).toMatchObject({ reason: 'destroyed', guestInitiated: false, forcedBy: 'quit' });
  });

  it('a clean reboot: one reset by host; a guest deaf to the button times out', async () => {
    const { handle, guest, events } = await launch(definition('a'));
    await handle.reboot({ timeoutMs: 5000 });
    expect(events.slice(1)).toEqual([{ type: 'reset', by: 'host' }]);
    expect(await handle.state()).toBe('running');
    guest.ignoresPowerButton = true;
    expect(await codeOf(handle.reboot({ timeoutMs: 20 }))).toBe('operation.timeout');
  });
});

describe('monitor, console, adoption', () => {
  it('a raw monitor stop and cont are by: monitor; HMP and unknown commands', async () => {
    const { handle, events } = await launch(definition('mon'));
    await handle.monitor({ qmp: { execute: 'stop' } });
    expect(await handle.monitor({ qmp: { execute: 'query-status' } })).toMatchObject({ status: 'paused', running: false });
    await handle.monitor({ hmp: 'cont' });
    expect(events.slice(1)).toEqual([{ type: 'paused', by: 'monitor' }, { type: 'resumed', by: 'monitor' }]);
    expect(await handle.monitor({ hmp: 'info name' })).toBe('mon\r\n');
    expect(await codeOf(handle.monitor({ hmp: 'bogus' }))).toBe('qmp.command-failed');
    expect(await codeOf(handle.monitor({ qmp: { execute: 'bogus' } }))).toBe('qmp.command-failed');
  });

  it('the console: the ready marker and echo in the stream and the log; typing poweroff powers off', async () => {
    const { handle } = await launch(definition('con'));
    const stream = await handle.openConsole();
    let seen = '';
    stream.on('data', (c: Buffer) => { seen += c.toString(); });
    stream.write('echo hello\n');
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toContain('hello');
    const log = await readFile(handle.consoleLogPath, 'utf8');
    expect(log).toContain(FakeReadyMarker);
    expect(log).toContain('hello');
    stream.write('poweroff -f\n');
    expect(await handle.exited).toMatchObject({ reason: 'shutdown', guestInitiated: true });
  });

  it('a second driver on the same host adopts the guest; the old handle hears nothing more', async () => {
    const def = definition('adopt');
    const { handle, guest, events } = await launch(def);
    const next = new FakeDomainDriver({ host });
    const adopted = await next.attach(def, handle.runDir);
    expect(adopted.pid).toBe(handle.pid);
    const seen: LifecycleEvent[] = [];
    adopted.onEvent((ev) => seen.push(ev));
    const before = events.length;
    guest.monitorStop();
    expect(seen).toEqual([{ type: 'paused', by: 'monitor' }]);
    expect(events).toHaveLength(before);
    expect(await codeOf(handle.pause())).toBe('qmp.disconnected');
    expect(await codeOf(next.attach(definition('other'), handle.runDir))).toBe('process.stale');
    expect(await codeOf(next.attach(def, join(dir, 'run', 'nothing')))).toBe('process.stale');
    guest.die();
    await adopted.exited;
    expect(await codeOf(next.attach(def, handle.runDir))).toBe('process.stale');
  });
});

describe('hot-plug, balloon and vCPUs (fake-hotplug.ts)', () => {
  it('plugs and unplugs devices by id, keeping liveDefinition() and devices() in step; refuses as QEMU does', async () => {
    const image = join(dir, 'data.raw');
    await writeFile(image, Buffer.alloc(4096));
    const { handle, guest } = await launch(definition('hp', { maxvcpus: 2 }));
    const disk = { id: 'vdb', target: 'vdb', bus: 'virtio' as const, format: 'raw' as const, readonly: false, cache: 'writeback' as const, source: image };
    await handle.attachDisk(disk, image);
    await handle.attachNic({ id: 'net0', model: 'virtio', mac: '52:54:00:00:00:07', network: 'user', hostfwd: [] });
    expect((await handle.devices()).map((d) => d.id)).toEqual(['vdb', 'net0']);
    expect(handle.liveDefinition().disks.map((d) => d.id)).toEqual(['vdb']);
    expect(await codeOf(handle.attachDisk(disk, image))).toBe('qmp.command-failed');
    expect(await codeOf(handle.attachDisk({ ...disk, id: 'vdc', target: 'vdc' }, join(dir, 'missing')))).toBe('qmp.command-failed');
    expect([...guest.hotplug.nodes].sort()).toEqual(['vdb-file', 'vdb-format']);
    guest.hotplug.holdDevice('net0');
    expect(await codeOf(handle.detachNic('net0', { timeoutMs: 1000 }))).toBe('device.detach-timeout');
    guest.hotplug.releaseDevices();
    await handle.detachNic('net0', { timeoutMs: 1000 });
    await handle.detachDisk('vdb', { timeoutMs: 1000 });
    expect(await codeOf(handle.detachDisk('vdb', { timeoutMs: 1000 }))).toBe('qmp.command-failed');
    expect(await handle.devices()).toEqual([]);

    await handle.setMemory(32 * 1024 * 1024);
    expect((await handle.memoryStats()).actual).toBe(32 * 1024 * 1024);
    await handle.setVcpus(2, { timeoutMs: 1000 });
    expect((await handle.vcpuInfo()).map((v) => v.hotplugged)).toEqual([false, true]);
    expect(await codeOf(handle.setVcpus(3, { timeoutMs: 1000 }))).toBe('vcpus.out-of-range');
    expect(await codeOf(handle.setVcpus(0, { timeoutMs: 1000 }))).toBe('operation.unsupported');
  });
});
