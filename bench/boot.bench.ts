/**
 * Boot to the guest kit's ready marker: `virtkit run --until-ready` (timed from spawning the
 * CLI, so it includes Node start-up, loading the definition, the cached capabilities probe,
 * launching and attaching the console) against bare qemu-system-x86_64 with the identical argv
 * from buildCommand (timed from its spawn, the console read from the same socket). Runs
 * alternate so both see the same machine load.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadDefinition } from '../src/conf/index.js';
import { buildGuest, READY_MARKER } from '../src/guestkit/index.js';
import { buildCommand, probeCapabilities, resolveAccel, runPaths } from '../src/qemu/index.js';
import { median, ratioLine } from './stats.js';

const RUNS = 5;
const TIMEOUT_MS = 300_000;
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'virtkit.js');

interface VirtkitTiming {
  /** CLI spawn to the ready marker on its stdout. */
  readyMs: number;
  /** CLI spawn to QEMU's pidfile appearing in the run dir: virtkit's own start-up cost. */
  qemuStartedMs: number;
}

/**
 * Spawn `virtkit run --until-ready` and time until the marker shows on its stdout, and until
 * QEMU has started (its pidfile appears under the run dir, polled); wait for it to finish.
 */
async function timeVirtkit(definitionPath: string, runtimeDir: string): Promise<VirtkitTiming> {
  const t0 = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e6;
  const child = spawn(process.execPath, [CLI, 'run', definitionPath, '--until-ready', '--timeout', String(TIMEOUT_MS / 1000)],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir } });
  let qemuStartedMs: number | undefined;
  const runRoot = join(runtimeDir, 'virtkit', 'run');
  const watchPidfile = (async () => {
    while (qemuStartedMs === undefined && child.exitCode === null) {
      const dirs = await readdir(runRoot).catch(() => [] as string[]);
      if (dirs.length > 0 && existsSync(join(runRoot, dirs[0]!, 'qemu.pid'))) qemuStartedMs = elapsed();
      else await sleep(2);
    }
  })();
  let out = '';
  let readyMs: number | undefined;
  child.stdout.on('data', (c: Buffer) => {
    if (readyMs !== undefined) return;
    out = (out + c.toString('latin1')).slice(-200);
    if (out.includes(READY_MARKER)) readyMs = elapsed();
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await watchPidfile;
  if (code !== 0 || readyMs === undefined || qemuStartedMs === undefined) {
    throw new Error(`virtkit run --until-ready exited ${String(code)} without the marker`);
  }
  return { readyMs, qemuStartedMs };
}

async function timeCliStartup(): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [CLI, '--version'], { stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Spawn QEMU with the given argv, read its console socket, time until the marker; then kill it. */
async function timeBareQemu(binary: string, argv: string[], runDir: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const qemu = spawn(binary, argv, { stdio: 'ignore' });
  const exited = new Promise<void>((r) => qemu.on('exit', () => r()));
  try {
    const consolePath = runPaths(runDir).consoleSocket;
    for (;;) {
      const ms = await new Promise<number | undefined>((resolveMs, reject) => {
        const sock = connect(consolePath);
        let out = '';
        sock.on('error', () => resolveMs(undefined));
        sock.on('data', (c: Buffer) => {
          out = (out + c.toString('latin1')).slice(-200);
          if (out.includes(READY_MARKER)) {
            sock.destroy();
            resolveMs(Number(process.hrtime.bigint() - t0) / 1e6);
          }
        });
        sock.on('close', () => resolveMs(undefined));
        setTimeout(() => reject(new Error('bare QEMU: no ready marker')), TIMEOUT_MS).unref();
      });
      if (ms !== undefined) return ms;
      if (qemu.exitCode !== null) throw new Error('bare QEMU exited before the marker');
      await sleep(5);
    }
  } finally {
    qemu.kill('SIGKILL');
    await exited;
  }
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'virtkit-bench-boot-'));
  try {
    const guest = await buildGuest({ dir: join(work, 'guest'), name: 'benchguest' });
    const def = await loadDefinition(guest.definitionPath);
    const caps = await probeCapabilities();
    const { accel, reason } = resolveAccel(def.accel, caps);
    const runDir = join(work, 'bare-run');
    const cmd = buildCommand(def, { binary: caps.binary, accel, runDir });
    await mkdir(runDir, { mode: 0o700 });
    console.log(`guest kit guest, accel ${accel} (${reason}); ${RUNS} runs each, alternating`);

    const runtimeDir = join(work, 'xdg');
    // one unmeasured run each: page cache, capabilities cache
    await timeVirtkit(guest.definitionPath, runtimeDir);
    await timeBareQemu(cmd.binary, cmd.argv, runDir);

    const ours: number[] = [];
    const startup: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = await timeVirtkit(guest.definitionPath, runtimeDir);
      ours.push(t.readyMs);
      startup.push(t.qemuStartedMs);
      bare.push(await timeBareQemu(cmd.binary, cmd.argv, runDir));
    }
    // Node start-up and loading the CLI's modules are part of virtkit's cost: shown on their own.
    const cliStart: number[] = [];
    for (let i = 0; i < RUNS; i++) cliStart.push(await timeCliStartup());
    const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(`virtkit run --until-ready to marker (ms): ${fmt(ours)}`);
    console.log(`bare qemu-system-x86_64 to marker (ms):   ${fmt(bare)}`);
    console.log(`virtkit run, spawn to QEMU started (ms):   ${fmt(startup)}`);
    console.log(`virtkit --version, CLI start-up alone (ms): ${fmt(cliStart)}`);
    console.log(ratioLine('boot to ready marker, median', median(ours), median(bare), 'ms', 'bare qemu'));
    const paired = ours.map((o, i) => o / bare[i]!);
    console.log(`boot to ready marker, median of paired ratios: ${median(paired).toFixed(3)}`);
    // The boot itself is the same QEMU with the same argv; what virtkit adds is the time before
    // QEMU runs. Relative to the bare boot that is the overhead, without the boot's noise.
    console.log(`virtkit's start-up before QEMU runs: median ${median(startup).toFixed(0)} ms = ${(100 * median(startup) / median(bare)).toFixed(1)}% of the bare boot (CLI start-up alone ${median(cliStart).toFixed(0)} ms)`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
