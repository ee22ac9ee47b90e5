/**
 * MLflow's SQL store as a destination, on SQLite, PostgreSQL and MariaDB: a source MLflow server (the rich fixture, and
 * the hard points: NaN/±Infinity, exact duplicates, negative steps) is copied into a database
 * made by `mlflow db upgrade`, while an MLflow server serves that database; what that server
 * then answers through REST equals the source's, field by field (latest metrics and experiment
 * times included), and `verify` finds both ends equal. On each engine: a database MLflow's
 * schema is not in, or at an unknown revision, is refused unchanged (the password of the URI in
 * no message); a dry run writes nothing; a re-run adds nothing; a copy killed with SIGKILL
 * mid-way leaves whole runs only, and its re-run ends with each run once.
 * (PostgreSQL's COPY of staged points: sqlstore-write-postgres.test.ts.)
 */
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector, type MlflowStore } from '../../src/connectors/mlflow/index.js';
import { sqlStoreConnector } from '../../src/connectors/sqlstore/index.js';
import type { Source } from '../../src/connectors/types.js';
import { runJob } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import { runTool, startMlflowServer, runPython, type MlflowServer } from '../harness/mlflow-server.js';
import { snapshot } from '../helpers/snapshot.js';
import { expectEqual } from '../helpers/jobs.js';
import { cli, startCli } from '../cli/run-cli.js';
import { killWhileRunInFlight } from '../helpers/kill.js';
import { DB_PASSWORD, type DatabaseServer } from '../harness/db-servers.js';
import { startMariadb } from '../harness/mariadb.js';
import { startPostgres } from '../harness/postgres.js';

const T0 = 1_700_000_000_000;
/** the rich fixture's 9 runs, the registry fixture's 7, the hard run */
const RUNS = 17;
const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-sqlwrite-'));
const all = { ...emptySelection(), includeDeleted: true };

async function rest<T>(server: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${server}/api/2.0/mlflow/${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  expect(response.ok, `${path}: ${response.status} ${text}`).toBe(true);
  return JSON.parse(text) as T;
}

/** The hard points of a history that a SQL store must keep as MLflow's own writer keeps them. */
async function writeHardRun(server: string): Promise<void> {
  const { experiment_id } = await rest<{ experiment_id: string }>(server, 'experiments/create', { name: 'hard', tags: [{ key: 'k', value: 'v' }] });
  const { run } = await rest<{ run: { info: { run_id: string } } }>(server, 'runs/create', { experiment_id, start_time: T0, run_name: 'hard-points', user_id: 'bo' });
  const id = run.info.run_id;
  const metrics = [
    { key: 'neg', value: 1, timestamp: T0, step: -5 },
    { key: 'neg', value: 2, timestamp: T0 + 1, step: -1 },
    // an exact duplicate: one row in a SQL store
    { key: 'neg', value: 2, timestamp: T0 + 1, step: -1 },
    { key: 'neg', value: 3, timestamp: T0 + 2, step: -3 },
    // the latest points are non-finite: latest_metrics must hold them as MLflow does
    { key: 'inf-last', value: 1, timestamp: T0, step: 0 },
    { key: 'inf-last', value: 'Infinity', timestamp: T0, step: 1 },
    { key: 'nan-last', value: 'NaN', timestamp: T0 + 5, step: 2 },
    { key: 'nan-last', value: 7, timestamp: T0 + 4, step: 2 },
    { key: 'tie', value: 1, timestamp: T0, step: 3 },
    { key: 'tie', value: 9, timestamp: T0, step: 3 },
  ];
  await rest(server, 'runs/log-batch', { run_id: id, metrics, params: [{ key: 'p', value: 'x'.repeat(6000) }], tags: [{ key: 't', value: 'y'.repeat(8000) }] });
  await rest(server, 'runs/update', { run_id: id, status: 'FINISHED', end_time: T0 + 10 });
}

/** Everything REST answers about every run, latest metrics included, keyed by name (copies by their source's). */
async function runsByRest(server: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const { experiments } = await rest<{ experiments: Array<{ experiment_id: string; name: string; creation_time: string; last_update_time: string; lifecycle_stage: string }> }>(
    server,
    'experiments/search',
    { max_results: 1000, view_type: 'ALL' },
  );
  for (const e of experiments) {
    if (e.name !== 'Default') out[`experiment ${e.name}`] = { creation: e.creation_time, update: e.last_update_time, lifecycle: e.lifecycle_stage };
    const { runs = [] } = await rest<{ runs?: Array<{ info: Record<string, unknown>; data: { metrics?: Array<{ key: string }>; tags?: Array<{ key: string; value: string }> } }> }>(server, 'runs/search', {
      experiment_ids: [e.experiment_id],
      run_view_type: 'ALL',
      max_results: 1000,
    });
    for (const r of runs) {
      const { run_id: _, run_uuid: __, experiment_id: ___, artifact_uri: ____, ...info } = r.info;
      out[`${e.name}/${String(info.run_name)}`] = { info, latest: [...(r.data.metrics ?? [])].sort((a, b) => a.key.localeCompare(b.key)) };
    }
  }
  return out;
}

const own = (tags: Record<string, string>) => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith('trackshift.')).sort(([a], [b]) => a.localeCompare(b)));

