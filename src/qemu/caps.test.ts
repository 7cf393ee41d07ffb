import { constants as fsConstants, accessSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../util/helper-process.js';
import { parseAccelHelp, probeCapabilities, resolveAccel, type QemuCapabilities } from './caps.js';

const caps = (usable: boolean): QemuCapabilities => ({
  binary: '/usr/bin/qemu-system-x86_64',
  version: { major: 7, minor: 2, micro: 0, package: '' },
  machines: [],
  accelerators: ['tcg', 'kvm'],
  cpuModels: [],
  devices: [],
  kvm: { usable, reason: usable ? 'KVM ran a test guest' : 'a KVM test guest made no progress', bootId: 'b' },
});

describe('resolveAccel', () => {
  it('auto picks KVM only when the functional check passed, and says why', () => {
    expect(resolveAccel('auto', caps(true))).toEqual({ accel: 'kvm', reason: 'auto: KVM ran a test guest' });
    expect(resolveAccel('auto', caps(false))).toEqual({ accel: 'tcg', reason: 'auto: a KVM test guest made no progress; using TCG' });
  });

  it('honours an explicit request', () => {
    expect(resolveAccel('tcg', caps(true)).accel).toBe('tcg');
    expect(resolveAccel('kvm', caps(false))).toMatchObject({ accel: 'kvm', reason: expect.stringContaining('made no progress') as unknown });
  });
});

describe('parseAccelHelp', () => {
  it('lists the accelerators under the header', () => {
    expect(parseAccelHelp('Accelerators supported in QEMU binary:\ntcg\nkvm\n')).toEqual(['tcg', 'kvm']);
  });
});

const QEMU = findExecutable('qemu-system-x86_64');
const kvmAccessible = (() => {
  try {
    accessSync('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(QEMU === undefined || !kvmAccessible)('the KVM verdict', () => {
  let dir: string;
  let fake: string;
  const testBoots = async (): Promise<number> => (await readFile(join(dir, 'test-boots'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'virtkit-caps-'));
    // The real QEMU, except that a KVM test boot is counted and prints the banner at once.
    fake = join(dir, 'qemu-system-x86_64');
    await writeFile(fake, [
      '#!/bin/sh',
      `case "$*" in *accel=kvm*) echo boot >> ${join(dir, 'test-boots')}; echo 'Linux version 6.1.0 (fake)'; exit 0;; esac`,
      `exec ${QEMU} "$@"`,
      '',
    ].join('\n'));
    await chmod(fake, 0o755);
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('is tested once per boot and binary, whatever the capabilities cache, and again on refresh or a new binary', async () => {
    const verdictPath = join(dir, 'run', 'kvm-verdict.json');
    const probe = (cacheDir: string, more: { refresh?: boolean } = {}): Promise<QemuCapabilities> =>
      probeCapabilities({ binary: fake, cacheDir: join(dir, cacheDir), kvmVerdictPath: verdictPath, kvmCheckKernel: '/dev/null', ...more });

    const first = await probe('cache-a');
    expect(first.kvm).toMatchObject({ usable: true, reason: expect.stringContaining('Linux banner') as unknown });
    expect(await testBoots()).toBe(1);
    // Another cache dir (another user, another daemon) probes capabilities again but reads the verdict.
    expect((await probe('cache-b')).kvm).toEqual(first.kvm);
    expect(await testBoots()).toBe(1);

    await probe('cache-b', { refresh: true });
    expect(await testBoots()).toBe(2);
    await utimes(fake, new Date(), new Date(Date.now() + 5000)); // a rebuilt binary at the same path
    await probe('cache-b');
    expect(await testBoots()).toBe(3);
  });
});

describe.skipIf(QEMU === undefined)('the capabilities cache', () => {
  let dir: string;
  let fake: string;
  /** Every run of the binary, but the KVM test boot (that one has its own per-boot verdict). */
  const runs = async (): Promise<string[]> => (await readFile(join(dir, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'virtkit-caps-cache-'));
    fake = join(dir, 'qemu-system-x86_64');
    await writeFile(fake, [
      '#!/bin/sh',
      `case "$*" in *accel=kvm*) echo 'Linux version 6.1.0 (fake)'; exit 0;; esac`,
      `echo "$*" >> ${join(dir, 'runs')}`,
      `exec ${QEMU} "$@"`,
      '',
    ].join('\n'));
    await chmod(fake, 0o755);
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('runs QEMU only when the cache does not match the binary: a start with a valid cache probes nothing', async () => {
    const probe = (): Promise<QemuCapabilities> =>
      probeCapabilities({ binary: fake, cacheDir: join(dir, 'cache'), kvmVerdictPath: join(dir, 'kvm-verdict.json'), kvmCheckKernel: '/dev/null' });
    const first = await probe();
    const probed = (await runs()).length;
    expect(probed).toBeGreaterThan(0); // -accel help and the -machine none instance
    expect(await probe()).toEqual(first);
    expect(await runs()).toHaveLength(probed);
    await utimes(fake, new Date(), new Date(Date.now() + 5000)); // a rebuilt binary at the same path
    await probe();
    expect((await runs()).length).toBeGreaterThan(probed);
  });
});
