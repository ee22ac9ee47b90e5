/**
 * MariaDB (MySQL's protocol, the mysql2 driver): the doubles the writer stores read back exactly
 * through MLflow's own store (pymysql), and keys with quotes and backslashes come back as they
 * went. -0 alone becomes 0: MariaDB has no negative zero, and MLflow's own -0.0 becomes 0 too.
 * A run without a user reads back through MLflow (a NULL user_id makes its get_run fail).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlStoreDestination } from '../../src/connectors/sqlstore/index.js';
import type { Run } from '../../src/model/index.js';
import type { DatabaseServer } from '../harness/db-servers.js';
import { startMariadb } from '../harness/mariadb.js';
import { runTool } from '../harness/mlflow-server.js';

const T0 = 1_700_000_000_000;
/** doubles whose shortest text is long, tiny, huge or subnormal, and -0 (whose String() is "0") */
const VALUES = [-0, 0, 0.1 + 0.2, 1 / 3, 5e-324, -5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, -Number.MAX_VALUE, 123456789.12345679, 1e21, 1e-7, -2.5];
const KEYS = ["quote's", 'back\\slash', 'ünï/😀'];

/** Every point of the run's metrics as MLflow's Python store reads them: value as repr(), so that -0.0 shows. */
const READ_WITH_MLFLOW = `
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
run = client.get_run(sys.argv[2])
out = {key: [[m.step, repr(m.value)] for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)] for key in run.data.metrics}
print(json.dumps(out))
`;

/** -0.0 logged by MLflow itself, read back: what its store keeps of the sign. */
const MLFLOW_OWN_ZERO = `
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
run = client.create_run(client.create_experiment('mlflow-own'))
client.log_metric(run.info.run_id, 'zero', -0.0, step=0)
print(repr(client.get_metric_history(run.info.run_id, 'zero')[0].value))
`;

describe('MariaDB: doubles stored exactly', () => {
  let server: DatabaseServer;
  beforeAll(async () => {
    server = await startMariadb();
    await server.createDatabase('mlflow');
    await runTool(3, 'mlflow', ['db', 'upgrade', server.uri('mlflow', 'pymysql')]);
  });
  afterAll(() => server?.stop());

  it('as MLflow reads them back (-0 as MariaDB keeps MLflow’s own: 0), of a run without a user', async () => {
    const destination = await openSqlStoreDestination(server.uri('mlflow'), undefined, 1);
    let runId: string;
    try {
      const experimentId = await destination.ensureExperiment({ id: 'e1', name: 'doubles', tags: {}, lifecycle: 'active' }, 'doubles');
      const run: Run = { id: 'r1', experimentId: 'e1', name: 'doubles', status: 'FINISHED', startTime: T0, endTime: T0 + 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [] };
      runId = await destination.createRun(experimentId, run);
      const metrics = KEYS.flatMap((key) => VALUES.map((value, step) => ({ key, value, timestamp: T0 + step, step })));
      await destination.writeBatch(runId, { params: [], tags: [], metrics });
      const written = await destination.finishRun(runId, run);
      expect(written?.warnings).toEqual([expect.stringMatching(/^metric values -0 are stored as 0: MySQL and MariaDB have no negative zero/)]);
    } finally {
      await destination.close();
    }
    const read = JSON.parse(await runTool(3, 'python', ['-c', READ_WITH_MLFLOW, server.uri('mlflow', 'pymysql'), runId])) as Record<string, Array<[number, string]>>;
    // MariaDB has no -0 (even the literal -0e0 is 0): it keeps 0, for MLflow's own writes too
    const mlflowsOwnZero = Number(await runTool(3, 'python', ['-c', MLFLOW_OWN_ZERO, server.uri('mlflow', 'pymysql')]));
    expect(Object.is(mlflowsOwnZero, 0)).toBe(true);
    const expected = Object.fromEntries(KEYS.map((key) => [key, VALUES.map((value, step) => [step, Object.is(value, -0) ? mlflowsOwnZero : value])]));
    expect(Object.fromEntries(Object.entries(read).map(([key, points]) => [key, points.map(([step, text]) => [step, Number(text)])]))).toEqual(expected);
  });
});
