/**
 * The manager on the fake driver with a real SQLite store: what the shared scenarios
 * (manager-scenarios.test.ts) do not cover — define/undefine rules, failed starts, autostart,
 * host-shutdown policies, reconciliation of interrupted starts, volumes handed to the driver,
 * live vs saved definitions in the store — and the same through the HTTP layer (inject).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { DomainEvent } from '../api/schemas.js';
import { parseDefinition } from '../conf/index.js';
import { FakeDomainDriver } from '../qemu/driver/fake-driver.js';
import { isVirtkitError } from '../util/errors.js';
import { fakeContext, type FakeContext } from '../../test/scenarios/fake-context.js';
import { domainPath, writeStatus } from './domain-records.js';
import { replayEvents } from './event-log.js';
import { Manager } from './manager.js';
import { PoolService } from './pools.js';
import { createApp, registerApi } from './server.js';
import { codeOf } from '../../test/helpers/error-code.js';

let ctx: FakeContext;

beforeEach(async () => { ctx = await fakeContext(); });
afterEach(async () => { await ctx.cleanup(); });

async function events(since = 0): Promise<[string, string, string | undefined][]> {
  const out: [string, string, string | undefined][] = [];
  await replayEvents(ctx.store, since, (ev: DomainEvent) => out.push([ev.type, ev.domain, ev.reason]));
  return out;
}

describe('define, undefine, edit', () => {
  it('refuses a taken name or uuid and a bad definition, leaving the store unchanged', async () => {
    await ctx.define('a');
    const uuid = (await ctx.manager.info(ctx.origin, 'a')).uuid;
    const before = ctx.store.revision;
    expect(await codeOf(ctx.manager.define(ctx.origin, { text: ctx.definitionText('a'), baseDir: ctx.dir }))).toBe('domain.exists');
    expect(await codeOf(ctx.manager.define(ctx.origin, { text: ctx.definitionText('b', { uuid }), baseDir: ctx.dir }))).toBe('domain.exists');
    expect(await codeOf(ctx.manager.define(ctx.origin, { text: ctx.definitionText('c', { memory: '1KiB' }), baseDir: ctx.dir }))).toBe('definition.invalid');
    expect(ctx.store.revision).toBe(before);
  });

  it('undefine --force destroys a running guest and removes its run dir', async () => {
    await ctx.define('a');
    const info = await ctx.manager.start(ctx.origin, 'a');
    expect(existsSync(info.runDir!)).toBe(true);
    await ctx.manager.undefine(ctx.origin, 'a', true);
    expect(await codeOf(ctx.manager.info(ctx.origin, 'a'))).toBe('domain.not-found');
    expect(existsSync(info.runDir!)).toBe(false);
    expect(ctx.host.liveGuests()).toEqual([]);
    expect((await events()).map((e) => e[0])).toEqual(['defined', 'started', 'stopped', 'undefined']);
  });

  it('edit: name and uuid never change; stopped, anything else may', async () => {
    await ctx.define('a');
    const text = await ctx.manager.definitionText(ctx.origin, 'a', 'yaml');
    const doc = YAML.parse(text) as Record<string, unknown>;
    expect(await codeOf(ctx.manager.updateDefinition(ctx.origin, 'a', { text: YAML.stringify({ ...doc, name: 'b' }) }))).toBe('domain.field-immutable');
    const { uuid: _uuid, ...withoutUuid } = doc;
    const edited = await ctx.manager.updateDefinition(ctx.origin, 'a', { text: YAML.stringify({ ...withoutUuid, memory: '256MiB', vcpus: 2 }) });
    expect(edited).toMatchObject({ memory: 256 * 1024 * 1024, vcpus: 2, uuid: doc.uuid });
    expect(edited.definitionDiffers).toBeUndefined();
  });
});

describe('preconditions under the lock', () => {
  async function refusal(p: Promise<unknown>): Promise<{ message: string; data: Record<string, unknown> }> {
    try {
      await p;
    } catch (err) {
      if (isVirtkitError(err, 'domain.invalid-state')) return { message: err.message, data: err.data };
      throw err;
    }
    throw new Error('expected domain.invalid-state');
  }

  it('the manager refuses with the method table\'s one check: current state and allowed ones named', async () => {
    await ctx.define('a');
    expect(await refusal(ctx.manager.suspend(ctx.origin, 'a'))).toEqual({
      message: 'cannot suspend "a": it is shut off (allowed: running)',
      data: { name: 'a', method: 'domain.suspend', state: 'shutoff', allowed: ['running'] },
    });
    await ctx.manager.start(ctx.origin, 'a', { paused: true });
    expect((await refusal(ctx.manager.start(ctx.origin, 'a'))).data).toMatchObject({ method: 'domain.start', state: 'paused', allowed: ['shutoff', 'crashed'] });
    expect((await refusal(ctx.manager.suspend(ctx.origin, 'a'))).message).toBe('cannot suspend "a": it is paused (allowed: running)');
    expect((await refusal(ctx.manager.reboot(ctx.origin, 'a'))).data).toMatchObject({ method: 'domain.reboot', state: 'paused' });
    expect((await refusal(ctx.manager.undefine(ctx.origin, 'a', false))).data).toMatchObject({ method: 'domain.undefine', state: 'paused' });
    await ctx.manager.resume(ctx.origin, 'a');
    expect((await refusal(ctx.manager.resume(ctx.origin, 'a'))).data).toMatchObject({ method: 'domain.resume', state: 'running', allowed: ['paused'] });
    await ctx.manager.destroy(ctx.origin, 'a');
    expect((await refusal(ctx.manager.destroy(ctx.origin, 'a'))).data).toMatchObject({ method: 'domain.destroy', state: 'shutoff' });
  });
});

describe('start', () => {
  it('a start QEMU refuses: shutoff (failed), a stopped event, no live definition, no guest', async () => {
    await ctx.define('a', { overrides: { disks: [{ source: join(ctx.dir, 'missing.img'), format: 'raw' }] } });
    expect(await codeOf(ctx.manager.start(ctx.origin, 'a'))).toBe('qemu.failed-to-start');
    expect(await ctx.manager.state(ctx.origin, 'a')).toEqual({ state: 'shutoff', reason: 'failed' });
    expect(await ctx.store.exists(domainPath('a', 'live'))).toBe(false);
    expect((await events()).slice(-1)).toEqual([['stopped', 'a', 'failed']]);
    expect(ctx.host.liveGuests()).toEqual([]);
  });

  it('hands the driver the host paths of pool volumes', async () => {
    const requested: string[] = [];
    const manager = new Manager({
      store: ctx.store, runRoot: join(ctx.dir, 'run2'), log: ctx.log, driver: new FakeDomainDriver({ host: ctx.host }),
      resolveVolumes: async (def) => {
        requested.push(def.name);
        return { 'pool1/disk.raw': join(ctx.dir, 'vmlinuz') };
      },
    });
    await manager.define(ctx.origin, { text: ctx.definitionText('v', { disks: [{ volume: 'pool1/disk.raw', format: 'raw' }] }), baseDir: ctx.dir });
    expect(await codeOf(ctx.manager.start(ctx.origin, 'v'))).toBe('volume.not-found');
    expect((await manager.start(ctx.origin, 'v')).state).toBe('running');
    expect(requested).toEqual(['v']);
    await manager.destroy(ctx.origin, 'v');
  });

  it('the live definition is in the store exactly while the guest runs', async () => {
    await ctx.define('a');
    await ctx.manager.start(ctx.origin, 'a');
    const live = await ctx.store.read(domainPath('a', 'live'));
    expect(JSON.parse(live!)).toEqual(JSON.parse((await ctx.store.read(domainPath('a', 'definition')))!));
    await ctx.manager.destroy(ctx.origin, 'a');
    expect(await ctx.store.exists(domainPath('a', 'live'))).toBe(false);
    expect(await codeOf(ctx.manager.definitionText(ctx.origin, 'a', 'json', { live: true }))).toBe('domain.invalid-state');
  });
});

describe('stop paths', () => {
  it('destroy cuts a waiting shutdown short', async () => {
    await ctx.define('deaf', { ignoresPowerButton: true });
    await ctx.manager.start(ctx.origin, 'deaf');
    const shutdown = ctx.manager.shutdown(ctx.origin, 'deaf', 60);
    await new Promise((r) => setTimeout(r, 5));
    await ctx.manager.destroy(ctx.origin, 'deaf');
    expect(await shutdown).toEqual({ state: 'shutoff', outcome: 'forced' });
    expect(await ctx.manager.state(ctx.origin, 'deaf')).toEqual({ state: 'shutoff', reason: 'destroyed' });
  });

  it('host-shutdown follows on_host_shutdown: destroy, none', async () => {
    await ctx.define('d', { overrides: { on_host_shutdown: 'destroy' } });
    await ctx.define('n', { overrides: { on_host_shutdown: 'none' } });
    await ctx.manager.start(ctx.origin, 'd');
    await ctx.manager.start(ctx.origin, 'n');
    const r = await ctx.manager.hostShutdown(ctx.origin, 1);
    expect(Object.fromEntries(r.domains.map((x) => [x.name, x.outcome]))).toEqual({ d: 'destroyed', n: 'skipped' });
    expect((await ctx.manager.state(ctx.origin, 'n')).state).toBe('running');
  });

  it('detachAll lets go of the guests without stopping them', async () => {
    await ctx.define('a');
    await ctx.manager.start(ctx.origin, 'a');
    ctx.manager.detachAll();
    expect(ctx.guest('a').state).toBe('running');
    expect(ctx.manager.liveNames()).toEqual([]);
  });

  it('the console history of a stopped guest comes from its run dir', async () => {
    await ctx.define('a');
    await ctx.manager.start(ctx.origin, 'a');
    await ctx.type('a', 'echo before-stop\n');
    await ctx.waitFor('the echo', async () => (await ctx.manager.consoleLog(ctx.origin, 'a')).includes('before-stop'));
    await ctx.manager.destroy(ctx.origin, 'a');
    expect(await ctx.manager.consoleLog(ctx.origin, 'a')).toContain('before-stop');
  });
});

describe('autostart', () => {
  it('starts marked domains once per boot id', async () => {
    await ctx.define('auto');
    await ctx.define('manual');
    await ctx.manager.setAutostart(ctx.origin, 'auto', true);
    expect(await ctx.manager.autostartOnce('boot-1')).toEqual(['auto']);
    await ctx.manager.destroy(ctx.origin, 'auto');
    expect(await ctx.manager.autostartOnce('boot-1')).toEqual([]);
    expect(await ctx.manager.autostartOnce('boot-2')).toEqual(['auto']);
    expect((await ctx.manager.state(ctx.origin, 'manual')).state).toBe('shutoff');
  });
});

describe('reconcile', () => {
  it('finishes a start interrupted after QEMU spawned, and fails one interrupted before', async () => {
    await ctx.define('spawned');
    await ctx.define('unspawned');
    const rec = await ctx.manager.info(ctx.origin, 'spawned');
    const runDir = ctx.manager.runDirOf(rec.uuid);
    // What a daemon killed at start.spawned leaves: "starting" recorded, QEMU in prelaunch.
    const def = parseDefinition((await ctx.manager.definitionText(ctx.origin, 'spawned', 'json')), { format: 'json' });
    const driver = new FakeDomainDriver({ host: ctx.host });
    await driver.launch(await driver.prepare(def, { runDir }), { paused: true });
    const other = await ctx.manager.info(ctx.origin, 'unspawned');
    await ctx.store.transaction(async (tx) => {
      await writeStatus(tx, 'spawned', { state: 'starting', runDir });
      await writeStatus(tx, 'unspawned', { state: 'starting', runDir: ctx.manager.runDirOf(other.uuid) });
    });
    const since = ctx.store.revision;
    await ctx.restartManager({ crash: true });
    expect(await ctx.manager.info(ctx.origin, 'spawned')).toMatchObject({ state: 'running', definitionDiffers: false });
    expect(await ctx.manager.state(ctx.origin, 'unspawned')).toEqual({ state: 'shutoff', reason: 'failed' });
    expect(ctx.guest('spawned').state).toBe('running');
    expect(await events(since)).toEqual([['started', 'spawned', 'recovered'], ['stopped', 'unspawned', 'failed']]);
  });

  it('adopts a guest kept after its power-off as paused', async () => {
    await ctx.define('kept', { overrides: { on_poweroff: 'preserve' } });
    await ctx.manager.start(ctx.origin, 'kept');
    await ctx.waitFor('ready', async () => (await ctx.manager.consoleLog(ctx.origin, 'kept')).includes('ready'));
    await ctx.restartManager({ crash: true, meanwhile: async () => { ctx.guest('kept').powerOff(); } });
    expect(await ctx.manager.state(ctx.origin, 'kept')).toEqual({ state: 'paused' });
    expect(await ctx.manager.shutdown(ctx.origin, 'kept', 1)).toEqual({ state: 'shutoff', outcome: 'clean' });
  });
});

describe('through the HTTP layer', () => {
  it('dominfo says when the saved definition differs; ?live=true serves the running one', async () => {
    const app = createApp(false);
    await registerApi(app, {
      manager: ctx.manager, store: ctx.store, pools: new PoolService(ctx.store),
      info: () => ({ version: '0', pid: process.pid, stateDir: ctx.dir, runDir: ctx.dir, bootId: 'b', revision: ctx.store.revision,
        driver: ctx.manager.driver.kind, apiExtensions: [] }),
    });
    try {
      expect((await app.inject({ method: 'GET', url: '/' })).json()).toMatchObject({ driver: 'fake' });
      const define = await app.inject({ method: 'POST', url: '/domains', payload: { text: ctx.definitionText('web'), baseDir: ctx.dir } });
      expect(define.statusCode).toBe(201);
      const stopped = await app.inject({ method: 'GET', url: '/domains/web/definition?live=true' });
      expect(stopped.statusCode).toBe(409);
      expect(stopped.json()).toMatchObject({ error: { code: 'domain.invalid-state' } });
      expect((await app.inject({ method: 'POST', url: '/domains/web/start', payload: {} })).statusCode).toBe(200);
      const text = (await app.inject({ method: 'GET', url: '/domains/web/definition' })).json<{ text: string }>().text;
      const put = await app.inject({ method: 'PUT', url: '/domains/web/definition', payload: { text: text.replace('on_crash: destroy', 'on_crash: restart') } });
      expect(put.statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/domains/web' })).json()).toMatchObject({ state: 'running', definitionDiffers: true });
      const live = (await app.inject({ method: 'GET', url: '/domains/web/definition?live=true&format=json' })).json<{ text: string }>();
      expect(JSON.parse(live.text)).toMatchObject({ on_crash: 'destroy' });
      const refused = await app.inject({ method: 'PUT', url: '/domains/web/definition', payload: { text: text.replace(/^vcpus: 1$/m, 'vcpus: 2') } });
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ error: { code: 'domain.field-immutable', data: { fields: ['vcpus'] } } });
      const suspendTwice = [
        await app.inject({ method: 'POST', url: '/domains/web/suspend', payload: {} }),
        await app.inject({ method: 'POST', url: '/domains/web/suspend', payload: {} }),
      ].map((r) => r.statusCode);
      expect(suspendTwice).toEqual([200, 409]);
      expect((await app.inject({ method: 'POST', url: '/domains/web/destroy', payload: {} })).json()).toEqual({ state: 'shutoff', reason: 'destroyed' });
    } finally {
      await app.close();
    }
  });
});

// the run dir of a domain undefined elsewhere must not linger in these tests' temp dirs
afterEach(async () => { await rm(join(ctx.dir, 'run2'), { recursive: true, force: true }); });