/** Registered models, their versions and the logged models as a server answers, ids and provenance left out: what a copy must keep. */
async function registryView(source: Source): Promise<unknown> {
  const models: Record<string, unknown> = {};
  for await (const m of source.registry!.listModels()) {
    const versions = [];
    for await (const v of source.registry!.listVersions(m.name)) {
      versions.push({ version: v.version, stage: v.stage, status: v.status, description: v.description, tags: own(v.tags), user: v.user, created: v.creationTime, updated: v.lastUpdatedTime, points: v.location.type });
    }
    models[m.name] = { description: m.description, tags: own(m.tags), aliases: m.aliases, created: m.creationTime, updated: m.lastUpdatedTime, versions };
  }
  const logged = [];
  for await (const e of source.listExperiments()) {
    for await (const lm of source.loggedModels!.listLoggedModels(e.id)) {
      // mlflow.modelVersions is the registry's own record (the client and the server each add to it): checked apart
      const { 'mlflow.modelVersions': _, ...tags } = own(lm.tags);
      logged.push({ experiment: e.name, name: lm.name, type: lm.modelType, status: lm.status, params: lm.params, tags, created: lm.creationTime, updated: lm.lastUpdatedTime });
    }
  }
  logged.sort((a, b) => (a.created ?? 0) - (b.created ?? 0) || a.name.localeCompare(b.name));
  return { models, logged };
}

/** A re-run of the copy with a new journal finds every run there: nothing copied, the table counts unchanged. */
async function expectRerunAddsNothing(source: string, location: string, counts: () => Promise<unknown>): Promise<void> {
  const before = await counts();
  const again = await runJob({ command: 'copy', source, destination: location, selection: all, workers: 2, artifactWorkers: 2, dryRun: false, stateDir: temp(), env: {} });
  expect(again.failed).toEqual([]);
  expect(again.copied.runs).toBe(0);
  expect(await counts()).toEqual(before);
}

async function rows(file: string, sql: string): Promise<unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

/** The database servers the writer is tested on besides SQLite: how MLflow names their driver, how rows are read back. */
interface ServerBackend {
  name: string;
  start(): Promise<DatabaseServer>;
  driver: string;
  /** rows of one query on one database, its identifiers double-quoted */
  query(db: DatabaseServer, database: string, sql: string): Promise<Array<Record<string, unknown>>>;
  /** a BOOLEAN cell as the driver gives it */
  bool(value: boolean): unknown;
  /** the query that lists the tables of the database it runs in, as `name` */
  tables: string;
  /** a database `name` holding MLflow's newest schema, as `mlflow db upgrade` makes it */
  fresh(db: DatabaseServer, name: string): Promise<void>;
}

const upgraded = async (db: DatabaseServer, name: string, driver: string) => void (await runTool(3, 'mlflow', ['db', 'upgrade', db.uri(name, driver)]));
/** per PostgreSQL server, a database upgraded once that fresh ones are copied from */
const templates = new WeakMap<DatabaseServer, Promise<void>>();

