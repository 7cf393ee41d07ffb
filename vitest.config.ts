import { defineConfig } from 'vitest/config';

// Two cores on CI: integration tests boot real TCG guests, so files run at most two at a time
// and guests are shared inside a file wherever a test allows it.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: ['test/global-setup.ts'],
  },
});
