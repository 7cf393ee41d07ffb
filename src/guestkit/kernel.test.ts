import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findStaticBusybox, isStaticElf64 } from './busybox.js';
import { compareVersions, findHostKernel } from './kernel.js';

let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'virtkit-kernel-'));
  mkdirSync(join(root, 'boot'));
  for (const v of ['6.1.0-9-amd64', '6.1.0-10-amd64', '6.12.1-amd64']) writeFileSync(join(root, 'boot', `vmlinuz-${v}`), 'bzImage');
  // The newest image has no modules installed: it must be passed over.
  for (const v of ['6.1.0-9-amd64', '6.1.0-10-amd64']) {
    mkdirSync(join(root, 'modules', v), { recursive: true });
    writeFileSync(join(root, 'modules', v, 'modules.dep'), '');
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('host kernel', () => {
  it('orders versions numerically', () => {
    const sorted = ['6.1.0-9-amd64', '6.12.1-amd64', '6.1.0-10-amd64', '5.10.0-28-amd64'].sort(compareVersions);
    expect(sorted).toEqual(['5.10.0-28-amd64', '6.1.0-9-amd64', '6.1.0-10-amd64', '6.12.1-amd64']);
  });

  it('picks the newest image whose modules are installed', async () => {
    const kernel = await findHostKernel({ bootDir: join(root, 'boot'), modulesRoot: join(root, 'modules') });
    expect(kernel).toEqual({
      version: '6.1.0-10-amd64',
      imagePath: join(root, 'boot', 'vmlinuz-6.1.0-10-amd64'),
      modulesDir: join(root, 'modules', '6.1.0-10-amd64'),
    });
  });

  it('takes a named image, and refuses one without modules', async () => {
    const options = { bootDir: join(root, 'boot'), modulesRoot: join(root, 'modules') };
    expect((await findHostKernel({ ...options, image: join(root, 'boot', 'vmlinuz-6.1.0-9-amd64') })).version).toBe('6.1.0-9-amd64');
    await expect(findHostKernel({ ...options, image: join(root, 'boot', 'vmlinuz-6.12.1-amd64') }))
      .rejects.toMatchObject({ code: 'guestkit.missing-host-file' });
  });

  it('fails with guestkit.missing-host-file when /boot has no usable kernel', async () => {
    await expect(findHostKernel({ bootDir: join(root, 'modules'), modulesRoot: join(root, 'modules') }))
      .rejects.toMatchObject({ code: 'guestkit.missing-host-file' });
    await expect(findHostKernel({ bootDir: join(root, 'nonexistent') })).rejects.toMatchObject({ code: 'guestkit.missing-host-file' });
  });

  it('finds a real kernel on this host', async () => {
    const kernel = await findHostKernel();
    expect(kernel.imagePath).toMatch(/^\/boot\/vmlinuz-/);
  });
});

describe('busybox', () => {
  it('tells a static busybox from a dynamically linked program', async () => {
    expect(await isStaticElf64(await findStaticBusybox())).toBe(true);
    expect(await isStaticElf64(process.execPath)).toBe(false); // node is dynamically linked
    expect(await isStaticElf64(join(root, 'boot', 'vmlinuz-6.1.0-9-amd64'))).toBe(false); // not ELF
  });

  it('explains what to install when only a dynamic busybox exists', async () => {
    await expect(findStaticBusybox([process.execPath, join(root, 'missing')]))
      .rejects.toMatchObject({ code: 'guestkit.missing-host-file', message: expect.stringMatching(/busybox-static/) });
  });
});
