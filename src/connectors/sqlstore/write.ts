/**
 * MLflow's SQL store written directly (SQLite for now), the way MLflow's own SqlAlchemyStore
 * writes it (mlflow/store/tracking/sqlalchemy_store.py): experiments with ids from the table's
 * autoincrement and their exact creation and last-update times, runs with uuid4-hex ids, every
 * metric point (NaN as 0 with `is_nan`, ±Infinity as ±1.7976931348623157e308, an exact duplicate
 * stored once, as the table's primary key keeps it) and `latest_metrics` as MLflow keeps it (per
 * key the point of the highest step, then timestamp, then value), params, tags, dataset inputs,
 * nested runs and artifacts under the artifact root the server serves (`?artifacts=DIR`).
 *
 * Tables are never created or altered: the database must hold MLflow's schema at a revision this
 * trackshift knows (`mlflow db upgrade URI` makes it). One transaction per run: the points of a
 * run in flight wait in a temporary table of this connection (on disk, not in memory; invisible
 * to every other connection), and `finishRun` moves the whole run into MLflow's tables in one
 * transaction, its completion tag included. A kill leaves whole runs or nothing, and an MLflow
 * server serving the same database (it keeps no cache of tracking data) never sees a part of one.
 * Artifacts go straight to their folder before that; a run killed before its commit leaves
 * files in a folder no run names, which a re-run does not reuse (it gets a new id).
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Database from 'better-sqlite3';
import type { ArtifactFile, DatasetInput, Experiment, Run } from '../../model/index.js';
import { MLFLOW_TAGS, SOURCE_TAGS } from '../../model/index.js';
import { UsageError } from '../../util/errors.js';
import { removeInside, safeJoin } from '../../util/paths.js';
import type { Destination, DestinationHolds, ExistingRun, RunBatch, RunWriteResult, WriteLimits } from '../types.js';
import { MLFLOW_HOLDS } from '../mlflow-common/holds.js';
import { INFINITE_KEYS_TAG } from '../mlflow-common/infinity.js';
import { MLMODEL_IDS } from '../mlflow-common/mlmodel.js';
import { withParentTag } from '../mlflow-common/parent-tag.js';
import { SqlStoreLoggedModelWriter } from './logged-models.js';
import { SqlStoreRegistryWriter } from './registry.js';
import { KNOWN_REVISIONS } from './revisions.js';
import { Statements } from './statements.js';
import { localArtifactFolder, type SqlStoreOptions } from './tables.js';

/** Batches as large as the engine makes them: nothing here is bound by a request size. */
const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };

/** What MLflow's SQL store holds: the MLflow family's, and experiments' creation times set exactly. */
export const SQLSTORE_HOLDS: DestinationHolds = { ...MLFLOW_HOLDS, creationTimes: { experiments: true, models: true, versions: true } };

/** Value lengths MLflow 3 accepts (its validation, not the column widths); longer ones are cut, and kept whole as an artifact. */
const MAX_PARAM_VALUE = 6000;
const MAX_TAG_VALUE = 8000;
const LONG_VALUES_FOLDER = '.trackshift/long-values';

/** MLflow's sanitize_metric_value: SQL holds neither NaN nor ±Infinity. */
const MAX_DOUBLE = 1.7976931348623157e308;

/** Rows per multi-row INSERT: 500 points × 5 values stays far below SQLite's 32,766 bound parameters. */
const POINTS_PER_INSERT = 500;
const KV_PER_INSERT = 300;

/** MLflow's run ids: uuid4 as 32 hex digits (uuid.uuid4().hex). */
const newRunId = () => randomUUID().replace(/-/g, '');

