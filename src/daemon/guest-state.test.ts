/**
 * Save/restore, managed save, snapshots and dumps through the manager on the fake driver: the
 * save file's header checks (truncated, another version, not a save file, disks changed), the
 * domain defined by a restore, managed save resumed by start, the snapshot tree (parents,
 * current, delete reparenting), external snapshots switching both definitions in one
 * transaction, typed refusals that change nothing. The same verbs on real QEMU:
 * test/integration/save-snapshot.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, open, readFile, readdir, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DomainEvent } from '../api/schemas.js';
import { readDumpFile } from '../qemu/dump/index.js';
import { FakeGuestHandle } from '../qemu/driver/fake-driver.js';
import { VirtkitError } from '../util/errors.js';
import { fakeContext, type FakeContext } from '../../test/scenarios/fake-context.js';
import { domainPath } from './domain-records.js';
import { replayEvents } from './event-log.js';
import { readSaveFile } from './save-file.js';
import { codeOf } from '../../test/helpers/error-code.js';

let ctx: FakeContext;
let disk: string;

beforeEach(async () => {
  ctx = await fakeContext();
  disk = join(ctx.dir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  await ctx.define('g', { overrides: { disks: [{ source: disk, format: 'qcow2', target: 'vda' }] } });
});
afterEach(async () => { await ctx.cleanup(); });

async function events(type: DomainEvent['type']): Promise<(string | undefined)[]> {
  const out: (string | undefined)[] = [];
  await replayEvents(ctx.store, 0, (ev: DomainEvent) => { if (ev.type === type) out.push(ev.reason); });
  return out;
}

describe('save and restore', () => {
  it('saves a running guest into a file with its definition, and brings its memory back', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    ctx.guest('g').memory.set('n', '41');
    const file = join(ctx.dir, 'g.save');
    const r = await manager.save(origin, 'g', file);
    expect(r.bytes).toBeGreaterThan(100);
    expect(await manager.state(origin, 'g')).toEqual({ state: 'shutoff', reason: 'saved' });
    const { header } = await readSaveFile(file);
    expect(header.definition.name).toBe('g');
    expect(header.disks.map((d) => d.path)).toEqual([disk]);
    expect(header.paused).toBe(false);
    const info = await manager.restore(origin, { file });
    expect(info.state).toBe('running');
    expect(ctx.guest('g').memory.get('n')).toBe('41');
    expect(await events('started')).toEqual([undefined, 'restored']);
  });

  it('a save that fails leaves an older save at the same path as it was, and no partial file', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    const file = join(ctx.dir, 'g.save');
    await manager.save(origin, 'g', file);
    const before = await readFile(file);
    await manager.restore(origin, { file });
    const failing = vi.spyOn(FakeGuestHandle.prototype, 'saveState').mockRejectedValueOnce(new VirtkitError('operation.unsupported', 'refused'));
    try {
      expect(await codeOf(manager.save(origin, 'g', file))).toBe('operation.unsupported');
    } finally {
      failing.mockRestore();
    }
    expect((await readFile(file)).equals(before)).toBe(true);
    expect((await readdir(ctx.dir)).filter((f) => f.includes('.partial-'))).toEqual([]);
    expect(await manager.state(origin, 'g')).toMatchObject({ state: 'running' });
  });

  it('a paused guest comes back paused; a restore defines the domain when it is gone', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g', { paused: true });
    const file = join(ctx.dir, 'p.save');
    await manager.save(origin, 'g', file);
    await manager.undefine(origin, 'g', false);
    const info = await manager.restore(origin, { file });
    expect(info.state).toBe('paused');
    expect((await manager.info(origin, 'g')).uuid).toBe(info.uuid);
    expect(await events('defined')).toEqual([undefined, 'restore']);
  });

  it('refuses truncated files, other versions, other files and changed disks with typed errors, changing nothing', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    const file = join(ctx.dir, 'g.save');
    await manager.save(origin, 'g', file);
    const size = (await readFile(file)).length;
    const cut = join(ctx.dir, 'cut.save');
    await copyFile(file, cut);
    await truncate(cut, size - 5);
    expect(await codeOf(manager.restore(origin, { file: cut }))).toBe('save.truncated');
    await truncate(cut, 10);
    expect(await codeOf(manager.restore(origin, { file: cut }))).toBe('save.truncated');
    const other = join(ctx.dir, 'v2.save');
    await copyFile(file, other);
    const fh = await open(other, 'r+');
    await fh.write(Buffer.from([2]), 0, 1, 16);
    await fh.close();
    expect(await codeOf(manager.restore(origin, { file: other }))).toBe('save.invalid');
    const text = join(ctx.dir, 'not.save');
    await writeFile(text, 'name: g\n'.repeat(10));
    expect(await codeOf(manager.restore(origin, { file: text }))).toBe('save.invalid');
    expect(await codeOf(manager.restore(origin, { file: 'relative.save' }))).toBe('argument.invalid');
    const later = new Date(Date.now() + 60_000);
    await utimes(disk, later, later);
    expect(await codeOf(manager.restore(origin, { file }))).toBe('save.disks-changed');
    // nothing happened: still shut off (saved), no start recorded
    expect(await manager.state(origin, 'g')).toEqual({ state: 'shutoff', reason: 'saved' });
    expect(await events('started')).toEqual([undefined]);
    expect((await manager.restore(origin, { file, force: true })).state).toBe('running');
  });

  it('managedsave: dominfo shows it, start resumes from it and removes it; managedsave-remove discards it', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    ctx.guest('g').memory.set('n', '7');
    await manager.managedSave(origin, 'g');
    expect((await manager.info(origin, 'g')).managedSave).toBe(true);
    expect(await codeOf(manager.save(origin, 'g', join(ctx.dir, 'x.save')))).toBe('domain.invalid-state');
    await manager.start(origin, 'g');
    expect(ctx.guest('g').memory.get('n')).toBe('7');
    expect((await manager.info(origin, 'g')).managedSave).toBeUndefined();
    await manager.managedSave(origin, 'g');
    expect(await manager.managedSaveRemove(origin, 'g')).toEqual({ removed: true });
    expect(await manager.managedSaveRemove(origin, 'g')).toEqual({ removed: false });
    await manager.start(origin, 'g');
    expect(ctx.guest('g').memory.size).toBe(0);
  });
});

describe('snapshots', () => {
  it('keeps a tree with parents and current; revert brings the memory back; delete moves children to the parent', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    const mem = (): string | undefined => ctx.guest('g').memory.get('n');
    ctx.guest('g').memory.set('n', '1');
    expect((await manager.snapshotCreate(origin, 'g', { name: 's1' })).memory).toBe(true);
    ctx.guest('g').memory.set('n', '2');
    await manager.snapshotCreate(origin, 'g', { name: 's2' });
    ctx.guest('g').memory.set('n', '3');
    let list = (await manager.snapshotList(origin, 'g')).snapshots;
    expect(list.map((s) => [s.name, s.parent, s.current])).toEqual([['s1', undefined, false], ['s2', 's1', true]]);
    expect(await manager.snapshotRevert(origin, 'g', 's1')).toEqual({ state: 'running' });
    expect(mem()).toBe('1');
    await manager.snapshotCreate(origin, 'g', { name: 's3' });
    expect((await manager.snapshotInfo(origin, 'g', 's1')).children).toEqual(['s2', 's3']);
    await manager.snapshotDelete(origin, 'g', 's1');
    list = (await manager.snapshotList(origin, 'g')).snapshots;
    expect(list.map((s) => [s.name, s.parent, s.current])).toEqual([['s2', undefined, false], ['s3', undefined, true]]);
    expect(await codeOf(manager.snapshotRevert(origin, 'g', 's1'))).toBe('snapshot.not-found');
    expect(await events('snapshot')).toEqual(['created s1', 'created s2', 'reverted s1', 'created s3', 'deleted s1']);
  });

  it('refuses bad and taken names, and a revert whose images are gone, changing nothing', async () => {
    const { manager, origin } = ctx;
    for (const bad of ['a/b', '..', '.hidden', '', 'x'.repeat(65), 'a b', 'snap\n']) {
      expect(await codeOf(manager.snapshotCreate(origin, 'g', { name: bad }))).toBe('snapshot.invalid-name');
    }
    // stopped: qemu-img takes the internal snapshot in the qcow2 itself
    const s = await manager.snapshotCreate(origin, 'g', { name: 'cold' });
    expect([s.memory, s.state]).toEqual([false, 'shutoff']);
    expect(execFileSync('qemu-img', ['snapshot', '-l', disk]).toString()).toContain('cold');
    expect(await codeOf(manager.snapshotCreate(origin, 'g', { name: 'cold' }))).toBe('snapshot.exists');
    await rm(disk);
    expect(await codeOf(manager.snapshotRevert(origin, 'g', 'cold'))).toBe('snapshot.disks-missing');
    expect((await manager.snapshotInfo(origin, 'g', 'cold')).current).toBe(true);
    expect(await events('snapshot')).toEqual(['created cold']);
  });

  it('an external snapshot switches the saved and live definitions to new overlays; reverting it leaves the domain off on fresh overlays', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    const s = await manager.snapshotCreate(origin, 'g', { name: 'e1', diskOnly: true });
    const overlay = s.disks[0]!.overlay!;
    expect(overlay).toBe(join(ctx.dir, 'disk.e1.qcow2'));
    expect(existsSync(overlay)).toBe(true);
    const saved = JSON.parse((await ctx.store.read(domainPath('g', 'definition')))!) as { disks: { source: string }[] };
    const live = JSON.parse((await ctx.store.read(domainPath('g', 'live')))!) as { disks: { source: string }[] };
    expect([saved.disks[0]!.source, live.disks[0]!.source]).toEqual([overlay, overlay]);
    expect(ctx.guest('g').definition.disks[0]!.source).toBe(overlay);
    expect(execFileSync('qemu-img', ['info', '--output=json', overlay]).toString()).toContain(disk);
    expect((await manager.snapshotRevert(origin, 'g', 'e1')).state).toBe('shutoff');
    const after = JSON.parse((await ctx.store.read(domainPath('g', 'definition')))!) as { disks: { source: string }[] };
    expect(after.disks[0]!.source).toBe(join(ctx.dir, 'disk.e1.1.qcow2'));
  });

  it('a failed external snapshot removes the overlays it created and records nothing; the next try takes the same name', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    const fail = vi.spyOn(FakeGuestHandle.prototype, 'externalSnapshot').mockRejectedValueOnce(new VirtkitError('qmp.command-failed', 'transaction: refused', {}));
    try {
      expect(await codeOf(manager.snapshotCreate(origin, 'g', { name: 'd1', diskOnly: true }))).toBe('qmp.command-failed');
    } finally {
      fail.mockRestore();
    }
    expect(existsSync(join(ctx.dir, 'disk.d1.qcow2'))).toBe(false);
    expect((await manager.snapshotList(origin, 'g')).snapshots).toEqual([]);
    expect((await manager.snapshotCreate(origin, 'g', { name: 'd1', diskOnly: true })).disks[0]!.overlay).toBe(join(ctx.dir, 'disk.d1.qcow2'));
  });

  it('an internal snapshot needs qcow2 disks', async () => {
    const { manager, origin } = ctx;
    const raw = join(ctx.dir, 'raw.img');
    await writeFile(raw, Buffer.alloc(1024 * 1024));
    await ctx.define('r', { overrides: { disks: [{ source: raw, format: 'raw', target: 'vda' }] } });
    expect(await codeOf(manager.snapshotCreate(origin, 'r', { name: 'x' }))).toBe('operation.unsupported');
    expect((await manager.snapshotCreate(origin, 'r', { name: 'x', diskOnly: true })).kind).toBe('external');
  });
});

describe('dump', () => {
  it('dumps a paused guest, which stays paused, into a file dump-info reads', async () => {
    const { manager, origin } = ctx;
    await manager.start(origin, 'g');
    await manager.suspend(origin, 'g');
    const file = join(ctx.dir, 'g.core');
    const r = await manager.dump(origin, 'g', { file });
    expect(r.format).toBe('elf');
    expect((await manager.state(origin, 'g')).state).toBe('paused');
    const info = await readDumpFile(file);
    expect(info.kernel?.release).toBe('6.1.0-fake');
    expect(info.cpus).toHaveLength(1);
    expect(await codeOf(manager.dump(origin, 'g', { file: 'rel.core' }))).toBe('argument.invalid');
    // a directory that is not there is told before QEMU is asked
    await expect(manager.dump(origin, 'g', { file: '/nonexistent/x.core' })).rejects.toThrow('/nonexistent/x.core: no directory /nonexistent');
    expect(await codeOf(manager.dump(origin, 'g', { file: join(file, 'x.core') }))).toBe('output.unwritable');
  });
});
