/**
 * Helper processes die with their parent (docs/reliability.md). A real `virtkit capabilities`
 * (the built CLI) is held still at a known point of its capability probe or of its KVM test
 * boot, with a real QEMU running, then killed with SIGKILL: that QEMU must be gone once the
 * kernel delivered the parent-death signal. The same for a library caller killed while
 * qemu-img blocks on a FIFO. Each helper is recognized by a path only this test uses.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, accessSync, existsSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findExecutable } from '../../src/util/helper-process.js';
import { killLeftovers, pollFor, processesWithArg, waitUntilNoneWithArg, type ProcessInfo } from '../helpers/processes.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/virtkit.js');
const QEMU = findExecutable('qemu-system-x86_64');
/** How long the kernel may take to deliver SIGKILL to an orphaned helper: a bound, not a timing. */
const SIGNAL_BOUND_MS = 10_000;

const kvmTestBootPossible = (() => {
  try {
    accessSync('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
    return readdirSync('/boot').some((n) => n.startsWith('vmlinuz-'));
  } catch {
    return false;
  }
})();

let dir: string;
let children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'virtkit-helpers-'));
  children = [];
});

afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  // What a failed test left: processes that carry our unique directory in their arguments.
  killLeftovers(await processesWithArg(dir));
  await rm(dir, { recursive: true, force: true });
});

/** Runs node with `args`, the test's temp dir as TMPDIR and as every cache and runtime dir. */
function startNode(args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: dir, XDG_CACHE_HOME: join(dir, 'cache'), XDG_RUNTIME_DIR: dir },
  });
  children.push(child);
  return child;
}

