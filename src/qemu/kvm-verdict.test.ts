import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { kvmVerdictLocation, readKvmVerdict, writeKvmVerdict, type BinaryIdentity } from './kvm-verdict.js';

const binary: BinaryIdentity = { path: '/usr/bin/qemu-system-x86_64', mtimeMs: 1000, size: 42 };
const other: BinaryIdentity = { path: '/opt/qemu/bin/qemu-system-x86_64', mtimeMs: 2000, size: 43 };
const works = { usable: true, reason: 'KVM ran a test guest to the Linux banner in 300 ms' };
const hangs = { usable: false, reason: 'a KVM test guest made no progress' };
const isRoot = process.geteuid?.() === 0;

let dir: string;
let path: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'virtkit-kvm-verdict-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });
beforeEach(async () => {
  path = join(dir, `${Math.random().toString(36).slice(2)}`, 'kvm-verdict.json');
});
afterEach(() => { vi.restoreAllMocks(); });

describe('the KVM verdict cache', () => {
  it('keeps one verdict per binary for this boot, written atomically, no temporary file left', async () => {
    const at = kvmVerdictLocation('/unused', path);
    await writeKvmVerdict(at, 'boot-1', binary, works);
    await writeKvmVerdict(at, 'boot-1', other, hangs);
    expect(await readKvmVerdict(at, 'boot-1', binary)).toEqual(works);
    expect(await readKvmVerdict(at, 'boot-1', other)).toEqual(hangs);
    expect(await readdir(dirname(path))).toEqual(['kvm-verdict.json']);
  });

  it('forgets it on another boot, and for a rebuilt binary at the same path', async () => {
    const at = kvmVerdictLocation('/unused', path);
    await writeKvmVerdict(at, 'boot-1', binary, works);
    expect(await readKvmVerdict(at, 'boot-2', binary)).toBeUndefined();
    expect(await readKvmVerdict(at, 'boot-1', { ...binary, mtimeMs: 1001 })).toBeUndefined();
    // A verdict of a new boot replaces the old boot's file.
    await writeKvmVerdict(at, 'boot-2', other, hangs);
    expect(await readKvmVerdict(at, 'boot-1', binary)).toBeUndefined();
    expect(await readKvmVerdict(at, 'boot-2', other)).toEqual(hangs);
  });

  it('ignores a corrupt file, and the next verdict replaces it', async () => {
    const at = kvmVerdictLocation('/unused', path);
    await writeKvmVerdict(at, 'boot-1', binary, works);
    for (const text of ['{"version":1,"bootId":"boot-1","verdicts":[{"binary":{"path":"/usr/bin/qemu-system-x86_64"},"usable":"yes"}]}',
      'not json', '[]', '{"version":2,"bootId":"boot-1","verdicts":[]}']) {
      await writeFile(path, text);
      expect(await readKvmVerdict(at, 'boot-1', binary)).toBeUndefined();
    }
    await writeKvmVerdict(at, 'boot-1', binary, hangs);
    expect(await readKvmVerdict(at, 'boot-1', binary)).toEqual(hangs);
  });

  it('does not trust a file others can write, a symlink, or a FIFO (and does not block on it)', async () => {
    const at = kvmVerdictLocation('/unused', path);
    await writeKvmVerdict(at, 'boot-1', binary, works);
    await chmod(path, 0o666);
    expect(await readKvmVerdict(at, 'boot-1', binary)).toBeUndefined();
    await chmod(path, 0o600);
    expect(await readKvmVerdict(at, 'boot-1', binary)).toEqual(works);

    const linked = join(dir, 'linked.json');
    await symlink(path, linked);
    expect(await readKvmVerdict(kvmVerdictLocation('/unused', linked), 'boot-1', binary)).toBeUndefined();

    const fifo = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    expect(await readKvmVerdict(kvmVerdictLocation('/unused', fifo), 'boot-1', binary)).toBeUndefined();
  });

  it.skipIf(!isRoot)('does not trust a file owned by another user', async () => {
    const at = kvmVerdictLocation('/unused', path);
    await writeKvmVerdict(at, 'boot-1', binary, works);
    await chown(path, 65534, 65534);
    expect(await readKvmVerdict(at, 'boot-1', binary)).toBeUndefined();
  });

  it('lives in /run/virtkit for root; otherwise in the runtime dir, reading root\'s verdict first', () => {
    vi.spyOn(process as { geteuid: () => number }, 'geteuid').mockReturnValue(0);
    expect(kvmVerdictLocation('/home/u/.cache/virtkit')).toEqual({ read: ['/run/virtkit/kvm-verdict.json'], write: '/run/virtkit/kvm-verdict.json' });
    vi.spyOn(process as { geteuid: () => number }, 'geteuid').mockReturnValue(1000);
    vi.stubEnv('XDG_RUNTIME_DIR', '/run/user/1000');
    expect(kvmVerdictLocation('/home/u/.cache/virtkit')).toEqual({
      read: ['/run/virtkit/kvm-verdict.json', '/run/user/1000/virtkit/kvm-verdict.json'], write: '/run/user/1000/virtkit/kvm-verdict.json' });
    vi.stubEnv('XDG_RUNTIME_DIR', '');
    expect(kvmVerdictLocation('/home/u/.cache/virtkit').write).toBe('/home/u/.cache/virtkit/kvm-verdict.json');
    vi.unstubAllEnvs();
  });

  it('writes a file of its own private (0600, directory 0700): only /run/virtkit\'s is readable by all', async () => {
    const at = kvmVerdictLocation('/unused', path);
    await writeKvmVerdict(at, 'boot-1', binary, works);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(path))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ version: 1, bootId: 'boot-1' });
  });
});
