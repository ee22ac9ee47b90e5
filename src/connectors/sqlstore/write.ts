/**
 * MLflow's SQL store (SQLite, PostgreSQL, MySQL/MariaDB) written directly, the way MLflow's own SqlAlchemyStore
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
 * Artifacts go straight to their folder before that, marked uncommitted until the commit; the
 * folder of a run killed before its commit is removed by the next copy into its experiment
 * (./uncommitted.ts).
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
import { toBigInt, type SqlWriter, type WriteDb, type WriteParam, type WriteSession } from './statements.js';
import { localArtifactFolder, type SqlStoreOptions } from './tables.js';
import { markUncommitted, sweepUncommitted, unmarkCommitted } from './uncommitted.js';

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

/** The columns of a run's staging table that its points fill. */
const STAGED_COLUMNS = ['key', 'value', 'timestamp', 'step', 'is_nan'] as const;

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
export async function checkWritableSchema(db: WriteDb, shown: string): Promise<WritableSchema> {
  const known = new Map<string, Set<string>>();
  for (const table of ['alembic_version', ...Object.keys(REQUIRED_COLUMNS), ...Object.keys(REGISTRY_COLUMNS), ...Object.keys(LOGGED_MODEL_COLUMNS)]) known.set(table, await db.columns(table));
  const columns = (table: string) => known.get(table)!;
  const upgrade = `mlflow db upgrade ${shown}`;
  if (!columns('alembic_version').has('version_num')) {
    throw new UsageError(
      `${shown} holds no MLflow schema (it has no alembic_version table): create MLflow's tables first with \`${upgrade}\` ` +
        `(or by starting \`mlflow server --backend-store-uri ${shown}\` once), then run this again; trackshift never creates or alters tables`,
    );
  }
  const revisions = (await db.all('SELECT version_num FROM alembic_version')).map((r) => String(r.version_num));
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
  /** the connection it is written on, and the temporary table of it where its points wait until the commit */
  session: WriteSession;
  staged: string;
  params: Map<string, string>;
  tags: Map<string, string>;
  inputs: DatasetInput[];
  infiniteKeys: Set<string>;
  warnings: string[];
  /** a -0 written where the engine keeps no negative zero (MySQL, MariaDB): said once */
  negativeZero?: boolean;
  /** its folder marked uncommitted, before its first artifact */
  marked?: Promise<void>;
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
  private staged = 0;
  /** per experiment: the folders that earlier, stopped copies left uncommitted, removed once */
  private readonly swept = new Map<bigint, Promise<void>>();
  private readonly deletedTime: boolean;
  private readonly workspace: boolean;

  constructor(
    private readonly db: WriteDb,
    private readonly options: SqlWriteOptions,
    schema: Omit<WritableSchema, 'revision'>,
  ) {
    this.uri = options.uri;
    this.deletedTime = schema.deletedTime;
    this.workspace = schema.workspace;
    const artifactUri = async (runId: string) => ((await db.get('SELECT artifact_uri FROM runs WHERE run_uuid = ?', [runId]))?.artifact_uri as string | null | undefined) ?? undefined;
    if (schema.loggedModels) {
      this.loggedModels = new SqlStoreLoggedModelWriter(db, {
        experimentLocation: async (id) => ((await db.get('SELECT artifact_location FROM experiments WHERE experiment_id = ?', [id]))?.artifact_location as string | null | undefined) ?? undefined,
        folder: (uri, what) => localArtifactFolder(uri, this.options, `${what} in ${this.uri}`),
      });
    }
    if (schema.registry) {
      this.registry = new SqlStoreRegistryWriter(db, schema.workspace, {
        runArtifactUri: artifactUri,
        loggedModel: async (modelId) => {
          if (!schema.loggedModels) return undefined;
          const row = (await db.get('SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = ?', [modelId])) as { artifact_location: string; source_run_id: string | null } | undefined;
          return row && { artifactLocation: row.artifact_location, ...(row.source_run_id ? { sourceRunId: row.source_run_id } : {}) };
        },
      });
    }
  }

  /** ` AND workspace = 'default'` where the table has workspaces: what a server without them sees */
  private get inDefaultWorkspace(): string {
    return this.workspace ? " AND workspace = 'default'" : '';
  }

  async findExperiment(name: string) {
    const row = await this.db.get(`SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ?${this.inDefaultWorkspace}`, [name]);
    return row && { id: String(row.experiment_id), lifecycle: row.lifecycle_stage === 'deleted' ? ('deleted' as const) : ('active' as const) };
  }

  /**
   * Where new experiments keep their artifacts: as the server that made the others does
   * (`mlflow-artifacts:/<id>`, `/srv/mlruns/<id>`, `s3://bucket/<id>` …), else MLflow's default
   * for a server that serves artifacts.
   */
  private async artifactRoot(sql: SqlWriter): Promise<string> {
    const rows = (await sql.all('SELECT experiment_id, artifact_location FROM experiments ORDER BY experiment_id LIMIT 50')) as Array<{ experiment_id: unknown; artifact_location: string | null }>;
    for (const r of rows) {
      const suffix = `/${r.experiment_id}`;
      if (r.artifact_location?.endsWith(suffix)) return r.artifact_location.slice(0, -suffix.length);
    }
    return 'mlflow-artifacts:';
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const created = exp.creationTime ?? Date.now();
    const updated = exp.lastUpdateTime ?? created;
    const id = await this.db.transaction(async (tx) => {
      const existing = await tx.get(`SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ?${this.inDefaultWorkspace}`, [name]);
      let id: bigint;
      if (existing) {
        id = toBigInt(existing.experiment_id);
        const own = await tx.get('SELECT "value" FROM experiment_tags WHERE experiment_id = ? AND "key" = ?', [id, SOURCE_TAGS.id]);
        if (own?.value === exp.id) {
          // a copy of this very experiment (an earlier run of the command): its times as the source's
          await tx.run("UPDATE experiments SET lifecycle_stage = 'active', creation_time = ?, last_update_time = ? WHERE experiment_id = ?", [created, updated, id]);
        } else if (existing.lifecycle_stage === 'deleted') {
          // restored, as MLflow's restore_experiment does
          await tx.run("UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?", [Date.now(), id]);
        }
      } else {
        const root = await this.artifactRoot(tx);
        // MLflow's Default experiment is experiment 0 (its _create_default_experiment): kept so when free
        const zero = exp.id === '0' && name === 'Default' && !(await tx.get('SELECT 1 AS one FROM experiments WHERE experiment_id = 0'));
        if (zero) {
          await tx.run("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, last_update_time) VALUES (0, ?, 'active', ?, ?)", [name, created, updated]);
          id = 0n;
        } else {
          const row = await tx.get("INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time) VALUES (?, 'active', ?, ?) RETURNING experiment_id", [name, created, updated]);
          id = toBigInt(row!.experiment_id);
        }
        await tx.run('UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?', [appendUri(root, String(id)), id]);
      }
      const tags = Object.entries(exp.tags).map(([key, value]) => [key, value, id]);
      await tx.insertRows('INSERT OR REPLACE INTO experiment_tags ("key", "value", experiment_id)', 3, tags, KV_PER_INSERT);
      return id;
    });
    return String(id);
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    if (exp.lifecycle !== 'deleted') return;
    const id = BigInt(experimentId);
    const now = Date.now();
    await this.db.transaction(async (tx) => {
      // as MLflow's delete_experiment: the experiment and its runs marked deleted
      await tx.run("UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?", [exp.lastUpdateTime ?? now, id]);
      const deletedTime = this.deletedTime ? ', deleted_time = ?' : '';
      await tx.run(`UPDATE runs SET lifecycle_stage = 'deleted'${deletedTime} WHERE experiment_id = ? AND lifecycle_stage = 'active'`, [...(this.deletedTime ? [now] : []), id]);
    });
    for (const copy of this.copies.get(id)?.values() ?? []) copy.lifecycle = 'deleted';
  }

  private async copiesIn(experimentId: bigint): Promise<Map<string, Copy>> {
    let copies = this.copies.get(experimentId);
    if (!copies) {
      copies = new Map();
      const rows = (await this.db.all(
        `SELECT r.run_uuid, r.lifecycle_stage, s."value" AS source_id, c."value" AS complete
         FROM runs r JOIN tags s ON s.run_uuid = r.run_uuid AND s."key" = ?
         LEFT JOIN tags c ON c.run_uuid = r.run_uuid AND c."key" = ?
         WHERE r.experiment_id = ?`,
        [SOURCE_TAGS.id, SOURCE_TAGS.complete, experimentId],
      )) as Array<{ run_uuid: string; lifecycle_stage: string; source_id: string; complete: string | null }>;
      for (const r of rows) {
        const copy: Copy = { id: r.run_uuid, complete: r.complete === 'true', lifecycle: r.lifecycle_stage === 'deleted' ? 'deleted' : 'active' };
        // a complete copy is the one that counts
        if (!copies.get(r.source_id)?.complete) copies.set(r.source_id, copy);
      }
      // another worker may have loaded them meanwhile: the first stays, with what it learnt since
      const loaded = this.copies.get(experimentId);
      if (loaded) return loaded;
      this.copies.set(experimentId, copies);
    }
    return copies;
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const id = BigInt(experimentId);
    const copy = (await this.copiesIn(id)).get(sourceRunId);
    if (copy) return { ...copy };
    // one being written by this process: not complete until its commit
    for (const state of this.runs.values()) if (state.experimentId === id && state.sourceId === sourceRunId) return { id: state.id, complete: false, lifecycle: 'active' };
    return undefined;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const experiment = BigInt(experimentId);
    const row = (await this.db.get('SELECT artifact_location FROM experiments WHERE experiment_id = ?', [experiment])) as { artifact_location: string | null } | undefined;
    if (!row) throw new UsageError(`${this.uri} has no experiment ${experimentId}`);
    const location = row.artifact_location ?? appendUri(await this.artifactRoot(this.db), experimentId);
    await this.sweepOnce(experiment, location);
    const id = newRunId();
    const table = this.db.stagingTable(`staged_points_${++this.staged}`);
    const session = await this.db.session();
    try {
      await session.run(table.create);
    } catch (err) {
      await session.release();
      throw err;
    }
    const tags = new Map(Object.entries(withParentTag(run.tags, run.parentId)));
    tags.delete(SOURCE_TAGS.complete);
    // MLflow's create_run names the run in this tag too
    if (run.name && !tags.has(MLFLOW_TAGS.runName)) tags.set(MLFLOW_TAGS.runName, run.name);
    this.runs.set(id, {
      id,
      experimentId: experiment,
      sourceId: run.tags[SOURCE_TAGS.id],
      run,
      artifactUri: appendUri(location, id, 'artifacts'),
      session,
      staged: table.name,
      params: new Map(),
      tags,
      inputs: [],
      infiniteKeys: new Set(),
      warnings: [],
    });
    return id;
  }

  /** The experiment's folders of runs never committed, left by copies that were stopped, removed once per experiment. */
  private sweepOnce(experimentId: bigint, location: string): Promise<void> {
    let sweep = this.swept.get(experimentId);
    if (!sweep) {
      let folder: string | undefined;
      try {
        folder = localArtifactFolder(location, this.options, `experiment ${experimentId} in ${this.uri}`);
      } catch {
        folder = undefined; // not on this machine: nothing of it was written here
      }
      const committed = async (runId: string) => (await this.db.get('SELECT 1 AS one FROM runs WHERE run_uuid = ?', [runId])) !== undefined;
      // debris that cannot be removed does not stop the copy
      sweep = folder ? sweepUncommitted(folder, committed).then(() => {}, () => {}) : Promise.resolve();
      this.swept.set(experimentId, sweep);
    }
    return sweep;
  }

  /** rows per multi-row INSERT: 500 on SQLite (faster there than more), 2,000 (10,000 parameters) on PostgreSQL */
  private get pointsPerInsert(): number {
    return this.db.dialect === 'sqlite' ? POINTS_PER_INSERT : 2000;
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
    if (this.db.dialect === 'mysql' && !state.negativeZero && batch.metrics.some((m) => Object.is(m.value, -0))) {
      state.negativeZero = true;
      state.warnings.push('metric values -0 are stored as 0: MySQL and MariaDB have no negative zero (MLflow\'s own -0 becomes 0 there too)');
    }
    const rows = batch.metrics.map((m): WriteParam[] => {
      const nan = Number.isNaN(m.value);
      if (m.value === Infinity || m.value === -Infinity) state.infiniteKeys.add(m.key);
      const value = nan ? 0 : m.value === Infinity ? MAX_DOUBLE : m.value === -Infinity ? -MAX_DOUBLE : m.value;
      return [m.key, value, m.timestamp ?? 0, m.step, nan ? 1 : 0];
    });
    // the engine's bulk load where the driver has one (PostgreSQL's COPY), else multi-row INSERTs
    await state.session.transaction((tx) =>
      tx.copyRows ? tx.copyRows(state.staged, STAGED_COLUMNS, rows) : tx.insertRows(`INSERT INTO ${state.staged} ("key", "value", "timestamp", step, is_nan)`, 5, rows, this.pointsPerInsert),
    );
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
    state.marked ??= markUncommitted(dirname(this.artifactFolder(state)));
    await state.marked;
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
    await state.session.transaction(async (tx) => {
      const columns = ['run_uuid', 'name', 'source_type', 'source_name', 'entry_point_name', 'user_id', 'status', 'start_time', 'end_time', 'source_version', 'lifecycle_stage', 'artifact_uri', 'experiment_id'];
      // no user: '' as the REST server stores it (MLflow's get_run fails on a NULL user_id)
      const values: WriteParam[] = [runId, run.name ?? null, 'UNKNOWN', '', '', run.user ?? '', run.status, run.startTime ?? null, run.endTime ?? null, '', run.lifecycle, state.artifactUri, state.experimentId];
      if (this.deletedTime) {
        columns.push('deleted_time');
        values.push(deleted ? now : null);
      }
      await tx.run(`INSERT INTO runs (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`, values);
      await tx.insertRows('INSERT INTO params ("key", "value", run_uuid)', 3, [...state.params].map(([k, v]) => [k, v, runId]), KV_PER_INSERT);
      await tx.insertRows('INSERT INTO tags ("key", "value", run_uuid)', 3, [...state.tags].map(([k, v]) => [k, v, runId]), KV_PER_INSERT);
      // an exact duplicate point is one row, as MLflow's primary key keeps it; in the key's order, the index fills in sequence
      await tx.run(
        `INSERT OR IGNORE INTO metrics ("key", "value", "timestamp", step, is_nan, run_uuid) SELECT "key", "value", "timestamp", step, is_nan, ? FROM ${state.staged} ORDER BY "key", "timestamp", step, "value", is_nan`,
        [runId],
      );
      // MLflow's latest metric: the highest (step, timestamp, value); of equal ones, the first logged
      await tx.run(
        `INSERT INTO latest_metrics ("key", "value", "timestamp", step, is_nan, run_uuid)
         SELECT "key", "value", "timestamp", step, is_nan, ? FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY "key" ORDER BY step DESC, "timestamp" DESC, "value" DESC, seq) AS n FROM ${state.staged}
         ) ranked WHERE n = 1`,
        [runId],
      );
      await this.writeDatasetInputs(tx, state);
    });
    await this.endSession(state);
    this.runs.delete(runId);
    if (state.marked) await unmarkCommitted(dirname(this.artifactFolder(state)));
    if (state.sourceId) (await this.copiesIn(state.experimentId)).set(state.sourceId, { id: runId, complete: true, lifecycle: run.lifecycle });
    return { warnings: state.warnings };
  }

  /** The run's staging table dropped and its connection given back. */
  private async endSession(state: RunState): Promise<void> {
    try {
      await state.session.run(`DROP TABLE IF EXISTS ${state.staged}`);
    } finally {
      await state.session.release();
    }
  }

  /** A complete copy whose lifecycle differs from the source's (stopped before its deletion): set as the source's. */
  private async setLifecycle(runId: string, run: Run): Promise<void> {
    const deletedTime = this.deletedTime ? ', deleted_time = ?' : '';
    const args = this.deletedTime ? [run.lifecycle, run.lifecycle === 'deleted' ? Date.now() : null, runId] : [run.lifecycle, runId];
    await this.db.run(`UPDATE runs SET lifecycle_stage = ?${deletedTime} WHERE run_uuid = ?`, args);
    for (const copies of this.copies.values()) for (const copy of copies.values()) if (copy.id === runId) copy.lifecycle = run.lifecycle;
  }

  /** As MLflow's log_inputs: a dataset once per experiment (name, digest), an input edge per run, its tags. */
  private async writeDatasetInputs(tx: SqlWriter, state: RunState): Promise<void> {
    const seen = new Set<string>();
    for (const input of state.inputs) {
      const d = input.dataset;
      const key = JSON.stringify([d.name, d.digest]);
      if (seen.has(key)) continue; // MLflow keeps the first of a name and digest
      seen.add(key);
      const found = await tx.get('SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?', [state.experimentId, d.name, d.digest]);
      let datasetId = found?.dataset_uuid as string | undefined;
      if (!datasetId) {
        datasetId = newRunId();
        await tx.run('INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
          datasetId,
          state.experimentId,
          d.name,
          d.digest,
          d.sourceType,
          d.source,
          d.schema ?? null,
          d.profile ?? null,
        ]);
      }
      const inputId = newRunId();
      await tx.run("INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id) VALUES (?, 'DATASET', ?, 'RUN', ?)", [inputId, datasetId, state.id]);
      await tx.insertRows('INSERT INTO input_tags (input_uuid, name, "value")', 3, Object.entries(input.tags).map(([k, v]) => [inputId, k, v]), KV_PER_INSERT);
    }
  }

  async discardRun(runId: string): Promise<void> {
    const state = this.runs.get(runId);
    if (state) {
      this.runs.delete(runId);
      await this.endSession(state);
      await this.removeArtifacts(state.artifactUri, runId);
      return;
    }
    // a run committed without its completion tag (not one this writer made): removed whole, as `mlflow gc` removes a run
    const row = (await this.db.get('SELECT artifact_uri FROM runs WHERE run_uuid = ?', [runId])) as { artifact_uri: string | null } | undefined;
    if (!row) return;
    await this.db.transaction(async (tx) => {
      await tx.run("DELETE FROM input_tags WHERE input_uuid IN (SELECT input_uuid FROM inputs WHERE destination_type = 'RUN' AND destination_id = ?)", [runId]);
      await tx.run("DELETE FROM inputs WHERE (destination_type = 'RUN' AND destination_id = ?) OR source_id = ?", [runId, runId]);
      for (const table of ['metrics', 'latest_metrics', 'params', 'tags']) await tx.run(`DELETE FROM ${table} WHERE run_uuid = ?`, [runId]);
      await tx.run('DELETE FROM runs WHERE run_uuid = ?', [runId]);
    });
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
    const left = [...this.runs.values()];
    this.runs.clear();
    // runs never finished: their connections given back (their temporary tables go with the session)
    for (const state of left) await state.session.release().catch(() => {});
    await this.db.close();
  }
}
