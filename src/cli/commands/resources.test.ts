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
  test('out-of-range values are argument.invalid naming the flag and the range, in the user\'s units', () => {
    const messageOf = (fn: () => unknown): string => {
      try { fn(); } catch (err) { return isVirtkitError(err, 'argument.invalid') ? err.message : `not argument.invalid: ${String(err)}`; }
      return 'accepted';
    };
    expect(messageOf(() => parseSet('cpu_quota=0'))).toBe('--set cpu_quota: must be 1-25500 (percent of one host CPU; none removes the limit), got 0');
    expect(messageOf(() => parseSet('cpu_quota=25501'))).toMatch(/^--set cpu_quota: must be 1-25500/);
    expect(messageOf(() => parseSet('cpu_shares=0'))).toBe('--set cpu_shares: must be 2-262144 (the cgroup weight; none is the default 1024), got 0');
    expect(messageOf(() => parseSet('cpu_shares=1'))).toMatch(/^--set cpu_shares: must be 2-262144/);
    expect(parseSet('cpu_quota=1')).toEqual({ cpu_quota: 1 });
    expect(messageOf(() => parseHardLimit('1KiB'))).toBe('--hard-limit: must be at least 16MiB, got 1KiB (-1 or unlimited removes the limit)');
    expect(messageOf(() => parseHardLimit('1'))).toBe('--hard-limit: must be at least 16384 (KiB), got 1 (-1 or unlimited removes the limit)');
    expect(parseHardLimit('16384')).toBe(16 * 1024 ** 2);
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
