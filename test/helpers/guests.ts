/**
 * The guest kit guests that integration tests share. test/global-setup.ts builds them once
 * per test run; these helpers only name where they are, and fail loudly if they are missing.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_FILES } from '../../src/guestkit/index.js';

export const GUEST_CACHE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '.cache');

/** What global-setup builds: directory under test/.cache, definition name, ACPI or not. */
export const TEST_GUESTS = {
  acpi: { dir: join(GUEST_CACHE_DIR, 'guest-acpi'), name: 'testguest', acpi: true },
  noAcpi: { dir: join(GUEST_CACHE_DIR, 'guest-noacpi'), name: 'testguest-noacpi', acpi: false },
} as const;

export interface GuestPaths {
  dir: string;
  definitionPath: string;
  kernelPath: string;
  initrdPath: string;
}

export function guestPaths(dir: string): GuestPaths {
  return {
    dir,
    definitionPath: join(dir, GUEST_FILES.definition),
    kernelPath: join(dir, GUEST_FILES.kernel),
    initrdPath: join(dir, GUEST_FILES.initrd),
  };
}

function built(dir: string): string {
  if (!existsSync(guestPaths(dir).definitionPath)) {
    throw new Error(`test guest ${dir} is not built: vitest's globalSetup (test/global-setup.ts) builds it`);
  }
  return dir;
}

/** Directory of the guest that powers off on the ACPI power button. */
export function testGuest(): string {
  return built(TEST_GUESTS.acpi.dir);
}

/** Directory of the guest that ignores the ACPI power button (for forced-shutdown tests). */
export function testGuestNoAcpi(): string {
  return built(TEST_GUESTS.noAcpi.dir);
}

/** guest.yaml of testGuest(). */
export function testGuestDefinition(): string {
  return guestPaths(testGuest()).definitionPath;
}

/** guest.yaml of testGuestNoAcpi(). */
export function testGuestNoAcpiDefinition(): string {
  return guestPaths(testGuestNoAcpi()).definitionPath;
}
