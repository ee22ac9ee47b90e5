/**
 * Reading MLflow's SQL store directly, without a server: the fast way out of a self-hosted
 * MLflow. Read only: only SELECTs are sent (a SQLite file is opened read-only).
 *
 * One mapping of MLflow's schema (tables experiments, runs, metrics, params, tags, datasets,
 * inputs, registered_models, model_versions, logged_models …) over a small query interface
 * (db.ts) with one implementation per database: SQLite, PostgreSQL, MySQL/MariaDB.
 * `alembic_version` names the schema's revision. A revision MLflow never shipped is refused,
 * since the tables may mean something else; within known revisions, columns that came later are
 * used when present (PRAGMA table_info, information_schema on the servers).
 *
 * Artifacts: local `artifact_uri`s are read where they are; `mlflow-artifacts:` ones (a server
 * with --serve-artifacts) under the server's artifacts destination, given as `?artifacts=DIR`
 * in the URI, else `mlartifacts/` beside a SQLite file or in the current folder (MLflow's
 * default, relative to where the server ran).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ArtifactFile, Experiment, LoggedModel, MetricPoint, ModelStage, ModelVersion, RegisteredModel, Run, RunStatus } from '../../model/index.js';
import { MLFLOW_TAGS, MODEL_STAGES, RUN_STATUSES, mlflowSeries } from '../../model/index.js';
import { InvalidInputError, UsageError, errorMessage } from '../../util/errors.js';
import { isDir, walkFiles } from '../../util/fs.js';
import { safeJoin } from '../../util/paths.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import { proxyPath } from '../mlflow-common/proxy.js';
import type { LoggedModelReader, RegistryReader, RunQuery, Source } from '../types.js';
import type { Row, SqlDatabase, SqlParam } from './db.js';
import { KNOWN_REVISIONS } from './revisions.js';

const LOGGED_MODEL_STATUS: Record<number, string> = { 0: 'LOGGED_MODEL_STATUS_UNSPECIFIED', 1: 'LOGGED_MODEL_PENDING', 2: 'LOGGED_MODEL_READY', 3: 'LOGGED_MODEL_UPLOAD_FAILED' };

const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
const time = (v: unknown) => (v ? Number(v) : undefined);

export interface SqlStoreOptions {
  /** the location, safe to print */
  uri: string;
  /** where `mlflow-artifacts:` URIs point (the server's --artifacts-destination) */
  artifactsRoot: string;
  /** what relative artifact URIs are relative to */
  baseDir: string;
  /** metric points per query (default 10,000) */
  pageSize?: number;
}

