/**
 * A temporary directory that host-path checks trust (src/daemon/host-paths.ts): every ancestor
 * owned by root or by us and writable by nobody else. Not under /tmp (sticky, world-writable),
 * and not under the checkout either, which may itself live under /tmp: as root under /var/lib,
 * otherwise under the home directory. Made 0755 so other users may traverse it.
 */
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export function trustedTempDir(prefix: string): string {
  const parent = process.getuid?.() === 0 ? '/var/lib' : homedir();
  const dir = mkdtempSync(join(parent, prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * Lets other users traverse the directories above `path` (search permission only, o+x), for
 * tests that run this checkout's CLI as a second local user: a checkout made under a 0700
 * directory (`mktemp -d`) is otherwise out of their reach. Returns the function that puts the
 * modes back as they were.
 */
export function letOthersTraverse(path: string): () => void {
  const changed: { dir: string; mode: number }[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      changed.push({ dir, mode });
      chmodSync(dir, mode | 0o001);
    }
    if (dir === dirname(dir)) break;
  }
  return () => {
    for (const { dir, mode } of changed.reverse()) chmodSync(dir, mode);
  };
}
