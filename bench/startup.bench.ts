/**
 * CLI start-up: whole-process wall time of `virtkit list` (a daemon with 11 defined domains
 * answering) and `virtkit fs cat` (one small file of an ext4 image) against `node -e 0` on the
 * same machine in the same run. Target: within 30 ms of node's own start.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/client/index.js';
import { buildGuest } from '../src/guestkit/index.js';
import { processMs } from './references.js';
import { targetLine } from './stats.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'virtkit.js');
const Runs = 21;

export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-bench-startup-');
  let daemon: ChildProcess | undefined;
  try {
    const stateDir = join(work, 's');
    daemon = spawn(process.execPath, [cli, 'daemon', '--state-dir', stateDir, '--log-level', 'warn'], { stdio: 'ignore' });
    const socket = join(stateDir, 'virtkit.sock');
    const c = connect(socket);
    try {
      for (let i = 0; ; i++) {
        try { await c.daemonInfo(); break; } catch (err) { if (i > 300) throw err; await sleep(50); }
      }
      const guest = await buildGuest({ dir: join(work, 'g'), name: 'start' });
      const text = await readFile(guest.definitionPath, 'utf8');
      for (let i = 0; i < 11; i++) await c.define(text.replace(/^name: .*$/m, `name: d${i}`), { baseDir: dirname(guest.definitionPath) });
    } finally {
      c.close();
    }
    const src = join(work, 'tree');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc', 'hostname'), 'bench\n');
    const image = join(work, 'disk.img');
    const made = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, image, '64M']);
    if (made.status !== 0) throw new Error(`mke2fs failed: ${made.stderr.toString()}`);

    const env = { ...process.env, VIRTKIT_CONNECT: socket };
    // Interleaved rounds, so a burst of load elsewhere on the machine hits every command alike.
    const node: number[] = [];
    const version: number[] = [];
    const list: number[] = [];
    const cat: number[] = [];
    for (let round = 0; round < 3; round++) {
      node.push(processMs([process.execPath, '-e', '0'], Runs / 3, env));
      version.push(processMs([process.execPath, cli, '--version'], Runs / 3, env));
      list.push(processMs([process.execPath, cli, 'list', '--all'], Runs / 3, env));
      cat.push(processMs([process.execPath, cli, 'fs', 'cat', image, '/etc/hostname'], Runs / 3, env));
    }
    const best = (xs: number[]): number => Math.min(...xs);
    const floor = best(node);
    console.log(`node -e 0: ${floor.toFixed(1)} ms; virtkit --version ${best(version).toFixed(1)} ms (+${(best(version) - floor).toFixed(1)})`);
    for (const [label, xs] of [['virtkit list --all (11 domains)', list], ['virtkit fs cat (ext4 image)', cat]] as const) {
      const ms = best(xs);
      console.log(targetLine(`7 ${label} within 30 ms of node -e 0`, ms - floor <= 30,
        `virtkit ${ms.toFixed(1)} ms, node -e 0 ${floor.toFixed(1)} ms, +${(ms - floor).toFixed(1)} ms, ratio ${(ms / floor).toFixed(3)}`));
    }
  } finally {
    daemon?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
