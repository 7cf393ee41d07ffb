/**
 * Issue 14, findings 3 and 8 on real QEMU, with an in-process Manager over QemuDomainDriver and
 * guest kit guests under TCG:
 * - qemu.args / qemu.env taint the domain at start;
 * - the daemon's QMP connection closed under it (QemuGuest.dropMonitorConnection, a test hook
 *   that closes the client as a failure would) while the test holds QEMU's one QMP slot, so the
 *   driver's reconnection cannot succeed until the test lets go: the domain shows degraded,
 *   monitor calls fail with qmp.disconnected, then everything works again;
 * - a guest's power-off while the monitor is lost (QEMU exits, no SHUTDOWN event reaches us) is
 *   recorded as a shutdown, and so is one QEMU keeps (on_poweroff: preserve) that is found after
 *   the monitor came back.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { DomainEvent } from '../../src/api/schemas.js';
import { replayEvents } from '../../src/daemon/event-log.js';
import { Manager } from '../../src/daemon/manager.js';
import { qemuProcessesUnder } from '../../src/daemon/reconcile.js';
import { QemuDomainDriver } from '../../src/qemu/driver/qemu-driver.js';
import type { QemuGuest } from '../../src/qemu/driver/qemu-guest.js';
import type { GuestHandle, LaunchOptions, PreparedLaunch } from '../../src/qemu/index.js';
import { runPaths } from '../../src/qemu/index.js';
import { openStore, type Origin, type Store } from '../../src/store/index.js';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { typeOnConsole } from '../scenarios/manager-scenarios.js';
import { codeOf } from '../helpers/error-code.js';

const Ready = 'virtkit-guest: ready';
const log = Fastify({ logger: false }).log;
const origin: Origin = { client: 'test', pid: process.pid };

/** The QEMU driver, keeping the handles it launched so the test can reach their test hook. */
class HookedDriver extends QemuDomainDriver {
  readonly guests = new Map<string, QemuGuest>();
  override async launch(prepared: PreparedLaunch, opts?: LaunchOptions): Promise<GuestHandle> {
    const handle = await super.launch(prepared, opts);
    this.guests.set(prepared.definition.name, handle as QemuGuest);
    return handle;
  }
}

let dir: string;
let store: Store;
let driver: HookedDriver;
let manager: Manager;

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await manager.settled();
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function define(name: string, overrides: Record<string, unknown> = {}): Promise<void> {
  const base = YAML.parse(readFileSync(guestPaths(testGuest()).definitionPath, 'utf8')) as Record<string, unknown>;
  await manager.define(origin, { text: YAML.stringify({ ...base, name, ...overrides }), baseDir: testGuest() });
}

async function startReady(name: string): Promise<number> {
  const { pid } = await manager.start(origin, name);
  await waitFor(`${name} to be ready`, async () => (await manager.consoleLog(origin, name)).includes(Ready));
  return pid!;
}

/**
 * Closes the manager's QMP connection to `name` and takes QEMU's one QMP slot, so the driver's
 * reconnection waits; returns the function that lets go of it.
 */
async function loseMonitor(name: string): Promise<() => void> {
  const guest = driver.guests.get(name)!;
  guest.dropMonitorConnection();
  const holder: Socket = netConnect(runPaths(guest.runDir).qmpSocket);
  // QEMU greets the next client once it has seen the old one go: the slot is ours then.
  await new Promise<void>((resolve, reject) => {
    holder.once('data', () => resolve());
    holder.once('error', reject);
  });
  holder.on('error', () => undefined);
  await waitFor(`${name} to show degraded`, async () => (await manager.info(origin, name)).degraded === true);
  return () => holder.destroy();
}

async function eventsOf(name: string): Promise<[string, string | undefined][]> {
  const out: [string, string | undefined][] = [];
  await replayEvents(store, 0, (ev: DomainEvent) => { if (ev.domain === name) out.push([ev.type, ev.reason]); });
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/vkfm-');
  store = openStore(join(dir, 'state'));
  driver = new HookedDriver({ cacheDir: join(dir, 'cache') });
  manager = new Manager({ store, runRoot: join(dir, 'run'), log, driver });
});

