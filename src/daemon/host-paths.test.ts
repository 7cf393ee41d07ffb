/**
 * The host paths a caller without admin may name in a definition (host-paths.ts): trusted all
 * the way (owned by root or the daemon's user, writable by nobody else, symlinks too) and
 * readable by the caller. The tree lives in a trusted temporary directory (test/helpers/
 * trusted-dir.ts), not under /tmp, nor under the checkout, which may live under /tmp: a sticky
 * world-writable directory is itself untrusted.
 */
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustedTempDir } from '../../test/helpers/trusted-dir.js';
import { hostPathProblem } from './host-paths.js';

const isRoot = process.getuid?.() === 0;
const Other = 65534;
const caller = { uid: Other, gids: new Set([Other]) };
const trusted = new Set([0, process.getuid?.() ?? 0]);
const check = (path: string): string | undefined => hostPathProblem(path, caller, trusted);

describe('host paths a caller without admin may name', () => {
  let base: string;
  beforeAll(() => {
    base = trustedTempDir('virtkit-host-paths-');
    writeFileSync(join(base, 'kernel'), 'k', { mode: 0o644 });
    writeFileSync(join(base, 'secret'), 's', { mode: 0o600 });
    writeFileSync(join(base, 'open'), 'o', { mode: 0o666 });
    chmodSync(join(base, 'open'), 0o666);
    mkdirSync(join(base, 'sub'), { mode: 0o755 });
    mkdirSync(join(base, 'shared'), { mode: 0o777 });
    chmodSync(join(base, 'shared'), 0o777);
    writeFileSync(join(base, 'shared', 'kernel'), 'k', { mode: 0o644 });
    mkdirSync(join(base, 'closed'), { mode: 0o700 });
    writeFileSync(join(base, 'closed', 'kernel'), 'k', { mode: 0o644 });
    symlinkSync('kernel', join(base, 'link-ok'));
    symlinkSync(join(base, 'secret'), join(base, 'link-secret'));
    symlinkSync('../kernel', join(base, 'sub', 'up'));
  });
  afterAll(() => { rmSync(base, { recursive: true, force: true }); });

  it('accepts a readable file in trusted directories, through trusted symlinks and ".."', () => {
    expect(check(join(base, 'kernel'))).toBeUndefined();
    expect(check(join(base, 'link-ok'))).toBeUndefined();
    expect(check(join(base, 'sub', 'up'))).toBeUndefined();
    expect(check(`${base}/sub/../kernel`)).toBeUndefined();
    // Missing in a trusted directory: only root or the daemon's user could create it.
    expect(check(join(base, 'not-yet'))).toBeUndefined();
  });

  it('refuses what the caller could not read, directly or through a symlink', () => {
    expect(check(join(base, 'secret'))).toBe(`uid ${Other} cannot read ${join(base, 'secret')}`);
    expect(check(join(base, 'link-secret'))).toMatch(/cannot read/);
    expect(check(join(base, 'closed', 'kernel'))).toBe(`uid ${Other} cannot search ${join(base, 'closed')}`);
    expect(check('/etc/shadow')).toMatch(/cannot read|cannot search/);
  });

  it('refuses what someone else could change before the start: writable files and directories, /tmp', () => {
    expect(check(join(base, 'open'))).toBe(`${join(base, 'open')} is writable by others`);
    expect(check(join(base, 'shared', 'kernel'))).toBe(`${join(base, 'shared')} is writable by others`);
    const inTmp = mkdtempSync(join(tmpdir(), 'vk-hp-'));
    try {
      writeFileSync(join(inTmp, 'kernel'), 'k', { mode: 0o644 });
      chmodSync(inTmp, 0o755);
      expect(check(join(inTmp, 'kernel'))).toMatch(/is writable by others$/);
    } finally {
      rmSync(inTmp, { recursive: true, force: true });
    }
  });

  it.skipIf(!isRoot)('refuses files and symlinks another user owns', () => {
    const owned = join(base, 'owned');
    writeFileSync(owned, 'o', { mode: 0o644 });
    chownSync(owned, Other, Other);
    expect(check(owned)).toBe(`${owned} is owned by uid ${Other}`);
    const link = join(base, 'their-link');
    symlinkSync('kernel', link);
    lchownSync(link, Other, Other);
    expect(check(link)).toBe(`${link} is owned by uid ${Other}`);
  });

  it('refuses a relative path and a directory', () => {
    expect(check('kernel')).toBe('kernel is not an absolute path');
    expect(check(join(base, 'sub'))).toBe(`${join(base, 'sub')} is a directory`);
  });
});
