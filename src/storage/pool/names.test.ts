import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { checkPoolName, checkVolumeName, checkVolumeNameFormat, declaredFormat, parseVolumeRef } from './names.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (isVirtkitError(err)) return err.code;
    throw err;
  }
}

describe('volume names', () => {
  it('take their format from the extension', () => {
    expect(checkVolumeName('disk.qcow2')).toBe('qcow2');
    expect(checkVolumeName('Disk.QCOW2')).toBe('qcow2');
    expect(checkVolumeName('a.raw')).toBe('raw');
    expect(checkVolumeName('web_1+data-2.img')).toBe('raw');
    expect(declaredFormat('disk')).toBeUndefined();
    expect(declaredFormat('.qcow2')).toBeUndefined();
    expect(codeOf(() => checkVolumeName('disk.vmdk'))).toBe('volume.invalid-name');
    expect(codeOf(() => checkVolumeNameFormat('disk.raw', 'qcow2'))).toBe('volume.invalid-name');
    expect(codeOf(() => checkVolumeNameFormat('disk.raw', 'raw'))).toBeUndefined();
  });

  it('refuse anything that is not one safe path segment', () => {
    for (const name of ['', '.', '..', '../x.raw', '/etc/passwd', 'a/b.raw', 'x.raw/', '.hidden.raw', '-x.raw', 'x\0.raw',
      'x\n.raw', ' x.raw', 'x .raw', 'x%2F.raw', 'x\\y.raw', `${'a'.repeat(252)}.raw`, 'ü.raw']) {
      expect(codeOf(() => checkVolumeName(name)), JSON.stringify(name)).toBe('volume.invalid-name');
    }
    expect(codeOf(() => checkVolumeName(`${'a'.repeat(251)}.raw`))).toBeUndefined();
  });

  it('never accept a name that leaves the pool directory (10,000 random names)', () => {
    const alphabet = 'aZ09._+-/\\\0%: \n.';
    const pool = '/srv/pool';
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const bytes = randomBytes(1 + (i % 12));
      let name = '';
      for (const b of bytes) name += alphabet[b % alphabet.length];
      if (i % 3 === 0) name += i % 2 ? '.raw' : '.qcow2';
      if (codeOf(() => checkVolumeName(name)) !== undefined) continue;
      accepted++;
      const path = resolve(join(pool, name));
      expect(dirname(path)).toBe(pool);
      expect(basename(path)).toBe(name);
    }
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('pool names and volume references', () => {
  it('checks pool names', () => {
    expect(codeOf(() => checkPoolName('default'))).toBeUndefined();
    for (const name of ['', '..', 'a/b', '-x', 'x y', 'a'.repeat(65)]) expect(codeOf(() => checkPoolName(name))).toBe('pool.invalid');
  });

  it('splits pool/volume and refuses other shapes', () => {
    expect(parseVolumeRef('images/disk.qcow2')).toEqual({ pool: 'images', volume: 'disk.qcow2' });
    for (const ref of ['disk.qcow2', '/disk.qcow2', 'a/b/c.raw']) expect(codeOf(() => parseVolumeRef(ref))).toBe('volume.invalid-name');
  });
});
