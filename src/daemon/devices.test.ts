/**
 * Hot-plug, memory and CPUs in the manager, on the fake driver: the live and saved definitions
 * change together (or visibly apart with --live / --config), every refusal changes nothing in
 * the store or the hypervisor, a plug failing halfway leaves no back end behind. The same verbs
 * on real QEMU through the CLI: test/integration/devices-hotplug.test.ts.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../api/schemas.js';
import { isVirtkitError } from '../util/errors.js';
import { fakeContext, type FakeContext } from '../../test/scenarios/fake-context.js';
import {
  attachDisk, attachInterface, blockList, detachDisk, detachInterface, interfaceList, memoryFloor, memoryStats, setMaxMemory, setMemory,
  setVcpus, vcpuInfo, type DeviceContext,
} from './devices.js';
import { requireDomain } from './domain-records.js';
import { replayEvents } from './event-log.js';
import { codeOf } from '../../test/helpers/error-code.js';

const MiB = 1024 * 1024;
let ctx: FakeContext;
let raw: string;
let qcow2: string;

beforeEach(async () => {
  ctx = await fakeContext();
  raw = join(ctx.dir, 'data.raw');
  qcow2 = join(ctx.dir, 'data.qcow2');
  await writeFile(raw, Buffer.alloc(MiB));
  await writeFile(qcow2, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), Buffer.alloc(1024)]));
});
afterEach(async () => { await ctx.cleanup(); });

function on<T>(name: string, fn: (c: DeviceContext) => Promise<T> | T): Promise<T> {
  return ctx.manager.withDevices(ctx.origin, name, async (c) => fn(c));
}

async function records(name: string): Promise<{ saved: string[]; live: string[] | undefined; differs: boolean | undefined }> {
  const rec = await requireDomain(ctx.store, name);
  const ids = (def: typeof rec.definition): string[] => [...def.disks.map((d) => d.id), ...def.nics.map((n) => n.id)];
  return { saved: ids(rec.definition), live: rec.live && ids(rec.live), differs: (await ctx.manager.info(ctx.origin, name)).definitionDiffers };
}

async function events(type: DomainEvent['type']): Promise<string[]> {
  const out: string[] = [];
  await replayEvents(ctx.store, 0, (ev) => { if (ev.type === type) out.push(`${ev.domain}: ${ev.reason ?? ''}`); });
  return out;
}

async function running(name: string, overrides: Record<string, unknown> = {}): Promise<void> {
  await ctx.define(name, { overrides });
  await ctx.manager.start(ctx.origin, name);
}

describe('attach-disk and detach-disk', () => {
  it('plug into the running guest and the saved definition in one change, and unplug from both', async () => {
    await running('g');
    const change = await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }));
    expect(change).toEqual({ kind: 'disk', id: 'vdb', target: 'vdb', live: true, config: true });
    expect(await records('g')).toEqual({ saved: ['vdb'], live: ['vdb'], differs: false });
    expect([...ctx.guest('g').hotplug.nodes].sort()).toEqual(['vdb-file', 'vdb-format']);
    expect((await on('g', (c) => blockList(c, {}))).disks).toEqual([{ target: 'vdb', id: 'vdb', bus: 'virtio', format: 'raw', source: raw, readonly: false }]);
    // sdX targets go on the scsi bus; a qcow2 image as qcow2
    await on('g', (c) => attachDisk(c, { source: qcow2, target: 'sda', format: 'qcow2', readonly: true }));
    expect(ctx.guest('g').definition.disks.map((d) => [d.target, d.bus, d.format, d.readonly])).toEqual([['vdb', 'virtio', 'raw', false], ['sda', 'scsi', 'qcow2', true]]);

    expect(await on('g', (c) => detachDisk(c, 'vdb', {}))).toEqual({ kind: 'disk', id: 'vdb', target: 'vdb', live: true, config: true });
    expect(await records('g')).toEqual({ saved: ['sda'], live: ['sda'], differs: false });
    expect([...ctx.guest('g').hotplug.nodes].sort()).toEqual(['sda-file', 'sda-format']);
    expect(await events('device-attached')).toEqual(['g: disk vdb (live,config)', 'g: disk sda (live,config)']);
    expect(await events('device-detached')).toEqual(['g: disk vdb (live,config)']);
    // a start of the saved definition has the disk a hot-plug left
    await ctx.manager.destroy(ctx.origin, 'g');
    await ctx.manager.start(ctx.origin, 'g');
    expect(ctx.guest('g').definition.disks.map((d) => d.id)).toEqual(['sda']);
  });

  it('a guest with a live hot-plug since its start is not saved (a restore would move its PCI slots); a restart clears it', async () => {
    await running('g');
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }));
    let caught: unknown;
    try { await ctx.manager.save(ctx.origin, 'g', join(ctx.dir, 'g.save')); } catch (err) { caught = err; }
    expect(isVirtkitError(caught) && caught.code).toBe('operation.unsupported');
    expect((caught as Error).message).toMatch(/hot-plugged or unplugged since it started \(vdb\).*Restart the guest/);
    expect(await codeOf(ctx.manager.managedSave(ctx.origin, 'g'))).toBe('operation.unsupported');
    expect((await ctx.manager.state(ctx.origin, 'g')).state).toBe('running');
    // started with the disk, the guest saves
    await ctx.manager.destroy(ctx.origin, 'g');
    await ctx.manager.start(ctx.origin, 'g');
    expect((await ctx.manager.save(ctx.origin, 'g', join(ctx.dir, 'g.save'))).file).toBe(join(ctx.dir, 'g.save'));
  });

  it('refuses a target in use, a missing image and the wrong format, changing nothing', async () => {
    await running('g');
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }));
    const before = await records('g');
    const nodes = [...ctx.guest('g').hotplug.nodes];
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' })))).toBe('device.exists');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: join(ctx.dir, 'missing.raw'), target: 'vdc' })))).toBe('image.not-found');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: qcow2, target: 'vdc' })))).toBe('image.format-mismatch');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'vdc', format: 'qcow2' })))).toBe('image.format-mismatch');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: 'rel/data.raw', target: 'vdc' })))).toBe('argument.invalid');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'sdb', bus: 'virtio' })))).toBe('definition.invalid');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'hdb' })))).toBe('operation.unsupported');
    expect(await codeOf(on('g', (c) => detachDisk(c, 'vdz', {})))).toBe('device.not-found');
    // the image vdb holds, once more: QEMU's write lock would refuse it, virtkit names the disk first
    await expect(on('g', (c) => attachDisk(c, { source: raw, target: 'vdc' }))).rejects.toThrow(`the running guest of "g" already has ${raw} as disk vdb`);
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'vdc', readonly: true })))).toBe('device.exists');
    await expect(on('g', (c) => detachDisk(c, 'vdz', {}))).rejects.toThrow('the running guest and the saved definition of "g" have no disk vdz');
    expect(await records('g')).toEqual(before);
    expect([...ctx.guest('g').hotplug.nodes]).toEqual(nodes);
    expect(await events('device-attached')).toHaveLength(1);
  });

  it('rolls back the block nodes of a plug that fails halfway, and records nothing', async () => {
    await running('g');
    ctx.guest('g').hotplug.failNext('device_add');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' })))).toBe('qmp.command-failed');
    expect([...ctx.guest('g').hotplug.nodes]).toEqual([]);
    expect(await records('g')).toEqual({ saved: [], live: [], differs: false });
    expect(await events('device-attached')).toEqual([]);
    // the same target plugs fine afterwards
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }));
    expect(await records('g')).toEqual({ saved: ['vdb'], live: ['vdb'], differs: false });
  });

  it('--live and --config alone change one definition, and dominfo shows that they differ', async () => {
    await running('g');
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb', live: true }));
    expect(await records('g')).toEqual({ saved: [], live: ['vdb'], differs: true });
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdc', config: true }));
    expect(await records('g')).toEqual({ saved: ['vdc'], live: ['vdb'], differs: true });
    expect((await on('g', (c) => blockList(c, {}))).disks.map((d) => d.target)).toEqual(['vdb']);
    expect((await on('g', (c) => blockList(c, { inactive: true }))).disks.map((d) => d.target)).toEqual(['vdc']);
    // explicit --config needs the disk in the saved definition; the default takes it where it is
    expect(await codeOf(on('g', (c) => detachDisk(c, 'vdb', { config: true })))).toBe('device.not-found');
    expect(await on('g', (c) => detachDisk(c, 'vdb', {}))).toMatchObject({ live: true, config: false });
    expect(await on('g', (c) => detachDisk(c, 'vdc', {}))).toMatchObject({ live: false, config: true });
    expect(await records('g')).toEqual({ saved: [], live: [], differs: false });
  });

  it('changes only the saved definition of a stopped guest, and refuses --live there', async () => {
    await ctx.define('g');
    expect(await codeOf(on('g', (c) => attachDisk(c, { source: raw, target: 'vdb', live: true })))).toBe('domain.invalid-state');
    expect(await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }))).toMatchObject({ live: false, config: true });
    expect(await records('g')).toEqual({ saved: ['vdb'], live: undefined, differs: undefined });
    await ctx.manager.start(ctx.origin, 'g');
    expect(ctx.guest('g').definition.disks.map((d) => d.id)).toEqual(['vdb']);
  });

  it('a guest that keeps the device gets device.detach-timeout, and the device stays in both definitions', async () => {
    await running('g');
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }));
    ctx.guest('g').hotplug.holdDevice('vdb');
    expect(await codeOf(on('g', (c) => detachDisk(c, 'vdb', {})))).toBe('device.detach-timeout');
    expect(await records('g')).toEqual({ saved: ['vdb'], live: ['vdb'], differs: false });
    ctx.guest('g').hotplug.releaseDevices();
    await on('g', (c) => detachDisk(c, 'vdb', {}));
    expect(await records('g')).toEqual({ saved: [], live: [], differs: false });
  });

  it('a paused guest cannot release a device: detach --live is refused at once; attach works', async () => {
    await running('g');
    await ctx.manager.suspend(ctx.origin, 'g');
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb' }));
    expect(await codeOf(on('g', (c) => detachDisk(c, 'vdb', {})))).toBe('domain.invalid-state');
    expect(await records('g')).toEqual({ saved: ['vdb'], live: ['vdb'], differs: false });
    expect(await on('g', (c) => detachDisk(c, 'vdb', { config: true }))).toMatchObject({ live: false, config: true });
    await ctx.manager.resume(ctx.origin, 'g');
    await on('g', (c) => detachDisk(c, 'vdb', {}));
    expect(await records('g')).toEqual({ saved: [], live: [], differs: false });
  });

  it('the live definition survives a daemon restart', async () => {
    await running('g');
    await on('g', (c) => attachDisk(c, { source: raw, target: 'vdb', live: true }));
    await ctx.restartManager({ crash: true });
    expect((await on('g', (c) => blockList(c, {}))).disks.map((d) => d.target)).toEqual(['vdb']);
    await on('g', (c) => detachDisk(c, 'vdb', {}));
    expect(await records('g')).toEqual({ saved: [], live: [], differs: false });
  });
});

describe('attach-interface and detach-interface', () => {
  it('gives the next free netN and a random MAC, refuses a MAC in use, detaches by MAC or id', async () => {
    await running('g', { nics: [{ mac: '52:54:00:00:00:01' }] });
    const first = await on('g', (c) => attachInterface(c, {}));
    expect(first).toMatchObject({ kind: 'interface', id: 'net1', live: true, config: true });
    expect(first.mac).toMatch(/^52:54:00:/);
    expect(await codeOf(on('g', (c) => attachInterface(c, { mac: '52:54:00:00:00:01' })))).toBe('device.exists');
    expect(await codeOf(on('g', (c) => attachInterface(c, { mac: 'nope' })))).toBe('argument.invalid');
    const second = await on('g', (c) => attachInterface(c, { mac: '52:54:00:AB:CD:EF', model: 'e1000' }));
    expect(second).toMatchObject({ id: 'net2', mac: '52:54:00:ab:cd:ef' });
    expect((await on('g', (c) => interfaceList(c, {}))).interfaces.map((n) => [n.id, n.model])).toEqual([['net0', 'virtio'], ['net1', 'virtio'], ['net2', 'e1000']]);
    expect([...ctx.guest('g').hotplug.netdevs]).toEqual(['net0-netdev', 'net1-netdev', 'net2-netdev']);
    await on('g', (c) => detachInterface(c, '52:54:00:AB:CD:EF', {}));
    await on('g', (c) => detachInterface(c, 'net1', {}));
    expect(await codeOf(on('g', (c) => detachInterface(c, 'net7', {})))).toBe('device.not-found');
    expect(await records('g')).toEqual({ saved: ['net0'], live: ['net0'], differs: false });
    expect([...ctx.guest('g').hotplug.netdevs]).toEqual(['net0-netdev']);
  });

  it('rolls back the netdev of a plug that fails halfway', async () => {
    await running('g');
    ctx.guest('g').hotplug.failNext('device_add');
    expect(await codeOf(on('g', (c) => attachInterface(c, {})))).toBe('qmp.command-failed');
    expect([...ctx.guest('g').hotplug.netdevs]).toEqual([]);
    expect(await records('g')).toEqual({ saved: [], live: [], differs: false });
  });
});

describe('setmem, setmaxmem, dommemstat', () => {
  it('the floor is 64 MiB or a quarter of the maximum, never above the maximum', () => {
    expect(memoryFloor(128 * MiB)).toBe(64 * MiB);
    expect(memoryFloor(1024 * MiB)).toBe(256 * MiB);
    expect(memoryFloor(32 * MiB)).toBe(32 * MiB);
  });

  it('moves the balloon within [floor, max] and reports the size the guest settled at', async () => {
    await running('g', { memory: '512MiB' });
    expect(await on('g', (c) => setMemory(c, { size: 256 * MiB }))).toEqual({ target: 256 * MiB, actual: 256 * MiB, settled: true });
    expect((await on('g', (c) => memoryStats(c))).actual).toBe(256 * MiB);
    for (const size of [1024 * MiB, 64 * MiB, 256 * MiB + 1]) {
      expect(await codeOf(on('g', (c) => setMemory(c, { size })))).toMatch(/memory.out-of-range|argument.invalid/);
    }
    // a virsh user's plain KiB number, read as bytes: told as below the floor, in bytes too (docs/memory-cpus.md)
    await expect(on('g', (c) => setMemory(c, { size: 131072 }))).rejects.toThrow(/^128KiB \(131072 bytes\) is below the floor of "g", 128MiB/);
    expect(await codeOf(on('g', (c) => setMemory(c, { size: 256 * MiB + 1 })))).toBe('argument.invalid');
    expect((await on('g', (c) => memoryStats(c))).actual).toBe(256 * MiB);
    expect(await events('memory-changed')).toEqual(['g: target 256MiB, actual 256MiB']);
  });

  it('refuses setmem and dommemstat without a balloon', async () => {
    await running('g', { balloon: false });
    expect(await codeOf(on('g', (c) => setMemory(c, { size: 64 * MiB })))).toBe('operation.unsupported');
    expect(await codeOf(on('g', (c) => memoryStats(c)))).toBe('operation.unsupported');
  });

  it('setmaxmem changes the saved memory only, for the next start', async () => {
    await running('g');
    expect(await on('g', (c) => setMaxMemory(c, { size: 256 * MiB }))).toEqual({ memory: 256 * MiB, liveMemory: 128 * MiB });
    expect((await ctx.manager.info(ctx.origin, 'g')).definitionDiffers).toBe(true);
    expect(await codeOf(on('g', (c) => setMaxMemory(c, { size: 8 * MiB })))).toBe('memory.out-of-range');
    expect(await codeOf(on('g', (c) => setMemory(c, { size: 256 * MiB })))).toBe('memory.out-of-range');
    await ctx.manager.destroy(ctx.origin, 'g');
    await ctx.manager.start(ctx.origin, 'g');
    expect(ctx.guest('g').definition.memory).toBe(256 * MiB);
  });
});

describe('setvcpus and vcpuinfo', () => {
  it('hot-plugs up to maxvcpus and unplugs what was hot-plugged', async () => {
    await running('g', { maxvcpus: 3 });
    expect(await on('g', (c) => setVcpus(c, { count: 3 }))).toEqual({ live: 3, config: 3 });
    expect((await on('g', (c) => vcpuInfo(c))).vcpus.map((v) => v.hotplugged)).toEqual([false, true, true]);
    expect(await codeOf(on('g', (c) => setVcpus(c, { count: 4 })))).toBe('vcpus.out-of-range');
    expect(await codeOf(on('g', (c) => setVcpus(c, { count: 0 })))).toBe('vcpus.out-of-range');
    expect(await on('g', (c) => setVcpus(c, { count: 2, live: true }))).toEqual({ live: 2 });
    // dominfo tells the running guest's count, not the saved one
    expect(await ctx.manager.info(ctx.origin, 'g')).toMatchObject({ vcpus: 2, maxVcpus: 3, definitionDiffers: true });
    expect(await events('vcpus-changed')).toEqual(['g: 3 (live,config)', 'g: 2 (live)']);
    await ctx.manager.destroy(ctx.origin, 'g');
    expect(await ctx.manager.info(ctx.origin, 'g')).toMatchObject({ vcpus: 3, maxVcpus: 3 });
  });

  it('refuses CPU hot-plug without maxvcpus, but changes the saved count', async () => {
    await running('g');
    expect(await codeOf(on('g', (c) => setVcpus(c, { count: 2 })))).toBe('operation.unsupported');
    expect(await codeOf(on('g', (c) => setVcpus(c, { count: 2, live: true })))).toBe('operation.unsupported');
    expect(await on('g', (c) => setVcpus(c, { count: 2, config: true }))).toEqual({ config: 2 });
    expect((await requireDomain(ctx.store, 'g')).definition.vcpus).toBe(2);
    expect(ctx.guest('g').definition.vcpus).toBe(1);
  });
});
