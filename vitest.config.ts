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
    // every mlflow the tests start (servers, fixture scripts) inherits these: MLflow 3's telemetry
    // would call a host that is not on loopback, and its thread changes os.environ while the
    // client iterates it (KeyError '_MLFLOW_TELEMETRY_SESSION_ID', seen failing a fixture)
    env: { MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' },
  },
});