const SERVER_BACKENDS: ServerBackend[] = [
  {
    name: 'PostgreSQL',
    start: startPostgres,
    driver: 'psycopg2',
    query: async (db, database, sql) => {
      const client = new pg.Client({ connectionString: db.uri(database) });
      await client.connect();
      try {
        return (await client.query(sql)).rows as Array<Record<string, unknown>>;
      } finally {
        await client.end();
      }
    },
    bool: (value) => value,
    tables: 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1',
    fresh: async (db, name) => {
      const template = templates.get(db) ?? db.createDatabase('template_mlflow').then(() => upgraded(db, 'template_mlflow', 'psycopg2'));
      templates.set(db, template);
      await template;
      await db.exec('postgres', `CREATE DATABASE "${name}" TEMPLATE template_mlflow`);
    },
  },
  {
    name: 'MariaDB (MySQL)',
    start: startMariadb,
    driver: 'pymysql',
    query: async (db, database, sql) => {
      const connection = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password, database });
      try {
        return (await connection.query(sql.replace(/"/g, '`')))[0] as Array<Record<string, unknown>>;
      } finally {
        await connection.end();
      }
    },
    bool: (value) => (value ? 1 : 0),
    tables: "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
    fresh: async (db, name) => {
      await db.createDatabase(name);
      await upgraded(db, name, 'pymysql');
    },
  },
];

/** A destination as the tests read it back: where it is, and one query on it (identifiers double-quoted). */
interface Target {
  location: string;
  query(sql: string): Promise<Array<Record<string, unknown>>>;
}

/** The first cell of the first row, as a number (COUNT(*) comes as text from PostgreSQL). */
const scalar = async (target: Target, sql: string) => Number(Object.values((await target.query(sql))[0]!)[0]);

/**
 * A copy from `source` to `target` killed with SIGKILL while a run is in flight (after at least
 * one is done): only whole runs are there; its re-run skips those and ends with every run once.
 */
async function killAndRerun(source: string, target: Target): Promise<void> {
  const state = temp();
  const args = ['copy', source, target.location, '--include-deleted', '--workers', '1', '--state-dir', state];
  const { child, done } = startCli(args);
  await killWhileRunInFlight(state, child, done);
  expect((await done).signal).toBe('SIGKILL');
  const incomplete = () => scalar(target, 'SELECT COUNT(*) AS n FROM runs r LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t."key" = \'trackshift.complete\' WHERE t."value" IS NULL');
  const copied = await scalar(target, 'SELECT COUNT(*) AS n FROM runs');
  expect(copied).toBeGreaterThan(0);
  expect(copied).toBeLessThan(RUNS);
  expect(await incomplete()).toBe(0);

  const rerun = await cli(args);
  expect(rerun.code, rerun.stderr).toBe(0);
  expect(rerun.stdout).toMatch(/skipped [1-9]/);
  expect(await incomplete()).toBe(0);
  const perSource = await target.query('SELECT "value", COUNT(*) AS n FROM tags WHERE "key" = \'trackshift.source.id\' GROUP BY "value"');
  expect(perSource).toHaveLength(RUNS);
  for (const { n } of perSource) expect(Number(n)).toBe(1);
  expectEqual(await runVerify({ source, destination: target.location, selection: all, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} }), RUNS);
}

