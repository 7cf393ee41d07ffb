/**
 * A defined guest's name as TARGET for `fs`, `inspect` and `bootinfo`: the CLI asks the
 * manager for the guest's disk and declared format. A running guest's disk is read only with
 * `--ro` (libguestfs's rule), with a warning. The guest is started paused: the rule is about
 * QEMU holding the disk, so no guest code needs to run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { DaemonHarness } from './daemon-harness.js';

let h: DaemonHarness;

beforeAll(async () => {
  h = await DaemonHarness.create();
  const staging = join(h.stateDir, 'staging');
  mkdirSync(join(staging, 'etc'), { recursive: true });
  writeFileSync(join(staging, 'hello.txt'), 'hello from the guest disk\n');
  writeFileSync(join(staging, 'etc', 'hostname'), 'fsguest\n');
  const disk = join(h.stateDir, 'disk.raw');
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', staging, disk, '8M']);
  const qcow = join(h.stateDir, 'disk.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, qcow]);

  const guest = guestPaths(testGuest());
  const def = parse(readFileSync(guest.definitionPath, 'utf8')) as Record<string, unknown>;
  const boot = def.boot as Record<string, string>;
  Object.assign(def, {
    name: 'fsguest',
    boot: { ...boot, kernel: join(testGuest(), boot.kernel!), initrd: join(testGuest(), boot.initrd!) },
    disks: [{ source: qcow, format: 'qcow2', bus: 'virtio' }, { source: disk, format: 'raw', bus: 'virtio' }],
  });
  const defPath = join(h.stateDir, 'fsguest.yaml');
  writeFileSync(defPath, stringify(def));
  await h.start();
  expect((await h.cli(['define', defPath])).code).toBe(0);
});

afterAll(async () => {
  await h.cleanup();
});

describe('guest names as targets', () => {
  it('reads the first disk in its declared format, and --disk N picks another', async () => {
    const cat = await h.cli(['fs', 'cat', 'fsguest', '/hello.txt']);
    expect(cat.stderr).toBe('');
    expect(cat.stdout).toBe('hello from the guest disk\n');
    const second = await h.cli(['fs', 'ls', 'fsguest', '/', '--disk', '1']);
    expect(second.stdout.split('\n')).toEqual(expect.arrayContaining(['etc', 'hello.txt']));
    const none = await h.cli(['fs', 'ls', 'fsguest', '/', '--disk', '2']);
    expect(none.code).toBe(5);
    expect(none.stderr).toContain('there is no disk 2');
  });

  it('inspect and bootinfo take the name too', async () => {
    const inspect = await h.cli(['inspect', 'fsguest', '--json']);
    expect(inspect.code).toBe(0);
    const report = JSON.parse(inspect.stdout) as { format: string; filesystems: { type: string }[] };
    expect(report.format).toBe('qcow2');
    expect(report.filesystems.map((f) => f.type)).toEqual(['ext4']);
    const bootinfo = await h.cli(['bootinfo', 'fsguest', '--json']);
    expect(bootinfo.code).toBe(0);
  });

  it('refuses a running guest without --ro, and warns with it', async () => {
    expect((await h.cli(['start', 'fsguest', '--paused'])).code).toBe(0);
    try {
      const refused = await h.cli(['fs', 'cat', 'fsguest', '/hello.txt']);
      expect(refused.code).toBe(4);
      expect(refused.stderr).toContain('domain.invalid-state');
      expect(refused.stderr).toContain('--ro');
      const ro = await h.cli(['fs', 'cat', 'fsguest', '/hello.txt', '--ro']);
      expect(ro.code).toBe(0);
      expect(ro.stdout).toBe('hello from the guest disk\n');
      expect(ro.stderr).toMatch(/warning: guest 'fsguest' is running/);
    } finally {
      await h.cli(['destroy', 'fsguest']);
    }
  });

  it('an unknown name is still "no image file"', async () => {
    const r = await h.cli(['fs', 'ls', 'no-such-guest', '/']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('image.not-found');
  });
});