/** Columns the writer fills, table by table: a database without one of them is older than it writes. */
const REQUIRED_COLUMNS: Record<string, string[]> = {
  experiments: ['experiment_id', 'name', 'artifact_location', 'lifecycle_stage', 'creation_time', 'last_update_time'],
  experiment_tags: ['key', 'value', 'experiment_id'],
  runs: ['run_uuid', 'name', 'source_type', 'source_name', 'entry_point_name', 'user_id', 'status', 'start_time', 'end_time', 'source_version', 'lifecycle_stage', 'artifact_uri', 'experiment_id'],
  tags: ['key', 'value', 'run_uuid'],
  params: ['key', 'value', 'run_uuid'],
  metrics: ['key', 'value', 'timestamp', 'step', 'is_nan', 'run_uuid'],
  latest_metrics: ['key', 'value', 'timestamp', 'step', 'is_nan', 'run_uuid'],
  datasets: ['dataset_uuid', 'experiment_id', 'name', 'digest', 'dataset_source_type', 'dataset_source', 'dataset_schema', 'dataset_profile'],
  inputs: ['input_uuid', 'source_type', 'source_id', 'destination_type', 'destination_id'],
  input_tags: ['input_uuid', 'name', 'value'],
};

/**
 * Refuses a database that does not hold MLflow's schema at a revision this trackshift knows,
 * saying which revision it found and what to run. Nothing is created or altered.
 */
export function checkWritableSchema(db: Database.Database, shown: string): WritableSchema {
  const columns = (table: string) => new Set((db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: string }>).map((r) => String(r.name)));
  const upgrade = `mlflow db upgrade ${shown}`;
  if (!columns('alembic_version').has('version_num')) {
    throw new UsageError(
      `${shown} holds no MLflow schema (it has no alembic_version table): create MLflow's tables first with \`${upgrade}\` ` +
        `(or by starting \`mlflow server --backend-store-uri ${shown}\` once), then run this again; trackshift never creates or alters tables`,
    );
  }
  const revisions = (db.prepare('SELECT version_num FROM alembic_version').all() as Array<{ version_num: unknown }>).map((r) => String(r.version_num));
  const revision = revisions[0];
  if (revisions.length !== 1 || !revision || !KNOWN_REVISIONS.has(revision)) {
    throw new UsageError(
      `${shown} has MLflow schema revision "${revisions.join('", "') || 'none'}", which this trackshift does not know (it writes the schemas of MLflow up to 3.17): ` +
        `an older database is brought up to date with \`${upgrade}\` (MLflow 3.17); one made by a newer MLflow is written through a server of that version (trackshift copy SOURCE http://…)`,
    );
  }
  for (const [table, wanted] of Object.entries(REQUIRED_COLUMNS)) {
    const have = columns(table);
    const missing = wanted.filter((c) => !have.has(c));
    if (missing.length > 0) {
      throw new UsageError(
        `${shown} is at MLflow schema revision "${revision}", older than trackshift writes (${have.size === 0 ? `no table ${table}` : `table ${table} has no column ${missing.join(', ')}`}): ` +
          `bring it up to date with \`${upgrade}\`, then run this again`,
      );
    }
  }
  const has = (table: string, wanted: string[]) => {
    const have = columns(table);
    return wanted.every((c) => have.has(c));
  };
  return {
    revision,
    deletedTime: columns('runs').has('deleted_time'),
    workspace: columns('experiments').has('workspace'),
    // a registry with aliases (MLflow ≥ 2.3), logged models (MLflow ≥ 3.0): without them, the engine says what stays behind
    registry: Object.entries(REGISTRY_COLUMNS).every(([table, wanted]) => has(table, wanted)),
    loggedModels: Object.entries(LOGGED_MODEL_COLUMNS).every(([table, wanted]) => has(table, wanted)) && has('inputs', ['step']),
  };
}

export interface WritableSchema {
  revision: string;
  deletedTime: boolean;
  workspace: boolean;
  registry: boolean;
  loggedModels: boolean;
}

const REGISTRY_COLUMNS: Record<string, string[]> = {
  registered_models: ['name', 'creation_time', 'last_updated_time', 'description'],
  registered_model_tags: ['key', 'value', 'name'],
  model_versions: ['name', 'version', 'creation_time', 'last_updated_time', 'description', 'user_id', 'current_stage', 'source', 'storage_location', 'run_id', 'run_link', 'status', 'status_message'],
  model_version_tags: ['key', 'value', 'name', 'version'],
  registered_model_aliases: ['alias', 'version', 'name'],
};

