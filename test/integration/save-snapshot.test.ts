/**
 * Save/restore, managed save, snapshots and memory dumps of a real guest under TCG, through the
 * CLI against a daemon. One guest kit guest with a qcow2 disk, booted once and shared by every
 * case (in order): it runs a counter on its console, and the counter must go on from where it
 * was after restore, after a managed save, and after reverting to a snapshot with memory.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { testGuest, guestPaths } from '../helpers/guests.js';
import { DaemonHarness, waitFor } from './daemon-harness.js';

const G = 'savesnap';
let d: DaemonHarness;
let disk: string;

/** The counter values printed on the console after `from` characters of its history. */
function counts(text: string, from = 0): number[] {
  return [...text.slice(from).matchAll(/^n=(\d+)\r?$/gm)].map((m) => Number(m[1]));
}

async function consoleText(): Promise<string> {
  return d.client().consoleLog(G);
}

async function lastCount(): Promise<number> {
  const all = counts(await consoleText());
  return all[all.length - 1] ?? 0;
}

/** Waits until the counter printed `more` values after history position `from`; returns them. */
async function countsAfter(from: number, more = 3): Promise<number[]> {
  return waitFor(`${more} counter values on the console`, async () => {
    const c = counts(await consoleText(), from);
    return c.length >= more ? c : undefined;
  }, 60_000, 200);
}

async function typeLine(line: string): Promise<void> {
  const w = await waitFor('the console writer', async () => d.client().openConsole(G, 'write'), 10_000);
  w.write(`${line}\n`);
  await new Promise((r) => setTimeout(r, 300));
  w.destroy();
}

