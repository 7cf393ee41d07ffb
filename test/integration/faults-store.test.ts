/**
 * A full disk under the state store (issue 14, finding 1), on a real file system: the daemon's
 * state dir is a 4 MiB tmpfs, filled while a real guest runs. The store cannot be written, so:
 * writes are refused with `store.unavailable` (exit 12), never `internal`; reads keep working;
 * `destroy` still kills QEMU (the user asked) and reads show the domain shut off; `start` is
 * refused before any QEMU is spawned; nothing is killed because of the store; the daemon stays
 * up. Once space is freed the store converges to what happened without a daemon restart, and
 * `start` works again.
 *
 * Mounting needs root (CI runs the fault suite as root); run the built CLI (`npm run build`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { DomainInfo } from '../../src/api/schemas.js';
import { testGuest, testGuestDefinition } from '../helpers/guests.js';
import { DaemonHarness, waitFor } from './daemon-harness.js';

const G = 'testguest';
let d: DaemonHarness;
let mounted = false;
let scratch: string;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The domain's status as the store itself holds it (read-only, beside the daemon), not as the API answers. */
function storedStatus(name: string): { state: string; reason?: string } {
  const db = new Database(join(d.stateDir, 'store.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT value FROM nodes WHERE path = ?').get(`/domain/${name}/status`) as { value: string } | undefined;
    return JSON.parse(row!.value) as { state: string; reason?: string };
  } finally {
    db.close();
  }
}

/** Takes every free byte of the state dir's file system. */
function fill(): void {
  const fs = statfsSync(d.stateDir);
  execFileSync('fallocate', ['-l', String(fs.bavail * fs.bsize), join(d.stateDir, 'filler')]);
  expect(statfsSync(d.stateDir).bavail).toBe(0);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('test/integration/faults-store.test.ts mounts a tmpfs as the state dir: run it as root (CI does)');
  }
  d = await DaemonHarness.create();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', d.stateDir]);
  mounted = true;
  // A second definition, outside the tmpfs, for a define while the disk is full.
  scratch = mkdtempSync('/tmp/vk-faults-');
  const doc = YAML.parse(readFileSync(testGuestDefinition(), 'utf8')) as { boot: Record<string, string> };
  doc.boot['kernel'] = join(testGuest(), doc.boot['kernel']!);
  doc.boot['initrd'] = join(testGuest(), doc.boot['initrd']!);
  writeFileSync(join(scratch, 'other.yaml'), YAML.stringify({ ...doc, name: 'other' }));
  await d.start();
});

afterAll(async () => {
  if (d) {
    await d.kill9();
    for (const { pid } of await d.qemuPids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await waitFor('the QEMU processes to end', async () => (await d.qemuPids()).length === 0, 10_000);
    if (mounted) execFileSync('umount', ['-l', d.stateDir]);
    await d.cleanup();
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe.sequential('a full disk under the state store', { timeout: 300_000 }, () => {
  it('destroy kills QEMU and reads say shutoff while full; writes are store.unavailable (exit 12); no restart needed after space is freed', async () => {
    expect((await d.cli(['define', testGuestDefinition()])).code).toBe(0);
    expect((await d.cli(['start', G, '--paused'])).code).toBe(0);
    const info = JSON.parse((await d.cli(['dominfo', G, '--json'])).stdout) as DomainInfo;
    const pid = info.pid!;
    expect(isAlive(pid)).toBe(true);

    fill();

    // A write: refused with its own code and exit code, not internal (70).
    const define = await d.cli(['define', join(scratch, 'other.yaml')]);
    expect(define.stderr).toContain('store.unavailable');
    expect(define.code).toBe(12);
    // Reads keep working.
    expect(JSON.parse((await d.cli(['domstate', G, '--json'])).stdout)).toEqual({ state: 'paused' });
    // Nothing is killed because the store failed.
    expect(isAlive(pid)).toBe(true);

    // The user's destroy is carried out, and the answer is what happened.
    const destroy = await d.cli(['destroy', G]);
    expect(destroy.stderr).toBe('');
    expect(destroy.code).toBe(0);
    await waitFor('QEMU to be gone', async () => !isAlive(pid), 10_000);
    expect(await d.qemuPids()).toEqual([]);
    // The store still says paused; reads answer from what the daemon observed.
    expect(storedStatus(G).state).toBe('paused');
    expect(JSON.parse((await d.cli(['domstate', G, '--json'])).stdout)).toEqual({ state: 'shutoff', reason: 'destroyed' });
    const after = JSON.parse((await d.cli(['dominfo', G, '--json'])).stdout) as DomainInfo;
    expect(after).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    expect(after.pid).toBeUndefined();

    // Nothing to destroy any more; a start is refused before a QEMU the store does not know exists.
    const again = await d.cli(['destroy', G]);
    expect(again.stderr).toContain('domain.invalid-state');
    expect(again.code).toBe(4);
    const start = await d.cli(['start', G]);
    expect(start.stderr).toContain('store.unavailable');
    expect(start.stderr).toContain('testguest stopped (destroyed)');
    expect(start.code).toBe(12);
    expect(await d.qemuPids()).toEqual([]);
    expect(d.proc?.exitCode).toBeNull();

    // Space comes back: the daemon writes what it observed by itself, no restart.
    rmSync(join(d.stateDir, 'filler'));
    await waitFor('the store to record the destroy', async () => storedStatus(G).state === 'shutoff', 60_000);
    expect(storedStatus(G)).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    const destroyed = await d.cli(['destroy', G]);
    expect(destroyed.code).toBe(4);
    expect((await d.cli(['start', G, '--paused'])).code).toBe(0);
    expect(JSON.parse((await d.cli(['domstate', G, '--json'])).stdout)).toEqual({ state: 'paused' });
    expect((await d.cli(['destroy', G])).code).toBe(0);
    expect(JSON.parse((await d.cli(['domstate', G, '--json'])).stdout)).toEqual({ state: 'shutoff', reason: 'destroyed' });
    expect((await d.cli(['define', join(scratch, 'other.yaml')])).code).toBe(0);
    expect(d.proc?.exitCode).toBeNull();
  });
});
