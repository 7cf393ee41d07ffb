/**
 * A temporary directory that host-path checks trust (src/daemon/host-paths.ts): every ancestor
 * owned by root or by us and writable by nobody else. Not under /tmp (sticky, world-writable),
 * and not under the checkout either, which may itself live under /tmp: as root under /var/lib,
 * otherwise under the home directory. Made 0755 so other users may traverse it.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function trustedTempDir(prefix: string): string {
  const parent = process.getuid?.() === 0 ? '/var/lib' : homedir();
  const dir = mkdtempSync(join(parent, prefix));
  chmodSync(dir, 0o755);
  return dir;
}
