import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import {
  MaxPathLength, affects, ancestorsOf, assertValidPath, baseName, decodeSegment, encodeSegment, isAtOrBelow,
  isValidPath, joinPath, parentPath, parsePath,
} from './path.js';
import { mulberry32 as prng } from '../../test/helpers/prng.js';

// Characters weighted towards the ones that matter to the grammar.
const Alphabet = ['/', '/', '/', '.', '..', 'a', 'B', '9', '-', '_', '@', ':', '%', ' ', '\n', '\u0000', 'é', '🐧', '\\', '*',
  '\uD800', 'x'.repeat(300)];

function randomString(rand: () => number): string {
  const n = Math.floor(rand() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += Alphabet[Math.floor(rand() * Alphabet.length)]!;
  return s;
}

/** The grammar restated independently of the implementation, as the oracle for the fuzzer. */
function oracle(path: string): boolean {
  if (path === '/') return true;
  if (path.length > MaxPathLength || !path.startsWith('/')) return false;
  return path.slice(1).split('/').every((seg) =>
    seg.length >= 1 && seg.length <= 255 && seg !== '.' && seg !== '..'
    && [...seg].every((ch) => /[A-Za-z0-9]/.test(ch) || '_-.@:+=,~%'.includes(ch)));
}

describe('path grammar', () => {
  it('accepts valid paths', () => {
    for (const p of ['/', '/a', '/domain/web1/state', '/a.b/c-d/e_f/g@h/i:j/k+l/m=n/o,p/q~r/s%20t', '/...', '/.a', `/${'x'.repeat(255)}`]) {
      expect(isValidPath(p), p).toBe(true);
    }
  });

  it('rejects invalid paths with a typed error naming the reason', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['', /empty/], ['a', /start with/], ['/a/', /end with/], ['//a', /empty segment/], ['/a b', /may hold only/],
      ['/./a', /"\."/], ['/a/..', /"\.\."/], [`/${'x'.repeat(256)}`, /at most 255/], [`/${'ab/'.repeat(400)}a`, /at most 1024/],
      [undefined, /string/], [7, /string/],
    ];
    for (const [path, reason] of cases) {
      try {
        assertValidPath(path);
        expect.unreachable(`accepted ${String(path)}`);
      } catch (err) {
        expect(isVirtkitError(err, 'store.invalid-path')).toBe(true);
        expect((err as { data: { reason: string } }).data.reason).toMatch(reason);
      }
    }
  });

  it('fuzz: every string is either valid (and agrees with the oracle) or a store.invalid-path error', () => {
    const rand = prng(20261121);
    let valid = 0;
    for (let i = 0; i < 10_000; i++) {
      const s = rand() < 0.5 ? `/${randomString(rand)}` : randomString(rand);
      let ok: boolean;
      try {
        assertValidPath(s);
        ok = true;
      } catch (err) {
        expect(isVirtkitError(err, 'store.invalid-path'), JSON.stringify(s)).toBe(true);
        ok = false;
      }
      expect(ok, JSON.stringify(s)).toBe(oracle(s));
      if (ok) {
        valid++;
        const segments = parsePath(s);
        expect(joinPath('/', ...segments)).toBe(s);
        if (s !== '/') expect(joinPath(parentPath(s)!, baseName(s))).toBe(s);
      }
    }
    expect(valid).toBeGreaterThan(100);
  });

  it('rejects long inputs without scanning them', () => {
    // The length is checked before any pattern (a scan of these would take the test's whole timeout).
    const huge = `/${'a'.repeat(10_000_000)}`;
    expect(isValidPath(huge)).toBe(false);
    expect(isValidPath('/a'.repeat(100_000))).toBe(false);
  });
});

describe('path helpers', () => {
  it('joins segments and refuses one that would escape', () => {
    expect(joinPath('/', 'domain', 'web1')).toBe('/domain/web1');
    expect(joinPath('/domain', 'web1', 'state')).toBe('/domain/web1/state');
    for (const bad of ['a/b', '..', '.', '', 'a b']) {
      expect(() => joinPath('/domain', bad)).toThrow(/invalid store path segment/);
    }
  });

  it('knows parents, names, ancestors and what is at or below what', () => {
    expect(parentPath('/a/b')).toBe('/a');
    expect(parentPath('/a')).toBe('/');
    expect(parentPath('/')).toBeUndefined();
    expect(baseName('/a/b')).toBe('b');
    expect(ancestorsOf('/a/b/c')).toEqual(['/', '/a', '/a/b']);
    expect(isAtOrBelow('/a/b', '/a')).toBe(true);
    expect(isAtOrBelow('/a', '/a')).toBe(true);
    expect(isAtOrBelow('/ab', '/a')).toBe(false);
    expect(isAtOrBelow('/a', '/')).toBe(true);
    expect(affects('write', '/a/b', '/a')).toBe(true);
    expect(affects('write', '/a', '/a/b')).toBe(false);
    expect(affects('rm', '/a', '/a/b')).toBe(true);
    expect(affects('rm', '/ab', '/a/b')).toBe(false);
  });

  it('fuzz: encodeSegment makes any string one valid segment that decodes back', () => {
    const rand = prng(7);
    const chars = ['a', 'Z', '0', '/', '%', '.', ' ', 'é', '🐧', '\u0000', '\n', '-', '~', '"'];
    for (let i = 0; i < 10_000; i++) {
      let name = '';
      const n = Math.floor(rand() * 10);
      for (let j = 0; j < n; j++) name += chars[Math.floor(rand() * chars.length)]!;
      const seg = encodeSegment(name);
      expect(isValidPath(`/${seg}`), JSON.stringify(name)).toBe(true);
      expect(decodeSegment(seg)).toBe(name);
    }
    expect(encodeSegment('web1')).toBe('web1');
    expect(encodeSegment('a/b c')).toBe('a%2Fb%20c');
  });
});
