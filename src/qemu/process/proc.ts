import { readFile } from 'node:fs/promises';

/** True if a process with this pid exists (and is not a zombie). */
export async function isProcessAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // field 3, after the parenthesised command name
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The argv of a live process from /proc/<pid>/cmdline; undefined when it is gone or unreadable. */
export async function readCmdline(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return undefined;
    const parts = raw.toString('utf8').split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return undefined;
  }
}

/** Parses a pidfile: one positive decimal integer, optional trailing newline. */
export function parsePidfile(text: string): number | undefined {
  const m = /^\s*([1-9][0-9]{0,9})\s*$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid <= 0x3fffffff ? pid : undefined;
}

/**
 * Whether a command line is the QEMU of this run dir: the program is a qemu-system binary and
 * some argument names the run dir's QMP socket; with a uuid, `-uuid` must carry it as well.
 */
export function isQemuOfRunDir(cmdline: string[], qmpSocket: string, uuid?: string): boolean {
  const program = cmdline[0] ?? '';
  if (!/qemu-system-[^/]*$/.test(program) && !/(^|\/)qemu[^/]*$/.test(program)) return false;
  const namesSocket = cmdline.some((arg) => argNamesPath(arg, qmpSocket));
  if (!namesSocket) return false;
  if (uuid === undefined) return true;
  const i = cmdline.indexOf('-uuid');
  return i >= 0 && cmdline[i + 1]?.toLowerCase() === uuid.toLowerCase();
}

function argNamesPath(arg: string, path: string): boolean {
  if (arg === path) return true;
  if (arg.startsWith('{')) {
    // JSON form (-chardev/-qmp as JSON)
    try {
      return JSON.stringify(JSON.parse(arg)).includes(JSON.stringify(path));
    } catch {
      return false;
    }
  }
  // key=value form: commas inside values are doubled, options are separated by single commas
  const escaped = path.replaceAll(',', ',,');
  for (const needle of [`path=${escaped}`, `unix:${escaped}`]) {
    for (let i = arg.indexOf(needle); i >= 0; i = arg.indexOf(needle, i + 1)) {
      const end = i + needle.length;
      const startsOption = i === 0 || arg[i - 1] === ',';
      const endsOption = end === arg.length || (arg[end] === ',' && arg[end + 1] !== ',');
      if (startsOption && endsOption) return true;
    }
  }
  return false;
}

/** The value of the last `-pidfile` (or `--pidfile`) argument of a command line. */
export function pidfileArgOf(cmdline: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < cmdline.length - 1; i++) {
    if (cmdline[i] === '-pidfile' || cmdline[i] === '--pidfile') found = cmdline[i + 1];
  }
  return found;
}

/** The user id a process runs as (real uid, from /proc/<pid>/status); undefined when it is gone. */
export async function processUid(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const m = status === undefined ? null : /^Uid:\s+(\d+)/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

export type IdentityVerdict = { ours: true } | { ours: false; why: string };

/**
 * Whether process `pid` is proven to be the QEMU of `runDir` for the domain `uuid`: everything
 * we put there must match. Its command line is a qemu-system program naming the run dir's QMP
 * socket, `-uuid uuid` and `-pidfile` of that run dir; the run dir's pidfile (which only we and
 * QEMU can write: the run dir is 0700) holds `pid`; it runs as our user. Anything short of all
 * of that is a look-alike, and a look-alike is never signalled.
 */
export async function provenQemuOfRunDir(pid: number, cmdline: readonly string[], runDir: string, uuid: string,
  paths: { qmpSocket: string; pidFile: string }): Promise<IdentityVerdict> {
  // A system emulator only: qemu-img, qemu-nbd and qemu-io name run dir files too, and are never a guest.
  if (!/(^|\/)(qemu-system-[^/]*|qemu-kvm)$/.test(cmdline[0] ?? '')) return { ours: false, why: 'the program is not a qemu-system binary' };
  if (pidfileArgOf(cmdline) !== paths.pidFile) return { ours: false, why: `-pidfile is not ${paths.pidFile}` };
  if (!isQemuOfRunDir([...cmdline], paths.qmpSocket, uuid)) return { ours: false, why: `not the QMP socket of ${runDir} with -uuid ${uuid}` };
  const recorded = parsePidfile(await readFile(paths.pidFile, 'utf8').catch(() => ''));
  if (recorded !== pid) return { ours: false, why: `the pidfile of ${runDir} names ${recorded ?? 'no pid'}` };
  const uid = await processUid(pid);
  const ourUid = process.getuid?.();
  if (ourUid !== undefined && uid !== ourUid) return { ours: false, why: `it runs as uid ${uid ?? '?'}, not ${ourUid}` };
  return { ours: true };
}
