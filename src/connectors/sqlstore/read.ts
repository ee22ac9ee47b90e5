/**
 * Reading MLflow's SQL store directly (`sqlite:///path/mlflow.db`), without a server: the fast
 * way out of a self-hosted MLflow. Read only (the database is opened read-only).
 *
 * The schema is MLflow's (tables experiments, runs, metrics, params, tags, datasets, inputs,
 * registered_models, model_versions, logged_models …); `alembic_version` names its revision.
 * A revision MLflow never shipped is refused, since the tables may mean something else; within
 * known revisions, columns that came later are used when present (PRAGMA table_info).
 *
 * Artifacts: local `artifact_uri`s are read where they are; `mlflow-artifacts:` ones (a server
 * with --serve-artifacts) under the server's artifacts destination, given as `?artifacts=DIR`
 * in the URI, else `mlartifacts/` beside the database (MLflow's default).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { ArtifactFile, Experiment, LoggedModel, MetricPoint, ModelStage, ModelVersion, RegisteredModel, Run, RunStatus } from '../../model/index.js';
import { MLFLOW_TAGS, MODEL_STAGES, RUN_STATUSES } from '../../model/index.js';
import { InvalidInputError, UsageError, errorMessage } from '../../util/errors.js';
import { isDir } from '../../util/fs.js';
import { safeJoin } from '../../util/paths.js';
import { parseVersionSource } from '../mlflow/registry.js';
import { proxyPath } from '../mlflow/proxy.js';
import { walkFiles } from '../mlruns/files.js';
import type { LoggedModelReader, RegistryReader, RunQuery, Source } from '../types.js';
import { KNOWN_REVISIONS } from './revisions.js';

const PAGE = 10_000;
const LOGGED_MODEL_STATUS: Record<number, string> = { 0: 'LOGGED_MODEL_STATUS_UNSPECIFIED', 1: 'LOGGED_MODEL_PENDING', 2: 'LOGGED_MODEL_READY', 3: 'LOGGED_MODEL_UPLOAD_FAILED' };

type Row = Record<string, unknown>;
const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
const time = (v: unknown) => (v ? Number(v) : undefined);

/** `sqlite:///relative.db`, `sqlite:////absolute.db` (SQLAlchemy's rule), with an optional `?artifacts=DIR`. */
export function parseSqliteUri(uri: string): { file: string; artifactsRoot?: string } | undefined {
  const match = /^sqlite:\/\/\/([^?]*)(?:\?(.*))?$/.exec(uri);
  if (!match) return undefined;
  const file = resolve(match[1]!);
  const query = new URLSearchParams(match[2] ?? '');
  const artifacts = query.get('artifacts');
  return { file, ...(artifacts ? { artifactsRoot: resolve(artifacts) } : {}) };
}

export class SqlStoreSource implements Source {
  readonly kind = 'sqlstore';
  readonly capabilities = { filter: false };
  readonly registry: RegistryReader;
  readonly loggedModels: LoggedModelReader;
  private readonly db: Database.Database;
  private readonly columns = new Map<string, Set<string>>();
  private readonly artifactUris = new Map<string, string>();

  constructor(
    private readonly file: string,
    readonly uri: string,
    private readonly artifactsRoot: string = join(dirname(file), 'mlartifacts'),
  ) {
    try {
      this.db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new UsageError(`cannot open the MLflow database ${file}: ${errorMessage(err)}`);
    }
    this.checkSchema();
    this.registry = {
      listModels: () => this.listModels(),
      getModel: async (name) => this.listModelRows(name).map((r) => this.toModel(r))[0],
      listVersions: (name) => this.listVersions(name),
    };
    this.loggedModels = {
      listLoggedModels: (experimentId) => this.listLoggedModels(experimentId),
      listLoggedModelArtifacts: (model) => this.listLocalArtifacts(this.loggedModelLocation(model.id), `logged model ${model.id}`),
      readLoggedModelArtifact: (model, path) => this.readLocalArtifact(this.loggedModelLocation(model.id), path, `logged model ${model.id}`),
    };
  }

  private checkSchema(): void {
    let revision: string | undefined;
    try {
      revision = str((this.db.prepare('SELECT version_num FROM alembic_version').get() as Row | undefined)?.version_num);
    } catch {
      throw new UsageError(`${this.file} is not an MLflow database (it has no alembic_version table)`);
    }
    if (!revision || !KNOWN_REVISIONS.has(revision)) {
      throw new UsageError(
        `${this.file} has MLflow schema revision "${revision ?? 'none'}", which this trackshift does not know (it reads MLflow 1.x to 3.17 schemas); ` +
          'read it through an MLflow server of its version instead (trackshift copy http://…), or upgrade trackshift',
      );
    }
  }

