/**
 * The benches' own daemon: `virtkit daemon` over a state dir of theirs, started as a child of
 * the bench and waited for until it answers `daemon.info`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect, type VirtkitClient } from '../src/client/index.js';

/** The built CLI (bench files run from dist/bench/). */
export const benchCli = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'virtkit.js');

/** Starts a daemon on `stateDir` (Node run with `nodeFlags`) and returns it with a client that has reached it. */
export async function startBenchDaemon(stateDir: string, nodeFlags: readonly string[] = []): Promise<{ proc: ChildProcess; client: VirtkitClient }> {
  const proc = spawn(process.execPath, [...nodeFlags, benchCli, 'daemon', '--state-dir', stateDir, '--log-level', 'warn'], { stdio: 'ignore' });
  const client = connect(join(stateDir, 'virtkit.sock'));
  for (let i = 0; i < 300; i++) {
    try {
      await client.daemonInfo();
      return { proc, client };
    } catch {
      await sleep(50);
    }
  }
  client.close();
  throw new Error('daemon did not start');
}
