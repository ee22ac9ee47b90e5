/**
 * MLflow's SQL store read directly: a database written by a real MLflow server reads the same as
 * that server's REST API answers for it, runs, metric histories, artifacts and registry included.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector, type MlflowStore } from '../../src/connectors/mlflow/index.js';
import { sqlStoreConnector } from '../../src/connectors/sqlstore/index.js';
import type { Source } from '../../src/connectors/types.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { snapshot } from '../helpers/snapshot.js';

const openSql = (location: string) => sqlStoreConnector.openSource!({ location, side: 'src', env: {} });

async function registry(source: Source) {
  const out: Record<string, unknown> = {};
  for await (const model of source.registry!.listModels()) {
    const versions = [];
    // a server knows its own URL, and gives a portable source; the database alone cannot
    for await (const { portableSource: _, ...v } of source.registry!.listVersions(model.name)) versions.push(v);
    out[model.name] = { model, versions };
  }
  return out;
}

describe('MLflow SQL store, read directly', () => {
  let server: MlflowServer;

  beforeAll(async () => {
    server = await startMlflowServer();
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
  });
  afterAll(() => server?.stop());

  it('reads what the REST API answers for the same database, field by field', async () => {
    const rest = (await mlflowConnector.openSource!({ location: server.url, side: 'src', env: {} })) as MlflowStore;
    const sql = await openSql(`sqlite:///${join(server.dir, 'mlflow.db')}?artifacts=${join(server.dir, 'artifacts')}`);
    try {
      expect(sql.kind).toBe('sqlstore');
      expect(await snapshot(sql)).toEqual(await snapshot(rest));
      expect(await registry(sql)).toEqual(await registry(rest));
      // logged models and the runs' links to them
      const experiment = [];
      for await (const e of sql.listExperiments()) if (e.name === 'registry-exp') experiment.push(e);
      const fromSql = [];
      for await (const m of sql.loggedModels!.listLoggedModels(experiment[0]!.id)) fromSql.push(m);
      const fromRest = [];
      for await (const m of rest.loggedModels.listLoggedModels(experiment[0]!.id)) fromRest.push(m);
      expect(fromSql.sort((a, b) => a.id.localeCompare(b.id))).toEqual(fromRest.sort((a, b) => a.id.localeCompare(b.id)));
      const files = [];
      for await (const f of sql.loggedModels!.listLoggedModelArtifacts(fromSql[0]!)) files.push(f.path);
      expect(files).toContain('MLmodel');
    } finally {
      await Promise.all([sql.close?.(), rest.close()]);
    }
  });

  it('refuses a database of an unknown schema, and one that is not MLflow\'s, saying what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trackshift-sql-'));
    const future = new Database(join(dir, 'future.db'));
    future.exec("CREATE TABLE alembic_version (version_num TEXT); INSERT INTO alembic_version VALUES ('ffffffffffff')");
    future.close();
    await expect(openSql(`sqlite:///${join(dir, 'future.db')}`)).rejects.toThrow(/schema revision "ffffffffffff", which this trackshift does not know/);
    const other = new Database(join(dir, 'other.db'));
    other.exec('CREATE TABLE t (x)');
    other.close();
    await expect(openSql(`sqlite:///${join(dir, 'other.db')}`)).rejects.toThrow(/is not an MLflow database/);
    await expect(openSql(`sqlite:///${join(dir, 'missing.db')}`)).rejects.toThrow(/cannot open the MLflow database/);
    await expect(openSql('postgresql://user:pw@db/mlflow')).rejects.toThrow(/reads MLflow's SQL store from SQLite files/);
  });
});