const LOGGED_MODEL_COLUMNS: Record<string, string[]> = {
  logged_models: ['model_id', 'experiment_id', 'name', 'artifact_location', 'creation_timestamp_ms', 'last_updated_timestamp_ms', 'status', 'lifecycle_stage', 'model_type', 'source_run_id', 'status_message'],
  logged_model_params: ['model_id', 'experiment_id', 'param_key', 'param_value'],
  logged_model_tags: ['model_id', 'experiment_id', 'tag_key', 'tag_value'],
};

/** MLflow's append_to_uri_path for the URIs it makes here: no doubled or trailing slash. */
const appendUri = (uri: string, ...parts: string[]) => [uri.replace(/\/+$/, ''), ...parts].join('/');

interface RunState {
  id: string;
  experimentId: bigint;
  sourceId?: string;
  run: Run;
  artifactUri: string;
  /** the temporary table its points wait in until the commit */
  staged: string;
  params: Map<string, string>;
  tags: Map<string, string>;
  inputs: DatasetInput[];
  infiniteKeys: Set<string>;
  warnings: string[];
}

interface Copy {
  id: string;
  complete: boolean;
  lifecycle: Experiment['lifecycle'];
}

export interface SqlWriteOptions extends Pick<SqlStoreOptions, 'artifactsRoot' | 'baseDir'> {
  /** the location, safe to print */
  uri: string;
}

export class SqlStoreDestination implements Destination {
  readonly kind = 'sqlstore';
  readonly limits = LIMITS;
  readonly holds = SQLSTORE_HOLDS;
  readonly idsInFiles = MLMODEL_IDS;
  readonly uri: string;
  private readonly runs = new Map<string, RunState>();
  /** per experiment: source run id → the copies committed (loaded once: the tags table has no index on values) */
  private readonly copies = new Map<bigint, Map<string, Copy>>();
  readonly registry?: SqlStoreRegistryWriter;
  readonly loggedModels?: SqlStoreLoggedModelWriter;
  private readonly sql: Statements;
  private staged = 0;
  private readonly deletedTime: boolean;

  constructor(
    private readonly db: Database.Database,
    private readonly options: SqlWriteOptions,
    schema: Omit<WritableSchema, 'revision'>,
  ) {
    this.uri = options.uri;
    this.sql = new Statements(db, schema.workspace);
    this.deletedTime = schema.deletedTime;
    const artifactUri = (runId: string) => (this.prepare('SELECT artifact_uri FROM runs WHERE run_uuid = ?').get(runId) as { artifact_uri: string | null } | undefined)?.artifact_uri ?? undefined;
    if (schema.loggedModels) {
      this.loggedModels = new SqlStoreLoggedModelWriter(this.sql, {
        experimentLocation: (id) => (this.prepare('SELECT artifact_location FROM experiments WHERE experiment_id = ?').get(id) as { artifact_location: string | null } | undefined)?.artifact_location ?? undefined,
        folder: (uri, what) => localArtifactFolder(uri, this.options, `${what} in ${this.uri}`),
      });
    }
    if (schema.registry) {
      this.registry = new SqlStoreRegistryWriter(this.sql, {
        runArtifactUri: artifactUri,
        loggedModel: (modelId) => {
          if (!schema.loggedModels) return undefined;
          const row = this.prepare('SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = ?').get(modelId) as { artifact_location: string; source_run_id: string | null } | undefined;
          return row && { artifactLocation: row.artifact_location, ...(row.source_run_id ? { sourceRunId: row.source_run_id } : {}) };
        },
      });
    }
  }

  private prepare(sql: string): Database.Statement {
    return this.sql.prepare(sql);
  }

  private insertRows(head: string, width: number, rows: unknown[][], perInsert: number): void {
    this.sql.insertRows(head, width, rows, perInsert);
  }

  private get inDefaultWorkspace(): string {
    return this.sql.inDefaultWorkspace;
  }

