import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // integration tests start real MLflow servers: give them room, and run files in parallel
    // only as far as two cores allow; a file that starts three servers at once on a busy machine
    // can need minutes for its beforeAll
    testTimeout: 300_000,
    hookTimeout: 300_000,
    poolOptions: { forks: { maxForks: 2 } },
    pool: 'forks',
  },
});