describe('MLflow SQL store as a destination (SQLite, PostgreSQL, MariaDB)', () => {
  let source: MlflowServer;
  /** a database at MLflow's newest schema, made once by `mlflow db upgrade`, copied for each test */
  let template: string;

  beforeAll(async () => {
    const dir = temp();
    template = join(dir, 'template.db');
    [source] = await Promise.all([startMlflowServer(), runTool(3, 'mlflow', ['db', 'upgrade', `sqlite:///${template}`])]);
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: source.url });
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: source.url });
    await writeHardRun(source.url);
  });
  afterAll(() => source?.stop());

  const freshDatabase = () => {
    const file = join(temp(), 'mlflow.db');
    copyFileSync(template, file);
    return file;
  };

  it('holds what the source holds, as an MLflow server serving it during the copy answers, field by field', async () => {
    const file = freshDatabase();
    const served = await startMlflowServer({ backendStoreUri: `sqlite:///${file}` });
    try {
      const location = `sqlite:///${file}?artifacts=${join(served.dir, 'artifacts')}`;
      const state = temp();
      const report = await runJob({ command: 'copy', source: source.url, destination: location, selection: all, workers: 4, artifactWorkers: 4, dryRun: false, stateDir: state, env: {} });
      expect(report.failed).toEqual([]);

      const src = (await mlflowConnector.openSource!({ location: source.url, side: 'src', env: {} })) as MlflowStore;
      const dst = (await mlflowConnector.openSource!({ location: served.url, side: 'src', env: {} })) as MlflowStore;
      const sql = await sqlStoreConnector.openSource!({ location, side: 'src', env: {} });
      try {
        const expected = await snapshot(src);
        expect(await snapshot(dst)).toEqual(expected);
        // the database read directly says the same (±Infinity back from the tag)
        expect(await snapshot(sql)).toEqual(expected);
        // the registry with exact times, the source's version numbers, stages and aliases; logged models
        const registry = await registryView(src);
        expect(registry).toMatchObject({ models: { 'fraud-classifier': { aliases: { champion: '2', challenger: '3' } } } });
        expect(await registryView(dst)).toEqual(registry);
        expect(await registryView(sql)).toEqual(registry);
      } finally {
        await Promise.all([src.close(), dst.close(), sql.close?.()]);
      }
      // what REST cannot set: exact experiment times; and latest_metrics kept as MLflow keeps them
      expect(await runsByRest(served.url)).toEqual(await runsByRest(source.url));
      expectEqual(await runVerify({ source: source.url, destination: served.url, selection: all, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} }));

      // MLflow's own ids: uuid4 hex runs, each run once, every one complete
      const runs = (await rows(file, "SELECT r.run_uuid, t.value AS complete FROM runs r LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'trackshift.complete'")) as Array<{ run_uuid: string; complete: string }>;
      expect(runs).toHaveLength(RUNS);
      for (const r of runs) {
        expect(r.run_uuid).toMatch(/^[0-9a-f]{32}$/);
        expect(r.complete).toBe('true');
      }
      // ±Infinity and NaN as MLflow's SQLAlchemy store writes them
      expect(await rows(file, "SELECT value, is_nan FROM metrics WHERE key IN ('inf-last', 'nan-last') ORDER BY key, step, timestamp")).toEqual([
        { value: 1, is_nan: 0 },
        { value: Number.MAX_VALUE, is_nan: 0 },
        { value: 7, is_nan: 0 },
        { value: 0, is_nan: 1 },
      ]);
      expect(await rows(file, "SELECT COUNT(*) AS n FROM metrics WHERE key = 'neg'")).toEqual([{ n: 3 }]);
      // each logged model lists the versions registered from it, as MLflow's server records them
      expect((await rows(file, "SELECT tag_value FROM logged_model_tags WHERE tag_key = 'mlflow.modelVersions' ORDER BY tag_value")).map((r) => (r as { tag_value: string }).tag_value)).toEqual([
        '[{"name": "fraud-classifier", "version": "1"}]',
        '[{"name": "fraud-classifier", "version": "2"}]',
        '[{"name": "fraud-classifier", "version": "3"}]',
        '[{"name": "pyfunc-model", "version": "1"}]',
      ]);

      // a re-run (a new journal) finds every run there and adds nothing
      await expectRerunAddsNothing(source.url, location, () => rows(file, 'SELECT (SELECT COUNT(*) FROM runs) AS runs, (SELECT COUNT(*) FROM metrics) AS metrics, (SELECT COUNT(*) FROM experiments) AS experiments'));
    } finally {
      await served.stop();
    }
  });

  it('refuses a database without MLflow\'s schema, or at a revision it does not know, saying what to run, and changes nothing', async () => {
    const open = (location: string) => sqlStoreConnector.openDestination!({ location, side: 'dst', env: {} });
    const future = freshDatabase();
    const db = new Database(future);
    db.prepare("UPDATE alembic_version SET version_num = 'ffffffffffff'").run();
    db.close();
    const tables = await rows(future, 'SELECT COUNT(*) AS n FROM sqlite_master');
    await expect(open(`sqlite:///${future}`)).rejects.toThrow(/schema revision "ffffffffffff", which this trackshift does not know.*mlflow db upgrade sqlite:\/\/\//);
    expect(await rows(future, 'SELECT COUNT(*) AS n FROM sqlite_master')).toEqual(tables);
    expect(await rows(future, 'SELECT * FROM experiments')).toEqual([]);

    const empty = join(temp(), 'empty.db');
    new Database(empty).close();
    await expect(open(`sqlite:///${empty}`)).rejects.toThrow(/holds no MLflow schema .*`mlflow db upgrade sqlite:\/\/\/.*empty\.db`.*never creates or alters tables/);
    expect(await rows(empty, 'SELECT COUNT(*) AS n FROM sqlite_master')).toEqual([{ n: 0 }]);

    const missing = join(temp(), 'missing.db');
    await expect(open(`sqlite:///${missing}`)).rejects.toThrow(/cannot open the MLflow database .*mlflow db upgrade/);
    expect(existsSync(missing)).toBe(false);

    // older than the writer: a column it fills is missing
    const old = freshDatabase();
    const o = new Database(old);
    o.exec('ALTER TABLE input_tags RENAME TO input_tags_gone');
    o.close();
    await expect(open(`sqlite:///${old}`)).rejects.toThrow(/older than trackshift writes \(no table input_tags\).*mlflow db upgrade/);
  });

  it('keeps the source\'s version numbers in a model that already has versions, where they are free; a dry run writes nothing', async () => {
    const file = freshDatabase();
    const location = `sqlite:///${file}?artifacts=${join(temp(), 'artifacts')}`;
    const dry = await runJob({ command: 'copy', source: source.url, destination: location, selection: all, workers: 2, artifactWorkers: 2, dryRun: true, stateDir: temp(), env: {} });
    expect(dry.failed).toEqual([]);
    expect(await rows(file, 'SELECT (SELECT COUNT(*) FROM experiments) AS e, (SELECT COUNT(*) FROM registered_models) AS m')).toEqual([{ e: 0, m: 0 }]);
    expect(await rows(file, 'PRAGMA journal_mode')).toEqual([{ journal_mode: 'delete' }]);

    const db = new Database(file);
    db.prepare("INSERT INTO registered_models (name, creation_time, last_updated_time) VALUES ('fraud-classifier', 1, 1)").run();
    db.prepare("INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, source, status) VALUES ('fraud-classifier', 9, 1, 1, 'None', 's3://elsewhere/model', 'READY')").run();
    db.close();
    const report = await runJob({ command: 'copy', source: source.url, destination: location, selection: all, workers: 2, artifactWorkers: 2, dryRun: false, stateDir: temp(), env: {} });
    expect(report.failed).toEqual([]);
    expect(report.warnings.map((w) => w.message).join('\n')).not.toMatch(/version numbers differ/);
    expect(await rows(file, "SELECT version, current_stage AS stage FROM model_versions WHERE name = 'fraud-classifier' ORDER BY version")).toEqual([
      { version: 1, stage: 'Archived' },
      { version: 2, stage: 'Production' },
      { version: 3, stage: 'Staging' },
      { version: 5, stage: 'None' },
      { version: 9, stage: 'None' },
    ]);
    expect(await rows(file, "SELECT alias, version FROM registered_model_aliases WHERE name = 'fraud-classifier' ORDER BY alias")).toEqual([
      { alias: 'challenger', version: 3 },
      { alias: 'champion', version: 2 },
    ]);
    expect(await rows(file, 'PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
  });

  it('copies an mlruns folder from the command line as `mlflow migrate-filestore` does, ±Infinity kept', async () => {
    const root = temp();
    const mlruns = join(root, 'mlruns');
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: `file://${mlruns}`, MLFLOW_ALLOW_FILE_STORE: 'true' });
    const file = freshDatabase();
    const result = await cli(['copy', mlruns, `sqlite:///${file}`, '--include-deleted']);
    expect(result.code, result.stderr).toBe(0);
    // no ?artifacts=: beside the database, where `mlflow server` run in its folder keeps them
    expect(existsSync(join(file, '..', 'mlartifacts'))).toBe(true);
    expectEqual(await runVerify({ source: mlruns, destination: `sqlite:///${file}`, selection: all, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} }), 9);

    // the same content as MLflow's own migration of the same folder (which keeps ±Infinity as ±MAX_VALUE only)
    const theirs = join(temp(), 'theirs.db');
    await runTool(3, 'mlflow', ['migrate-filestore', '--source', root, '--target', `sqlite:///${theirs}`], { MLFLOW_ALLOW_FILE_STORE: 'true' });
    const ours = await sqlStoreConnector.openSource!({ location: `sqlite:///${file}`, side: 'src', env: {} });
    const migrated = await sqlStoreConnector.openSource!({ location: `sqlite:///${theirs}`, side: 'src', env: {} });
    try {
      const infinite = (v: number) => (v === Number.MAX_VALUE ? Infinity : v === -Number.MAX_VALUE ? -Infinity : v);
      const expected = await snapshot(migrated);
      for (const e of Object.values(expected)) for (const r of Object.values(e.runs)) for (const points of Object.values(r.metrics)) for (const p of points) p[2] = infinite(p[2]);
      const got = await snapshot(ours);
      expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
      expect(got).toEqual(expected);
      expect(got.rich!.runs[Object.keys(got.rich!.runs).find((id) => got.rich!.runs[id]!.name === 'parent')!]!.metrics.special!.map((p) => p[2])).toEqual([NaN, Infinity, -Infinity, 0, -0.5]);
    } finally {
      await Promise.all([ours.close?.(), migrated.close?.()]);
    }
  });

  it('leaves whole runs only when killed with SIGKILL mid-way, and its re-run ends with every run once', async () => {
    const file = freshDatabase();
    await killAndRerun(source.url, { location: `sqlite:///${file}?artifacts=${join(temp(), 'artifacts')}`, query: (sql) => rows(file, sql) as Promise<Array<Record<string, unknown>>> });
  });

  describe.each(SERVER_BACKENDS.map((b) => [b.name, b] as const))('on %s', (_, backend) => {
    let db: DatabaseServer;
    beforeAll(async () => {
      db = await backend.start();
    });
    afterAll(() => db?.stop());
    const target = (database: string): Target => ({ location: `${db.uri(database)}?artifacts=${join(temp(), 'artifacts')}`, query: (sql) => backend.query(db, database, sql) });

    it('writes it the same way, a connection per worker, while an MLflow server serves it; a re-run adds nothing', async () => {
      await backend.fresh(db, 'roundtrip');
      let served: MlflowServer | undefined;
      try {
        served = await startMlflowServer({ backendStoreUri: db.uri('roundtrip', backend.driver) });
        const location = `${db.uri('roundtrip')}?artifacts=${join(served.dir, 'artifacts')}`;
        const report = await runJob({ command: 'copy', source: source.url, destination: location, selection: all, workers: 4, artifactWorkers: 4, dryRun: false, stateDir: temp(), env: {} });
        expect(report.failed).toEqual([]);
        expect(report.copied.runs).toBe(RUNS);

        const src = (await mlflowConnector.openSource!({ location: source.url, side: 'src', env: {} })) as MlflowStore;
        const dst = (await mlflowConnector.openSource!({ location: served.url, side: 'src', env: {} })) as MlflowStore;
        try {
          expect(await snapshot(dst)).toEqual(await snapshot(src));
          expect(await registryView(dst)).toEqual(await registryView(src));
        } finally {
          await Promise.all([src.close(), dst.close()]);
        }
        expect(await runsByRest(served.url)).toEqual(await runsByRest(source.url));
        expectEqual(await runVerify({ source: source.url, destination: served.url, selection: all, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} }));

        const query = (sql: string) => backend.query(db, 'roundtrip', sql);
        const runs = await query('SELECT r.run_uuid, t."value" AS complete FROM runs r LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t."key" = \'trackshift.complete\'');
        expect(runs).toHaveLength(RUNS);
        for (const r of runs) {
          expect(r.run_uuid).toMatch(/^[0-9a-f]{32}$/);
          expect(r.complete).toBe('true');
        }
        // ±Infinity and NaN as MLflow's SQLAlchemy store writes them on PostgreSQL
        expect(await query('SELECT "value", is_nan FROM metrics WHERE "key" IN (\'inf-last\', \'nan-last\') ORDER BY "key", step, "timestamp"')).toEqual([
          { value: 1, is_nan: backend.bool(false) },
          { value: Number.MAX_VALUE, is_nan: backend.bool(false) },
          { value: 7, is_nan: backend.bool(false) },
          { value: 0, is_nan: backend.bool(true) },
        ]);

        const counts = async () => (await query('SELECT (SELECT COUNT(*) FROM runs) AS runs, (SELECT COUNT(*) FROM metrics) AS metrics, (SELECT COUNT(*) FROM experiments) AS experiments, (SELECT COUNT(*) FROM model_versions) AS versions')).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])));
        await expectRerunAddsNothing(source.url, location, counts);
      } finally {
        await served?.stop();
      }
    });

    it('refuses a database without MLflow\'s schema, or at a revision it does not know, saying what to run without the password, and changes nothing', async () => {
      const refusal = async (database: string): Promise<string> => {
        const error = await sqlStoreConnector.openDestination!({ location: db.uri(database), side: 'dst', env: {} }).then(
          async (opened) => {
            await opened.close?.();
            return new Error('opened');
          },
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(Error);
        const { message } = error as Error;
        for (const secret of [DB_PASSWORD, encodeURIComponent(DB_PASSWORD), 's3cret']) expect(message).not.toContain(secret);
        return message;
      };
      // the URI as it is shown: scheme, user, host, port and database, no password
      const shown = (database: string) => db.uri(database).replace(/:[^:@/]*@/, '@').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const tables = (database: string) => backend.query(db, database, backend.tables);

      await backend.fresh(db, 'future');
      const future = target('future');
      await future.query("UPDATE alembic_version SET version_num = 'ffffffffffff'");
      const before = await tables('future');
      expect(before.length).toBeGreaterThan(20);
      expect(await refusal('future')).toMatch(new RegExp(`schema revision "ffffffffffff", which this trackshift does not know.*\`mlflow db upgrade ${shown('future')}\``));
      expect(await tables('future')).toEqual(before);
      expect(await future.query('SELECT version_num FROM alembic_version')).toEqual([{ version_num: 'ffffffffffff' }]);
      expect(await scalar(future, 'SELECT COUNT(*) FROM experiments')).toBe(0);

      await db.createDatabase('empty');
      expect(await refusal('empty')).toMatch(new RegExp(`holds no MLflow schema .*\`mlflow db upgrade ${shown('empty')}\`.*never creates or alters tables`));
      expect(await tables('empty')).toEqual([]);
    });

    it('writes nothing in a dry run', async () => {
      await backend.fresh(db, 'dry');
      const dry = target('dry');
      // every table's rows counted
      const counts = async () => {
        const out: Record<string, number> = {};
        for (const { name } of await dry.query(backend.tables)) out[String(name)] = await scalar(dry, `SELECT COUNT(*) FROM "${String(name)}"`);
        return out;
      };
      const before = await counts();
      expect(before).toMatchObject({ experiments: 0, runs: 0, metrics: 0, registered_models: 0, alembic_version: 1 });
      const report = await runJob({ command: 'copy', source: source.url, destination: dry.location, selection: all, workers: 2, artifactWorkers: 2, dryRun: true, stateDir: temp(), env: {} });
      expect(report.failed).toEqual([]);
      // what it would do: copy every run
      expect(report.dryRun?.map((a) => a.action)).toEqual(new Array(RUNS).fill('copy'));
      expect(await counts()).toEqual(before);
    });

    it('leaves whole runs only when killed with SIGKILL mid-way, and its re-run ends with every run once', async () => {
      await backend.fresh(db, 'killed');
      await killAndRerun(source.url, target('killed'));
    });
  });
});