async function killAndReap(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/**
 * The one helper carrying `marker` once it runs as `program` (before that it is setpriv and
 * the guard shell, the same pid); the test fails if the parent exits first.
 */
async function helperOf(parent: ChildProcess, marker: string, program: RegExp): Promise<ProcessInfo> {
  let stderr = '';
  parent.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const found = await pollFor(async () => {
    if (parent.exitCode !== null) throw new Error(`the parent exited (${parent.exitCode}) before ${String(program)} ran: ${stderr}`);
    const procs = (await processesWithArg(marker)).filter((p) => p.pid !== parent.pid);
    return procs.length > 0 && procs.every((p) => program.test(p.argv[0] ?? '')) ? procs : undefined;
  }, 60_000);
  if (!found) throw new Error(`no ${String(program)} carrying ${marker} appeared: ${stderr}`);
  expect(found).toHaveLength(1);
  expect(found[0]!.ppid).toBe(parent.pid); // the helper is the child of the process we kill
  return found[0]!;
}

/**
 * A module for `node --import` that freezes the process at its first QMP command (QEMU is up,
 * the probe not finished) after writing DIR/held; returns its path.
 */
async function holdAtFirstQmpCommand(): Promise<string> {
  const hook = join(dir, 'hold-at-first-qmp-command.mjs');
  await writeFile(hook, [
    "import { subscribe } from 'node:diagnostics_channel';",
    "import { writeFileSync } from 'node:fs';",
    "subscribe('vm:qmp:command', () => {",
    `  writeFileSync(${JSON.stringify(join(dir, 'held'))}, 'held');`,
    '  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);',
    '});',
  ].join('\n'));
  return hook;
}

describe('helper processes die with their parent', () => {
  it.skipIf(QEMU === undefined)('kill -9 of `virtkit capabilities` during the -machine none probe leaves no QEMU', async () => {
    // Held still once QMP answered the probe's first command: QEMU is up, the probe not finished.
    const hook = await holdAtFirstQmpCommand();
    const cli = startNode(['--import', pathToFileURL(hook).href, CLI, 'capabilities', '--refresh']);
    await pollFor(async () => (existsSync(join(dir, 'held')) || cli.exitCode !== null ? true : undefined), 60_000);
    // The probe's QMP socket lives in a temporary directory under TMPDIR, our directory.
    const qemu = await helperOf(cli, dir, /qemu-system-x86_64$/);
    expect(qemu.argv).toEqual(expect.arrayContaining(['-machine', 'none']));
    await killAndReap(cli);
    expect(await waitUntilNoneWithArg(dir, SIGNAL_BOUND_MS)).toEqual([]);
  });

  it.skipIf(QEMU === undefined)('kill -9 of the daemon during its first capability probe leaves no QEMU', async () => {
    // The daemon probes on the first start of a new state dir; held once QMP answered the probe.
    const hook = await holdAtFirstQmpCommand();
    const state = join(dir, 's');
    const daemon = startNode(['--import', pathToFileURL(hook).href, CLI, 'daemon', '--state-dir', state, '--log-file', '-']);
    const env = { ...process.env, VIRTKIT_CONNECT: join(state, 'virtkit.sock') };
    await pollFor(async () => (existsSync(join(state, 'virtkit.sock')) || daemon.exitCode !== null ? true : undefined), 60_000);
    const def = join(dir, 'probe-guest.yaml');
    // accel auto (the default): the start needs the probe (an explicit accelerator does not).
    await writeFile(def, 'name: probe-guest\nmemory: 64MiB\n');
    expect(spawnSync(process.execPath, [CLI, 'define', def], { env, encoding: 'utf8' }).status).toBe(0);
    // The start waits on the held daemon; it dies with the daemon's socket.
    const start = spawn(process.execPath, [CLI, 'start', 'probe-guest'], { env, stdio: 'ignore' });
    children.push(start);
    await pollFor(async () => (existsSync(join(dir, 'held')) || daemon.exitCode !== null ? true : undefined), 60_000);
    const qemu = await helperOf(daemon, dir, /qemu-system-x86_64$/);
    expect(qemu.argv).toEqual(expect.arrayContaining(['-machine', 'none']));
    await killAndReap(daemon);
    expect(await waitUntilNoneWithArg(dir, SIGNAL_BOUND_MS)).toEqual([]);
  });

  it.skipIf(QEMU === undefined || !kvmTestBootPossible)('kill -9 of `virtkit capabilities` during the KVM test boot leaves no QEMU', async () => {
    // A QEMU "binary" that is the real one, except that the KVM test boot runs paused under TCG
    // (it never prints the banner, so the check waits) and names a pidfile in our directory.
    const fake = join(dir, 'qemu-system-x86_64');
    await writeFile(fake, [
      '#!/bin/sh',
      'kvm=',
      'for a do',
      '  shift',
      '  case "$a" in pc,accel=kvm) a=pc,accel=tcg; kvm=1;; host) a=max;; esac',
      '  set -- "$@" "$a"',
      'done',
      `[ -n "$kvm" ] && exec ${QEMU} -S -pidfile ${join(dir, 'kvm-test.pid')} "$@"`,
      `exec ${QEMU} "$@"`,
      '',
    ].join('\n'));
    await chmod(fake, 0o755);
    const cli = startNode([CLI, 'capabilities', '--binary', fake]);
    const qemu = await helperOf(cli, join(dir, 'kvm-test.pid'), /qemu-system-x86_64$/);
    expect(qemu.argv).toEqual(expect.arrayContaining(['pc,accel=tcg', '-S']));
    await killAndReap(cli);
    expect(await waitUntilNoneWithArg(dir, SIGNAL_BOUND_MS)).toEqual([]);
  });

  it('kill -9 of a process waiting on qemu-img leaves no qemu-img', async () => {
    const fifo = join(dir, 'blocks.fifo');
    execFileSync('mkfifo', [fifo]);
    const lib = pathToFileURL(join(ROOT, 'dist/src/storage/qemu-img.js')).href;
    // Opening the FIFO blocks until a writer comes, so qemu-img waits for good.
    const caller = startNode(['--input-type=module', '-e',
      `const { runQemuImg } = await import(${JSON.stringify(lib)}); await runQemuImg(['info', '-f', 'raw', ${JSON.stringify(fifo)}]);`]);
    await helperOf(caller, fifo, /qemu-img$/);
    await killAndReap(caller);
    expect(await waitUntilNoneWithArg(fifo, SIGNAL_BOUND_MS)).toEqual([]);
  });
});

describe('qemu-img bounds through the CLI', () => {
  it('`img create -b FIFO` fails at once with argument.invalid (exit 5) instead of hanging', async () => {
    const fifo = join(dir, 'base.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = spawnSync(process.execPath, [CLI, 'img', 'create', '-f', 'qcow2', '-b', fifo, '-F', 'raw', join(dir, 'top.qcow2'), '1M'],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(5);
    expect(r.stderr).toContain('is a FIFO');
    expect(existsSync(join(dir, 'top.qcow2'))).toBe(false);
  });
});