beforeAll(async () => {
  d = await DaemonHarness.create();
  await d.start();
  const paths = guestPaths(testGuest());
  const def = YAML.parse(await readFile(paths.definitionPath, 'utf8')) as Record<string, unknown> & { boot: Record<string, unknown> };
  disk = join(d.stateDir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  const mine = {
    ...def, name: G, accel: 'tcg',
    boot: { ...def.boot, kernel: resolve(paths.dir, String(def.boot['kernel'])), initrd: resolve(paths.dir, String(def.boot['initrd'])) },
    disks: [{ source: disk, format: 'qcow2', target: 'vda' }],
  };
  const file = join(d.stateDir, 'g.yaml');
  await writeFile(file, YAML.stringify(mine));
  expect((await d.cli(['define', file])).code).toBe(0);
  expect((await d.cli(['start', G])).code).toBe(0);
  await d.waitConsole(G, 'virtkit-guest: ready');
  await typeLine('i=0; while true; do i=$((i+1)); echo n=$i; sleep 0.2; done &');
  await countsAfter(0, 3);
}, 180_000);

afterAll(async () => { await d.cleanup(); });

describe.sequential('save, restore, managedsave, snapshots and dumps of a real guest', { timeout: 180_000 }, () => {
  it('save stops the guest into a file; restore brings it back counting from the same number', async () => {
    const file = join(d.stateDir, 'g.save');
    const save = await d.cli(['save', G, file]);
    expect(save.code, save.stderr).toBe(0);
    expect((await d.cli(['domstate', G, '--reason'])).stdout.trim()).toBe('shutoff (saved)');
    const before = await consoleText();
    const last = counts(before).pop()!;
    const restore = await d.cli(['restore', file]);
    expect(restore.code, restore.stderr).toBe(0);
    expect((await d.cli(['domstate', G])).stdout.trim()).toBe('running');
    const next = await countsAfter(before.length);
    // the guest goes on from where it was: no reboot, no restart of the counter
    expect(next[0]).toBeGreaterThan(last);
    expect(next[0]).toBeLessThanOrEqual(last + 2);
    expect(next[1]).toBe(next[0]! + 1);
  });

  it('managedsave: dominfo shows it, start resumes from it, then it is gone', async () => {
    const ms = await d.cli(['managedsave', G]);
    expect(ms.code, ms.stderr).toBe(0);
    expect((await d.cli(['dominfo', G])).stdout).toMatch(/Managed save:\s+yes/);
    const before = await consoleText();
    const last = counts(before).pop()!;
    expect((await d.cli(['start', G])).code).toBe(0);
    const next = await countsAfter(before.length);
    expect(next[0]).toBeGreaterThan(last);
    expect(next[0]).toBeLessThanOrEqual(last + 2);
    expect((await d.cli(['dominfo', G])).stdout).toMatch(/Managed save:\s+no/);
  });

  it('refuses a truncated save, a file that is not one, and disks changed since, changing nothing', async () => {
    const file = join(d.stateDir, 'g2.save');
    expect((await d.cli(['save', G, file])).code).toBe(0);
    const cut = join(d.stateDir, 'cut.save');
    await copyFile(file, cut);
    await truncate(cut, 4096);
    const t = await d.cli(['restore', cut]);
    expect([t.code, t.stderr]).toEqual([8, expect.stringContaining('save.truncated')]);
    const other = await d.cli(['restore', join(d.stateDir, 'g.yaml')]);
    expect([other.code, other.stderr]).toEqual([8, expect.stringContaining('save.invalid')]);
    const later = new Date(Date.now() + 60_000);
    await utimes(disk, later, later);
    const changed = await d.cli(['restore', file]);
    expect([changed.code, changed.stderr]).toEqual([4, expect.stringContaining('save.disks-changed')]);
    expect((await d.cli(['domstate', G, '--reason'])).stdout.trim()).toBe('shutoff (saved)');
    // the guest did not write its disk (nothing mounts it): forcing is safe here
    const forced = await d.cli(['restore', file, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    await countsAfter((await consoleText()).length, 2);
  });

  it('internal snapshot with memory: reverting the running guest brings its console counter back', async () => {
    const beforeCreate = await lastCount();
    const create = await d.cli(['snapshot-create', G, 's1']);
    expect(create.code, create.stderr).toBe(0);
    expect(create.stdout).toContain('internal, disks + memory');
    const afterCreate = await lastCount();
    await waitFor('the counter to move on', async () => (await lastCount()) > afterCreate + 10, 60_000, 200);
    const revert = await d.cli(['snapshot-revert', G, 's1']);
    expect(revert.code, revert.stderr).toBe(0);
    // what the guest prints once the revert returned comes from the snapshot's memory
    const next = await countsAfter((await consoleText()).length);
    expect(next[0]).toBeGreaterThanOrEqual(beforeCreate);
    expect(next[0]).toBeLessThanOrEqual(afterCreate + 4);
    expect(next[1]).toBe(next[0]! + 1);
  });

  it('external disk-only snapshot: a new overlay in both definitions; list, tree, info, bad names, delete', async () => {
    const create = await d.cli(['snapshot-create', G, 's2', '--disk-only']);
    expect(create.stderr).toBe('');
    expect(create.code).toBe(0);
    const overlay = join(d.stateDir, 'disk.s2.qcow2');
    expect(existsSync(overlay)).toBe(true);
    expect((await d.cli(['dumpdef', G])).stdout).toContain(overlay);
    expect((await d.cli(['dumpdef', G, '--live'])).stdout).toContain(overlay);
    const list = JSON.parse((await d.cli(['snapshot-list', G, '--json'])).stdout) as { name: string; parent?: string; current: boolean }[];
    expect(list.map((s) => [s.name, s.parent, s.current])).toEqual([['s1', undefined, false], ['s2', 's1', true]]);
    expect((await d.cli(['snapshot-list', G, '--tree'])).stdout).toContain('└─ s2 (current)');
    expect((await d.cli(['snapshot-info', G, 's2'])).stdout).toMatch(/Kind:\s+external, disk-only/);
    const bad = await d.cli(['snapshot-create', G, '../x']);
    expect([bad.code, bad.stderr]).toEqual([5, expect.stringContaining('snapshot.invalid-name')]);
    // s1's image is frozen under s2's overlay now: reverting to it is refused, nothing changes
    const refused = await d.cli(['snapshot-revert', G, 's1']);
    expect([refused.code, refused.stderr]).toEqual([9, expect.stringContaining('operation.unsupported')]);
    expect((await d.cli(['domstate', G])).stdout.trim()).toBe('running');
    // nor can s1 be deleted from an image the running guest holds as a backing file
    const held = await d.cli(['snapshot-delete', G, 's1']);
    expect([held.code, held.stderr]).toEqual([4, expect.stringContaining('domain.invalid-state')]);
    // an external snapshot's record goes; its files stay (the disk's chain needs them)
    expect((await d.cli(['snapshot-delete', G, 's2'])).code).toBe(0);
    const after = JSON.parse((await d.cli(['snapshot-list', G, '--json'])).stdout) as { name: string; parent?: string; current: boolean }[];
    expect(after.map((s) => [s.name, s.parent, s.current])).toEqual([['s1', undefined, true]]);
    expect(existsSync(overlay)).toBe(true);
    expect(execFileSync('qemu-img', ['snapshot', '-l', '-U', disk]).toString()).toContain('s1');
  });

  it('dumps a paused guest without its help; dump-info reads ranges, registers and the kernel version', async () => {
    expect((await d.cli(['suspend', G])).code).toBe(0);
    const file = join(d.stateDir, 'g.core');
    const dump = await d.cli(['dump', G, file]);
    expect(dump.code, dump.stderr).toBe(0);
    expect((await d.cli(['domstate', G])).stdout.trim()).toBe('paused');
    const info = JSON.parse((await d.cli(['dump-info', file, '--json'])).stdout) as {
      format: string; machine: string; memoryBytes: number; cpus: { registers: Record<string, string> }[]; kernel?: { release?: string };
    };
    expect(info.format).toBe('elf64');
    expect(info.machine).toBe('x86_64');
    expect(info.memoryBytes).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(info.cpus).toHaveLength(1);
    expect(info.cpus[0]!.registers['rip']).toMatch(/^0x[0-9a-f]+$/);
    const kernelVersion = /kernel ([^\s,]+)/.exec(await readFile(guestPaths(testGuest()).definitionPath, 'utf8'))?.[1];
    expect(info.kernel?.release).toBe(kernelVersion);
    const human = await d.cli(['dump-info', file]);
    expect(human.stdout).toMatch(/Kernel:\s+\S+/);
    const kdump = join(d.stateDir, 'g.kdump');
    expect((await d.cli(['dump', G, kdump, '--format', 'kdump-zlib'])).code).toBe(0);
    const k = JSON.parse((await d.cli(['dump-info', kdump, '--json'])).stdout) as { format: string; cpus: unknown[] };
    expect([k.format, k.cpus.length]).toEqual(['kdump', 1]);
    const notDump = await d.cli(['dump-info', disk]);
    expect([notDump.code, notDump.stderr]).toEqual([8, expect.stringContaining('dump.invalid')]);
  });

  it('reverting a shut-off domain to a snapshot with memory starts it where the snapshot was', async () => {
    expect((await d.cli(['resume', G])).code).toBe(0);
    const beforeCreate = await lastCount();
    const create = await d.cli(['snapshot-create', G, 's3']);
    expect(create.code, create.stderr).toBe(0);
    const afterCreate = await lastCount();
    expect((await d.cli(['destroy', G])).code).toBe(0);
    const revert = await d.cli(['snapshot-revert', G, 's3']);
    expect(revert.code, revert.stderr).toBe(0);
    expect((await d.cli(['domstate', G])).stdout.trim()).toBe('running');
    const next = await countsAfter((await consoleText()).length);
    expect(next[0]).toBeGreaterThanOrEqual(beforeCreate);
    expect(next[0]).toBeLessThanOrEqual(afterCreate + 4);
  });
});
