import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { CPIO_NEWC_MAGIC, CPIO_TRAILER, cpioToBuffer, type CpioEntry } from './cpio.js';

let work: string;
let archivePath: string;
const hostFiles: Record<string, Buffer> = {};

/** Contents whose lengths hit every padding case (0..3 bytes to the next multiple of 4). */
const sizes = [0, 1, 2, 3, 4, 5, 4099];
const patterned = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + n) % 256));

function entries(): CpioEntry[] {
  const list: CpioEntry[] = [
    { kind: 'dir', name: '/dev', mode: 0o755, uid: 0, gid: 0 },
    { kind: 'device', name: '/dev/console', mode: 0o600, uid: 0, gid: 0, device: 'char', major: 5, minor: 1 },
    { kind: 'device', name: 'dev/vda', mode: 0o660, uid: 0, gid: 6, device: 'block', major: 254, minor: 0 },
    { kind: 'dir', name: '/bin', mode: 0o755, uid: 0, gid: 0 },
    { kind: 'symlink', name: '/bin/sh', target: 'busybox', mode: 0o777, uid: 0, gid: 0 },
    { kind: 'fifo', name: '/fifo', mode: 0o644, uid: 0, gid: 0 },
    { kind: 'file', name: '/init', mode: 0o755, uid: 0, gid: 0, content: Buffer.from('#!/bin/sh\necho hi\n') },
  ];
  for (const n of sizes) {
    list.push({ kind: 'file', name: `/host-${n}`, mode: 0o644, uid: 1000, gid: 1000, content: { hostPath: join(work, `src-${n}`) } });
    list.push({ kind: 'file', name: `/mem-${n}`, mode: 0o600, uid: 0, gid: 0, content: patterned(n + 1) });
  }
  return list;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'virtkit-cpio-'));
  for (const n of sizes) {
    hostFiles[n] = patterned(n);
    writeFileSync(join(work, `src-${n}`), patterned(n));
  }
  archivePath = join(work, 'archive.cpio');
  writeFileSync(archivePath, await cpioToBuffer(entries()));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

// The archive goes in on stdin: with -F, GNU cpio wants 512-byte blocks and asks for the next
// volume after a short last block, while the kernel (and this writer) stop at the trailer.
const cpio = (...args: string[]): Buffer =>
  execFileSync('cpio', ['--quiet', ...args], { input: readFileSync(archivePath), maxBuffer: 1 << 24 });

describe('cpio newc writer', () => {
  it('lists every entry, in order, through the real cpio -t', () => {
    const names = cpio('-t').toString().trim().split('\n');
    expect(names).toEqual(entries().map((e) => e.name.replace(/^\//, '')));
  });

  it('records each entry type, mode, owner and device numbers', () => {
    const lines = cpio('-tv', '--numeric-uid-gid').toString().trim().split('\n');
    const byName = new Map(lines.map((l) => [l.split(/\s+/).at(-1) === 'busybox' ? 'bin/sh' : (l.split(/\s+/).at(-1) ?? ''), l]));
    expect(byName.get('dev')).toMatch(/^drwxr-xr-x\s+2\s+0\s+0\s/);
    expect(byName.get('dev/console')).toMatch(/^crw-------\s+1\s+0\s+0\s+5,\s+1\s/);
    expect(byName.get('dev/vda')).toMatch(/^brw-rw----\s+1\s+0\s+6\s+254,\s+0\s/);
    expect(byName.get('bin/sh')).toMatch(/^lrwxrwxrwx .* bin\/sh -> busybox$/);
    expect(byName.get('fifo')).toMatch(/^prw-r--r--/);
    expect(byName.get('init')).toMatch(/^-rwxr-xr-x\s+1\s+0\s+0\s+18\s/);
    expect(byName.get('host-4099')).toMatch(/^-rw-r--r--\s+1\s+1000\s+1000\s+4099\s/);
  });

  it('stores file contents exactly, for every padding case', () => {
    expect(cpio('-i', '--to-stdout', 'init').toString()).toBe('#!/bin/sh\necho hi\n');
    for (const n of sizes) {
      expect(cpio('-i', '--to-stdout', `host-${n}`).equals(hostFiles[n] ?? Buffer.alloc(0))).toBe(true);
      expect(cpio('-i', '--to-stdout', `mem-${n}`).equals(patterned(n + 1))).toBe(true);
    }
  });

  it('aligns every header to 4 bytes and ends with the trailer', async () => {
    const archive = await cpioToBuffer(entries());
    expect(archive.length % 4).toBe(0);
    let offset = 0;
    let last = '';
    while (offset < archive.length) {
      expect(archive.toString('ascii', offset, offset + 6)).toBe(CPIO_NEWC_MAGIC);
      const field = (i: number): number => parseInt(archive.toString('ascii', offset + 6 + i * 8, offset + 14 + i * 8), 16);
      const size = field(6);
      const nameSize = field(11);
      last = archive.toString('utf8', offset + 110, offset + 110 + nameSize - 1);
      offset += Math.ceil((110 + nameSize) / 4) * 4 + Math.ceil(size / 4) * 4;
    }
    expect(offset).toBe(archive.length);
    expect(last).toBe(CPIO_TRAILER);
  });

  it('is reproducible: the same entries give the same bytes', async () => {
    expect((await cpioToBuffer(entries())).equals(await cpioToBuffer(entries()))).toBe(true);
  });

  const bad: Array<[string, CpioEntry[]]> = [
    ['duplicate names', [
      { kind: 'dir', name: '/a', mode: 0o755, uid: 0, gid: 0 },
      { kind: 'dir', name: 'a/', mode: 0o755, uid: 0, gid: 0 },
    ]],
    ['a .. component', [{ kind: 'dir', name: '/a/../b', mode: 0o755, uid: 0, gid: 0 }]],
    ['an empty name', [{ kind: 'dir', name: '/', mode: 0o755, uid: 0, gid: 0 }]],
    ['type bits in the mode', [{ kind: 'dir', name: '/a', mode: 0o40755, uid: 0, gid: 0 }]],
    ['a uid beyond 32 bits', [{ kind: 'dir', name: '/a', mode: 0o755, uid: 2 ** 32, gid: 0 }]],
    ['a negative minor', [{ kind: 'device', name: '/a', mode: 0o600, uid: 0, gid: 0, device: 'char', major: 1, minor: -1 }]],
    ['an empty symlink target', [{ kind: 'symlink', name: '/a', target: '', mode: 0o777, uid: 0, gid: 0 }]],
    ['a missing host file', [{ kind: 'file', name: '/a', mode: 0o644, uid: 0, gid: 0, content: { hostPath: '/nonexistent/x' } }]],
    ['a directory as host file', [{ kind: 'file', name: '/a', mode: 0o644, uid: 0, gid: 0, content: { hostPath: '/' } }]],
  ];
  it.each(bad)('refuses %s with cpio.invalid', async (_label, list) => {
    const err: unknown = await cpioToBuffer(list).catch((e: unknown) => e);
    expect(isVirtkitError(err, 'cpio.invalid')).toBe(true);
  });
});
