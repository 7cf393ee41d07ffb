/**
 * `npm run demo` (scripts/demo.js) run twice against one work directory: the second run must
 * report the guest ready only once the new boot printed its marker, not from the previous
 * run's output still in the console log. Real manager, real TCG guests, the built CLI.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { waitFor } from './daemon-harness.js';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY = 'virtkit-guest: ready';
// Short: the daemon's socket lives under it and unix socket paths are limited to 108 bytes.
const work = await mkdtemp(join(tmpdir(), 'vk-demo-'));
const socket = join(work, 'state', 'virtkit.sock');
const env = { ...process.env, VIRTKIT_DEMO_DIR: work, VIRTKIT_CONNECT: socket };

async function demo(): Promise<string> {
  const { stdout } = await run(process.execPath, [join(root, 'scripts', 'demo.js')], { env, timeout: 240_000 });
  return stdout;
}

async function consoleLog(): Promise<string> {
  const { stdout } = await run(process.execPath, [join(root, 'bin', 'virtkit.js'), 'console', 'demo', '--log'], { env });
  return stdout;
}

const markers = (text: string): number => text.split(READY).length - 1;

afterAll(async () => {
  const client = connect(socket);
  try {
    await client.destroy('demo').catch(() => undefined);
    const { pid } = await client.daemonInfo();
    process.kill(pid, 'SIGTERM');
    await waitFor('the demo manager to exit', async () => {
      try { process.kill(pid, 0); return false; } catch { return true; }
    });
  } finally {
    client.close();
    await rm(work, { recursive: true, force: true });
  }
});

describe('npm run demo', () => {
  it('a second run waits for the new boot, not the last run\'s ready marker', async () => {
    expect(await demo()).toContain(READY);
    expect(markers(await consoleLog())).toBe(1);

    const client = connect(socket);
    try {
      expect((await client.shutdown('demo', { timeout: 60 })).outcome).toBe('clean');
    } finally {
      client.close();
    }

    expect(await demo()).toContain(READY);
    // Reported ready only after this boot printed its own marker.
    expect(markers(await consoleLog())).toBe(2);
  });
});
