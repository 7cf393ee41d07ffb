import { describe, expect, test } from 'vitest';
import { compileGlob } from './glob.js';
import { elfArchitecture, kernelVersion, kernelVersionString, parseOsRelease, releaseOfName } from './inspect.js';
import { LruCache } from './lru.js';

describe('os-release', () => {
  test('quoted, unquoted and escaped values; comments and junk ignored', () => {
    expect(parseOsRelease('# c\nNAME="Debian GNU/Linux"\nVERSION_ID=\'12\'\nID=debian\nPRETTY_NAME="A \\"quoted\\" name"\njunk\n'))
      .toEqual({ NAME: 'Debian GNU/Linux', VERSION_ID: '12', ID: 'debian', PRETTY_NAME: 'A "quoted" name' });
  });

  test('a quote left open takes the rest of its line without the stray quote; the next line is not part of it', () => {
    expect(parseOsRelease('PRETTY_NAME="Two\nlines"\nID=arch\nNAME=\'Open\n'))
      .toEqual({ PRETTY_NAME: 'Two', ID: 'arch', NAME: 'Open' });
  });
});

describe('ELF architecture', () => {
  const header = (cls: number, data: number, machine: number): Uint8Array => {
    const b = Buffer.alloc(64);
    b.set([0x7f, 0x45, 0x4c, 0x46, cls, data, 1]);
    if (data === 1) b.writeUInt16LE(machine, 18);
    else b.writeUInt16BE(machine, 18);
    return b;
  };
  test.each([
    [2, 1, 0x3e, 'x86_64'], [1, 1, 0x03, 'i386'], [2, 1, 0xb7, 'aarch64'], [1, 1, 0x28, 'arm'],
    [2, 1, 0xf3, 'riscv64'], [2, 2, 0x15, 'ppc64'], [2, 1, 0x15, 'ppc64le'], [2, 2, 0x16, 's390x'],
  ])('class %i data %i machine %i is %s', (cls, data, machine, arch) => {
    expect(elfArchitecture(header(cls, data, machine))).toBe(arch);
  });
  test('not ELF, or too short', () => {
    expect(elfArchitecture(Buffer.from('#!/bin/sh\n'))).toBeUndefined();
    expect(elfArchitecture(new Uint8Array(4))).toBeUndefined();
  });
});

describe('globs', () => {
  test.each([
    ['*.conf', 'a.conf', true], ['*.conf', 'a.confx', false], ['vmlinuz-?.*', 'vmlinuz-6.1', true],
    ['[a-c]x', 'bx', true], ['[!a-c]x', 'bx', false], ['a.b', 'axb', false], ['(x)+', '(x)+', true], ['[oops', '[oops', true],
  ])('%s matches %s: %s', (glob, name, expected) => {
    expect(compileGlob(glob).test(name)).toBe(expected);
  });
});

describe('LruCache', () => {
  test('evicts the least recently used entries beyond the weight limit', () => {
    const c = new LruCache<string, string>(5, (v) => v.length);
    c.set('a', 'xx');
    c.set('b', 'yy');
    expect(c.get('a')).toBe('xx');
    c.set('c', 'zz');
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual(['xx', undefined, 'zz']);
    c.set('huge', 'too heavy');
    expect(c.get('huge')).toBeUndefined();
    expect(c.weight).toBeLessThanOrEqual(5);
  });
});

describe('kernel versions', () => {
  test('the release in kernel and initrd file names', () => {
    expect(releaseOfName('vmlinuz-6.1.0-18-amd64')).toBe('6.1.0-18-amd64');
    expect(releaseOfName('initrd.img-6.1.0-18-amd64')).toBe('6.1.0-18-amd64');
    expect(releaseOfName('initramfs-6.5.6-300.fc39.x86_64.img')).toBe('6.5.6-300.fc39.x86_64');
    expect(releaseOfName('vmlinuz')).toBeUndefined();
    expect(releaseOfName('vmlinuz.old')).toBeUndefined();
  });

  test('a kernel named without a version takes it from its own version string', () => {
    const built = '6.6.1-arch1-1 (linux@archlinux) #1 SMP PREEMPT_DYNAMIC';
    expect(kernelVersion('/boot/vmlinuz-linux', built)).toBe('6.6.1-arch1-1');
    expect(kernelVersion('/boot/vmlinuz-linux-lts', built)).toBe('6.6.1-arch1-1');
    expect(kernelVersion('/boot/vmlinuz-linux', undefined)).toBeUndefined();
    expect(kernelVersion('/boot/vmlinuz-6.1.0-18-amd64', built)).toBe('6.1.0-18-amd64');
    expect(kernelVersion('/boot/vmlinuz', built)).toBe('6.6.1-arch1-1');
  });

  test('the version string of an x86 boot header, and nothing from anything else', async () => {
    const image = new Uint8Array(0x800);
    image.set(Buffer.from('HdrS'), 0x202);
    image[0x206] = 0x0f;
    image[0x207] = 0x02;
    image[0x20e] = 0x00;
    image[0x20f] = 0x04;
    const text = Buffer.from('6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP\0');
    const readAt = (offset: number): Promise<Uint8Array> => Promise.resolve(offset === 0x600 ? text : new Uint8Array(0));
    expect(await kernelVersionString(image, readAt)).toBe('6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP');
    expect(kernelVersionString(new Uint8Array(0x210), readAt)).toBeUndefined();
    // 2,000 random headers with the magic: a version string or undefined, never a throw.
    let x = 16;
    for (let i = 0; i < 2000; i++) {
      const header = Uint8Array.from({ length: 0x210 }, () => { x = (x * 1103515245 + 12345) >>> 0; return x >>> 24; });
      header.set(Buffer.from('HdrS'), 0x202);
      const found = await kernelVersionString(header, () => Promise.resolve(Uint8Array.from(header.subarray(0, 64))));
      expect(found === undefined || /^[0-9]/.test(found)).toBe(true);
    }
  });
});
