import { describe, expect, it } from 'vitest';
import { buildBlsMenu, parseBlsEntry, parseLoaderConf } from './bls.js';
import { parseExtlinuxConfig } from './extlinux.js';
import { matchesGlob } from './name-glob.js';
import { compareVersions } from './version-compare.js';

describe('compareVersions (rpmvercmp order)', () => {
  it('orders numerically by runs, with ~ before everything', () => {
    const sorted = ['6.10.0', '6.9.0', '6.9.0~rc1', '6.9', '6.9.0a', '10', '6.09.1'].sort(compareVersions);
    expect(sorted).toEqual(['6.9', '6.9.0~rc1', '6.9.0', '6.9.0a', '6.09.1', '6.10.0', '10']);
    expect(compareVersions('1.0', '1.0')).toBe(0);
    expect(compareVersions('1.a', '1.1')).toBeLessThan(0);
  });
});

describe('matchesGlob', () => {
  it('matches *, ? and classes without regular expressions', () => {
    expect(matchesGlob('fedora-*', 'fedora-6.5.conf')).toBe(true);
    expect(matchesGlob('*-6.?', 'x-6.5')).toBe(true);
    expect(matchesGlob('[!a]b', 'ab')).toBe(false);
    expect(matchesGlob('[a-c]b', 'cb')).toBe(true);
    expect(matchesGlob('a*b', 'ac')).toBe(false);
    expect(matchesGlob(`${'*a'.repeat(100)}b`, 'a'.repeat(250))).toBe(false);
  });
});

describe('BLS entries', () => {
  const entry = (name: string, body: string) => parseBlsEntry(body, name);

  it('parses the keys, repeated initrd lines and options', () => {
    const e = entry('fedora-6.5.conf', '# comment\ntitle Fedora Linux (6.5)\nversion 6.5.6-300.fc39.x86_64\nlinux /vmlinuz-6.5\ninitrd /amd-ucode.img\ninitrd /initramfs-6.5.img\noptions root=UUID=1 ro\noptions quiet\n');
    expect(e).toEqual({
      id: 'fedora-6.5', title: 'Fedora Linux (6.5)', version: '6.5.6-300.fc39.x86_64', linux: '/vmlinuz-6.5',
      initrds: ['/amd-ucode.img', '/initramfs-6.5.img'], options: 'root=UUID=1 ro quiet',
    });
  });

  it('refuses an entry naming more initrds than the limit', () => {
    const many = Array.from({ length: 65 }, (_, i) => `initrd /i${i}`).join('\n');
    expect(() => entry('x.conf', `linux /k\n${many}\n`)).toThrow(expect.objectContaining({ code: 'boot.config-corrupt' }) as Error);
  });

  it('sorts by version, newest first, and takes the default from loader.conf', () => {
    const files = [
      entry('a-6.2.conf', 'title Six two\nversion 6.2.0\nlinux /v62\n'),
      entry('a-6.10.conf', 'title Six ten\nversion 6.10.0\nlinux /v610\n'),
      entry('a-6.9.conf', 'title Six nine\nversion 6.9.0\nlinux /v69\n'),
    ];
    const menu = buildBlsMenu(files);
    expect(menu.entries.map((e) => e.title)).toEqual(['Six ten', 'Six nine', 'Six two']);
    expect(menu.defaultIndex).toBe(0);
    const withDefault = buildBlsMenu(files, parseLoaderConf('timeout 3\ndefault a-6.9*\n'));
    expect(withDefault.defaultIndex).toBe(1);
    expect(withDefault.timeout).toBe(3);
    const unmatched = buildBlsMenu(files, { default: 'zzz' });
    expect(unmatched.defaultIndex).toBe(0);
    expect(unmatched.warnings.join()).toMatch(/zzz/);
  });
});

describe('extlinux', () => {
  const CONF = [
    'DEFAULT second',
    'TIMEOUT 50',
    'APPEND console=ttyS0',
    'LABEL first',
    '  MENU LABEL First entry',
    '  KERNEL vmlinuz-1',
    '  INITRD initrd-1,extra.img',
    'label second',
    '  linux /boot/vmlinuz-2',
    '  append root=/dev/vda1 initrd=/boot/initrd-2',
    'LABEL third',
    '  KERNEL /vmlinuz-3',
    '  APPEND -',
  ].join('\n');

  it('reads labels, relative paths, DEFAULT, global APPEND and initrd= in APPEND', () => {
    const menu = parseExtlinuxConfig(CONF, '/boot/extlinux/extlinux.conf');
    expect(menu.entries).toEqual([
      { title: 'First entry', id: 'first', kernel: '/boot/extlinux/vmlinuz-1', initrds: ['/boot/extlinux/initrd-1', '/boot/extlinux/extra.img'], cmdline: 'console=ttyS0' },
      { title: 'second', id: 'second', kernel: '/boot/vmlinuz-2', initrds: ['/boot/initrd-2'], cmdline: 'root=/dev/vda1 initrd=/boot/initrd-2' },
      { title: 'third', id: 'third', kernel: '/vmlinuz-3', initrds: [], cmdline: '' },
    ]);
    expect(menu.defaultIndex).toBe(1);
    expect(menu.timeout).toBe(5);
  });

  it('lets MENU DEFAULT win and warns about a DEFAULT naming no label', () => {
    expect(parseExtlinuxConfig('LABEL a\nKERNEL /a\nLABEL b\nMENU DEFAULT\nKERNEL /b\n').defaultIndex).toBe(1);
    const menu = parseExtlinuxConfig('DEFAULT vmlinuz ro\nLABEL a\nKERNEL /a\nINCLUDE other.cfg\n');
    expect(menu.defaultIndex).toBe(0);
    expect(menu.warnings).toHaveLength(2);
  });
});
