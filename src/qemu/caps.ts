/**
 * QEMU capabilities: what a binary offers (version, machines, accelerators, CPU models,
 * devices), probed once on a `-S -nodefaults -machine none` instance over QMP and cached on
 * disk keyed by the binary's path, mtime and size. Includes a functional KVM check, because
 * /dev/kvm may exist and still hang guests (nested KVM): `accel: auto` picks KVM only when a
 * test guest actually ran under it. That verdict is cached once per host boot, host-wide
 * (kvm-verdict.ts). The probe and the test boot die with this process (util/helper-process.ts).
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { createHash } from 'node:crypto';
import { VirtkitError, errorMessage } from '../util/errors.js';
import { findExecutable } from '../util/helper-process.js';
import { mark } from '../util/timeline.js';
import { kvmVerdictLocation, readKvmVerdict, writeKvmVerdict, type BinaryIdentity } from './kvm-verdict.js';
import { QemuProcess } from './process.js';
import { runQemuOnce, runQemuUntilMarker } from './process/spawn.js';

export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';
export type Accel = 'kvm' | 'tcg';
export type AccelRequest = 'auto' | Accel;

export interface KvmVerdict {
  /** KVM ran a test guest to the Linux banner within the bound. */
  usable: boolean;
  /** Why, in words a user can act on. */
  reason: string;
  /** /proc/sys/kernel/random/boot_id of the host the check ran on. */
  bootId: string;
}

export interface QemuCapabilities {
  binary: string;
  version: { major: number; minor: number; micro: number; package: string };
  machines: { name: string; alias?: string; isDefault: boolean; cpuMax: number; deprecated: boolean }[];
  accelerators: string[];
  cpuModels: string[];
  devices: string[];
  kvm: KvmVerdict;
}

export interface ProbeOptions {
  /** Binary name (searched on PATH) or path. Default qemu-system-x86_64. */
  binary?: string;
  /** Where the cache lives. Default $XDG_CACHE_HOME/virtkit or ~/.cache/virtkit. */
  cacheDir?: string;
  /** Ignore cached results (capabilities and KVM verdict) and probe again. */
  refresh?: boolean;
  /** Kernel booted by the KVM check. Default the newest /boot/vmlinuz-*. */
  kvmCheckKernel?: string;
  /** Bound on the KVM check. Default 3000 ms. */
  kvmCheckTimeoutMs?: number;
  /** The one file the KVM verdict is read from and written to. Default host-wide (kvm-verdict.ts). */
  kvmVerdictPath?: string;
}

/** The capabilities cache; the KVM verdict is not in it (kvm-verdict.ts). */
interface CacheFile {
  key: BinaryIdentity;
  caps: Omit<QemuCapabilities, 'kvm'>;
}

const CACHE_VERSION = 1;

/**
 * Probes (or loads from cache) the capabilities of a QEMU binary.
 * Throws 'qemu.not-found' when the binary is missing, 'qemu.failed-to-start' when it cannot run.
 */
export async function probeCapabilities(opts: ProbeOptions = {}): Promise<QemuCapabilities> {
  const binary = findBinary(opts.binary ?? DEFAULT_QEMU_BINARY);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const cachePath = join(cacheDir, `qemu-caps-v${CACHE_VERSION}-${createHash('sha256').update(binary).digest('hex').slice(0, 16)}.json`);
  // Every start reads these few small files: side by side, not one after the other.
  const [st, cacheText, host] = await Promise.all([
    stat(binary),
    opts.refresh ? undefined : readFile(cachePath, 'utf8').catch(() => undefined),
    readKvmHost(),
  ]);
  const key: BinaryIdentity = { path: binary, mtimeMs: st.mtimeMs, size: st.size };

  const cached = cacheText === undefined ? undefined : cacheOf(cacheText, key);
  const caps = cached?.caps ?? (await probeBinary(binary));
  if (cached === undefined) await writeCache(cacheDir, cachePath, { key, caps });
  const kvm = await checkKvm(key, caps.accelerators, cacheDir, host, opts);
  mark(cached === undefined ? 'capabilities: probed' : 'capabilities: from cache');
  return { ...caps, kvm };
}

/**
 * Chooses the accelerator. 'auto' takes KVM only if it passed the functional check; an
 * explicit request is honoured, with the check's verdict in the reason.
 */
export function resolveAccel(requested: AccelRequest, caps: QemuCapabilities): { accel: Accel; reason: string } {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'tcg requested' };
  if (requested === 'kvm') return { accel: 'kvm', reason: `kvm requested (functional check: ${caps.kvm.reason})` };
  return caps.kvm.usable
    ? { accel: 'kvm', reason: `auto: ${caps.kvm.reason}` }
    : { accel: 'tcg', reason: `auto: ${caps.kvm.reason}; using TCG` };
}

function findBinary(name: string): string {
  const found = findExecutable(name);
  if (found !== undefined) return found;
  throw new VirtkitError('qemu.not-found', `QEMU binary ${name} not found${name.includes('/') ? '' : ' on PATH'}`, { binary: name });
}

