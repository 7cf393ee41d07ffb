/**
 * Builds the guest kit guests that integration tests share, once per test run, into
 * test/.cache/ (an ACPI-aware guest and a --no-acpi one). Tests find them through
 * the paths exported by test/helpers/guests.ts.
 *
 * A guest is rebuilt only when its guest.yaml (written last by buildGuest) is older than
 * anything it is made from: the guest kit sources, the host kernels in /boot, busybox.
 * Otherwise this costs a few stat calls, so unit-test runs do not pay for it.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUSYBOX_CANDIDATES } from '../src/guestkit/busybox.js';
import { buildGuest } from '../src/guestkit/index.js';
import { TEST_GUESTS, guestPaths } from './helpers/guests.js';

const GUESTKIT_SOURCES = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'guestkit');

async function mtimeMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Newest modification time among the inputs of a guest build. */
async function newestInput(): Promise<number> {
  const sources = (await readdir(GUESTKIT_SOURCES)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  const inputs = [...sources.map((f) => join(GUESTKIT_SOURCES, f)), '/boot', ...BUSYBOX_CANDIDATES];
  const times = await Promise.all(inputs.map(mtimeMs));
  return Math.max(...times.filter((t): t is number => t !== undefined));
}

export default async function setup(): Promise<void> {
  const newest = await newestInput();
  for (const guest of Object.values(TEST_GUESTS)) {
    const built = await mtimeMs(guestPaths(guest.dir).definitionPath);
    if (built !== undefined && built > newest) continue;
    await buildGuest({ dir: guest.dir, name: guest.name, acpi: guest.acpi });
  }
}
