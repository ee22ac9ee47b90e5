/**
 * Reading MLflow's SQL store directly, without a server: the fast way out of a self-hosted
 * MLflow. Read only: only SELECTs are sent (a SQLite file is opened read-only).
 *
 * One mapping of MLflow's schema (tables experiments, runs, metrics, params, tags, datasets,
 * inputs, registered_models, model_versions, logged_models …) over a small query interface
 * (db.ts) with one implementation per database: SQLite, PostgreSQL, MySQL/MariaDB. Experiments
 * and runs here; the registry in ./registry.ts, logged models in ./logged-models.ts, what they
 * all ask of the database (and artifact folders) in ./tables.ts.
 * `alembic_version` names the schema's revision. A revision MLflow never shipped is refused,
 * since the tables may mean something else; within known revisions, columns that came later are
 * used when present (PRAGMA table_info, information_schema on the servers).
 *
 * Artifacts: local `artifact_uri`s are read where they are; `mlflow-artifacts:` ones (a server
 * with --serve-artifacts) under the server's artifacts destination, given as `?artifacts=DIR`
 * in the URI, else `mlartifacts/` beside a SQLite file or in the current folder (MLflow's
 * default, relative to where the server ran).
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, RunStatus } from '../../model/index.js';
import { MLFLOW_TAGS, RUN_STATUSES, mlflowSeries } from '../../model/index.js';
import { UsageError } from '../../util/errors.js';
import { restoreInfinities } from '../mlflow-common/infinity.js';
import type { RunQuery, Source } from '../types.js';
import type { Row, SqlDatabase } from './db.js';
import { SqlStoreLoggedModels } from './logged-models.js';
import { SqlStoreRegistry } from './registry.js';
import { KNOWN_REVISIONS } from './revisions.js';
import { SqlTables, num, str, time, type SqlStoreOptions } from './tables.js';

export class SqlStoreSource implements Source {
  readonly kind = 'sqlstore';
  readonly capabilities = { filter: false };
  readonly registry: SqlStoreRegistry;
  readonly loggedModels: SqlStoreLoggedModels;
  readonly uri: string;
  private readonly tables: SqlTables;
  private readonly artifactUris = new Map<string, string>();

  /** Opens the reader on a database, after checking that it holds a schema MLflow shipped. */
  static async open(db: SqlDatabase, options: SqlStoreOptions): Promise<SqlStoreSource> {
    const source = new SqlStoreSource(db, options);
    try {
      if (options.pageSize !== undefined && !(Number.isSafeInteger(options.pageSize) && options.pageSize > 0)) throw new UsageError(`page size ${options.pageSize}: a positive integer is needed`);
      await source.checkSchema();
    } catch (err) {
      await db.close().catch(() => {});
      throw err;
    }
    return source;
  }

  private constructor(
    private readonly db: SqlDatabase,
    private readonly options: SqlStoreOptions,
  ) {
    this.uri = options.uri;
    this.tables = new SqlTables(db, options);
    this.registry = new SqlStoreRegistry(this.tables);
    this.loggedModels = new SqlStoreLoggedModels(this.tables);
  }

  private async checkSchema(): Promise<void> {
    const where = this.db.label;
    if (!(await this.tables.has('alembic_version', 'version_num'))) throw new UsageError(`${where} is not an MLflow database (it has no alembic_version table)`);
    const rows = await this.tables.all('SELECT version_num FROM alembic_version');
    const revision = str(rows[0]?.version_num);
    if (rows.length !== 1 || !revision || !KNOWN_REVISIONS.has(revision)) {
      throw new UsageError(
        `${where} has MLflow schema revision "${rows.length > 1 ? rows.map((r) => str(r.version_num)).join('", "') : (revision ?? 'none')}", which this trackshift does not know (it reads MLflow 1.x to 3.17 schemas); ` +
          'read it through an MLflow server of its version instead (trackshift copy http://…), or upgrade trackshift',
      );
    }
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const e of await this.tables.all('SELECT * FROM experiments ORDER BY experiment_id')) {
      const id = String(e.experiment_id);
      yield {
        id,
        name: String(e.name),
        tags: await this.tables.kv('SELECT "key", "value" FROM experiment_tags WHERE experiment_id = ?', e.experiment_id ?? null),
        lifecycle: e.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
        creationTime: time(e.creation_time),
        lastUpdateTime: time(e.last_update_time),
        ...(e.artifact_location ? { artifactLocation: String(e.artifact_location) } : {}),
      };
    }
  }

  private async toRun(r: Row): Promise<Run> {
    const id = String(r.run_uuid);
    this.artifactUris.set(id, str(r.artifact_uri) ?? '');
    const tags = await this.tables.kv('SELECT "key", "value" FROM tags WHERE run_uuid = ?', id);
    const status = RUN_STATUSES.includes(String(r.status) as RunStatus) ? (String(r.status) as RunStatus) : 'FINISHED';
    const outputs = (await this.tables.has('inputs', 'destination_type'))
      ? await this.tables.all("SELECT destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' AND source_id = ? AND destination_type = 'MODEL_OUTPUT'", id)
      : [];
    return {
      id,
      experimentId: String(r.experiment_id),
      name: str(r.name) || tags[MLFLOW_TAGS.runName] || undefined,
      status,
      startTime: time(r.start_time),
      endTime: time(r.end_time),
      user: str(r.user_id) || tags[MLFLOW_TAGS.user] || undefined,
      lifecycle: r.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
      parentId: tags[MLFLOW_TAGS.parentRunId] || undefined,
      params: await this.tables.kv('SELECT "key", "value" FROM params WHERE run_uuid = ?', id),
      tags,
      inputs: await this.readInputs(id),
      series: (await this.tables.all('SELECT DISTINCT "key" FROM metrics WHERE run_uuid = ? ORDER BY "key"', id)).map((m) => mlflowSeries(String(m.key))),
      ...(outputs.length > 0 ? { modelOutputs: outputs.map((o) => ({ modelId: String(o.destination_id), step: num(o.step) ?? 0 })) } : {}),
    };
  }

  private async readInputs(runId: string): Promise<Run['inputs']> {
    if (!(await this.tables.has('inputs')) || !(await this.tables.has('datasets'))) return [];
    const rows = await this.tables.all(
      `SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
       FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
       WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id = ?`,
      runId,
    );
    const inputs: Run['inputs'] = [];
    for (const r of rows) {
      const tags = await this.tables.all('SELECT name, "value" FROM input_tags WHERE input_uuid = ?', r.input_uuid ?? null);
      inputs.push({
        dataset: {
          name: String(r.name),
          digest: String(r.digest),
          sourceType: String(r.dataset_source_type),
          source: String(r.dataset_source),
          ...(r.dataset_schema !== null && r.dataset_schema !== undefined ? { schema: String(r.dataset_schema) } : {}),
          ...(r.dataset_profile !== null && r.dataset_profile !== undefined ? { profile: String(r.dataset_profile) } : {}),
        },
        tags: Object.fromEntries(tags.map((t) => [String(t.name), String(t.value)])),
      });
    }
    return inputs;
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    const deleted = query.includeDeleted ? '' : " AND lifecycle_stage = 'active'";
    for (const r of await this.tables.all(`SELECT * FROM runs WHERE experiment_id = ?${deleted} ORDER BY start_time, run_uuid`, experimentId)) yield await this.toRun(r);
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const row = (await this.tables.all('SELECT * FROM runs WHERE run_uuid = ?', runId))[0];
    return row && this.toRun(row);
  }

  /**
   * One history in pages of pageSize points, each page one query that starts after the last point
   * of the one before (keyset paging over MLflow's primary key: key, timestamp, step, run,
   * value, is_nan), so that neither trackshift nor the database holds a whole history.
   */
  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const columns = 'SELECT "value", "timestamp", step, is_nan FROM metrics WHERE run_uuid = ? AND "key" = ?';
    const page = this.options.pageSize ?? 10_000;
    const order = ` ORDER BY "timestamp", step, "value", is_nan LIMIT ${page}`;
    // written out instead of a row comparison, (a, b) > (?, ?), which not every planner turns into an index range
    const after =
      ' AND "timestamp" >= ? AND ("timestamp" > ? OR ("timestamp" = ? AND (step > ? OR (step = ? AND ("value" > ? OR ("value" = ? AND is_nan > ?))))))';
    let last: Row | undefined;
    for (;;) {
      const rows = last
        ? await this.tables.all(columns + after + order, run.id, key, last.timestamp!, last.timestamp!, last.timestamp!, last.step!, last.step!, last.value!, last.value!, last.is_nan!)
        : await this.tables.all(columns + order, run.id, key);
      // is_nan marks NaN (stored as 0); ±Infinity are stored as ±MAX_VALUE, read back as ±Infinity
      // where trackshift's tag says the key held them (mlflow-common/infinity.ts), as the REST reader does
      if (rows.length > 0) {
        yield restoreInfinities(
          run,
          key,
          rows.map((r) => ({ key, value: Number(r.is_nan) ? NaN : Number(r.value), timestamp: Number(r.timestamp), step: Number(r.step) })),
        );
      }
      if (rows.length < page) return;
      last = rows[rows.length - 1];
    }
  }

  private async artifactUri(run: Run): Promise<string> {
    return this.artifactUris.get(run.id) ?? str((await this.tables.all('SELECT artifact_uri FROM runs WHERE run_uuid = ?', run.id))[0]?.artifact_uri) ?? '';
  }

  listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    return this.tables.listLocalArtifacts(() => this.artifactUri(run), `run ${run.id}`);
  }

  readArtifact(run: Run, path: string): Promise<Readable> {
    return this.tables.readLocalArtifact(() => this.artifactUri(run), path, `run ${run.id}`);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