  async findExperiment(name: string) {
    const row = this.prepare(`SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ?${this.inDefaultWorkspace}`).get(name) as
      | { experiment_id: bigint; lifecycle_stage: string }
      | undefined;
    return row && { id: String(row.experiment_id), lifecycle: row.lifecycle_stage === 'deleted' ? ('deleted' as const) : ('active' as const) };
  }

  /**
   * Where new experiments keep their artifacts: as the server that made the others does
   * (`mlflow-artifacts:/<id>`, `/srv/mlruns/<id>`, `s3://bucket/<id>` …), else MLflow's default
   * for a server that serves artifacts.
   */
  private artifactRoot(): string {
    const rows = this.prepare('SELECT experiment_id, artifact_location FROM experiments ORDER BY experiment_id LIMIT 50').all() as Array<{ experiment_id: bigint; artifact_location: string | null }>;
    for (const r of rows) {
      const suffix = `/${r.experiment_id}`;
      if (r.artifact_location?.endsWith(suffix)) return r.artifact_location.slice(0, -suffix.length);
    }
    return 'mlflow-artifacts:';
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const created = exp.creationTime ?? Date.now();
    const updated = exp.lastUpdateTime ?? created;
    const id = this.db.transaction(() => {
      const existing = this.prepare(`SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ?${this.inDefaultWorkspace}`).get(name) as
        | { experiment_id: bigint; lifecycle_stage: string }
        | undefined;
      let id: bigint;
      if (existing) {
        id = existing.experiment_id;
        const own = this.prepare('SELECT "value" FROM experiment_tags WHERE experiment_id = ? AND "key" = ?').get(id, SOURCE_TAGS.id) as { value: string } | undefined;
        if (own?.value === exp.id) {
          // a copy of this very experiment (an earlier run of the command): its times as the source's
          this.prepare("UPDATE experiments SET lifecycle_stage = 'active', creation_time = ?, last_update_time = ? WHERE experiment_id = ?").run(created, updated, id);
        } else if (existing.lifecycle_stage === 'deleted') {
          // restored, as MLflow's restore_experiment does
          this.prepare("UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?").run(Date.now(), id);
        }
      } else {
        const root = this.artifactRoot();
        // MLflow's Default experiment is experiment 0 (its _create_default_experiment): kept so when free
        const zero = exp.id === '0' && name === 'Default' && !this.prepare('SELECT 1 FROM experiments WHERE experiment_id = 0').get();
        const info = zero
          ? this.prepare("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, last_update_time) VALUES (0, ?, 'active', ?, ?)").run(name, created, updated)
          : this.prepare("INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time) VALUES (?, 'active', ?, ?)").run(name, created, updated);
        id = zero ? 0n : BigInt(info.lastInsertRowid);
        this.prepare('UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?').run(appendUri(root, String(id)), id);
      }
      const tags = Object.entries(exp.tags).map(([key, value]) => [key, value, id]);
      this.insertRows('INSERT OR REPLACE INTO experiment_tags ("key", "value", experiment_id)', 3, tags, KV_PER_INSERT);
      return id;
    }).immediate();
    return String(id);
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    if (exp.lifecycle !== 'deleted') return;
    const id = BigInt(experimentId);
    const now = Date.now();
    this.db.transaction(() => {
      // as MLflow's delete_experiment: the experiment and its runs marked deleted
      this.prepare("UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?").run(exp.lastUpdateTime ?? now, id);
      const deletedTime = this.deletedTime ? ', deleted_time = ?' : '';
      this.prepare(`UPDATE runs SET lifecycle_stage = 'deleted'${deletedTime} WHERE experiment_id = ? AND lifecycle_stage = 'active'`).run(...(this.deletedTime ? [now] : []), id);
    }).immediate();
    for (const copy of this.copies.get(id)?.values() ?? []) copy.lifecycle = 'deleted';
  }

