/**
 * virtiofsd, the helper process of a virtio-fs share: one per shared folder, started before
 * QEMU (QEMU connects to its vhost-user socket at start-up), detached like QEMU so it outlives
 * a daemon restart, and reaped by Node while this process lives. Its pid is recorded in the run
 * dir (`virtiofsd.N.pid`), so whoever stops the guest, or reconciles after a restart, finds it;
 * it is signalled only when proven ours (provenVirtiofsd: program, socket path, pidfile, uid).
 * It also exits by itself when QEMU goes away (the vhost-user connection closes).
 */
import { access, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FilesystemDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { virtiofsSocketPath } from '../command/index.js';
import { isProcessAlive, parsePidfile, processUid, readCmdline } from '../process/proc.js';
import { qemuErrorSummary, readLogSince, spawnQemu } from '../process/spawn.js';

/** Where Debian's qemu-system-common puts QEMU 7.2's C virtiofsd; VIRTKIT_VIRTIOFSD overrides it. */
export const DefaultVirtiofsdPath = '/usr/lib/qemu/virtiofsd';

export function virtiofsdPath(): string {
  return process.env['VIRTKIT_VIRTIOFSD'] ?? DefaultVirtiofsdPath;
}

export async function virtiofsdInstalled(): Promise<boolean> {
  return access(virtiofsdPath(), fsConstants.X_OK).then(() => true, () => false);
}

export function virtiofsdPidfile(runDir: string, index: number): string {
  return join(runDir, `virtiofsd.${index}.pid`);
}

function virtiofsdLog(runDir: string, index: number): string {
  return join(runDir, `virtiofsd.${index}.log`);
}

/** A value inside virtiofsd's `-o a=b,c=d` (libfuse option syntax: backslash escapes `,` and `\`). */
export function fuseOptionValue(value: string): string {
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

/** virtiofsd's arguments for filesystems[index] of a guest in `runDir`. */
export function virtiofsdArgs(fs: Pick<FilesystemDefinition, 'source'>, runDir: string, index: number): string[] {
  return [
    `--socket-path=${virtiofsSocketPath(runDir, index)}`,
    '-o', `source=${fuseOptionValue(fs.source)}`,
    // auto: the guest caches for a short while; the host may change files under it (a shared folder's purpose)
    '-o', 'cache=auto',
    '-o', 'log_level=warn',
  ];
}

/**
 * Starts virtiofsd for filesystems[index] and waits for its socket; 'qemu.failed-to-start' with
 * its own error line when it exits or makes no socket within `timeoutMs`.
 */
export async function startVirtiofsd(fs: FilesystemDefinition, runDir: string, index: number, timeoutMs = 10_000): Promise<number> {
  const socket = virtiofsSocketPath(runDir, index);
  const logPath = virtiofsdLog(runDir, index);
  await rm(socket, { force: true });
  const binary = virtiofsdPath();
  const { child, logOffset } = await spawnQemu({ binary, argv: virtiofsdArgs(fs, runDir, index), env: {} }, logPath, { detached: true });
  const pid = child.pid!;
  let exited = false;
  child.once('exit', () => { exited = true; });
  await writeFile(virtiofsdPidfile(runDir, index), `${pid}\n`, { mode: 0o600 });
  const deadline = Date.now() + timeoutMs;
  while (!(await access(socket).then(() => true, () => false))) {
    if (exited || Date.now() > deadline) {
      if (!exited) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await rm(virtiofsdPidfile(runDir, index), { force: true });
      const said = qemuErrorSummary(await readLogSince(logPath, logOffset));
      throw new VirtkitError('qemu.failed-to-start', `filesystems[${index}]: virtiofsd for ${fs.source} ${exited ? 'exited' : 'made no socket in time'}${said ? `: ${said}` : ''}`,
        { field: `filesystems[${index}]`, binary, log: logPath });
    }
    await sleep(20);
  }
  return pid;
}

/** Whether `pid` is the virtiofsd of filesystems[index] of `runDir`, everything we put there matching. */
export async function provenVirtiofsd(pid: number, runDir: string, index: number): Promise<boolean> {
  const cmdline = await readCmdline(pid);
  if (cmdline === undefined || !/(^|\/)virtiofsd$/.test(cmdline[0] ?? '')) return false;
  if (!cmdline.includes(`--socket-path=${virtiofsSocketPath(runDir, index)}`)) return false;
  const recorded = parsePidfile(await readFile(virtiofsdPidfile(runDir, index), 'utf8').catch(() => ''));
  if (recorded !== pid) return false;
  const ourUid = process.getuid?.();
  return ourUid === undefined || (await processUid(pid)) === ourUid;
}

/**
 * The run dir whose virtiofsd `pid` (running `cmdline`) is, when proven (provenVirtiofsd);
 * undefined for any other process.
 */
export async function provenVirtiofsdRunDir(pid: number, cmdline: readonly string[]): Promise<string | undefined> {
  const socket = cmdline.find((arg) => arg.startsWith('--socket-path='))?.slice('--socket-path='.length);
  const m = socket === undefined ? null : /^(.*)\/virtiofsd\.(\d+)\.sock$/.exec(socket);
  if (!m) return undefined;
  return (await provenVirtiofsd(pid, m[1]!, Number(m[2]))) ? m[1]! : undefined;
}

/**
 * Stops every virtiofsd recorded in `runDir` that is proven ours (SIGTERM, then SIGKILL), and
 * removes the records. A pid that is not proven is left alone, its record removed.
 */
export async function stopVirtiofsds(runDir: string): Promise<{ stopped: number[]; notOurs: number[] }> {
  const stopped: number[] = [];
  const notOurs: number[] = [];
  for (const entry of await readdir(runDir).catch(() => [] as string[])) {
    const m = /^virtiofsd\.(\d+)\.pid$/.exec(entry);
    if (!m) continue;
    const index = Number(m[1]);
    const pid = parsePidfile(await readFile(join(runDir, entry), 'utf8').catch(() => ''));
    if (pid !== undefined && (await isProcessAlive(pid))) {
      if (await provenVirtiofsd(pid, runDir, index)) {
        await terminate(pid);
        stopped.push(pid);
      } else {
        notOurs.push(pid);
      }
    }
    await rm(join(runDir, entry), { force: true });
    await rm(virtiofsSocketPath(runDir, index), { force: true });
  }
  return { stopped, notOurs };
}

async function terminate(pid: number): Promise<void> {
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 20; i++) {
    if (!(await isProcessAlive(pid))) return;
    await sleep(50);
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}
