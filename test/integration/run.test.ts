/**
 * `virtkit run` as users run it: the built CLI in its own process, real TCG guests from the
 * guest kit. Three guests, side by side: --until-ready, an interactive session (one guest
 * power-off and restart, then SIGINT), and a guest deaf to the power button stopped by force
 * after its shutdown_timeout.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { testGuestDefinition, testGuestNoAcpiDefinition } from '../helpers/guests.js';

const CLI = resolve(import.meta.dirname, '../../bin/virtkit.js');
const READY = 'virtkit-guest: ready';
const BOOT_TIMEOUT_MS = 150_000;

interface Cli {
  proc: ChildProcessByStdio<Writable, Readable, Readable>;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function runCli(args: string[], env: Record<string, string>): Cli {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')));
  proc.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  return { proc, stdout: () => out, stderr: () => err, exit };
}

async function waitFor(cli: Cli, text: string, from: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cli.stdout().slice(from).includes(text)) {
    if (cli.proc.exitCode !== null) throw new Error(`virtkit run exited waiting for ${JSON.stringify(text)}:\n${cli.stdout()}\n${cli.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)}:\n${cli.stdout()}\n${cli.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A copy of a guest definition with absolute paths and some fields changed. */
async function variant(path: string, dir: string, changes: Record<string, unknown>): Promise<string> {
  const doc = parse(await readFile(path, 'utf8')) as { boot: Record<string, string> } & Record<string, unknown>;
  for (const k of ['kernel', 'initrd']) if (doc.boot[k]) doc.boot[k] = resolve(dirname(path), doc.boot[k]);
  const out = join(dir, `${String(changes['name'] ?? 'variant')}.yaml`);
  await writeFile(out, stringify({ ...doc, ...changes }));
  return out;
}

/** Pids of live processes whose command line mentions `dir` (QEMU names its run dir's sockets). */
async function qemusUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir) && cmdline.includes('qemu')) pids.push(Number(name));
  }
  return pids;
}

describe.concurrent('virtkit run', () => {
  let scratch: string;
  let runtimeDir: string;
  const clis: Cli[] = [];
  const start = (args: string[]): Cli => {
    const cli = runCli(args, { XDG_RUNTIME_DIR: runtimeDir });
    clis.push(cli);
    return cli;
  };

  beforeAll(async () => {
    if (!existsSync(resolve(import.meta.dirname, '../../dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    scratch = await mkdtemp(join(tmpdir(), 'virtkit-run-test-'));
    runtimeDir = join(scratch, 'xdg');
  });

  afterAll(async () => {
    for (const c of clis) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    // no QEMU may outlive its `virtkit run`, and every run dir is removed
    expect(await qemusUnder(runtimeDir)).toEqual([]);
    expect(await readdir(join(runtimeDir, 'virtkit', 'run')).catch(() => [])).toEqual([]);
    await rm(scratch, { recursive: true, force: true });
  });

  it('--until-ready boots, sees the marker, powers the guest off cleanly and exits 0', async () => {
    const cli = start(['run', testGuestDefinition(), '--until-ready', '--timeout', '150']);
    expect(await cli.exit).toEqual({ code: 0, signal: null });
    expect(cli.stdout()).toContain(READY);
    expect(cli.stdout()).toContain('power button pressed');
    expect(cli.stderr()).toContain('accel tcg');
    expect(cli.stderr()).toContain('powered off cleanly');
  });

  it('--until-ready exits 7 when the marker does not come in time', async () => {
    const cli = start(['run', testGuestDefinition(), '--until-ready', '--timeout', '0.5']);
    expect((await cli.exit).code).toBe(7);
    expect(cli.stderr()).toContain(`no "${READY}" within 0.5 s`);
  });

  it('puts the console on stdin/stdout, restarts a guest that powers off (on_poweroff: restart), stops cleanly on SIGINT', async () => {
    const def = await variant(testGuestDefinition(), scratch, { name: 'interactive', on_poweroff: 'restart' });
    const cli = start(['run', def]);
    await waitFor(cli, READY, 0, BOOT_TIMEOUT_MS);
    let from = cli.stdout().length;
    cli.proc.stdin.write('echo run-$((6*7))\n');
    await waitFor(cli, 'run-42', from, 60_000);
    from = cli.stdout().length;
    cli.proc.stdin.write('poweroff -f\n');
    await waitFor(cli, READY, from, BOOT_TIMEOUT_MS);
    expect(cli.stderr()).toContain('guest powered off; restarting it (on_poweroff: restart)');
    cli.proc.kill('SIGINT');
    expect(await cli.exit).toEqual({ code: 0, signal: null });
    expect(cli.stdout()).toContain('power button pressed');
  });

  it('stops a guest deaf to the power button by force after shutdown_timeout and exits 1', async () => {
    const def = await variant(testGuestNoAcpiDefinition(), scratch, { name: 'deaf', shutdown_timeout: 2 });
    const cli = start(['run', def]);
    await waitFor(cli, READY, 0, BOOT_TIMEOUT_MS);
    cli.proc.kill('SIGTERM');
    expect(await cli.exit).toEqual({ code: 1, signal: null });
    expect(cli.stderr()).toContain('guest stopped by force');
  });

  it('rejects a bad --timeout before starting anything', async () => {
    const cli = start(['run', testGuestDefinition(), '--until-ready', '--timeout', 'soon']);
    expect((await cli.exit).code).toBe(5);
    expect(cli.stderr()).toContain('argument.invalid');
  });
});
