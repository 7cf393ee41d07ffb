import { describe, expect, test } from 'vitest';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import { chooseImageFormat } from './format-choice.js';

function failure(fn: () => unknown): VirtkitError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VirtkitError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('chooseImageFormat', () => {
  test.each([
    ['disk.qcow2', 'qcow2'], ['/x/Disk.QCOW2', 'qcow2'], ['old.qcow', 'qcow2'],
    ['disk.raw', 'raw'], ['disk.img', 'raw'], ['install.iso', 'raw'],
    ['a.vmdk', 'vmdk'], ['a.vdi', 'vdi'],
  ])('%s is %s by its name', (path, format) => {
    expect(chooseImageFormat(path)).toMatchObject({ format, from: 'extension' });
  });

  test('the option wins over the name', () => {
    expect(chooseImageFormat('disk.qcow2', { explicit: 'raw' })).toEqual({ format: 'raw', from: 'option', iso: false });
    expect(chooseImageFormat('disk', { explicit: 'QCOW2' })).toEqual({ format: 'qcow2', from: 'option', iso: false });
  });

  test('.iso reads as ISO 9660 unless the option says otherwise', () => {
    expect(chooseImageFormat('x.iso').iso).toBe(true);
    expect(chooseImageFormat('x.iso', { explicit: 'qcow2' }).iso).toBe(false);
    expect(chooseImageFormat('x.img').iso).toBe(false);
  });

  test('neither option nor name: argument.invalid naming both ways', () => {
    for (const path of ['/dev/vg/disk', 'disk', 'disk.bin', 'disk.qcow2.bak']) {
      const err = failure(() => chooseImageFormat(path, { flag: '-f' }));
      expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
      expect(err.message).toContain('-f raw|qcow2|vmdk|vdi');
      expect(err.message).toContain('.qcow2, .qcow, .raw, .img, .iso, .vmdk, .vdi');
      expect(err.data).toMatchObject({ option: '-f', path });
      expect(typeof err.data['hint']).toBe('string');
    }
  });

  test('a command that opens fewer formats says which', () => {
    const accepts = ['raw', 'qcow2'] as const;
    expect(failure(() => chooseImageFormat('a.vmdk', { accepts })).message).toContain('(.qcow2, .qcow, .raw, .img, .iso)');
    expect(failure(() => chooseImageFormat('a.raw', { explicit: 'vhdx', accepts })).message).toBe("--format must be one of raw, qcow2, got 'vhdx'");
  });
});