export class SqlStoreSource implements Source {
  readonly kind = 'sqlstore';
  readonly capabilities = { filter: false };
  readonly registry: RegistryReader;
  readonly loggedModels: LoggedModelReader;
  readonly uri: string;
  private readonly columns = new Map<string, Promise<Set<string>>>();
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
    this.registry = {
      listModels: () => this.listModels(),
      getModel: async (name) => {
        const row = (await this.listModelRows(name))[0];
        return row && this.toModel(row);
      },
      listVersions: (name) => this.listVersions(name),
    };
    this.loggedModels = {
      listLoggedModels: (experimentId) => this.listLoggedModels(experimentId),
      listLoggedModelArtifacts: (model) => this.listLocalArtifacts(() => this.loggedModelLocation(model.id), `logged model ${model.id}`),
      readLoggedModelArtifact: (model, path) => this.readLocalArtifact(() => this.loggedModelLocation(model.id), path, `logged model ${model.id}`),
    };
  }

  private async checkSchema(): Promise<void> {
    const where = this.db.label;
    if (!(await this.has('alembic_version', 'version_num'))) throw new UsageError(`${where} is not an MLflow database (it has no alembic_version table)`);
    const rows = await this.all('SELECT version_num FROM alembic_version');
    const revision = str(rows[0]?.version_num);
    if (rows.length !== 1 || !revision || !KNOWN_REVISIONS.has(revision)) {
      throw new UsageError(
        `${where} has MLflow schema revision "${rows.length > 1 ? rows.map((r) => str(r.version_num)).join('", "') : (revision ?? 'none')}", which this trackshift does not know (it reads MLflow 1.x to 3.17 schemas); ` +
          'read it through an MLflow server of its version instead (trackshift copy http://…), or upgrade trackshift',
      );
    }
  }

  private async has(table: string, column?: string): Promise<boolean> {
    let cols = this.columns.get(table);
    if (!cols) {
      cols = this.db.columns(table);
      this.columns.set(table, cols);
    }
    const names = await cols;
    return column === undefined ? names.size > 0 : names.has(column);
  }

  private all(sql: string, ...params: SqlParam[]): Promise<Row[]> {
    return this.db.all(sql, params);
  }

  private async kv(sql: string, ...params: SqlParam[]): Promise<Record<string, string>> {
    return Object.fromEntries((await this.all(sql, ...params)).map((r) => [String(r.key), String(r.value ?? '')]));
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const e of await this.all('SELECT * FROM experiments ORDER BY experiment_id')) {
      const id = String(e.experiment_id);
      yield {
        id,
        name: String(e.name),
        tags: await this.kv('SELECT "key", "value" FROM experiment_tags WHERE experiment_id = ?', e.experiment_id ?? null),
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
    const tags = await this.kv('SELECT "key", "value" FROM tags WHERE run_uuid = ?', id);
    const status = RUN_STATUSES.includes(String(r.status) as RunStatus) ? (String(r.status) as RunStatus) : 'FINISHED';
    const outputs = (await this.has('inputs', 'destination_type'))
      ? await this.all("SELECT destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' AND source_id = ? AND destination_type = 'MODEL_OUTPUT'", id)
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
      params: await this.kv('SELECT "key", "value" FROM params WHERE run_uuid = ?', id),
      tags,
      inputs: await this.readInputs(id),
      series: (await this.all('SELECT DISTINCT "key" FROM metrics WHERE run_uuid = ? ORDER BY "key"', id)).map((m) => mlflowSeries(String(m.key))),
      ...(outputs.length > 0 ? { modelOutputs: outputs.map((o) => ({ modelId: String(o.destination_id), step: num(o.step) ?? 0 })) } : {}),
    };
  }

  private async readInputs(runId: string): Promise<Run['inputs']> {
    if (!(await this.has('inputs')) || !(await this.has('datasets'))) return [];
    const rows = await this.all(
      `SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
       FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
       WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id = ?`,
      runId,
    );
    const inputs: Run['inputs'] = [];
    for (const r of rows) {
      const tags = await this.all('SELECT name, "value" FROM input_tags WHERE input_uuid = ?', r.input_uuid ?? null);
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
    for (const r of await this.all(`SELECT * FROM runs WHERE experiment_id = ?${deleted} ORDER BY start_time, run_uuid`, experimentId)) yield await this.toRun(r);
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const row = (await this.all('SELECT * FROM runs WHERE run_uuid = ?', runId))[0];
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
        ? await this.all(columns + after + order, run.id, key, last.timestamp!, last.timestamp!, last.timestamp!, last.step!, last.step!, last.value!, last.value!, last.is_nan!)
        : await this.all(columns + order, run.id, key);
      // is_nan marks NaN (stored as 0); ±Infinity are stored as ±MAX_VALUE, as the server reads them
      if (rows.length > 0) yield rows.map((r) => ({ key, value: Number(r.is_nan) ? NaN : Number(r.value), timestamp: Number(r.timestamp), step: Number(r.step) }));
      if (rows.length < page) return;
      last = rows[rows.length - 1];
    }
  }

  /**
   * A local folder for an artifact URI, or an error saying why it cannot be read. A proxied
   * (`mlflow-artifacts:`) URI must name a folder inside the artifacts root (`?artifacts=`): one
   * that climbs out of it is refused. `file:` and plain paths are the folders the database's
   * own server wrote to, read (never written) as that server would read them.
   */
  private localFolder(uri: string, what: string): string {
    if (uri.startsWith('mlflow-artifacts:')) {
      const path = proxyPath(uri);
      return path ? safeJoin(this.options.artifactsRoot, path, `artifact URI ${uri} of ${what} in ${this.db.label}`) : this.options.artifactsRoot;
    }
    if (uri.startsWith('file:')) return fileURLToPath(uri.startsWith('file://') ? uri : `file://${uri.slice(5)}`);
    if (!/^[a-z][a-z0-9+.-]*:/i.test(uri)) return resolve(this.options.baseDir, uri);
    throw new InvalidInputError(`${what} in ${this.db.label}`, `artifacts at ${uri} are not on this machine; read them through the MLflow server (trackshift copy http://…)`);
  }

  private async *listLocalArtifacts(uri: () => Promise<string>, what: string): AsyncIterable<ArtifactFile> {
    const dir = this.localFolder(await uri(), what);
    if (await isDir(dir)) yield* walkFiles(dir, 'follow');
  }

  private async readLocalArtifact(uri: () => Promise<string>, path: string, what: string): Promise<Readable> {
    const file = safeJoin(this.localFolder(await uri(), what), path, `artifact of ${what}`);
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }

  private async artifactUri(run: Run): Promise<string> {
    return this.artifactUris.get(run.id) ?? str((await this.all('SELECT artifact_uri FROM runs WHERE run_uuid = ?', run.id))[0]?.artifact_uri) ?? '';
  }

  listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    return this.listLocalArtifacts(() => this.artifactUri(run), `run ${run.id}`);
  }

  readArtifact(run: Run, path: string): Promise<Readable> {
    return this.readLocalArtifact(() => this.artifactUri(run), path, `run ${run.id}`);
  }

  // the registry

  private async listModelRows(name?: string): Promise<Row[]> {
    if (!(await this.has('registered_models'))) return [];
    return name === undefined ? this.all('SELECT * FROM registered_models ORDER BY name') : this.all('SELECT * FROM registered_models WHERE name = ?', name);
  }

  private async toModel(r: Row): Promise<RegisteredModel> {
    const name = String(r.name);
    const aliases = (await this.has('registered_model_aliases')) ? await this.all('SELECT alias, version FROM registered_model_aliases WHERE name = ?', name) : [];
    return {
      name,
      ...(r.description ? { description: String(r.description) } : {}),
      tags: await this.kv('SELECT "key", "value" FROM registered_model_tags WHERE name = ?', name),
      aliases: Object.fromEntries(aliases.map((a) => [String(a.alias), String(a.version)])),
      creationTime: time(r.creation_time),
      lastUpdatedTime: time(r.last_updated_time),
    };
  }

  private async *listModels(): AsyncIterable<RegisteredModel> {
    for (const r of await this.listModelRows()) yield await this.toModel(r);
  }

  private async *listVersions(name: string): AsyncIterable<ModelVersion> {
    // deleted versions stay as rows with the stage Deleted_Internal, keeping their number
    const rows = await this.all("SELECT * FROM model_versions WHERE name = ? AND current_stage != 'Deleted_Internal' ORDER BY version", name);
    for (const r of rows) {
      const source = str(r.source) ?? '';
      const runId = str(r.run_id) || undefined;
      const location = parseVersionSource(source, runId, undefined);
      const stage = (MODEL_STAGES as readonly string[]).includes(String(r.current_stage)) ? (String(r.current_stage) as ModelStage) : 'None';
      yield {
        modelName: name,
        version: String(r.version),
        source,
        location,
        ...(runId ? { runId } : {}),
        ...(r.run_link ? { runLink: String(r.run_link) } : {}),
        ...(location.type === 'logged-model' ? { loggedModelId: location.modelId } : {}),
        status: str(r.status) ?? 'READY',
        stage,
        ...(r.description ? { description: String(r.description) } : {}),
        tags: await this.kv('SELECT "key", "value" FROM model_version_tags WHERE name = ? AND version = ?', name, r.version ?? null),
        ...(r.user_id ? { user: String(r.user_id) } : {}),
        creationTime: time(r.creation_time),
        lastUpdatedTime: time(r.last_updated_time),
      };
    }
  }

  // MLflow 3 logged models

  private async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    if (!(await this.has('logged_models'))) return;
    const rows = await this.all("SELECT * FROM logged_models WHERE experiment_id = ? AND lifecycle_stage = 'active' ORDER BY creation_timestamp_ms, model_id", experimentId);
    for (const r of rows) {
      const id = String(r.model_id);
      const params = await this.all('SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?', id);
      const tags = await this.all('SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?', id);
      yield {
        id,
        experimentId: String(r.experiment_id),
        name: str(r.name) ?? '',
        ...(r.source_run_id ? { sourceRunId: String(r.source_run_id) } : {}),
        ...(r.model_type ? { modelType: String(r.model_type) } : {}),
        status: LOGGED_MODEL_STATUS[Number(r.status)] ?? String(r.status),
        ...(r.status_message ? { statusMessage: String(r.status_message) } : {}),
        params: Object.fromEntries(params.map((p) => [String(p.param_key), String(p.param_value)])),
        tags: Object.fromEntries(tags.map((t) => [String(t.tag_key), String(t.tag_value)])),
        creationTime: time(r.creation_timestamp_ms),
        lastUpdatedTime: time(r.last_updated_timestamp_ms),
      };
    }
  }

  private async loggedModelLocation(modelId: string): Promise<string> {
    return str((await this.all('SELECT artifact_location FROM logged_models WHERE model_id = ?', modelId))[0]?.artifact_location) ?? '';
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
