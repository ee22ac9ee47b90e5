import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // integration tests start real MLflow servers: give them room, and run files in parallel
    // only as far as two cores allow
    testTimeout: 300_000,
    hookTimeout: 180_000,
    poolOptions: { forks: { maxForks: 2 } },
    pool: 'forks',
  },
});
