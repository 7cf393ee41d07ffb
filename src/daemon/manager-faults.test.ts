/**
 * The manager on the fake driver, for the faults of issue 14 it answers: raw QEMU arguments
 * and environment taint a domain at start (dominfo, list, events), and a lost monitor shows as
 * `degraded` (monitor calls refused with qmp.disconnected) until the driver restores it, after
 * which everything works again and a guest power-off is recorded as a shutdown. The same on
 * real QEMU: test/integration/faults-monitor.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../api/schemas.js';
import { fakeContext, type FakeContext } from '../../test/scenarios/fake-context.js';
import { replayEvents } from './event-log.js';
import { passthroughTaints } from './manager.js';
import { codeOf } from '../../test/helpers/error-code.js';

let ctx: FakeContext;

beforeEach(async () => { ctx = await fakeContext(); });
afterEach(async () => { await ctx.cleanup(); });

async function taintEvents(): Promise<[string, string | undefined][]> {
  const out: [string, string | undefined][] = [];
  await replayEvents(ctx.store, 0, (ev: DomainEvent) => { if (ev.type === 'tainted') out.push([ev.domain, ev.reason]); });
  return out;
}

describe('taint', () => {
  it('qemu.args and qemu.env taint the domain when it starts, once, shown in info, list and events', async () => {
    const { manager, origin } = ctx;
    await ctx.define('both', { overrides: { qemu: { args: ['-no-user-config'], env: { QEMU_AUDIO_DRV: 'none' } } } });
    await ctx.define('argv', { overrides: { qemu: { args: ['-no-user-config'] } } });
    await ctx.define('plain');
    // Defining is not running anything: no taint yet.
    expect((await manager.info(origin, 'both')).tainted).toEqual([]);
    for (const name of ['both', 'argv', 'plain']) await manager.start(origin, name);
    expect((await manager.info(origin, 'both')).tainted).toEqual(['custom-argv', 'custom-env']);
    expect((await manager.info(origin, 'argv')).tainted).toEqual(['custom-argv']);
    expect((await manager.info(origin, 'plain')).tainted).toEqual([]);
    const listed = Object.fromEntries((await manager.list(origin, true)).map((d) => [d.name, d.tainted]));
    expect(listed).toEqual({ both: ['custom-argv', 'custom-env'], argv: ['custom-argv'], plain: [] });
    // A second start adds no second event; a monitor command adds its own reason.
    await manager.destroy(origin, 'both');
    await manager.start(origin, 'both');
    await manager.monitorCommand(origin, 'both', { qmp: { execute: 'query-status' } });
    expect((await manager.info(origin, 'both')).tainted).toEqual(['custom-argv', 'custom-env', 'custom-monitor']);
    expect(await taintEvents()).toEqual([['both', 'custom-argv,custom-env'], ['argv', 'custom-argv'], ['both', 'custom-monitor']]);
    // Every start is still recorded beside its taint.
    const started: string[] = [];
    await replayEvents(ctx.store, 0, (ev: DomainEvent) => { if (ev.type === 'started') started.push(ev.domain); });
    expect(started).toEqual(['both', 'argv', 'plain', 'both']);
  });

  it('names each passthrough it finds', () => {
    const def = (args: string[], env: Record<string, string>) => ({ qemu: { args, env } }) as Parameters<typeof passthroughTaints>[0];
    expect(passthroughTaints(def([], {}))).toEqual([]);
    expect(passthroughTaints(def([], { A: '1' }))).toEqual(['custom-env']);
    expect(passthroughTaints(def(['-S'], { A: '1' }))).toEqual(['custom-argv', 'custom-env']);
  });
});

describe('a lost monitor', () => {
  it('shows degraded and refuses monitor calls until restored; then suspend works and a power-off is a shutdown', async () => {
    const { manager, origin } = ctx;
    await ctx.define('g');
    await manager.start(origin, 'g');
    ctx.guest('g').loseMonitor();
    await manager.settled();
    expect(await manager.info(origin, 'g')).toMatchObject({ state: 'running', degraded: true });
    expect((await manager.list(origin, false)).find((d) => d.name === 'g')).toMatchObject({ state: 'running', degraded: true });
    expect(await codeOf(manager.suspend(origin, 'g'))).toBe('qmp.disconnected');
    expect(await codeOf(manager.monitorCommand(origin, 'g', { hmp: 'info status' }))).toBe('qmp.disconnected');
    // The refusal changed nothing: still running, not tainted by a command that was never sent.
    expect(await manager.info(origin, 'g')).toMatchObject({ state: 'running', tainted: [] });

    ctx.guest('g').restoreMonitor();
    await manager.settled();
    const info = await manager.info(origin, 'g');
    expect(info.state).toBe('running');
    expect(info.degraded).toBeUndefined();
    expect(await manager.suspend(origin, 'g')).toEqual({ state: 'paused' });
    expect(await manager.resume(origin, 'g')).toEqual({ state: 'running' });

    ctx.guest('g').powerOff();
    await ctx.waitFor('the power-off to be recorded', async () => (await manager.state(origin, 'g')).state === 'shutoff');
    expect(await manager.state(origin, 'g')).toEqual({ state: 'shutoff', reason: 'shutdown' });
  });

  it('destroy still works while the monitor is lost', async () => {
    const { manager, origin } = ctx;
    await ctx.define('g');
    await manager.start(origin, 'g');
    ctx.guest('g').loseMonitor();
    await manager.settled();
    expect(await manager.destroy(origin, 'g')).toEqual({ state: 'shutoff', reason: 'destroyed' });
    expect((await manager.info(origin, 'g')).degraded).toBeUndefined();
  });
});
