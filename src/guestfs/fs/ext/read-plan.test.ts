import { describe, expect, test } from 'vitest';
import { planReads } from './read-plan.js';

const limits = { maxBlocks: 16, gapBlocks: 2, maxGapTotal: 4 };

describe('planReads', () => {
  test('neighbouring wants share one read, in block order, whatever order they came in', () => {
    const plan = planReads([{ physical: 12, count: 1 }, { physical: 10, count: 2 }, { physical: 13, count: 3 }], limits);
    expect(plan.reads).toEqual([{ first: 10, count: 6 }]);
    expect(plan.readOf).toEqual([0, 0, 0]);
  });

  test('a gap wider than gapBlocks, a read past maxBlocks, or too much gap in total start a new read', () => {
    expect(planReads([{ physical: 0, count: 1 }, { physical: 4, count: 1 }], limits).reads).toHaveLength(2);
    expect(planReads([{ physical: 0, count: 10 }, { physical: 10, count: 10 }], limits).reads).toEqual([{ first: 0, count: 10 }, { first: 10, count: 10 }]);
    const gappy = planReads([0, 3, 6, 9, 12].map((physical) => ({ physical, count: 1 })), limits);
    expect(gappy.reads).toEqual([{ first: 0, count: 7 }, { first: 9, count: 1 }, { first: 12, count: 1 }]);
  });

  test('overlapping and repeated wants (one block in many directories) are each served by the read that covers them', () => {
    const wants = [{ physical: 5, count: 4 }, { physical: 5, count: 4 }, { physical: 6, count: 1 }, { physical: 100, count: 1 }];
    const plan = planReads(wants, limits);
    expect(plan.reads).toEqual([{ first: 5, count: 4 }, { first: 100, count: 1 }]);
    wants.forEach((w, i) => {
      const r = plan.reads[plan.readOf[i]!]!;
      expect(w.physical >= r.first && w.physical + w.count <= r.first + r.count).toBe(true);
    });
  });

  test('a want longer than maxBlocks is read alone, whole', () => {
    expect(planReads([{ physical: 0, count: 40 }, { physical: 40, count: 1 }], limits).reads).toEqual([{ first: 0, count: 40 }, { first: 40, count: 1 }]);
  });
});