  private copiesIn(experimentId: bigint): Map<string, Copy> {
    let copies = this.copies.get(experimentId);
    if (!copies) {
      copies = new Map();
      const rows = this.prepare(
        `SELECT r.run_uuid, r.lifecycle_stage, s."value" AS source_id, c."value" AS complete
         FROM runs r JOIN tags s ON s.run_uuid = r.run_uuid AND s."key" = ?
         LEFT JOIN tags c ON c.run_uuid = r.run_uuid AND c."key" = ?
         WHERE r.experiment_id = ?`,
      ).all(SOURCE_TAGS.id, SOURCE_TAGS.complete, experimentId) as Array<{ run_uuid: string; lifecycle_stage: string; source_id: string; complete: string | null }>;
      for (const r of rows) {
        const copy: Copy = { id: r.run_uuid, complete: r.complete === 'true', lifecycle: r.lifecycle_stage === 'deleted' ? 'deleted' : 'active' };
        // a complete copy is the one that counts
        if (!copies.get(r.source_id)?.complete) copies.set(r.source_id, copy);
      }
      this.copies.set(experimentId, copies);
    }
    return copies;
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const id = BigInt(experimentId);
    const copy = this.copiesIn(id).get(sourceRunId);
    if (copy) return { ...copy };
    // one being written by this process: not complete until its commit
    for (const state of this.runs.values()) if (state.experimentId === id && state.sourceId === sourceRunId) return { id: state.id, complete: false, lifecycle: 'active' };
    return undefined;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const experiment = BigInt(experimentId);
    const row = this.prepare('SELECT artifact_location FROM experiments WHERE experiment_id = ?').get(experiment) as { artifact_location: string | null } | undefined;
    if (!row) throw new UsageError(`${this.uri} has no experiment ${experimentId}`);
    const id = newRunId();
    const staged = `staged_points_${++this.staged}`;
    this.db.exec(`CREATE TEMP TABLE ${staged} ("key" TEXT NOT NULL, "value" REAL NOT NULL, "timestamp" INTEGER NOT NULL, step INTEGER NOT NULL, is_nan INTEGER NOT NULL)`);
    const tags = new Map(Object.entries(withParentTag(run.tags, run.parentId)));
    tags.delete(SOURCE_TAGS.complete);
    // MLflow's create_run names the run in this tag too
    if (run.name && !tags.has(MLFLOW_TAGS.runName)) tags.set(MLFLOW_TAGS.runName, run.name);
    this.runs.set(id, {
      id,
      experimentId: experiment,
      sourceId: run.tags[SOURCE_TAGS.id],
      run,
      artifactUri: appendUri(row.artifact_location ?? appendUri(this.artifactRoot(), experimentId), id, 'artifacts'),
      staged,
      params: new Map(),
      tags,
      inputs: [],
      infiniteKeys: new Set(),
      warnings: [],
    });
    return id;
  }

  private state(runId: string): RunState {
    const state = this.runs.get(runId);
    if (!state) throw new Error(`sqlstore: run ${runId} is not being written`);
    return state;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const state = this.state(runId);
    // a param once logged keeps its value (MLflow refuses a change); tags are overwritten
    for (const { key, value } of batch.params) if (!state.params.has(key)) state.params.set(key, value);
    for (const { key, value } of batch.tags) if (key !== SOURCE_TAGS.complete) state.tags.set(key, value);
    if (batch.metrics.length === 0) return;
    const rows = batch.metrics.map((m) => {
      const nan = Number.isNaN(m.value);
      if (m.value === Infinity || m.value === -Infinity) state.infiniteKeys.add(m.key);
      const value = nan ? 0 : m.value === Infinity ? MAX_DOUBLE : m.value === -Infinity ? -MAX_DOUBLE : m.value;
      return [m.key, value, m.timestamp ?? 0, m.step, nan ? 1 : 0];
    });
    this.db.transaction(() => this.insertRows(`INSERT INTO temp.${state.staged} ("key", "value", "timestamp", step, is_nan)`, 5, rows, POINTS_PER_INSERT))();
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    this.state(runId).inputs.push(...inputs);
  }

