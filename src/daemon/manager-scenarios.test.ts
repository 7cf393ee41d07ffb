/**
 * Every manager scenario (test/scenarios/manager-scenarios.ts) on the fake driver, each on a
 * fresh store and fake host. The same list runs on real QEMU in
 * test/integration/manager-scenarios.test.ts.
 */
import { afterEach, beforeEach, describe, it } from 'vitest';
import { fakeContext, type FakeContext } from '../../test/scenarios/fake-context.js';
import { scenarios } from '../../test/scenarios/manager-scenarios.js';

describe('manager scenarios on the fake driver', () => {
  let ctx: FakeContext;
  beforeEach(async () => { ctx = await fakeContext(); });
  afterEach(async () => { await ctx.cleanup(); });

  for (const s of scenarios) {
    it(s.name, () => s.run(ctx));
  }
});
