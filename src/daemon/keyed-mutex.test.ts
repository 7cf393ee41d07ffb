import { describe, expect, it } from 'vitest';
import { KeyedMutex } from './keyed-mutex.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('KeyedMutex', () => {
  it('runs operations on one key one at a time, in order, and different keys side by side', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const op = (key: string, id: string) => m.run(key, async () => {
      log.push(`${id}+`);
      await tick();
      await tick();
      log.push(`${id}-`);
      return id;
    });
    const results = await Promise.all([op('a', 'a1'), op('a', 'a2'), op('b', 'b1')]);
    expect(results).toEqual(['a1', 'a2', 'b1']);
    expect(log.indexOf('a1-')).toBeLessThan(log.indexOf('a2+'));
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
  });

  it('keeps going after a failed operation', async () => {
    const m = new KeyedMutex();
    await expect(m.run('k', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await m.run('k', async () => 42)).toBe(42);
  });
});
