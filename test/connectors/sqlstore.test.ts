/**
 * MLflow's SQL store read directly: a database written by a real MLflow server reads the same as
 * that server's REST API answers for it, runs, metric histories, artifacts and registry
 * included, on each database MLflow runs on here: SQLite, PostgreSQL and MariaDB (MySQL's
 * protocol and dialect), the last two started by test/harness/.
 */
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector, type MlflowStore } from '../../src/connectors/mlflow/index.js';
import { displayDbUri, splitArtifactsParam } from '../../src/connectors/sqlstore/db.js';
import { openSqlStore, sqlStoreConnector } from '../../src/connectors/sqlstore/index.js';
import { backtickIdentifiers, mysqlOptions } from '../../src/connectors/sqlstore/mysql.js';
import { numberPlaceholders } from '../../src/connectors/sqlstore/postgres.js';
import type { Source } from '../../src/connectors/types.js';
import { bundleConnector } from '../../src/connectors/bundle/index.js';
import { runJob } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { UsageError } from '../../src/util/errors.js';
import { DB_PASSWORD, type DatabaseServer } from '../harness/db-servers.js';
import { startMariadb } from '../harness/mariadb.js';
import { freePort, runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { startPostgres } from '../harness/postgres.js';
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

async function loggedModels(source: Source, experimentName: string) {
  const models = [];
  for await (const e of source.listExperiments()) {
    if (e.name === experimentName) for await (const m of source.loggedModels!.listLoggedModels(e.id)) models.push(m);
  }
  return models.sort((a, b) => a.id.localeCompare(b.id));
}

/** The one comparison every backend passes: the SQL store read equals the REST API's answers. */
async function expectSameAsRest(sql: Source, server: MlflowServer): Promise<void> {
  const rest = (await mlflowConnector.openSource!({ location: server.url, side: 'src', env: {} })) as MlflowStore;
  try {
    expect(sql.kind).toBe('sqlstore');
    expect(await snapshot(sql)).toEqual(await snapshot(rest));
    expect(await registry(sql)).toEqual(await registry(rest));
    // logged models and the runs' links to them
    const fromSql = await loggedModels(sql, 'registry-exp');
    expect(fromSql.length).toBeGreaterThan(0);
    expect(fromSql).toEqual(await loggedModels(rest, 'registry-exp'));
    const files = [];
    for await (const f of sql.loggedModels!.listLoggedModelArtifacts(fromSql[0]!)) files.push(f.path);
    expect(files).toContain('MLmodel');
  } finally {
    await rest.close();
  }
}

/** Every metric history read in pages of 7 (keyset paging through ties, NaN, ±Infinity) equals one read in whole pages. */
async function expectSmallPagesSame(location: string): Promise<void> {
  const whole = await openSqlStore(location);
  const paged = await openSqlStore(location, { pageSize: 7 });
  try {
    let points = 0;
    for await (const experiment of whole.listExperiments()) {
      for await (const run of whole.listRuns(experiment.id, { includeDeleted: true })) {
        for (const key of run.series.map((s) => s.key)) {
          const read = async (source: Source) => {
            const all = [];
            for await (const page of source.readMetric(run, key)) all.push(...page);
            return all;
          };
          const a = await read(whole);
          expect(await read(paged)).toEqual(a);
          points += a.length;
        }
      }
    }
    expect(points).toBeGreaterThan(10_000);
  } finally {
    await Promise.all([whole.close(), paged.close()]);
  }
}

async function writeFixtures(server: MlflowServer): Promise<void> {
  await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
  await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
}

/** How MLflow runs on each database server, and how trackshift is pointed at it. */
interface ServerBackend {
  name: string;
  start(): Promise<DatabaseServer>;
  /** the SQLAlchemy driver MLflow is given (postgresql+psycopg2://, mysql+pymysql://) */
  mlflowDriver: string;
  /** the reader takes both forms: this one is tested on the full read */
  readerDriver?: string;
  /** words of the message for a refused password / nothing listening / no such database */
  scheme: string;
}

const SERVER_BACKENDS: ServerBackend[] = [
  // MLflow users write the driver suffix: the reader is given exactly what the server was
  { name: 'PostgreSQL', start: startPostgres, mlflowDriver: 'psycopg2', readerDriver: 'psycopg2', scheme: 'postgresql' },
  { name: 'MariaDB (MySQL)', start: startMariadb, mlflowDriver: 'pymysql', scheme: 'mysql' },
];

describe('SQL store URIs', () => {
  it('are shown without password or query, an unencoded @ in the password included', () => {
    expect(displayDbUri('postgresql+psycopg2://ana:s3cr%40t@db:5432/mlflow?sslmode=require&password=x')).toBe('postgresql+psycopg2://ana@db:5432/mlflow');
    expect(displayDbUri('mysql://ana:p@ss@db/mlflow')).toBe('mysql://ana@db/mlflow');
    expect(displayDbUri('mysql://db/mlflow')).toBe('mysql://db/mlflow');
    expect(displayDbUri('sqlite:////srv/mlflow.db')).toBe('sqlite:////srv/mlflow.db');
  });

  it('lose ?artifacts= before the driver sees them, and keep the other parameters as written', () => {
    expect(splitArtifactsParam('postgresql://a@h/db?sslmode=require&artifacts=/srv/my%20art&options=-csearch_path%3Dml')).toEqual({
      uri: 'postgresql://a@h/db?sslmode=require&options=-csearch_path%3Dml',
      artifacts: '/srv/my art',
    });
    expect(splitArtifactsParam('sqlite:///x.db?artifacts=/a')).toEqual({ uri: 'sqlite:///x.db', artifacts: '/a' });
    expect(splitArtifactsParam('sqlite:///x.db')).toEqual({ uri: 'sqlite:///x.db' });
  });

  it('are turned into what each driver takes', () => {
    expect(numberPlaceholders('SELECT * FROM t WHERE a = ? AND b > ?')).toBe('SELECT * FROM t WHERE a = $1 AND b > $2');
    expect(backtickIdentifiers('SELECT "key", "value" FROM tags')).toBe('SELECT `key`, `value` FROM tags');
    const { options, password } = mysqlOptions('mysql+pymysql://ana:p%3Aw@[::1]:3307/ml%2Dflow?charset=utf8mb4&unix_socket=/run/m.sock', 'x');
    expect(password).toBe('p:w');
    expect(options).toMatchObject({ host: '::1', port: 3307, user: 'ana', password: 'p:w', database: 'ml-flow', socketPath: '/run/m.sock' });
    expect(() => mysqlOptions('mysql://a@h/db?local_infile=1', 'mysql://a@h/db')).toThrow(/"local_infile" is not understood/);
  });
});

describe('MLflow SQL store on SQLite, read directly', () => {
  let server: MlflowServer;

  beforeAll(async () => {
    server = await startMlflowServer();
    await writeFixtures(server);
  });
  afterAll(() => server?.stop());

  it('reads what the REST API answers for the same database, field by field', async () => {
    const location = `sqlite:///${join(server.dir, 'mlflow.db')}?artifacts=${join(server.dir, 'artifacts')}`;
    const sql = await openSql(location);
    try {
      expect(sql.uri).toBe(`sqlite:///${join(server.dir, 'mlflow.db')}`);
      await expectSameAsRest(sql, server);
    } finally {
      await sql.close?.();
    }
    await expectSmallPagesSame(location);
  });

  it('refuses a proxied artifact URI that climbs out of the artifacts root', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trackshift-sql-'));
    copyFileSync(join(server.dir, 'mlflow.db'), join(dir, 'mlflow.db'));
    const db = new Database(join(dir, 'mlflow.db'));
    const { run_uuid: runId } = db.prepare("SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active' LIMIT 1").get() as { run_uuid: string };
    db.prepare('UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?').run('mlflow-artifacts:/../../../../../../etc', runId);
    db.close();
    const sql = await openSql(`sqlite:///${join(dir, 'mlflow.db')}?artifacts=${join(server.dir, 'artifacts')}`);
    try {
      const run = (await sql.getRun!(runId))!;
      const list = async () => {
        for await (const _ of sql.listArtifacts(run));
      };
      await expect(list()).rejects.toThrow(/mlflow-artifacts:\/\.\.\/.*unsafe path .*contains a "\.\." segment/);
      await expect(sql.readArtifact(run, 'passwd')).rejects.toThrow(/contains a "\.\." segment/);
    } finally {
      await sql.close?.();
    }
  });

  it("refuses a database of an unknown schema, and one that is not MLflow's, saying what to do", async () => {
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
    await expect(openSql('sqlite://relative.db')).rejects.toThrow(/not a SQLite URI/);
  });
});

