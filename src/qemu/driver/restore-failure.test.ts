/**
 * A failed restore says why in QEMU's words (its qemu.log) and names the save file, which it
 * leaves as it was. The log reader is fuzzed: any log gives a bounded line or nothing. And the
 * device id behind query-block's qdev, which tells a disk's block node for snapshots.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtkitError } from '../../util/errors.js';
import { deviceIdOfQdev, lastQemuError, restoreFailure } from './guest-state.js';
import { diskAndNicIdsOfCommandLine } from './host-resources.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'restore-failure-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

describe('restoreFailure', () => {
  it('carries QEMU\'s last error lines into the error, keeping its code, and leaves the save file alone', async () => {
    const save = join(dir, 'g.save');
    await writeFile(save, 'header+stream');
    await writeFile(join(dir, 'qemu.log'), 'some trace line\nqemu-system-x86_64: Unknown ramblock "0000:00:07.0/virtio-net-pci.rom", cannot accept migration\nqemu-system-x86_64: load of migration failed: Invalid argument\ntrailing noise\n');
    const err = await restoreFailure(new VirtkitError('qmp.disconnected', 'the QMP connection closed'), dir, { path: save, offset: 4096 });
    expect(err.code).toBe('qmp.disconnected');
    expect(err.message).toBe(`the restore from ${save} failed: the QMP connection closed; QEMU said: qemu-system-x86_64: Unknown ramblock "0000:00:07.0/virtio-net-pci.rom", cannot accept migration; qemu-system-x86_64: load of migration failed: Invalid argument (the save file is unchanged)`);
    expect(await readFile(save, 'utf8')).toBe('header+stream');
  });

  it('without a log, a plain error becomes qmp.command-failed with its own words', async () => {
    const err = await restoreFailure(new Error('boom'), dir, { path: '/x.save', offset: 0 });
    expect(err.code).toBe('qmp.command-failed');
    expect(err.message).toBe('the restore from /x.save failed: boom (the save file is unchanged)');
  });

  it('fuzz: any log gives undefined or one trimmed line of at most 500 characters', () => {
    let x = 0x9e3779b9;
    const r = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x1_0000_0000; };
    const alphabet = 'qemu-system-x86_64: \n\r\t"ab\u00e9\u0000';
    for (let i = 0; i < 3000; i++) {
      const log = Array.from({ length: Math.floor(r() * 1200) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
      const out = lastQemuError(log);
      if (out !== undefined) {
        expect(out.length).toBeLessThanOrEqual(500);
        expect(out).not.toContain('\n');
        expect(out).not.toBe('');
      }
    }
  });
});

describe('deviceIdOfQdev (query-block on QEMU 7.2)', () => {
  it('a scsi-hd names its id, a virtio-blk its backend\'s QOM path, an unattached backend nothing', () => {
    expect(deviceIdOfQdev('sdb')).toBe('sdb');
    expect(deviceIdOfQdev('/machine/peripheral/vda/virtio-backend')).toBe('vda');
    expect(deviceIdOfQdev('/machine/unattached/device[3]')).toBeUndefined();
    expect(deviceIdOfQdev('')).toBeUndefined();
    expect(deviceIdOfQdev(undefined)).toBeUndefined();
  });
});

describe('diskAndNicIdsOfCommandLine (what a restore recreates)', () => {
  it('takes the ids of -device entries with a drive or a netdev, nothing else', () => {
    const argv = ['qemu-system-x86_64', '-device', '{"driver":"pvpanic","id":"pvpanic0"}', '-device', '{"driver":"virtio-blk-pci","id":"vda","drive":"vda-format"}',
      '-device', '{"driver":"scsi-hd","id":"sdb","drive":"sdb-format"}', '-device', '{"driver":"virtio-net-pci","id":"net0","netdev":"net0-netdev"}',
      '-device', 'e1000,id=old', '-device', '{broken', '-name', 'g'];
    expect([...diskAndNicIdsOfCommandLine(argv)]).toEqual(['vda', 'sdb', 'net0']);
    expect(diskAndNicIdsOfCommandLine(['-device'])).toEqual(new Set());
  });

  it('fuzz: any argv gives a set of strings, never a throw', () => {
    let x = 0x1234567;
    const r = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x1_0000_0000; };
    const pieces = ['-device', '{', '}', '"id"', ':', '"drive"', '"netdev"', ',', '"x"', '1', 'null', '[', ']'];
    for (let i = 0; i < 3000; i++) {
      const argv = Array.from({ length: Math.floor(r() * 8) }, () => (r() < 0.4 ? '-device' : Array.from({ length: Math.floor(r() * 10) }, () => pieces[Math.floor(r() * pieces.length)]).join('')));
      for (const id of diskAndNicIdsOfCommandLine(argv)) expect(typeof id).toBe('string');
    }
  });
});