  /** The run's artifact folder on this machine (its artifact URI under the artifact root). */
  private artifactFolder(state: RunState): string {
    return localArtifactFolder(state.artifactUri, this.options, `run ${state.id} in ${this.uri}`);
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const state = this.state(runId);
    const target = safeJoin(this.artifactFolder(state), file.path, `artifact of run ${runId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  /** A value longer than MLflow takes is cut, and kept whole as an artifact (as the REST writer does). */
  private async fit(state: RunState, kind: 'params' | 'tags', values: Map<string, string>, max: number): Promise<void> {
    for (const [key, value] of values) {
      if (value.length <= max) continue;
      const path = `${LONG_VALUES_FOLDER}/${kind}/${key}`;
      const bytes = Buffer.from(value);
      await this.writeArtifact(state.id, { path, size: bytes.length }, Readable.from([bytes]));
      values.set(key, value.slice(0, max));
      state.warnings.push(
        `${kind === 'params' ? 'param' : 'tag'} "${key}" has ${value.length} characters, more than the ${max} MLflow takes: ` +
          `its first ${max} characters were written, and the whole value as the artifact ${path}`,
      );
    }
  }

  async finishRun(runId: string, run: Run): Promise<RunWriteResult | void> {
    const state = this.runs.get(runId);
    if (!state) return this.setLifecycle(runId, run);
    await this.fit(state, 'params', state.params, MAX_PARAM_VALUE);
    await this.fit(state, 'tags', state.tags, MAX_TAG_VALUE);
    if (state.infiniteKeys.size > 0) {
      state.tags.set(INFINITE_KEYS_TAG, JSON.stringify([...state.infiniteKeys].sort()));
      state.warnings.push(
        `metric(s) ${[...state.infiniteKeys].join(', ')} hold ±Infinity, which MLflow's SQL store keeps as ±1.7976931348623157e308; ` +
          `trackshift reads them back as ±Infinity (tag ${INFINITE_KEYS_TAG}), other clients see the stored number`,
      );
    }
    // written in the same transaction as everything else: a run is there whole or not at all
    state.tags.set(SOURCE_TAGS.complete, 'true');
    const deleted = run.lifecycle === 'deleted';
    const now = Date.now();
    this.db.transaction(() => {
      const columns = ['run_uuid', 'name', 'source_type', 'source_name', 'entry_point_name', 'user_id', 'status', 'start_time', 'end_time', 'source_version', 'lifecycle_stage', 'artifact_uri', 'experiment_id'];
      const values: unknown[] = [runId, run.name ?? null, 'UNKNOWN', '', '', run.user ?? null, run.status, run.startTime ?? null, run.endTime ?? null, '', run.lifecycle, state.artifactUri, state.experimentId];
      if (this.deletedTime) {
        columns.push('deleted_time');
        values.push(deleted ? now : null);
      }
      this.prepare(`INSERT INTO runs (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...values);
      this.insertRows('INSERT INTO params ("key", "value", run_uuid)', 3, [...state.params].map(([k, v]) => [k, v, runId]), KV_PER_INSERT);
      this.insertRows('INSERT INTO tags ("key", "value", run_uuid)', 3, [...state.tags].map(([k, v]) => [k, v, runId]), KV_PER_INSERT);
      // an exact duplicate point is one row, as MLflow's primary key keeps it; in the key's order, the index fills in sequence
      this.prepare(
        `INSERT OR IGNORE INTO metrics ("key", "value", "timestamp", step, is_nan, run_uuid) SELECT "key", "value", "timestamp", step, is_nan, ? FROM temp.${state.staged} ORDER BY "key", "timestamp", step, "value", is_nan`,
      ).run(runId);
      // MLflow's latest metric: the highest (step, timestamp, value); of equal ones, the first logged
      this.prepare(
        `INSERT INTO latest_metrics ("key", "value", "timestamp", step, is_nan, run_uuid)
         SELECT "key", "value", "timestamp", step, is_nan, ? FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY "key" ORDER BY step DESC, "timestamp" DESC, "value" DESC, rowid) AS n FROM temp.${state.staged}
         ) WHERE n = 1`,
      ).run(runId);
      this.writeDatasetInputs(state);
    }).immediate();
    this.db.exec(`DROP TABLE temp.${state.staged}`);
    this.runs.delete(runId);
    if (state.sourceId) this.copiesIn(state.experimentId).set(state.sourceId, { id: runId, complete: true, lifecycle: run.lifecycle });
    return { warnings: state.warnings };
  }

  /** A complete copy whose lifecycle differs from the source's (stopped before its deletion): set as the source's. */
  private setLifecycle(runId: string, run: Run): void {
    const deletedTime = this.deletedTime ? ', deleted_time = ?' : '';
    const args = this.deletedTime ? [run.lifecycle, run.lifecycle === 'deleted' ? Date.now() : null, runId] : [run.lifecycle, runId];
    this.prepare(`UPDATE runs SET lifecycle_stage = ?${deletedTime} WHERE run_uuid = ?`).run(...args);
    for (const copies of this.copies.values()) for (const copy of copies.values()) if (copy.id === runId) copy.lifecycle = run.lifecycle;
  }

  /** As MLflow's log_inputs: a dataset once per experiment (name, digest), an input edge per run, its tags. */
  private writeDatasetInputs(state: RunState): void {
    const seen = new Set<string>();
    for (const input of state.inputs) {
      const d = input.dataset;
      const key = JSON.stringify([d.name, d.digest]);
      if (seen.has(key)) continue; // MLflow keeps the first of a name and digest
      seen.add(key);
      const found = this.prepare('SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?').get(state.experimentId, d.name, d.digest) as { dataset_uuid: string } | undefined;
      let datasetId = found?.dataset_uuid;
      if (!datasetId) {
        datasetId = newRunId();
        this.prepare(
          'INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(datasetId, state.experimentId, d.name, d.digest, d.sourceType, d.source, d.schema ?? null, d.profile ?? null);
      }
      const inputId = newRunId();
      this.prepare("INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id) VALUES (?, 'DATASET', ?, 'RUN', ?)").run(inputId, datasetId, state.id);
      this.insertRows('INSERT INTO input_tags (input_uuid, name, "value")', 3, Object.entries(input.tags).map(([k, v]) => [inputId, k, v]), KV_PER_INSERT);
    }
  }

  async discardRun(runId: string): Promise<void> {
    const state = this.runs.get(runId);
    if (state) {
      this.db.exec(`DROP TABLE IF EXISTS temp.${state.staged}`);
      this.runs.delete(runId);
      await this.removeArtifacts(state.artifactUri, runId);
      return;
    }
    // a run committed without its completion tag (not one this writer made): removed whole, as `mlflow gc` removes a run
    const row = this.prepare('SELECT artifact_uri FROM runs WHERE run_uuid = ?').get(runId) as { artifact_uri: string | null } | undefined;
    if (!row) return;
    this.db.transaction(() => {
      this.prepare("DELETE FROM input_tags WHERE input_uuid IN (SELECT input_uuid FROM inputs WHERE destination_type = 'RUN' AND destination_id = ?)").run(runId);
      this.prepare("DELETE FROM inputs WHERE (destination_type = 'RUN' AND destination_id = ?) OR source_id = ?").run(runId, runId);
      for (const table of ['metrics', 'latest_metrics', 'params', 'tags']) this.prepare(`DELETE FROM ${table} WHERE run_uuid = ?`).run(runId);
      this.prepare('DELETE FROM runs WHERE run_uuid = ?').run(runId);
    }).immediate();
    for (const copies of this.copies.values()) for (const [source, copy] of copies) if (copy.id === runId) copies.delete(source);
    if (row.artifact_uri) await this.removeArtifacts(row.artifact_uri, runId);
  }

  /** The folder `<experiment>/<run id>/` of a run's artifacts, when it is on this machine. */
  private async removeArtifacts(artifactUri: string, runId: string): Promise<void> {
    if (!artifactUri.endsWith(`/${runId}/artifacts`)) return;
    let folder: string;
    try {
      folder = dirname(localArtifactFolder(artifactUri, this.options, `run ${runId} in ${this.uri}`));
    } catch {
      return; // not on this machine: nothing of it was written here
    }
    await removeInside(dirname(folder), folder);
  }

  async close(): Promise<void> {
    this.runs.clear();
    this.sql.clear();
    if (this.db.open) this.db.close();
  }
}
