/**
 * A real `virtkit daemon` process for integration tests: its own state dir under /tmp (short,
 * so socket paths stay under the unix limit), start/kill -9/stop, the typed client and the CLI
 * against it, and a check for QEMU processes under its run dir. Runs the built CLI (dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type VirtkitClient } from '../../src/client/index.js';
import { qemuProcessesUnder } from '../../src/daemon/reconcile.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CliPath = join(root, 'bin', 'virtkit.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export class DaemonHarness {
  proc: ChildProcess | undefined;
  /** Every daemon this harness started, so cleanup leaves none behind even after a failed stop. */
  private readonly spawned: ChildProcess[] = [];
  private clients: VirtkitClient[] = [];

  private constructor(readonly stateDir: string) {}

  static async create(): Promise<DaemonHarness> {
    if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) throw new Error('build first: npm run build');
    return new DaemonHarness(await mkdtemp('/tmp/vkd-'));
  }

  get socketPath(): string { return join(this.stateDir, 'virtkit.sock'); }
  get runDir(): string { return join(this.stateDir, 'run'); }
  get logPath(): string { return join(this.stateDir, 'daemon.log'); }

  /** Starts the daemon (with `args` added to its command line) and waits until it answers. */
  async start(env: Record<string, string> = {}, args: string[] = []): Promise<void> {
    const proc = spawn(process.execPath, [CliPath, 'daemon', '--state-dir', this.stateDir, '--log-level', 'debug', ...args], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    this.proc = proc;
    this.spawned.push(proc);
    const c = connect(this.socketPath);
    try {
      await waitFor('the daemon to answer', async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`daemon exited: ${stderr}`);
        return (await c.daemonInfo()).pid === proc.pid;
      }, 30_000, 50);
    } finally {
      c.close();
    }
  }

  private async waitExit(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise((r) => p.once('exit', r));
  }

  async kill9(): Promise<void> {
    this.proc?.kill('SIGKILL');
    await this.waitExit();
  }

  /** SIGTERM, which must end the daemon promptly; one that hangs is killed and the test fails. */
  async stop(): Promise<void> {
    const p = this.proc;
    p?.kill('SIGTERM');
    const timer = setTimeout(() => p?.kill('SIGKILL'), 20_000);
    try {
      await this.waitExit();
    } finally {
      clearTimeout(timer);
    }
    if (p?.signalCode === 'SIGKILL') throw new Error('the daemon did not stop on SIGTERM within 20 s');
  }

  /** Waits for a daemon started with a crash point to die by it. */
  async waitCrashed(timeoutMs = 60_000): Promise<void> {
    await waitFor('the daemon to die at its crash point', async () => this.proc?.signalCode === 'SIGKILL', timeoutMs);
  }

  client(): VirtkitClient {
    const c = connect(this.socketPath);
    this.clients.push(c);
    return c;
  }

  cli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
    return new Promise((resolvePromise, reject) => {
      const p = spawn(process.execPath, [CliPath, ...args], {
        env: { ...process.env, VIRTKIT_CONNECT: this.socketPath, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      p.on('error', reject);
      p.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
      p.stdin.end(opts.input ?? '');
    });
  }

  /** QEMU processes whose command line names this daemon's run dir. */
  qemuPids(): Promise<{ pid: number; runDir: string }[]> {
    return qemuProcessesUnder(this.runDir);
  }

  /** Waits until the console history holds `marker` more than `before` times. */
  async waitConsole(name: string, marker: string, before = 0, timeoutMs = 90_000): Promise<void> {
    const c = this.client();
    await waitFor(`"${marker}" on the console of ${name}`, async () => countOf(await c.consoleLog(name), marker) > before, timeoutMs, 250);
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients) c.close();
    for (const p of this.spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await this.kill9();
    for (const { pid } of await this.qemuPids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await rm(this.stateDir, { recursive: true, force: true });
  }
}

export function countOf(text: string, marker: string): number {
  return text.split(marker).length - 1;
}
