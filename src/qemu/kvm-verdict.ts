/**
 * The KVM functional check's verdict, cached once per host boot in one host-wide place, so a
 * daemon, a `virtkit capabilities` and a `virtkit run` do not each boot a test guest:
 *   root:       /run/virtkit/kvm-verdict.json (0644; /run is emptied at every boot)
 *   otherwise:  $XDG_RUNTIME_DIR/virtkit/kvm-verdict.json (0600), or <cache dir>/kvm-verdict.json
 *               without a runtime dir; root's file is read first (root's verdict is trusted).
 * The file is keyed by the boot id, each verdict by the binary's identity (path, mtime, size).
 * It is written atomically (a temporary file renamed over it). A file that is not a regular
 * file, is owned by anyone but us or root, is writable by group or others, or does not parse
 * as a verdict file is ignored: the check runs again (and overwrites it when it is ours).
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, join } from 'node:path';

/** What identifies a binary: a new build at the same path is a new binary. */
export interface BinaryIdentity {
  path: string;
  mtimeMs: number;
  size: number;
}

/** The outcome of a KVM test boot (not of the per-user /dev/kvm access check). */
export interface CachedKvmVerdict {
  usable: boolean;
  reason: string;
}

interface VerdictFile {
  version: 1;
  bootId: string;
  verdicts: (CachedKvmVerdict & { binary: BinaryIdentity })[];
}

const ROOT_VERDICT_PATH = '/run/virtkit/kvm-verdict.json';
const MAX_FILE_BYTES = 1024 * 1024;

export interface VerdictLocation {
  /** Files read in order; the first that holds a verdict for the binary wins. */
  read: string[];
  /** The file this process writes. */
  write: string;
}

/** Where the verdict lives for this process (see the module comment); `override` pins one file. */
export function kvmVerdictLocation(cacheDir: string, override?: string): VerdictLocation {
  if (override !== undefined) return { read: [override], write: override };
  if (process.geteuid?.() === 0) return { read: [ROOT_VERDICT_PATH], write: ROOT_VERDICT_PATH };
  const xdg = process.env['XDG_RUNTIME_DIR'];
  const own = xdg && isAbsolute(xdg) ? join(xdg, 'virtkit', 'kvm-verdict.json') : join(cacheDir, 'kvm-verdict.json');
  return { read: [ROOT_VERDICT_PATH, own], write: own };
}

export async function readKvmVerdict(location: VerdictLocation, bootId: string, binary: BinaryIdentity): Promise<CachedKvmVerdict | undefined> {
  for (const path of location.read) {
    const file = await readVerdictFile(path, bootId);
    const hit = file?.verdicts.find((v) => sameBinary(v.binary, binary));
    if (hit) return { usable: hit.usable, reason: hit.reason };
  }
  return undefined;
}

/**
 * Records a verdict, keeping the other binaries' verdicts of this boot. Failures are swallowed:
 * a verdict that cannot be cached only costs the next probe a test boot.
 */
export async function writeKvmVerdict(location: VerdictLocation, bootId: string, binary: BinaryIdentity, verdict: CachedKvmVerdict): Promise<void> {
  const path = location.write;
  const current = await readVerdictFile(path, bootId);
  const others = current?.verdicts.filter((v) => v.binary.path !== binary.path) ?? [];
  const file: VerdictFile = { version: 1, bootId, verdicts: [...others, { binary, usable: verdict.usable, reason: verdict.reason }] };
  const hostWide = process.geteuid?.() === 0 && path === ROOT_VERDICT_PATH;
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: hostWide ? 0o755 : 0o700 });
    await writeFile(tmp, `${JSON.stringify(file, null, 1)}\n`, { mode: hostWide ? 0o644 : 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** The file's verdicts for this boot, or undefined when it is absent, untrusted or malformed. */
async function readVerdictFile(path: string, bootId: string): Promise<VerdictFile | undefined> {
  let text: string;
  try {
    // O_NOFOLLOW: a symlink planted in our place is not followed; O_NONBLOCK: a FIFO does not block the open.
    const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      const owners = [0, process.geteuid?.() ?? -1];
      if (!st.isFile() || !owners.includes(st.uid) || (st.mode & 0o022) !== 0 || st.size > MAX_FILE_BYTES) return undefined;
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isVerdictFile(parsed) && parsed.bootId === bootId ? parsed : undefined;
}

function isVerdictFile(v: unknown): v is VerdictFile {
  if (!isRecord(v) || v['version'] !== 1 || typeof v['bootId'] !== 'string' || !Array.isArray(v['verdicts'])) return false;
  return v['verdicts'].every((e: unknown) => isRecord(e) && typeof e['usable'] === 'boolean' && typeof e['reason'] === 'string'
    && isRecord(e['binary']) && typeof e['binary']['path'] === 'string'
    && typeof e['binary']['mtimeMs'] === 'number' && typeof e['binary']['size'] === 'number');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameBinary(a: BinaryIdentity, b: BinaryIdentity): boolean {
  return a.path === b.path && a.mtimeMs === b.mtimeMs && a.size === b.size;
}
