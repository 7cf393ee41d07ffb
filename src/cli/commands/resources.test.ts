import { describe, expect, test } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { fuseOptionValue, virtiofsdArgs } from '../../qemu/virtiofs/index.js';
import { parseHardLimit, parseSet } from './resources.js';

describe('schedinfo --set and memtune --hard-limit', () => {
  test('fields, none, KiB as virsh, sizes with units, unlimited', () => {
    expect(parseSet('cpu_quota=none', parseSet('cpu_shares=512'))).toEqual({ cpu_shares: 512, cpu_quota: null });
    expect(parseHardLimit('1048576')).toBe(1024 ** 3);
    expect(parseHardLimit('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseHardLimit('-1')).toBeNull();
    expect(parseHardLimit('unlimited')).toBeNull();
  });
  test('fuzz: random --set values give a field or argument.invalid', () => {
    let seed = 5;
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const alphabet = 'cpu_shareqotn=0123456789-x ';
    for (let i = 0; i < 3000; i++) {
      const text = Array.from({ length: random(24) }, () => alphabet[random(alphabet.length)]).join('');
      try {
        const out = parseSet(text);
        expect(Object.keys(out).every((k) => k === 'cpu_shares' || k === 'cpu_quota')).toBe(true);
      } catch (err) {
        expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
      }
    }
  });
});

describe('virtiofsd options', () => {
  test('a source with commas and backslashes stays one -o value', () => {
    expect(fuseOptionValue('/srv/a,b\\c')).toBe('/srv/a\\,b\\\\c');
    expect(virtiofsdArgs({ source: '/srv/a,b' }, '/run/g', 1)).toEqual([
      '--socket-path=/run/g/virtiofsd.1.sock', '-o', 'source=/srv/a\\,b', '-o', 'cache=auto', '-o', 'log_level=warn',
    ]);
  });
});
