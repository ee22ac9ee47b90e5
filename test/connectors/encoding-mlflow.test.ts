/**
 * The `.trackshift/` encoding on a real MLflow server: the typed run copied into the server is
 * read back equal to the original through the server's REST API and through its SQL store read
 * directly (both undo the encoding), and the server holds it as MLflow metrics, params and
 * artifacts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector } from '../../src/connectors/mlflow/index.js';
import { sqlStoreConnector } from '../../src/connectors/sqlstore/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import { startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { typedFields, typedSource } from '../helpers/typed-source.js';
import { wholeRuns } from '../helpers/whole-run.js';

describe('the .trackshift/ encoding on an MLflow server', () => {
  let server: MlflowServer;
  beforeAll(async () => {
    server = await startMlflowServer();
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('memory → server → REST and SQL readers give back the typed run', async () => {
    const source = typedSource();
    const destination = await mlflowConnector.openDestination!({ location: server.url, side: 'dst', env: {} });
    const plan = await planTransfer(source, emptySelection());
    const result = await transfer(source, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(mkdtempSync(join(tmpdir(), 'trackshift-state-'))) });
    await destination.close?.();
    expect(result.failed).toEqual([]);
    expect(result.encoded.map((e) => e.sourceId)).toEqual(['forkedrun']);
    const original = typedFields(await wholeRuns(source));

    const rest = await mlflowConnector.openSource!({ location: server.url, side: 'src', env: {} });
    const sql = await sqlStoreConnector.openSource!({ location: `sqlite:///${join(server.dir, 'mlflow.db')}?artifacts=${join(server.dir, 'artifacts')}`, side: 'src', env: {} });
    try {
      expect(typedFields(await wholeRuns(rest))).toEqual(original);
      expect(typedFields(await wholeRuns(sql))).toEqual(original);
    } finally {
      await Promise.all([rest.close?.(), sql.close?.()]);
    }
  }, 180_000);
});
