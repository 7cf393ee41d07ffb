/**
 * Resource limits, screens and keys in the manager, on the fake driver (no cgroups: limits
 * live in the definitions): the live and saved definitions change together, or visibly apart
 * with --live / --config; refusals change nothing. The same verbs on real QEMU through the CLI:
 * test/integration/host-resources.test.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { fakeContext, type FakeContext } from '../../test/scenarios/fake-context.js';
import { fakeSentKeys } from '../qemu/driver/fake-host-resources.js';
import type { DeviceContext } from './devices.js';
import { requireDomain } from './domain-records.js';
import { resourceLimits, screenshot, sendKey, setResourceLimits, setVncPassword, vncDisplay } from './host-resources.js';
import { codeOf } from '../../test/helpers/error-code.js';

let ctx: FakeContext;
beforeEach(async () => { ctx = await fakeContext(); });
afterEach(async () => { await ctx.cleanup(); });

function on<T>(name: string, fn: (c: DeviceContext) => Promise<T> | T): Promise<T> {
  return ctx.manager.withDevices(ctx.origin, name, async (c) => fn(c));
}

async function limits(name: string): Promise<{ saved: unknown; live: unknown }> {
  const rec = await requireDomain(ctx.store, name);
  const pick = (d: typeof rec.definition | undefined) => d && { cpu_shares: d.cpu_shares, cpu_quota: d.cpu_quota, memory_limit: d.memory_limit };
  return { saved: pick(rec.definition), live: pick(rec.live) };
}

describe('schedinfo and memtune', () => {
  it('a running guest: both definitions by default, one with --live or --config; null removes', async () => {
    await ctx.define('g', { overrides: { cpu_quota: 50 } });
    await ctx.manager.start(ctx.origin, 'g');
    expect(await on('g', (c) => resourceLimits(c, {}))).toEqual({ cpu_quota: 50, source: 'live' });
    expect(await on('g', (c) => setResourceLimits(c, { cpu_shares: 512, memory_limit: 1024 ** 3 })))
      .toEqual({ cpu_shares: 512, cpu_quota: 50, memory_limit: 1024 ** 3, source: 'live', changed: { live: true, config: true } });
    expect(await limits('g')).toEqual({ saved: { cpu_shares: 512, cpu_quota: 50, memory_limit: 1024 ** 3 }, live: { cpu_shares: 512, cpu_quota: 50, memory_limit: 1024 ** 3 } });
    await on('g', (c) => setResourceLimits(c, { cpu_quota: null, live: true }));
    expect(await limits('g')).toEqual({ saved: { cpu_shares: 512, cpu_quota: 50, memory_limit: 1024 ** 3 }, live: { cpu_shares: 512, cpu_quota: undefined, memory_limit: 1024 ** 3 } });
    expect((await ctx.manager.info(ctx.origin, 'g')).definitionDiffers).toBe(true);
    await on('g', (c) => setResourceLimits(c, { cpu_quota: null, config: true }));
    expect((await ctx.manager.info(ctx.origin, 'g')).definitionDiffers).toBe(false);
    expect(await on('g', (c) => resourceLimits(c, { config: true }))).toEqual({ cpu_shares: 512, memory_limit: 1024 ** 3, source: 'config' });
  });

  it('a stopped guest: the saved definition; --live and an empty change are refused, nothing changes', async () => {
    await ctx.define('s');
    expect(await on('s', (c) => setResourceLimits(c, { cpu_quota: 20 }))).toMatchObject({ cpu_quota: 20, source: 'config', changed: { live: false, config: true } });
    expect(await codeOf(on('s', (c) => setResourceLimits(c, { cpu_quota: 30, live: true })))).toBe('domain.invalid-state');
    expect(await codeOf(on('s', (c) => setResourceLimits(c, {})))).toBe('argument.invalid');
    expect(await limits('s')).toEqual({ saved: { cpu_shares: undefined, cpu_quota: 20, memory_limit: undefined }, live: undefined });
  });
});

describe('screens and keys', () => {
  it('vncdisplay, the password, screenshot and send-key on a VNC guest; refusals elsewhere', async () => {
    await ctx.define('v', { overrides: { graphics: 'vnc', vnc_password: true } });
    await ctx.manager.start(ctx.origin, 'v');
    const display = await on('v', (c) => vncDisplay(c));
    expect(display).toEqual({ socket: join(ctx.manager.runDirOf((await requireDomain(ctx.store, 'v')).uuid), 'vnc.sock'), passwordRequired: true });
    expect((await on('v', (c) => setVncPassword(c))).password).toMatch(/^[A-Za-z0-9]{8}$/);
    const shot = await on('v', (c) => screenshot(c));
    expect([shot.format, shot.width, shot.height]).toEqual(['png', 720, 400]);
    expect(Buffer.from(shot.data, 'base64').subarray(1, 4).toString()).toBe('PNG');
    await on('v', (c) => sendKey(c, { keys: ['ctrl-alt-delete', 'KEY_F1'] }));
    expect(fakeSentKeys(ctx.guest('v'))).toEqual([['ctrl', 'alt', 'delete', 'f1']]);
    expect(await codeOf(on('v', (c) => sendKey(c, { keys: ['KEY_NOPE'] })))).toBe('argument.invalid');

    await ctx.define('plain');
    await ctx.manager.start(ctx.origin, 'plain');
    expect(await codeOf(on('plain', (c) => vncDisplay(c)))).toBe('operation.unsupported');
    expect(await codeOf(on('plain', (c) => screenshot(c)))).toBe('operation.unsupported');
    await ctx.define('nopw', { overrides: { graphics: 'vnc' } });
    await ctx.manager.start(ctx.origin, 'nopw');
    expect(await codeOf(on('nopw', (c) => setVncPassword(c)))).toBe('operation.unsupported');
    await ctx.define('off');
    expect(await codeOf(on('off', (c) => screenshot(c)))).toBe('domain.invalid-state');
  });
});

describe('shared folders at start', () => {
  it('a source that is not a directory is definition.invalid naming the field, and the guest stays off', async () => {
    const file = join(ctx.dir, 'file.txt');
    await writeFile(file, 'x');
    await mkdir(join(ctx.dir, 'share'));
    await ctx.define('fs', { overrides: { filesystems: [{ source: join(ctx.dir, 'share'), target: 'a' }, { source: file, target: 'b' }] } });
    let caught: unknown;
    try { await ctx.manager.start(ctx.origin, 'fs'); } catch (err) { caught = err; }
    expect(isVirtkitError(caught, 'definition.invalid')).toBe(true);
    expect((caught as Error).message).toMatch(/^filesystems\[1\]\.source: must be a directory on the host/);
    expect((await ctx.manager.state(ctx.origin, 'fs')).state).toBe('shutoff');
  });

  it('a guest with a shared folder is not saved (QEMU cannot migrate it) and keeps running', async () => {
    await mkdir(join(ctx.dir, 'share'));
    await ctx.define('sv', { overrides: { filesystems: [{ source: join(ctx.dir, 'share'), target: 'a' }] } });
    await ctx.manager.start(ctx.origin, 'sv');
    expect(await codeOf(ctx.manager.managedSave(ctx.origin, 'sv'))).toBe('operation.unsupported');
    expect((await ctx.manager.state(ctx.origin, 'sv')).state).toBe('running');
  });
});
