/**
 * Manager scenarios written once and run on both drivers: on the fake in milliseconds
 * (src/daemon/manager-scenarios.test.ts) and on real QEMU with guest kit guests
 * (test/integration/manager-scenarios.test.ts). A scenario only uses the manager's public
 * methods and what a real guest can do (type on its console, have its QEMU killed), so a
 * behaviour of the fake that the real driver does not share fails on real QEMU.
 */
import { Duplex } from 'node:stream';
import { expect } from 'vitest';
import YAML from 'yaml';
import type { DomainEvent } from '../../src/api/schemas.js';
import type { Manager } from '../../src/daemon/manager.js';
import { replayEvents } from '../../src/daemon/event-log.js';
import type { Origin, Store } from '../../src/store/index.js';
import { isVirtkitError } from '../../src/util/errors.js';

export const ReadyMarker = 'virtkit-guest: ready';

/** What a scenario needs beyond a running guest; a runner skips scenarios it cannot provide. */
export type Capability = 'panic';

export interface ScenarioContext {
  readonly kind: 'qemu' | 'fake';
  /** The current manager (a new one after restartManager()). */
  readonly manager: Manager;
  readonly store: Store;
  readonly origin: Origin;
  /** Seconds a forced shutdown waits for a guest that ignores the button (short on the fake). */
  readonly forcedShutdownTimeout: number;
  /**
   * Defines a domain `name` from the test guest, with definition fields overridden. With
   * `ignoresPowerButton` the guest does not power off on the ACPI button.
   */
  define(name: string, opts?: { overrides?: Record<string, unknown>; ignoresPowerButton?: boolean }): Promise<void>;
  /** Types on the guest's serial console (the guest kit shell: `poweroff -f`, `reboot -f`, `echo`). */
  type(name: string, text: string): Promise<void>;
  /** The guest kernel panics (pvpanic). Only where the runner declares 'panic'. */
  panic(name: string): Promise<void>;
  /** QEMU (pid `pid`) dies unexpectedly (SIGKILL from outside); resolves once it is gone. */
  killQemu(name: string, pid: number): Promise<void>;
  /**
   * The daemon stops (or, with `crash`, dies without detaching), `meanwhile` runs while no
   * manager watches, and a new manager over the same store reconciles and adopts the guests.
   */
  restartManager(opts?: { crash?: boolean; meanwhile?: () => Promise<void> }): Promise<void>;
  /** Polls `fn` (after letting the manager record what it was told) until it is true. */
  waitFor(what: string, fn: () => Promise<boolean>): Promise<void>;
}

export interface Scenario {
  name: string;
  needs?: Capability[];
  run(ctx: ScenarioContext): Promise<void>;
}

// ---- helpers shared by the scenarios ------------------------------------------------------

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isVirtkitError(err)) return err.code;
    throw err;
  }
  return 'ok';
}

function countOf(text: string, marker: string): number {
  return text.split(marker).length - 1;
}

async function readyCount(ctx: ScenarioContext, name: string): Promise<number> {
  return countOf(await ctx.manager.consoleLog(ctx.origin, name), ReadyMarker);
}

/** Waits until the guest printed its ready marker more than `before` times. */
export async function waitReady(ctx: ScenarioContext, name: string, before = 0): Promise<void> {
  await ctx.waitFor(`${name} ready (#${before + 1})`, async () => (await readyCount(ctx, name)) > before);
}

async function eventsSince(ctx: ScenarioContext, since: number, name: string): Promise<DomainEvent[]> {
  const out: DomainEvent[] = [];
  await replayEvents(ctx.store, since, (ev) => { if (ev.domain === name) out.push(ev); });
  return out;
}

async function waitEvent(ctx: ScenarioContext, since: number, name: string, type: DomainEvent['type'], reason?: string): Promise<void> {
  await ctx.waitFor(`a ${type}${reason ? ` (${reason})` : ''} event of ${name}`, async () =>
    (await eventsSince(ctx, since, name)).some((e) => e.type === type && (reason === undefined || e.reason === reason)));
}

async function stateOf(ctx: ScenarioContext, name: string): Promise<{ state: string; reason?: string }> {
  return ctx.manager.state(ctx.origin, name);
}

