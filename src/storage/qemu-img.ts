/**
 * The qemu-img wrapper: the one place under storage/ that runs a process. Create, convert,
 * check, resize and compare are qemu-img's job; we pass formats explicitly every time (never
 * let it probe) and hand its stderr to the user verbatim in `qemu-img.failed`.
 *
 * Every run is bounded: qemu-img is killed after a timeout (`operation.timeout`), and it dies
 * with this process (util/helper-process.ts), so a killed virtkit leaves no qemu-img behind.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { VirtkitError } from '../util/errors.js';
import { dieWithParent, findExecutable } from '../util/helper-process.js';

/** Bound on a qemu-img run whose work is metadata (create, info, check, resize): 10 minutes. */
export const QEMU_IMG_TIMEOUT_MS = 10 * 60_000;
/** Bound on a run that reads or writes a whole disk (convert, compare): 24 hours. */
export const QEMU_IMG_COPY_TIMEOUT_MS = 24 * 60 * 60_000;

export interface QemuImgRunOptions {
  /** qemu-img binary (default: `qemu-img` on PATH). */
  readonly binary?: string;
  /** Exit codes that are results rather than failures (check: 2, 3; compare: 1). */
  readonly okExitCodes?: readonly number[];
  /** Each chunk of stdout as it arrives (for progress). */
  readonly onStdout?: (chunk: string) => void;
  readonly signal?: AbortSignal;
  /**
   * qemu-img is killed after this long and the run fails with `operation.timeout`. Default
   * QEMU_IMG_TIMEOUT_MS; convert and compare default to QEMU_IMG_COPY_TIMEOUT_MS.
   */
  readonly timeoutMs?: number;
}

export interface QemuImgResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export async function runQemuImg(args: readonly string[], options: QemuImgRunOptions = {}): Promise<QemuImgResult> {
  const binary = options.binary ?? 'qemu-img';
  const path = findExecutable(binary);
  if (path === undefined) throw new VirtkitError('qemu.not-found', `${binary} not found: install qemu-utils`, { binary });
  const helper = dieWithParent(path, args);
  const timeoutMs = options.timeoutMs ?? QEMU_IMG_TIMEOUT_MS;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(helper.file, helper.args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(chunk);
    });
    child.stderr.on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new VirtkitError('qemu-img.failed', `${binary}: ${err.message}`, { binary, args }, { cause: err }));
    });
    // On a timeout the promise settles once qemu-img is gone ('exit'), not when its pipes close.
    child.on('exit', () => {
      clearTimeout(timer);
      if (!timedOut) return;
      const command = ['qemu-img', ...args].join(' ');
      reject(new VirtkitError('operation.timeout', `${command}: no result within ${formatDuration(timeoutMs)}, qemu-img was killed`,
        { command: 'qemu-img', args, timeoutMs, stderr }));
    });
    child.on('close', (code, signal) => {
      if (timedOut) return;
      const exitCode = code ?? -1;
      if (exitCode === 0 || (options.okExitCodes ?? []).includes(exitCode)) {
        resolvePromise({ stdout, stderr, exitCode });
        return;
      }
      const message = stderr.trim() || stdout.trim() || `qemu-img exited with ${signal ?? `code ${exitCode}`}`;
      reject(new VirtkitError('qemu-img.failed', message, { args, exitCode, stderr }));
    });
  });
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * 3600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3600_000)} h`;
}

export interface CreateImageOptions {
  readonly path: string;
  readonly format: 'raw' | 'qcow2';
  /** Bytes, or qemu-img's size syntax (`10G`); may be omitted with a backing file (its size is used). */
  readonly size?: number | string;
  readonly backing?: string;
  readonly backingFormat?: string;
  /** `-o` options, e.g. { cluster_size: '64k', compat: '1.1' }. */
  readonly options?: Readonly<Record<string, string>>;
}

export async function createImage(o: CreateImageOptions, run: QemuImgRunOptions = {}): Promise<void> {
  const args = ['create', '-q', '-f', o.format];
  if (o.backing !== undefined) {
    if (o.backingFormat === undefined) {
      throw new VirtkitError('argument.invalid', 'a backing file needs its format (-F): formats are never probed', { field: 'backingFormat' });
    }
    await refuseNonRegularBacking(o.backing, o.path);
    args.push('-b', fileArg(o.backing), '-F', o.backingFormat);
  }
  const opts = formatOptions(o.options);
  if (opts !== null) args.push('-o', opts);
  args.push(fileArg(o.path));
  if (o.size !== undefined) args.push(String(o.size));
  await runQemuImg(args, run);
}

/**
 * qemu-img opens the backing file to read its size, and opening a FIFO blocks until someone
 * writes to it: only a regular file may back an image (the native reader refuses the rest in a
 * chain too). A backing file that does not exist is left to qemu-img to report; a protocol
 * name (`nbd://...`, `json:{...}`) is left to it as well, bounded by the timeout.
 */
async function refuseNonRegularBacking(backing: string, imagePath: string): Promise<void> {
  const plain = backing.startsWith('file:') ? backing.slice('file:'.length) : backing;
  if (plain === backing && /^[a-z][a-z0-9+.-]*:/i.test(backing)) return;
  // A relative backing name is relative to the new image's directory, as qemu-img reads it.
  const path = isAbsolute(plain) ? plain : join(dirname(imagePath), plain);
  const st = await stat(path).catch(() => undefined);
  if (st === undefined || st.isFile()) return;
  const kind = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device' : st.isDirectory() ? 'a directory' : 'not a regular file';
  throw new VirtkitError('argument.invalid', `backing file ${backing} is ${kind}: only a regular file can back an image`,
    { field: 'backing', path });
}

