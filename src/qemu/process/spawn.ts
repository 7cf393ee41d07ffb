import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { VirtkitError } from '../../util/errors.js';
import { dieWithParent, findExecutable } from '../../util/helper-process.js';

/** What to run: the argv builder's output. */
export interface QemuCommandLine {
  binary: string;
  argv: string[];
  env: Record<string, string>;
}

export interface SpawnedQemu {
  child: ChildProcess;
  /** Size of the log before this QEMU wrote to it: its own output starts here. */
  logOffset: number;
}

/**
 * Starts QEMU without a shell, stdout and stderr appended to `logPath`. `detached` puts it in
 * its own session and unrefs it, so it outlives whoever started it and is not hit by a Ctrl-C
 * sent to our process group: that is how guests run. Not detached is for short-lived helpers
 * (the capabilities probe): those run under the parent-death signal (util/helper-process.ts),
 * so a kill -9 of this process takes them along. A missing binary is 'qemu.not-found'.
 */
export function spawnQemu(cmd: QemuCommandLine, logPath: string, opts: { detached: boolean }): Promise<SpawnedQemu> {
  let file = cmd.binary;
  let args = cmd.argv;
  if (!opts.detached) {
    const binary = findExecutable(cmd.binary);
    if (binary === undefined) return Promise.reject(notFound(cmd.binary));
    try {
      ({ file, args } = dieWithParent(binary, cmd.argv));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
  const logOffset = sizeOf(logPath);
  const logFd = openSync(logPath, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      stdio: ['ignore', logFd, logFd],
      detached: opts.detached,
      env: { ...process.env, ...cmd.env },
    });
  } finally {
    closeSync(logFd);
  }
  return new Promise((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT'
        ? notFound(cmd.binary, err)
        : new VirtkitError('qemu.failed-to-start', `cannot start ${cmd.binary}: ${err.message}`, { binary: cmd.binary }, { cause: err }));
    });
    child.once('spawn', () => {
      if (opts.detached) child.unref();
      resolve({ child, logOffset });
    });
  });
}

function notFound(binary: string, cause?: Error): VirtkitError {
  return new VirtkitError('qemu.not-found', `QEMU binary not found: ${binary}`, { binary }, cause ? { cause } : undefined);
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Reads what QEMU wrote to its log from `offset` on (at most the last 64 KiB). */
export async function readLogSince(logPath: string, offset: number): Promise<string> {
  const limit = 64 * 1024;
  let fh;
  try {
    fh = await open(logPath, 'r');
  } catch {
    return '';
  }
  try {
    const size = (await fh.stat()).size;
    const start = Math.max(offset, size - limit);
    const buf = Buffer.alloc(Math.max(0, size - start));
    await fh.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * QEMU's own error lines from its stderr, without the `qemu-system-x86_64: ` prefix noise kept
 * intact (users search for it) but with warnings and info lines dropped when an error line exists.
 */
export function qemuErrorSummary(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  // `info:` lines are QEMU telling what it does (e.g. waiting for the console's first client)
  const errors = lines.filter((l) => !/^[^:]*: warning: /.test(l) && !/: info: /.test(l) && !/terminating on signal/.test(l));
  const chosen = errors.length > 0 ? errors : lines;
  return chosen.slice(-3).join('; ');
}

/**
 * Runs a short-lived QEMU to completion (e.g. `-accel help`), dying with this process, and
 * returns its stdout. 'qemu.not-found' when the binary is missing; 'operation.timeout' when it
 * has not finished within `timeoutMs` (it is killed); 'qemu.exited' on a non-zero status.
 */
export function runQemuOnce(binary: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const path = findExecutable(binary);
    if (path === undefined) return reject(notFound(binary));
    const helper = dieWithParent(path, args);
    execFile(helper.file, helper.args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if (err.killed === true && err.signal === 'SIGKILL') {
        return reject(new VirtkitError('operation.timeout', `${binary} ${args.join(' ')} did not finish within ${timeoutMs} ms: killed`,
          { command: [binary, ...args], timeoutMs }, { cause: err }));
      }
      reject(new VirtkitError('qemu.exited', `${binary} ${args.join(' ')}: ${qemuErrorSummary(stderr) || err.message}`, { binary, args, stderr }, { cause: err }));
    });
  });
}

/**
 * Runs QEMU with the serial console on stdout and waits at most `timeoutMs` for `marker`;
 * used by the KVM functional check. QEMU never outlives the call, nor this process (it runs
 * under the parent-death signal). 'qemu.not-found' when the binary is missing.
 */
export function runQemuUntilMarker(binary: string, args: string[], marker: string, timeoutMs: number): Promise<{ seen: boolean; elapsedMs: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const path = findExecutable(binary);
    if (path === undefined) return reject(notFound(binary));
    const helper = dieWithParent(path, args);
    const t0 = Date.now();
    const child = spawn(helper.file, helper.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let settled = false;
    const finish = (seen: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ seen, elapsedMs: Date.now() - t0, stderr });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString('latin1')).slice(-4096);
      if (out.includes(marker)) finish(true);
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString('utf8')).slice(-4096); });
    child.on('error', () => finish(false));
    child.on('exit', () => finish(out.includes(marker)));
  });
}