describe.each(SERVER_BACKENDS.map((b) => [b.name, b] as const))('MLflow SQL store on %s, read directly', (_, backend) => {
  let db: DatabaseServer;
  let server: MlflowServer;
  const secrets = [DB_PASSWORD, encodeURIComponent(DB_PASSWORD), 'Wr0ng:pass@word', encodeURIComponent('Wr0ng:pass@word')];

  beforeAll(async () => {
    db = await backend.start();
    await db.createDatabase('mlflow');
    server = await startMlflowServer({ backendStoreUri: db.uri('mlflow', backend.mlflowDriver) });
    await writeFixtures(server);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.stop();
  });

  it('reads what the REST API answers for the same database, field by field', async () => {
    const location = `${db.uri('mlflow', backend.readerDriver)}?artifacts=${join(server.dir, 'artifacts')}`;
    const sql = await openSql(location);
    try {
      // the password never reaches the source's printable location
      expect(sql.uri).toBe(`${backend.scheme}${backend.readerDriver ? `+${backend.readerDriver}` : ''}://${db.user}@127.0.0.1:${db.port}/mlflow`);
      await expectSameAsRest(sql, server);
    } finally {
      await sql.close?.();
    }
    await expectSmallPagesSame(`${db.uri('mlflow')}?artifacts=${join(server.dir, 'artifacts')}`);
  });

  it('exports the database into a bundle through the engine, four runs at a time, naming it without the password', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'trackshift-sql-export-'));
    const report = await runJob({
      command: 'export',
      source: `${db.uri('mlflow', backend.readerDriver)}?artifacts=${join(server.dir, 'artifacts')}`,
      destination: join(tmp, 'bundle'),
      selection: { ...emptySelection(), includeDeleted: true },
      workers: 4,
      artifactWorkers: 4,
      dryRun: false,
      stateDir: join(tmp, 'state'),
      reportFile: join(tmp, 'report.json'),
      newFolderFormat: bundleConnector,
      env: {},
    });
    expect(report.failed).toEqual([]);
    for (const secret of secrets) {
      expect(JSON.stringify(report)).not.toContain(secret);
      expect(readFileSync(join(tmp, 'report.json'), 'utf8')).not.toContain(secret);
    }
    const bundle = await bundleConnector.openSource!({ location: join(tmp, 'bundle'), side: 'src', env: {} });
    const rest = (await mlflowConnector.openSource!({ location: server.url, side: 'src', env: {} })) as MlflowStore;
    try {
      expect(await snapshot(bundle)).toEqual(await snapshot(rest));
    } finally {
      await Promise.all([bundle.close?.(), rest.close()]);
    }
  });

  it('refuses a database of an unknown schema revision, and one that is not MLflow\'s', async () => {
    await db.createDatabase('future');
    await db.exec('future', "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL); INSERT INTO alembic_version VALUES ('ffffffffffff')");
    await expect(openSql(db.uri('future'))).rejects.toThrow(/schema revision "ffffffffffff", which this trackshift does not know/);
    await db.createDatabase('other');
    await db.exec('other', 'CREATE TABLE t (x INTEGER)');
    await expect(openSql(db.uri('other'))).rejects.toThrow(/is not an MLflow database/);
  });

  it('says what is wrong when it cannot connect, and never shows the password', async () => {
    const failure = async (location: string) => {
      const err = await openSql(location).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UsageError);
      const message = (err as Error).message;
      for (const secret of secrets) expect(message).not.toContain(secret);
      expect(message).not.toMatch(/\n\s+at /); // no stack trace
      return message;
    };
    const wrong = db.uri('mlflow').replace(encodeURIComponent(DB_PASSWORD), encodeURIComponent('Wr0ng:pass@word'));
    expect(await failure(wrong)).toMatch(/cannot connect to the MLflow database .*refused the user name or password/);
    const nobody = await freePort();
    expect(await failure(db.uri('mlflow').replace(`:${db.port}/`, `:${nobody}/`))).toMatch(/cannot connect .*nothing listens there/);
    expect(await failure(db.uri('no_such_db'))).toMatch(/cannot connect .*no database of that name/);
  });

  it.runIf(backend.scheme === 'postgresql')('takes the password from PGPASSWORD when the URI has none, as libpq does', async () => {
    const before = process.env.PGPASSWORD;
    process.env.PGPASSWORD = DB_PASSWORD;
    try {
      const sql = await openSql(db.uri('mlflow').replace(`:${encodeURIComponent(DB_PASSWORD)}@`, '@'));
      await sql.close?.();
    } finally {
      if (before === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = before;
    }
  });
});
