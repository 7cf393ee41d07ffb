/**
 * Issue 14, finding 2: the orphan sweep at daemon start signals only a QEMU proven ours. Beside
 * a real daemon and a real guest, look-alikes are left running across a daemon restart: a
 * renamed process whose argv names a domain's uuid, QMP socket and pidfile (its pid is not the
 * one in the pidfile), a real `qemu-img info` blocked on a FIFO under a run dir, a real QEMU
 * with a foreign uuid in a run dir the store does not know. A genuine stray QEMU of ours (the
 * run dir and uuid of a domain the store says is shut off) is stopped.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { isActive, readDomain, removeLive, writeStatus } from '../../src/daemon/domain-records.js';
import { openStore } from '../../src/store/index.js';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { DaemonHarness, waitFor } from './daemon-harness.js';

let d: DaemonHarness;
const decoys: ChildProcess[] = [];

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function definitionText(name: string): string {
  const base = YAML.parse(readFileSync(guestPaths(testGuest()).definitionPath, 'utf8')) as Record<string, unknown>;
  return YAML.stringify({ ...base, name });
}

/** A child the test owns, running `argv` under the program name `argv0`; ends with the test. */
function decoy(file: string, args: string[], argv0?: string): ChildProcess {
  const p = spawn(file, args, { stdio: 'ignore', ...(argv0 ? { argv0 } : {}) });
  decoys.push(p);
  return p;
}

async function cmdlineOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
}

beforeAll(async () => {
  d = await DaemonHarness.create();
  await d.start();
});

afterAll(async () => {
  for (const p of decoys) p.kill('SIGKILL');
  await d.cleanup();
});

describe.sequential('the orphan sweep kills only what is proven ours', { timeout: 300_000 }, () => {
  it('look-alikes survive a daemon restart; a stray QEMU of a shut-off domain is stopped', async () => {
    const c = d.client();
    const baseDir = testGuest();
    const kept = await c.define(definitionText('kept'), { baseDir });
    const stray = await c.define(definitionText('stray'), { baseDir });
    await c.start('kept', { paused: true });
    const strayPid = (await c.start('stray', { paused: true })).pid!;
    const keptPid = (await c.info('kept')).pid!;
    const strayDir = join(d.runDir, stray.uuid);

    // Look-alikes, each naming the run root as a guest's QEMU would.
    const renamed = decoy('bash', ['-c', 'sleep 600; :', '_', '-uuid', stray.uuid, '-pidfile', join(strayDir, 'qemu.pid'),
      '-qmp', `unix:${join(strayDir, 'qmp.sock')},server=on,wait=off`], 'qemu-system-x86_64');
    const elsewhere = decoy('bash', ['-c', 'sleep 600; :', '_', '-qmp', `unix:${join(d.runDir, 'x', 'qmp.sock')},server=on`], 'qemu-system-x86_64');
    const fifo = join(strayDir, 'disk.fifo');
    execFileSync('mkfifo', [fifo]);
    const qemuImg = decoy('qemu-img', ['info', fifo]);
    const foreignUuid = randomUUID();
    const foreignDir = join(d.runDir, foreignUuid);
    await mkdir(foreignDir, { mode: 0o700 });
    const foreign = decoy('qemu-system-x86_64', ['-machine', 'none', '-display', 'none', '-nodefaults', '-S', '-uuid', foreignUuid,
      '-pidfile', join(foreignDir, 'qemu.pid'), '-qmp', `unix:${join(foreignDir, 'qmp.sock')},server=on,wait=off`]);
    const lookAlikes = [renamed, elsewhere, qemuImg, foreign].map((p) => p.pid!);
    await waitFor('the look-alikes to run', async () => {
      const lines = await Promise.all(lookAlikes.map(cmdlineOf));
      return lines.every((argv) => argv.some((a) => a.includes(d.runDir)));
    }, 10_000);

    // The daemon dies; meanwhile the store comes to say "stray" is shut off (as after a crash
    // between spawning its QEMU and recording it), so its QEMU is ours but nobody's.
    await d.kill9();
    const store = openStore(d.stateDir);
    try {
      await store.transaction(async (tx) => {
        const rec = await readDomain(tx, 'stray');
        expect(rec && isActive(rec.status)).toBe(true);
        await writeStatus(tx, 'stray', { state: 'shutoff', reason: 'destroyed', runDir: strayDir });
        await removeLive(tx, 'stray');
      });
    } finally {
      await store.close();
    }
    await d.start();

    await waitFor('the stray QEMU to be stopped', async () => !isAlive(strayPid), 10_000);
    for (const pid of lookAlikes) expect(isAlive(pid), `look-alike ${pid} (${(await cmdlineOf(pid).catch(() => []))[0]})`).toBe(true);
    expect(await c.info('kept')).toMatchObject({ state: 'paused', pid: keptPid });
    expect(isAlive(keptPid)).toBe(true);
    expect((await c.state('stray')).state).toBe('shutoff');
    const log = await readFile(d.logPath, 'utf8');
    expect(log).toContain('stopped a QEMU of ours the store does not account for');
    const leftAlone = log.split('\n').filter((l) => l.includes('left alone'));
    for (const pid of lookAlikes) expect(leftAlone.some((l) => l.includes(`"pid":${pid},`))).toBe(true);
    expect(kept.uuid).not.toBe(stray.uuid);
  });
});
