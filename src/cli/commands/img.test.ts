import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { formatBytes, formatFor, parseImageSize } from './img.js';

describe('img size and format parsing', () => {
  it('takes the format from -f, else from the name, never from content', () => {
    expect(formatFor('disk.img', 'raw')).toBe('raw');
    expect(formatFor('/x/Disk.QCOW2', undefined)).toBe('qcow2');
    expect(formatFor('a.vmdk', undefined)).toBe('vmdk');
    expect(formatFor('a.vdi', undefined)).toBe('vdi');
    expect(formatFor('disk.img', undefined)).toBe('raw');
    let err: unknown;
    try { formatFor('disk', undefined); } catch (e) { err = e; }
    expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
  });

  it('parses sizes in binary units', () => {
    expect(parseImageSize('4096')).toBe(4096);
    expect(parseImageSize('512M')).toBe(512 * 2 ** 20);
    expect(parseImageSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseImageSize('10g')).toBe(10 * 2 ** 30);
    for (const bad of ['', 'ten', '-1', '1.5', '1X', '99999999999E']) expect(() => parseImageSize(bad), bad).toThrow();
  });

  it('formats byte counts like qemu-img', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(4 * 2 ** 20)).toBe('4 MiB');
    expect(formatBytes(331776)).toBe('324 KiB');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.5 GiB');
  });
});
