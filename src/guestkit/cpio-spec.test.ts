import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { cpioToBuffer } from './cpio.js';
import { formatCpioSpec, parseCpioSpec } from './cpio-spec.js';

let work: string;

const SEED_SPEC = `# a tiny initramfs
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/vda 0660 0 6 b 254 0
dir /bin 0755 0 0
file /bin/busybox ./busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init ./init 0755 0 0
pipe /run.fifo 0644 0 0
sock /run.sock 0600 0 0
`;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'virtkit-cpio-spec-'));
  writeFileSync(join(work, 'busybox'), 'not really busybox\n');
  writeFileSync(join(work, 'init'), '#!/bin/sh\nexec sh\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function parseError(text: string): VirtkitError {
  try {
    parseCpioSpec(text, { baseDir: work });
  } catch (err) {
    if (isVirtkitError(err, 'cpio.invalid')) return err;
    throw err;
  }
  throw new Error('spec was accepted');
}

describe('gen_init_cpio spec parser', () => {
  it('parses every entry type', () => {
    const entries = parseCpioSpec(SEED_SPEC, { baseDir: work });
    expect(entries).toEqual([
      { kind: 'dir', name: '/dev', mode: 0o755, uid: 0, gid: 0 },
      { kind: 'device', name: '/dev/console', mode: 0o600, uid: 0, gid: 0, device: 'char', major: 5, minor: 1 },
      { kind: 'device', name: '/dev/vda', mode: 0o660, uid: 0, gid: 6, device: 'block', major: 254, minor: 0 },
      { kind: 'dir', name: '/bin', mode: 0o755, uid: 0, gid: 0 },
      { kind: 'file', name: '/bin/busybox', content: { hostPath: join(work, 'busybox') }, mode: 0o755, uid: 0, gid: 0 },
      { kind: 'symlink', name: '/bin/sh', target: 'busybox', mode: 0o777, uid: 0, gid: 0 },
      { kind: 'file', name: '/init', content: { hostPath: join(work, 'init') }, mode: 0o755, uid: 0, gid: 0 },
      { kind: 'fifo', name: '/run.fifo', mode: 0o644, uid: 0, gid: 0 },
      { kind: 'socket', name: '/run.sock', mode: 0o600, uid: 0, gid: 0 },
    ]);
  });

  it('accepts tabs, runs of blanks, CRLF line ends, comments and blank lines', () => {
    const entries = parseCpioSpec('\r\n  # comment\n\tdir\t/a   0700 1 2\r\n\n', { baseDir: work });
    expect(entries).toEqual([{ kind: 'dir', name: '/a', mode: 0o700, uid: 1, gid: 2 }]);
  });

  it('formats entries back to a spec that parses to the same entries', () => {
    const entries = parseCpioSpec(SEED_SPEC, { baseDir: work });
    expect(parseCpioSpec(formatCpioSpec(entries), { baseDir: work })).toEqual(entries);
  });

  it('builds an archive the real cpio lists', async () => {
    const archive = await cpioToBuffer(parseCpioSpec(SEED_SPEC, { baseDir: work }));
    const names = execFileSync('cpio', ['--quiet', '-t'], { input: archive }).toString().trim().split('\n');
    expect(names).toEqual(['dev', 'dev/console', 'dev/vda', 'bin', 'bin/busybox', 'bin/sh', 'init', 'run.fifo', 'run.sock']);
    expect(execFileSync('cpio', ['--quiet', '-i', '--to-stdout', 'init'], { input: archive }).toString()).toBe('#!/bin/sh\nexec sh\n');
  });

  const cases: Array<[string, string, number, RegExp]> = [
    ['an unknown keyword', 'dir /a 0755 0 0\nfiel /b ./b 0644 0 0', 2, /unknown entry type "fiel"/],
    ['too few fields', 'dir /a 0755 0', 1, /dir: expected 4 fields, got 3/],
    ['too many fields', 'slink /a b 0777 0 0 x', 1, /slink: expected 5 fields, got 6/],
    ['hard links', 'file /a ./init 0644 0 0 /b', 1, /hard links are not supported/],
    ['a non-octal mode', 'dir /a 0789 0 0', 1, /mode must be an octal number, got "0789"/],
    ['a mode with type bits', 'dir /a 040755 0 0', 1, /mode must be at most 07777/],
    ['a negative uid', 'dir /a 0755 -1 0', 1, /uid must be a decimal number/],
    ['a gid beyond 32 bits', 'dir /a 0755 0 4294967296', 1, /gid must be at most 4294967295/],
    ['a bad device type', 'nod /a 0600 0 0 x 1 2', 1, /device type must be "c" or "b", got "x"/],
    ['a hex major', 'nod /a 0600 0 0 c 0x1 2', 1, /major must be a decimal number/],
    ['a duplicate name', 'dir /a 0755 0 0\n\ndir a/ 0755 0 0', 3, /a: already defined on line 1/],
    ['a .. component', '# x\ndir /a/../../etc 0755 0 0', 2, /"\.\." component/],
  ];
  it.each(cases)('refuses %s with the line number', (_label, text, line, message) => {
    const err = parseError(text);
    expect(err.data).toEqual({ line });
    expect(err.message).toMatch(new RegExp(`^line ${line}: `));
    expect(err.message).toMatch(message);
  });

  it('reports a file whose location cannot be read as cpio.invalid when archiving', async () => {
    const entries = parseCpioSpec('file /a ./missing 0644 0 0', { baseDir: work });
    await expect(cpioToBuffer(entries)).rejects.toMatchObject({ code: 'cpio.invalid' });
  });

  it('fuzz: mutated specs give an archive or cpio.invalid, nothing else', async () => {
    // A fixed-seed generator keeps failures reproducible.
    let state = 0x9e3779b9;
    const rand = (n: number): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    const tokens = ['file', 'dir', 'nod', 'slink', 'pipe', 'sock', '/', '..', '.', '/a/../b', '0', '-1', '07777', '7778',
      '99999999999', '4294967295', '0x10', 'c', 'b', '', ' ', '\t', '\n', '#', '\0', '\r', 'ü', './busybox', './init',
      '/dev/null', 'a'.repeat(5000)];
    const mutate = (text: string): string => {
      let s = text;
      for (let k = 1 + rand(4); k > 0; k--) {
        const at = rand(s.length + 1);
        switch (rand(6)) {
          case 0: s = s.slice(0, at) + String.fromCharCode(rand(256)) + s.slice(at + 1); break;
          case 1: s = s.slice(0, at) + s.slice(at + 1 + rand(20)); break;
          case 2: s = s.slice(0, at) + (tokens[rand(tokens.length)] ?? '') + s.slice(at); break;
          case 3: {
            const lines = s.split('\n');
            lines.splice(rand(lines.length + 1), 0, lines[rand(lines.length)] ?? '');
            s = lines.join('\n');
            break;
          }
          case 4: {
            const words = s.split(' ');
            words[rand(words.length)] = tokens[rand(tokens.length)] ?? '';
            s = words.join(' ');
            break;
          }
          default: s = s.slice(0, at);
        }
      }
      return s;
    };
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 10_000; i++) {
      const text = mutate(SEED_SPEC);
      try {
        const archive = await cpioToBuffer(parseCpioSpec(text, { baseDir: work }));
        expect(archive.length % 4).toBe(0);
        accepted++;
      } catch (err) {
        if (!isVirtkitError(err, 'cpio.invalid')) throw new Error(`unexpected error for spec ${JSON.stringify(text)}: ${String(err)}`);
        rejected++;
      }
    }
    // Both outcomes must be exercised, or the mutations are not probing anything.
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});