afterAll(async () => {
  manager?.detachAll();
  await store?.close();
  for (const { pid } of await qemuProcessesUnder(join(dir, 'run'))) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await rm(dir, { recursive: true, force: true });
});

describe.sequential('faults on real QEMU: taint and a lost monitor', { timeout: 300_000 }, () => {
  it('qemu.args and qemu.env taint the domain at start; a lost monitor degrades it, recovers, and a power-off meanwhile is a shutdown', async () => {
    // -msg timestamp=on also prefixes QEMU's trace lines: the shutdown trace is read either way.
    await define('lost', { qemu: { args: ['-msg', 'timestamp=on'], env: { VIRTKIT_FAULT_TEST: '1' } } });
    const pid = await startReady('lost');
    const info = await manager.info(origin, 'lost');
    expect(info.tainted).toEqual(['custom-argv', 'custom-env']);
    expect((await manager.list(origin, false)).find((d) => d.name === 'lost')?.tainted).toEqual(['custom-argv', 'custom-env']);
    expect(await eventsOf('lost')).toContainEqual(['tainted', 'custom-argv,custom-env']);

    // Lost, held, then let go: degraded meanwhile, refusing monitor calls; then all works again.
    let release = await loseMonitor('lost');
    expect(await manager.info(origin, 'lost')).toMatchObject({ state: 'running', pid, degraded: true });
    expect((await manager.list(origin, false)).find((d) => d.name === 'lost')).toMatchObject({ degraded: true });
    expect(await codeOf(manager.suspend(origin, 'lost'))).toBe('qmp.disconnected');
    release();
    await waitFor('the monitor to be restored', async () => (await manager.info(origin, 'lost')).degraded === undefined, 30_000);
    expect(await manager.suspend(origin, 'lost')).toEqual({ state: 'paused' });
    expect(await manager.resume(origin, 'lost')).toEqual({ state: 'running' });
    expect(await manager.monitorCommand(origin, 'lost', { qmp: { execute: 'query-status' } })).toMatchObject({ status: 'running' });

    // Lost again; the guest powers off (QEMU exits, on_poweroff: destroy) before the monitor returns.
    release = await loseMonitor('lost');
    await typeOnConsole(manager, 'lost', 'poweroff -f\n');
    await waitFor('the power-off to be recorded', async () => (await manager.state(origin, 'lost')).state !== 'running');
    release();
    expect(await manager.state(origin, 'lost')).toEqual({ state: 'shutoff', reason: 'shutdown' });
    expect((await eventsOf('lost')).at(-1)).toEqual(['stopped', 'shutdown']);
  });

  it('a power-off QEMU keeps (on_poweroff: preserve) while the monitor is lost is seen once it is back', async () => {
    await define('kept', { on_poweroff: 'preserve' });
    await startReady('kept');
    const release = await loseMonitor('kept');
    await typeOnConsole(manager, 'kept', 'poweroff -f\n');
    // QEMU keeps the powered-off guest; only its log says so while QMP is held elsewhere.
    const qemuLog = runPaths(driver.guests.get('kept')!.runDir).qemuLog;
    await waitFor('the power-off in QEMU\'s log', async () => /qemu_system_shutdown_request reason=6/.test(readFileSync(qemuLog, 'utf8')));
    release();
    await waitFor('the kept power-off to be recorded', async () => (await manager.state(origin, 'kept')).state === 'paused');
    expect((await eventsOf('kept')).at(-1)).toEqual(['suspended', 'poweroff-preserve']);
    const r = await manager.shutdown(origin, 'kept', 30);
    expect(r).toEqual({ state: 'shutoff', outcome: 'clean' });
    expect(await manager.state(origin, 'kept')).toEqual({ state: 'shutoff', reason: 'shutdown' });
  });
});