async function startReady(ctx: ScenarioContext, name: string): Promise<number> {
  const before = await readyCount(ctx, name);
  const info = await ctx.manager.start(ctx.origin, name);
  await waitReady(ctx, name, before);
  return info.pid!;
}

// ---- the scenarios --------------------------------------------------------------------------

export const scenarios: Scenario[] = [
  {
    name: 'start, suspend, resume, destroy, with every precondition refused',
    async run(ctx) {
      const m = ctx.manager;
      const o = ctx.origin;
      await ctx.define('s-basic');
      expect(await codeOf(m.shutdown(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.destroy(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.suspend(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.resume(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.reboot(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.reset(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.monitorCommand(o, 's-basic', { hmp: 'info name' }))).toBe('domain.invalid-state');
      const since = ctx.store.revision;
      const pid = await startReady(ctx, 's-basic');
      expect(await m.info(o, 's-basic')).toMatchObject({ state: 'running', pid, definitionDiffers: false });
      expect(await codeOf(m.start(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.undefine(o, 's-basic', false))).toBe('domain.invalid-state');
      expect(await codeOf(m.resume(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await m.suspend(o, 's-basic')).toEqual({ state: 'paused' });
      expect(await codeOf(m.suspend(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await codeOf(m.reboot(o, 's-basic'))).toBe('domain.invalid-state');
      expect(await m.resume(o, 's-basic')).toEqual({ state: 'running' });
      expect(await m.destroy(o, 's-basic')).toEqual({ state: 'shutoff', reason: 'destroyed' });
      expect(await codeOf(m.destroy(o, 's-basic'))).toBe('domain.invalid-state');
      const events = (await eventsSince(ctx, since, 's-basic')).map((e) => [e.type, e.reason]);
      expect(events).toEqual([['started', undefined], ['suspended', undefined], ['resumed', undefined], ['stopped', 'destroyed']]);
      await m.undefine(o, 's-basic', false);
      expect(await codeOf(m.info(o, 's-basic'))).toBe('domain.not-found');
    },
  },
  {
    name: 'start --paused boots only on resume',
    async run(ctx) {
      await ctx.define('s-paused');
      const info = await ctx.manager.start(ctx.origin, 's-paused', { paused: true });
      expect(info.state).toBe('paused');
      expect(await readyCount(ctx, 's-paused')).toBe(0);
      await ctx.manager.resume(ctx.origin, 's-paused');
      await waitReady(ctx, 's-paused');
      await ctx.manager.destroy(ctx.origin, 's-paused');
    },
  },
  {
    name: 'the guest powers off by itself (on_poweroff: destroy): stopped, reason shutdown',
    async run(ctx) {
      await ctx.define('s-poweroff');
      await startReady(ctx, 's-poweroff');
      const since = ctx.store.revision;
      await ctx.type('s-poweroff', 'poweroff -f\n');
      await waitEvent(ctx, since, 's-poweroff', 'stopped');
      expect(await stateOf(ctx, 's-poweroff')).toEqual({ state: 'shutoff', reason: 'shutdown' });
      expect(await codeOf(ctx.manager.definitionText(ctx.origin, 's-poweroff', 'yaml', { live: true }))).toBe('domain.invalid-state');
    },
  },
  {
    name: 'on_poweroff: restart boots the guest again in the same QEMU; a shutdown still ends it',
    async run(ctx) {
      await ctx.define('s-restart', { overrides: { on_poweroff: 'restart' } });
      const pid = await startReady(ctx, 's-restart');
      const since = ctx.store.revision;
      await ctx.type('s-restart', 'poweroff -f\n');
      await waitEvent(ctx, since, 's-restart', 'rebooted', 'poweroff-restart');
      await waitReady(ctx, 's-restart', 1);
      expect(await ctx.manager.info(ctx.origin, 's-restart')).toMatchObject({ state: 'running', pid });
      const r = await ctx.manager.shutdown(ctx.origin, 's-restart', 60);
      expect(r).toEqual({ state: 'shutoff', outcome: 'clean' });
      expect(await stateOf(ctx, 's-restart')).toEqual({ state: 'shutoff', reason: 'shutdown' });
    },
  },
  {
    name: 'on_poweroff: preserve keeps the powered-off guest paused until destroyed',
    async run(ctx) {
      await ctx.define('s-preserve', { overrides: { on_poweroff: 'preserve' } });
      await startReady(ctx, 's-preserve');
      const since = ctx.store.revision;
      await ctx.type('s-preserve', 'poweroff -f\n');
      await waitEvent(ctx, since, 's-preserve', 'suspended', 'poweroff-preserve');
      expect(await stateOf(ctx, 's-preserve')).toEqual({ state: 'paused' });
      const kinds = (await eventsSince(ctx, since, 's-preserve')).map((e) => e.type);
      expect(kinds.filter((k) => k === 'suspended')).toHaveLength(1);
      expect(await ctx.manager.destroy(ctx.origin, 's-preserve')).toEqual({ state: 'shutoff', reason: 'destroyed' });
    },
  },
  {
    name: 'the guest reboots itself (on_reboot: restart): a rebooted event, still running',
    async run(ctx) {
      await ctx.define('s-guest-reboot');
      const pid = await startReady(ctx, 's-guest-reboot');
      const since = ctx.store.revision;
      await ctx.type('s-guest-reboot', 'reboot -f\n');
      await waitEvent(ctx, since, 's-guest-reboot', 'rebooted', 'guest');
      await waitReady(ctx, 's-guest-reboot', 1);
      expect(await ctx.manager.info(ctx.origin, 's-guest-reboot')).toMatchObject({ state: 'running', pid });
      await ctx.manager.destroy(ctx.origin, 's-guest-reboot');
    },
  },
  {
    name: 'on_reboot: destroy ends the guest that reboots itself',
    async run(ctx) {
      await ctx.define('s-reboot-destroy', { overrides: { on_reboot: 'destroy' } });
      await startReady(ctx, 's-reboot-destroy');
      const since = ctx.store.revision;
      await ctx.type('s-reboot-destroy', 'reboot -f\n');
      await waitEvent(ctx, since, 's-reboot-destroy', 'stopped');
      expect(await stateOf(ctx, 's-reboot-destroy')).toEqual({ state: 'shutoff', reason: 'shutdown' });
    },
  },
  {
    name: 'QEMU dies unexpectedly: crashed',
    async run(ctx) {
      await ctx.define('s-qemu-dies');
      const pid = await startReady(ctx, 's-qemu-dies');
      const since = ctx.store.revision;
      await ctx.killQemu('s-qemu-dies', pid);
      await waitEvent(ctx, since, 's-qemu-dies', 'stopped', 'crashed');
      expect(await stateOf(ctx, 's-qemu-dies')).toEqual({ state: 'crashed', reason: 'crashed' });
      // and it starts again
      await startReady(ctx, 's-qemu-dies');
      await ctx.manager.destroy(ctx.origin, 's-qemu-dies');
    },
  },
  {
    name: 'a raw monitor stop and cont show in the state, and taint the domain',
    async run(ctx) {
      await ctx.define('s-monitor');
      await startReady(ctx, 's-monitor');
      const since = ctx.store.revision;
      expect(String(await ctx.manager.monitorCommand(ctx.origin, 's-monitor', { hmp: 'info name' })).trim()).toBe('s-monitor');
      await ctx.manager.monitorCommand(ctx.origin, 's-monitor', { qmp: { execute: 'stop' } });
      await ctx.waitFor('paused after a monitor stop', async () => (await stateOf(ctx, 's-monitor')).state === 'paused');
      await ctx.manager.monitorCommand(ctx.origin, 's-monitor', { qmp: { execute: 'cont' } });
      await ctx.waitFor('running after a monitor cont', async () => (await stateOf(ctx, 's-monitor')).state === 'running');
      expect(await codeOf(ctx.manager.monitorCommand(ctx.origin, 's-monitor', { hmp: 'no-such-command' }))).toBe('qmp.command-failed');
      const events = (await eventsSince(ctx, since, 's-monitor')).map((e) => [e.type, e.reason]);
      expect(events).toEqual([['tainted', 'custom-monitor'], ['suspended', 'monitor'], ['resumed', 'monitor']]);
      expect((await ctx.manager.info(ctx.origin, 's-monitor')).tainted).toEqual(['custom-monitor']);
      await ctx.manager.destroy(ctx.origin, 's-monitor');
    },
  },
  {
    name: 'reboot and reset through the manager keep the same QEMU running',
    async run(ctx) {
      await ctx.define('s-reboot');
      const pid = await startReady(ctx, 's-reboot');
      const since = ctx.store.revision;
      await ctx.manager.reboot(ctx.origin, 's-reboot');
      await waitReady(ctx, 's-reboot', 1);
      await ctx.manager.reset(ctx.origin, 's-reboot');
      await waitReady(ctx, 's-reboot', 2);
      expect(await ctx.manager.info(ctx.origin, 's-reboot')).toMatchObject({ state: 'running', pid });
      const kinds = (await eventsSince(ctx, since, 's-reboot')).map((e) => e.type);
      expect(kinds).toEqual(['rebooted', 'reset']);
      await ctx.manager.destroy(ctx.origin, 's-reboot');
    },
  },
  {
    name: 'host-shutdown: a guest that hears the button cleanly, one that ignores it by force',
    async run(ctx) {
      await ctx.define('s-acpi');
      await ctx.define('s-noacpi', { ignoresPowerButton: true });
      await Promise.all([startReady(ctx, 's-acpi'), startReady(ctx, 's-noacpi')]);
      const r = await ctx.manager.hostShutdown(ctx.origin, ctx.forcedShutdownTimeout);
      const byName = Object.fromEntries(r.domains.map((d) => [d.name, d]));
      expect(byName['s-acpi']).toMatchObject({ policy: 'shutdown', outcome: 'clean' });
      expect(byName['s-noacpi']).toMatchObject({ policy: 'shutdown', outcome: 'forced' });
      expect(await stateOf(ctx, 's-acpi')).toEqual({ state: 'shutoff', reason: 'shutdown' });
      expect(await stateOf(ctx, 's-noacpi')).toEqual({ state: 'shutoff', reason: 'destroyed' });
    },
  },
  {
    name: 'live vs saved: an edit while running is saved for the next start; dumpdef --live shows the running one',
    async run(ctx) {
      const m = ctx.manager;
      await ctx.define('s-live', { overrides: { shutdown_timeout: 30 } });
      await startReady(ctx, 's-live');
      const saved = YAML.parse(await m.definitionText(ctx.origin, 's-live', 'yaml')) as Record<string, unknown>;
      expect(await codeOf(m.updateDefinition(ctx.origin, 's-live', { text: YAML.stringify({ ...saved, memory: '256MiB' }) })))
        .toBe('domain.field-immutable');
      const edited = await m.updateDefinition(ctx.origin, 's-live', { text: YAML.stringify({ ...saved, on_poweroff: 'restart', shutdown_timeout: 45 }) });
      expect(edited.definitionDiffers).toBe(true);
      const live = YAML.parse(await m.definitionText(ctx.origin, 's-live', 'yaml', { live: true })) as Record<string, unknown>;
      expect(live).toMatchObject({ on_poweroff: 'destroy', shutdown_timeout: 30 });
      expect(YAML.parse(await m.definitionText(ctx.origin, 's-live', 'yaml'))).toMatchObject({ on_poweroff: 'restart', shutdown_timeout: 45 });
      // The guest runs with the on_poweroff it was started with: a power-off ends it.
      const since = ctx.store.revision;
      await ctx.type('s-live', 'poweroff -f\n');
      await waitEvent(ctx, since, 's-live', 'stopped');
      const info = await m.info(ctx.origin, 's-live');
      expect(info.state).toBe('shutoff');
      expect(info.definitionDiffers).toBeUndefined();
      // The next start runs the saved definition: now a power-off restarts it.
      await startReady(ctx, 's-live');
      expect((await m.info(ctx.origin, 's-live')).definitionDiffers).toBe(false);
      const again = ctx.store.revision;
      await ctx.type('s-live', 'poweroff -f\n');
      await waitEvent(ctx, again, 's-live', 'rebooted', 'poweroff-restart');
      await m.destroy(ctx.origin, 's-live');
    },
  },
  {
    name: 'a new manager adopts running and paused guests, and records one that died meanwhile',
    async run(ctx) {
      await ctx.define('s-adopt-run');
      await ctx.define('s-adopt-paused');
      await ctx.define('s-adopt-dies');
      const pid = await startReady(ctx, 's-adopt-run');
      await startReady(ctx, 's-adopt-paused');
      await ctx.manager.suspend(ctx.origin, 's-adopt-paused');
      const doomed = await startReady(ctx, 's-adopt-dies');
      // The daemon dies; while none runs, one QEMU dies too.
      await ctx.restartManager({ crash: true, meanwhile: () => ctx.killQemu('s-adopt-dies', doomed) });
      expect(await ctx.manager.info(ctx.origin, 's-adopt-run')).toMatchObject({ state: 'running', pid, definitionDiffers: false });
      expect(await stateOf(ctx, 's-adopt-paused')).toEqual({ state: 'paused' });
      expect(await stateOf(ctx, 's-adopt-dies')).toEqual({ state: 'crashed', reason: 'crashed' });
      // A clean daemon stop and start adopts them again.
      await ctx.restartManager();
      expect(await ctx.manager.info(ctx.origin, 's-adopt-run')).toMatchObject({ state: 'running', pid });
      // The adopted guests answer the new manager: console, events, stop.
      const since = ctx.store.revision;
      await ctx.type('s-adopt-run', 'echo adopted-$((6*7))\n');
      await ctx.waitFor('console output through the new manager', async () =>
        (await ctx.manager.consoleLog(ctx.origin, 's-adopt-run')).includes('adopted-'));
      await ctx.type('s-adopt-run', 'poweroff -f\n');
      await waitEvent(ctx, since, 's-adopt-run', 'stopped', 'shutdown');
      await ctx.manager.resume(ctx.origin, 's-adopt-paused');
      expect(await ctx.manager.destroy(ctx.origin, 's-adopt-paused')).toEqual({ state: 'shutoff', reason: 'destroyed' });
    },
  },
  {
    name: 'a panic under each on_crash policy',
    needs: ['panic'],
    async run(ctx) {
      await ctx.define('s-panic-destroy');
      await ctx.define('s-panic-restart', { overrides: { on_crash: 'restart' } });
      await ctx.define('s-panic-preserve', { overrides: { on_crash: 'preserve' } });
      for (const n of ['s-panic-destroy', 's-panic-restart', 's-panic-preserve']) await startReady(ctx, n);
      const since = ctx.store.revision;
      for (const n of ['s-panic-destroy', 's-panic-restart', 's-panic-preserve']) await ctx.panic(n);
      await waitEvent(ctx, since, 's-panic-destroy', 'stopped', 'crashed');
      expect(await stateOf(ctx, 's-panic-destroy')).toEqual({ state: 'crashed', reason: 'crashed' });
      await waitEvent(ctx, since, 's-panic-restart', 'rebooted', 'crash-restart');
      await waitReady(ctx, 's-panic-restart', 1);
      expect(await stateOf(ctx, 's-panic-restart')).toEqual({ state: 'running' });
      await waitEvent(ctx, since, 's-panic-preserve', 'suspended', 'crash-preserve');
      expect(await stateOf(ctx, 's-panic-preserve')).toEqual({ state: 'paused' });
      // a panicked guest hears no power button: the shutdown is forced, and recorded as the crash it was
      expect(await ctx.manager.shutdown(ctx.origin, 's-panic-preserve', ctx.forcedShutdownTimeout)).toMatchObject({ outcome: 'forced' });
      expect(await stateOf(ctx, 's-panic-preserve')).toEqual({ state: 'crashed', reason: 'crashed' });
      await ctx.manager.destroy(ctx.origin, 's-panic-restart');
    },
  },
];

/** A console client that types `text` into the manager's console multiplexer for `name`. */
export async function typeOnConsole(manager: Manager, name: string, text: string): Promise<void> {
  const mux = manager.consoleOf(name);
  if (!mux) throw new Error(`no console for ${name}`);
  const client = new Duplex({ read() { /* typed below */ }, write(_c, _e, cb) { cb(); } });
  // Another writer may hold the console for a moment (a previous type()): retry briefly.
  for (let i = 0; ; i++) {
    try {
      mux.addClient(client, 'write');
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  client.push(text);
  await new Promise((r) => setImmediate(r));
  client.destroy();
}