async function probeBinary(binary: string): Promise<Omit<QemuCapabilities, 'kvm'>> {
  const accelText = runQemuOnce(binary, ['-accel', 'help'], 10_000);
  const runDir = await mkdtemp(join(tmpdir(), 'virtkit-probe-'));
  try {
    const argv = ['-S', '-nodefaults', '-no-user-config', '-machine', 'none', '-display', 'none',
      '-qmp', `unix:${join(runDir, 'qmp.sock')},server=on,wait=off`, '-pidfile', join(runDir, 'qemu.pid')];
    const proc = await QemuProcess.launchCommand({ command: { binary, argv, env: {} }, runDir, paused: true, detached: false });
    try {
      const [version, machines, cpus, devices] = await Promise.all([
        proc.qmp.execute('query-version'),
        proc.qmp.execute('query-machines'),
        proc.qmp.execute('query-cpu-definitions'),
        proc.qmp.execute('qom-list-types', { implements: 'device', abstract: false }),
      ]);
      return {
        binary,
        version: { ...version.qemu, package: version.package.trim() },
        machines: machines
          .map((m) => ({ name: m.name, ...(m.alias ? { alias: m.alias } : {}), isDefault: m['is-default'] === true, cpuMax: m['cpu-max'], deprecated: m.deprecated }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        accelerators: parseAccelHelp(await accelText),
        cpuModels: cpus.map((c) => c.name).sort(),
        devices: devices.map((d) => d.name).sort(),
      };
    } finally {
      await proc.destroy();
    }
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
}

/** `-accel help` prints a header line, then one accelerator per line. */
export function parseAccelHelp(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => /^[a-z][a-z0-9_-]*$/.test(l));
}

/**
 * Whether this process can use KVM. Access to /dev/kvm is a fact about the caller, checked
 * every time; whether KVM actually runs a guest is a fact about the host, checked by a test
 * boot once per host boot and binary and cached host-wide (kvm-verdict.ts).
 */
async function checkKvm(binary: BinaryIdentity, accelerators: string[], cacheDir: string, host: KvmHost, opts: ProbeOptions): Promise<KvmVerdict> {
  const { bootId, devKvmError } = host;
  const verdict = (usable: boolean, reason: string): KvmVerdict => ({ usable, reason, bootId });
  if (!accelerators.includes('kvm')) return verdict(false, `${binary.path} has no KVM accelerator`);
  if (devKvmError !== undefined) {
    return verdict(false, `/dev/kvm is not usable (${(devKvmError as NodeJS.ErrnoException).code ?? errorMessage(devKvmError)})`);
  }
  // Without a boot id there is no telling one boot from the next: check every time.
  const location = bootId === 'unknown' ? undefined : kvmVerdictLocation(cacheDir, opts.kvmVerdictPath);
  const cached = location && !opts.refresh ? await readKvmVerdict(location, bootId, binary) : undefined;
  if (cached !== undefined) return verdict(cached.usable, cached.reason);
  const kernel = opts.kvmCheckKernel ?? (await newestHostKernel());
  if (!kernel) return verdict(false, '/dev/kvm exists but no kernel under /boot to verify it with');
  const tested = await testBootUnderKvm(binary.path, kernel, opts.kvmCheckTimeoutMs ?? 3000);
  if (location) await writeKvmVerdict(location, bootId, binary, tested);
  return verdict(tested.usable, tested.reason);
}

async function testBootUnderKvm(binary: string, kernel: string, timeoutMs: number): Promise<{ usable: boolean; reason: string }> {
  const verdict = (usable: boolean, reason: string): { usable: boolean; reason: string } => ({ usable, reason });
  // Under a working KVM the kernel decompresses and prints its banner in well under a second;
  // nested KVM on these hosts hangs in the decompressor, so the banner never comes. The CPU is
  // `host`, what the command builder picks under KVM, so a host CPU KVM cannot model fails here too.
  const result = await runQemuUntilMarker(binary, [
    '-machine', 'pc,accel=kvm', '-cpu', 'host', '-nodefaults', '-no-user-config', '-display', 'none', '-m', '128',
    '-kernel', kernel, '-append', 'console=ttyS0 earlyprintk=ttyS0 panic=-1', '-serial', 'stdio', '-no-reboot',
  ], 'Linux version', timeoutMs);
  if (result.seen) return verdict(true, `KVM ran a test guest to the Linux banner in ${result.elapsedMs} ms`);
  const qemuSaid = result.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/warning:/.test(l)).at(-1);
  return verdict(false, qemuSaid
    ? `/dev/kvm exists but a KVM test guest failed: ${qemuSaid}`
    : `/dev/kvm exists but a KVM test guest made no progress within ${timeoutMs} ms (nested KVM hangs guests)`);
}

async function newestHostKernel(): Promise<string | undefined> {
  const names = await readdir('/boot').catch(() => [] as string[]);
  const kernels = names.filter((n) => n.startsWith('vmlinuz-')).sort(compareVersions);
  const last = kernels.at(-1);
  return last ? join('/boot', last) : undefined;
}

function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** What the KVM verdict depends on besides the binary: this host boot, and whether this process may open /dev/kvm. */
interface KvmHost {
  bootId: string;
  /** Why /dev/kvm cannot be opened read-write by this process; undefined when it can. */
  devKvmError: unknown;
}

async function readKvmHost(): Promise<KvmHost> {
  const [bootId, devKvmError] = await Promise.all([
    readBootId(),
    access('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK).then(() => undefined, (err: unknown) => err),
  ]);
  return { bootId, devKvmError };
}

async function readBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
}

function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'virtkit');
}

/** The cached capabilities in `text` when they are this binary's (path, mtime and size). */
function cacheOf(text: string, key: BinaryIdentity): CacheFile | undefined {
  try {
    const file = JSON.parse(text) as CacheFile;
    const k = file.key;
    return k && k.path === key.path && k.mtimeMs === key.mtimeMs && k.size === key.size && file.caps ? file : undefined;
  } catch {
    return undefined; // unreadable: probe again
  }
}

async function writeCache(dir: string, path: string, file: CacheFile): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(file, null, 1)}\n`, { mode: 0o600 });
    await rename(tmp, path);
  } catch {
    /* a cache we cannot write only costs the next call a probe */
  }
}