  private has(table: string, column?: string): boolean {
    let cols = this.columns.get(table);
    if (!cols) {
      cols = new Set((this.db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as Row[]).map((r) => String(r.name)));
      this.columns.set(table, cols);
    }
    return column === undefined ? cols.size > 0 : cols.has(column);
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return this.db.prepare(sql).all(...params) as Row[];
  }

  private kv(sql: string, ...params: unknown[]): Record<string, string> {
    return Object.fromEntries(this.all(sql, ...params).map((r) => [String(r.key), String(r.value ?? '')]));
  }

  // experiments and runs

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const e of this.all('SELECT * FROM experiments ORDER BY experiment_id')) {
      const id = String(e.experiment_id);
      yield {
        id,
        name: String(e.name),
        tags: this.kv('SELECT key, value FROM experiment_tags WHERE experiment_id = ?', e.experiment_id),
        lifecycle: e.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
        creationTime: time(e.creation_time),
        lastUpdateTime: time(e.last_update_time),
        ...(e.artifact_location ? { artifactLocation: String(e.artifact_location) } : {}),
      };
    }
  }

  private toRun(r: Row): Run {
    const id = String(r.run_uuid);
    this.artifactUris.set(id, str(r.artifact_uri) ?? '');
    const tags = this.kv('SELECT key, value FROM tags WHERE run_uuid = ?', id);
    const status = RUN_STATUSES.includes(String(r.status) as RunStatus) ? (String(r.status) as RunStatus) : 'FINISHED';
    const outputs = this.has('inputs', 'destination_type')
      ? this.all("SELECT destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' AND source_id = ? AND destination_type = 'MODEL_OUTPUT'", id)
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
      params: this.kv('SELECT key, value FROM params WHERE run_uuid = ?', id),
      tags,
      inputs: this.readInputs(id),
      metricKeys: this.all('SELECT DISTINCT key FROM metrics WHERE run_uuid = ? ORDER BY key', id).map((m) => String(m.key)),
      ...(outputs.length > 0 ? { modelOutputs: outputs.map((o) => ({ modelId: String(o.destination_id), step: num(o.step) ?? 0 })) } : {}),
    };
  }

  private readInputs(runId: string): Run['inputs'] {
    if (!this.has('inputs') || !this.has('datasets')) return [];
    const rows = this.all(
      `SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
       FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
       WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id = ?`,
      runId,
    );
    return rows.map((r) => ({
      dataset: {
        name: String(r.name),
        digest: String(r.digest),
        sourceType: String(r.dataset_source_type),
        source: String(r.dataset_source),
        ...(r.dataset_schema !== null && r.dataset_schema !== undefined ? { schema: String(r.dataset_schema) } : {}),
        ...(r.dataset_profile !== null && r.dataset_profile !== undefined ? { profile: String(r.dataset_profile) } : {}),
      },
      tags: Object.fromEntries(this.all('SELECT name, value FROM input_tags WHERE input_uuid = ?', r.input_uuid).map((t) => [String(t.name), String(t.value)])),
    }));
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    const deleted = query.includeDeleted ? '' : " AND lifecycle_stage = 'active'";
    for (const r of this.all(`SELECT * FROM runs WHERE experiment_id = ?${deleted} ORDER BY start_time`, experimentId)) yield this.toRun(r);
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const row = this.all('SELECT * FROM runs WHERE run_uuid = ?', runId)[0];
    return row && this.toRun(row);
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    // is_nan marks NaN (stored as 0); ±Infinity are stored as ±MAX_VALUE, as the server reads them
    const stmt = this.db.prepare('SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY timestamp, step, value');
    let page: MetricPoint[] = [];
    for (const r of stmt.iterate(run.id, key) as IterableIterator<Row>) {
      page.push({ key, value: Number(r.is_nan) ? NaN : Number(r.value), timestamp: Number(r.timestamp), step: Number(r.step) });
      if (page.length >= PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  /** A local folder for an artifact URI, or an error saying why it cannot be read. */
  private localFolder(uri: string, what: string): string {
    if (uri.startsWith('mlflow-artifacts:')) return join(this.artifactsRoot, ...proxyPath(uri).split('/'));
    if (uri.startsWith('file:')) return fileURLToPath(uri.startsWith('file://') ? uri : `file://${uri.slice(5)}`);
    if (!/^[a-z][a-z0-9+.-]*:/i.test(uri)) return resolve(dirname(this.file), uri);
    throw new InvalidInputError(`${what} in ${this.file}`, `artifacts at ${uri} are not on this machine; read them through the MLflow server (trackshift copy http://…)`);
  }

  private async *listLocalArtifacts(uri: string, what: string): AsyncIterable<ArtifactFile> {
    const dir = this.localFolder(uri, what);
    if (await isDir(dir)) yield* walkFiles(dir, '');
  }

  private async readLocalArtifact(uri: string, path: string, what: string): Promise<Readable> {
    const file = safeJoin(this.localFolder(uri, what), path, `artifact of ${what}`);
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }

  private artifactUri(run: Run): string {
    return this.artifactUris.get(run.id) ?? str(this.all('SELECT artifact_uri FROM runs WHERE run_uuid = ?', run.id)[0]?.artifact_uri) ?? '';
  }

  listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    return this.listLocalArtifacts(this.artifactUri(run), `run ${run.id}`);
  }

  readArtifact(run: Run, path: string): Promise<Readable> {
    return this.readLocalArtifact(this.artifactUri(run), path, `run ${run.id}`);
  }

  // the registry

  private listModelRows(name?: string): Row[] {
    if (!this.has('registered_models')) return [];
    return name === undefined ? this.all('SELECT * FROM registered_models ORDER BY name') : this.all('SELECT * FROM registered_models WHERE name = ?', name);
  }

  private toModel(r: Row): RegisteredModel {
    const name = String(r.name);
    const aliases = this.has('registered_model_aliases') ? this.all('SELECT alias, version FROM registered_model_aliases WHERE name = ?', name) : [];
    return {
      name,
      ...(r.description ? { description: String(r.description) } : {}),
      tags: this.kv('SELECT key, value FROM registered_model_tags WHERE name = ?', name),
      aliases: Object.fromEntries(aliases.map((a) => [String(a.alias), String(a.version)])),
      creationTime: time(r.creation_time),
      lastUpdatedTime: time(r.last_updated_time),
    };
  }

  private async *listModels(): AsyncIterable<RegisteredModel> {
    for (const r of this.listModelRows()) yield this.toModel(r);
  }

  private async *listVersions(name: string): AsyncIterable<ModelVersion> {
    // deleted versions stay as rows with the stage Deleted_Internal, keeping their number
    const rows = this.all("SELECT * FROM model_versions WHERE name = ? AND current_stage != 'Deleted_Internal' ORDER BY version", name);
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
        tags: this.kv('SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?', name, r.version),
        ...(r.user_id ? { user: String(r.user_id) } : {}),
        creationTime: time(r.creation_time),
        lastUpdatedTime: time(r.last_updated_time),
      };
    }
  }

  // MLflow 3 logged models

  private async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    if (!this.has('logged_models')) return;
    const rows = this.all("SELECT * FROM logged_models WHERE experiment_id = ? AND lifecycle_stage = 'active' ORDER BY creation_timestamp_ms", experimentId);
    for (const r of rows) {
      const id = String(r.model_id);
      yield {
        id,
        experimentId: String(r.experiment_id),
        name: str(r.name) ?? '',
        ...(r.source_run_id ? { sourceRunId: String(r.source_run_id) } : {}),
        ...(r.model_type ? { modelType: String(r.model_type) } : {}),
        status: LOGGED_MODEL_STATUS[Number(r.status)] ?? String(r.status),
        ...(r.status_message ? { statusMessage: String(r.status_message) } : {}),
        params: Object.fromEntries(this.all('SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?', id).map((p) => [String(p.param_key), String(p.param_value)])),
        tags: Object.fromEntries(this.all('SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?', id).map((t) => [String(t.tag_key), String(t.tag_value)])),
        creationTime: time(r.creation_timestamp_ms),
        lastUpdatedTime: time(r.last_updated_timestamp_ms),
      };
    }
  }

  private loggedModelLocation(modelId: string): string {
    return str(this.all('SELECT artifact_location FROM logged_models WHERE model_id = ?', modelId)[0]?.artifact_location) ?? '';
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
