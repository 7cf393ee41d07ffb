/**
 * The two parsers of the hot-plug module: the balloon's guest-reported statistics (guest data)
 * and a /proc task stat line. Fixed cases, then bounded fuzzing: any input gives a result of
 * the right shape, never a throw.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStatNames } from './types.js';
import { parseGuestStats, parseTaskCpuSeconds } from './hotplug.js';

/** A small deterministic generator (xorshift32), so a failing input can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

function randomValue(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * 8);
  switch (pick) {
    case 0: return null;
    case 1: return Math.floor(r() * 2 ** 40) - 2 ** 39;
    case 2: return r() * 1e6;
    case 3: return 'x'.repeat(Math.floor(r() * 5));
    case 4: return r() < 0.5;
    case 5: return depth > 2 ? [] : Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      if (depth > 2) return {};
      const keys = ['stats', 'last-update', 'stat-free-memory', 'stat-total-memory', 'stat-swap-in', 'other'];
      return Object.fromEntries(keys.filter(() => r() < 0.5).map((k) => [k, randomValue(r, depth + 1)]));
    }
  }
}

describe('parseGuestStats', () => {
  it('maps QEMU\'s names to virsh\'s and leaves out what the guest never reported (-1)', () => {
    expect(parseGuestStats({
      'last-update': 1700000000,
      stats: { 'stat-free-memory': 1024, 'stat-total-memory': 4096, 'stat-swap-in': -1, 'stat-available-memory': 2048, 'stat-major-faults': 3 },
    })).toEqual({ lastUpdate: 1700000000, stats: { unused: 1024, available: 4096, usable: 2048, major_fault: 3 } });
    expect(parseGuestStats({ 'last-update': 0, stats: {} })).toEqual({ stats: {} });
    expect(parseGuestStats(undefined)).toEqual({ stats: {} });
  });

  it('fuzz: any JSON value gives non-negative safe integers under known names', () => {
    const r = rng(0x9a9a);
    for (let i = 0; i < 5000; i++) {
      const out = parseGuestStats(randomValue(r));
      for (const [name, n] of Object.entries(out.stats)) {
        expect(MemoryStatNames).toContain(name);
        expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      }
      if (out.lastUpdate !== undefined) expect(out.lastUpdate).toBeGreaterThan(0);
    }
  });
});

describe('parseTaskCpuSeconds', () => {
  it('reads utime + stime after the command name, even one with spaces and parentheses', () => {
    const tail = 'S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100';
    expect(parseTaskCpuSeconds(`1234 (CPU 0/TCG) ${tail}`)).toBe(3);
    expect(parseTaskCpuSeconds(`1234 (a) b) (c) ${tail}`)).toBe(3);
    expect(parseTaskCpuSeconds('1234 (x) S 1')).toBeUndefined();
    expect(parseTaskCpuSeconds('no parenthesis')).toBeUndefined();
  });

  it('fuzz: random lines give undefined or a finite non-negative number', () => {
    const r = rng(0x1234);
    const alphabet = '0123456789 ()-S\n\tx';
    for (let i = 0; i < 5000; i++) {
      const line = Array.from({ length: Math.floor(r() * 120) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
      const out = parseTaskCpuSeconds(line);
      if (out !== undefined) expect(Number.isFinite(out) && out >= 0).toBe(true);
    }
  });
});