export interface ConvertImageOptions {
  readonly source: string;
  readonly sourceFormat: string;
  readonly target: string;
  readonly targetFormat: string;
  readonly compress?: boolean;
  readonly options?: Readonly<Record<string, string>>;
  /** Progress as a fraction 0..1, from `qemu-img convert -p`. */
  readonly onProgress?: (fraction: number) => void;
}

/** `qemu-img convert -p` prints `    (12.34/100%)\r` to stdout; the last complete figure wins. */
export function parseConvertProgress(text: string): number | null {
  let last: number | null = null;
  for (const m of text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) last = Number(m[1]) / 100;
  return last;
}

export async function convertImage(o: ConvertImageOptions, run: QemuImgRunOptions = {}): Promise<void> {
  const args = ['convert', '-f', o.sourceFormat, '-O', o.targetFormat];
  if (o.compress) args.push('-c');
  const opts = formatOptions(o.options);
  if (opts !== null) args.push('-o', opts);
  let onStdout = run.onStdout;
  if (o.onProgress !== undefined) {
    args.push('-p');
    const report = o.onProgress;
    let pending = '';
    onStdout = (chunk) => {
      // Figures arrive split across chunks: parse only up to the last carriage return or newline.
      pending += chunk;
      const cut = Math.max(pending.lastIndexOf('\r'), pending.lastIndexOf('\n'));
      if (cut < 0) return;
      const fraction = parseConvertProgress(pending.slice(0, cut));
      pending = pending.slice(cut + 1);
      if (fraction !== null) report(fraction);
      run.onStdout?.(chunk);
    };
  }
  args.push(fileArg(o.source), fileArg(o.target));
  await runQemuImg(args, { ...run, onStdout, timeoutMs: run.timeoutMs ?? QEMU_IMG_COPY_TIMEOUT_MS });
}

export interface CheckResult {
  readonly clean: boolean;
  readonly corruptions: number;
  readonly leaks: number;
  /** qemu-img's own report (`--output=json`), as it printed it. */
  readonly report: Record<string, unknown>;
}

export async function checkImage(path: string, format: string, run: QemuImgRunOptions = {}): Promise<CheckResult> {
  // Exit codes: 0 clean, 2 corruptions found, 3 leaks only; 1 means the check itself failed.
  const res = await runQemuImg(['check', '-f', format, '--output=json', fileArg(path)], { ...run, okExitCodes: [2, 3] });
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(res.stdout) as Record<string, unknown>;
  } catch (err) {
    throw new VirtkitError('qemu-img.failed', res.stderr.trim() || res.stdout.trim(), { args: ['check', path], stderr: res.stderr }, { cause: err });
  }
  const corruptions = Number(report['corruptions'] ?? 0);
  const leaks = Number(report['leaks'] ?? 0);
  return { clean: corruptions === 0 && leaks === 0, corruptions, leaks, report };
}

export async function resizeImage(path: string, format: string, size: number | string,
  opts: { shrink?: boolean } = {}, run: QemuImgRunOptions = {}): Promise<void> {
  const args = ['resize', '-q', '-f', format];
  if (opts.shrink) args.push('--shrink');
  args.push(fileArg(path), String(size));
  await runQemuImg(args, run);
}

export interface CompareResult {
  readonly identical: boolean;
  /** qemu-img's verdict line, e.g. `Content mismatch at offset 0!`. */
  readonly message: string;
}

export async function compareImages(a: string, aFormat: string, b: string, bFormat: string,
  opts: { strict?: boolean } = {}, run: QemuImgRunOptions = {}): Promise<CompareResult> {
  const args = ['compare', '-f', aFormat, '-F', bFormat];
  if (opts.strict) args.push('-s');
  args.push(fileArg(a), fileArg(b));
  // Exit code 1: the images differ (a result, not an error); 2 and up: it could not compare.
  const res = await runQemuImg(args, { ...run, okExitCodes: [1], timeoutMs: run.timeoutMs ?? QEMU_IMG_COPY_TIMEOUT_MS });
  return { identical: res.exitCode === 0, message: res.stdout.trim() };
}

/** `qemu-img info --output=json` (tests cross-check the native `img info` against it). */
export async function qemuImgInfo(path: string, format: string, opts: { backingChain?: boolean } = {},
  run: QemuImgRunOptions = {}): Promise<unknown> {
  const args = ['info', '--output=json', '-f', format];
  if (opts.backingChain) args.push('--backing-chain');
  args.push(fileArg(path));
  return JSON.parse((await runQemuImg(args, run)).stdout) as unknown;
}

/** A file name as an argument: one starting with '-' would read as an option, so it gets a `./`. */
export function fileArg(path: string): string {
  return path.startsWith('-') ? `./${path}` : path;
}

/** `-o` option string; values containing commas are escaped the way qemu-img expects (`,,`). */
function formatOptions(options: Readonly<Record<string, string>> | undefined): string | null {
  if (options === undefined) return null;
  const parts = Object.entries(options).map(([k, v]) => `${k}=${v.replaceAll(',', ',,')}`);
  return parts.length === 0 ? null : parts.join(',');
}
