import { describe, expect, it } from 'vitest';
import { LruCache } from './lru-cache.js';

describe('LruCache', () => {
  it('evicts the least recently used entry and shares concurrent loads', async () => {
    const cache = new LruCache<number, string>(2);
    let loads = 0;
    const load = (v: string) => async (): Promise<string> => { loads++; return v; };
    const [a1, a2] = await Promise.all([cache.get(1, load('a')), cache.get(1, load('a'))]);
    expect([a1, a2, loads]).toEqual(['a', 'a', 1]);
    await cache.get(2, load('b'));
    await cache.get(1, load('a')); // 1 is now the most recent
    await cache.get(3, load('c')); // evicts 2
    expect(cache.size).toBe(2);
    loads = 0;
    await cache.get(1, load('a'));
    await cache.get(2, load('b'));
    expect(loads).toBe(1);
  });

  it('does not keep failed loads', async () => {
    const cache = new LruCache<string, number>(4);
    await expect(cache.get('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await cache.get('k', async () => 7)).toBe(7);
  });
});
