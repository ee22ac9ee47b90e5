/**
 * The model registry of MLflow's SQL store (tables registered_models, model_versions and their
 * tags and aliases), read (SqlStoreRegistry) and written (SqlStoreRegistryWriter).
 */
import type { ModelStage, ModelVersion, RegisteredModel, Tags } from '../../model/index.js';
import { MODEL_STAGES, SOURCE_TAGS } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import type { ExistingVersion, RegistryReader, RegistryWriter, VersionTarget } from '../types.js';
import type { Row } from './db.js';
import type { SqlWriter, WriteDb, WriteParam } from './statements.js';
import { str, time, type SqlTables } from './tables.js';

export class SqlStoreRegistry implements RegistryReader {
  constructor(private readonly tables: SqlTables) {}

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    const row = (await this.listModelRows(name))[0];
    return row && this.toModel(row);
  }

  private async listModelRows(name?: string): Promise<Row[]> {
    if (!(await this.tables.has('registered_models'))) return [];
    return name === undefined ? this.tables.all('SELECT * FROM registered_models ORDER BY name') : this.tables.all('SELECT * FROM registered_models WHERE name = ?', name);
  }

  private async toModel(r: Row): Promise<RegisteredModel> {
    const name = String(r.name);
    const aliases = (await this.tables.has('registered_model_aliases')) ? await this.tables.all('SELECT alias, version FROM registered_model_aliases WHERE name = ?', name) : [];
    return {
      name,
      ...(r.description ? { description: String(r.description) } : {}),
      tags: await this.tables.kv('SELECT "key", "value" FROM registered_model_tags WHERE name = ?', name),
      aliases: Object.fromEntries(aliases.map((a) => [String(a.alias), String(a.version)])),
      creationTime: time(r.creation_time),
      lastUpdatedTime: time(r.last_updated_time),
    };
  }

  async *listModels(): AsyncIterable<RegisteredModel> {
    for (const r of await this.listModelRows()) yield await this.toModel(r);
  }

  async *listVersions(name: string): AsyncIterable<ModelVersion> {
    // deleted versions stay as rows with the stage Deleted_Internal, keeping their number
    const rows = await this.tables.all("SELECT * FROM model_versions WHERE name = ? AND current_stage != 'Deleted_Internal' ORDER BY version", name);
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
        tags: await this.tables.kv('SELECT "key", "value" FROM model_version_tags WHERE name = ? AND version = ?', name, r.version ?? null),
        ...(r.user_id ? { user: String(r.user_id) } : {}),
        creationTime: time(r.creation_time),
        lastUpdatedTime: time(r.last_updated_time),
      };
    }
  }
}

/** MLflow's model version statuses; anything else is written as READY. */
const VERSION_STATUSES = new Set(['READY', 'PENDING_REGISTRATION', 'FAILED_REGISTRATION']);
const DELETED_STAGE = 'Deleted_Internal';
const MODEL_VERSIONS_TAG = 'mlflow.modelVersions';

/**
 * The registry written into MLflow's tables, as its SqlAlchemyStore writes them, with what REST
 * cannot set: creation and last-update times exactly as the source's, version numbers as the
 * source's wherever they are free (also in a model that already has versions), the version's
 * user and status. Each version is complete once the engine sets its completion tag, last.
 */
export class SqlStoreRegistryWriter implements RegistryWriter {
  readonly hasStages = true;
  readonly keepsVersionNumbers = true;

  constructor(
    private readonly db: WriteDb,
    /** whether MLflow's tables have the `workspace` column (MLflow ≥ 3.10): rows of others' workspaces are left alone */
    private readonly workspaces: boolean,
    /** a committed run's artifact URI, or a logged model's artifact location and run (for a version's source) */
    private readonly lookup: {
      runArtifactUri(runId: string): Promise<string | undefined>;
      loggedModel(modelId: string): Promise<{ artifactLocation: string; sourceRunId?: string } | undefined>;
    },
  ) {}

  private get ws(): string {
    return this.workspaces ? " AND workspace = 'default'" : '';
  }

  private async tags(sql: SqlWriter, query: string, params: WriteParam[]): Promise<Tags> {
    return Object.fromEntries((await sql.all(query, params)).map((r) => [String(r.key), r.value == null ? '' : String(r.value)]));
  }

  async findModel(name: string): Promise<{ tags: Tags } | undefined> {
    if (!(await this.db.get(`SELECT 1 AS one FROM registered_models WHERE name = ?${this.ws}`, [name]))) return undefined;
    return { tags: await this.tags(this.db, `SELECT "key", "value" FROM registered_model_tags WHERE name = ?${this.ws}`, [name]) };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    const created = model.creationTime ?? Date.now();
    const updated = model.lastUpdatedTime ?? created;
    await this.db.transaction(async (tx) => {
      const held = await tx.get(`SELECT 1 AS one FROM registered_models WHERE name = ?${this.ws}`, [name]);
      if (!held) {
        await tx.run('INSERT INTO registered_models (name, creation_time, last_updated_time, description) VALUES (?, ?, ?, ?)', [name, created, updated, model.description ?? null]);
      } else {
        const tags = await this.tags(tx, `SELECT "key", "value" FROM registered_model_tags WHERE name = ?${this.ws}`, [name]);
        // a copy of this very model (by its provenance tags) takes the source's times again
        const own = tags[SOURCE_TAGS.id] !== undefined && tags[SOURCE_TAGS.id] === model.tags[SOURCE_TAGS.id] && tags[SOURCE_TAGS.uri] === model.tags[SOURCE_TAGS.uri];
        if (own) await tx.run(`UPDATE registered_models SET creation_time = ?, last_updated_time = ?, description = ? WHERE name = ?${this.ws}`, [created, updated, model.description ?? null, name]);
        else await tx.run(`UPDATE registered_models SET description = ? WHERE name = ?${this.ws}`, [model.description ?? null, name]);
      }
      await tx.insertRows('INSERT OR REPLACE INTO registered_model_tags ("key", "value", name)', 3, Object.entries(model.tags).map(([k, v]) => [k, v, name]), 300);
    });
  }

  async deleteModel(name: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const table of ['registered_model_aliases', 'model_version_tags', 'model_versions', 'registered_model_tags', 'registered_models']) {
        await tx.run(`DELETE FROM ${table} WHERE name = ?${this.ws}`, [name]);
      }
    });
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    const rows = await this.db.all(`SELECT version FROM model_versions WHERE name = ? AND current_stage != '${DELETED_STAGE}'${this.ws} ORDER BY version`, [modelName]);
    for (const r of rows) {
      yield { version: String(r.version), tags: await this.tags(this.db, `SELECT "key", "value" FROM model_version_tags WHERE name = ? AND version = ?${this.ws}`, [modelName, Number(r.version)]) };
    }
  }

  /** Where the version's files are, as mlflow.register_model names them: source and storage location, and its run. */
  private async where(version: ModelVersion, target: VersionTarget): Promise<{ source: string; storage: string; runId?: string }> {
    const { location } = target;
    if (location.type === 'uri') return { source: location.uri, storage: location.uri, runId: target.runId };
    if (location.type === 'logged-model') {
      const model = await this.lookup.loggedModel(location.modelId);
      if (!model) throw new InvalidInputError(`version ${version.version} of ${version.modelName}`, `it points at logged model ${location.modelId}, which is not in this database`);
      return { source: `models:/${location.modelId}`, storage: model.artifactLocation, runId: target.runId ?? model.sourceRunId };
    }
    const root = await this.lookup.runArtifactUri(location.runId);
    if (!root) throw new InvalidInputError(`version ${version.version} of ${version.modelName}`, `it points at run ${location.runId}, which is not in this database`);
    const source = location.path ? `${root.replace(/\/+$/, '')}/${location.path}` : root;
    return { source, storage: source, runId: target.runId ?? location.runId };
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const { source, storage, runId } = await this.where(version, target);
    const created = version.creationTime ?? Date.now();
    const updated = version.lastUpdatedTime ?? created;
    return this.db.transaction(async (tx) => {
      // the source's number where it is free (a deleted version keeps its number taken, as in MLflow), else the next one
      const wanted = Number(version.version);
      const taken = Number.isSafeInteger(wanted) && wanted > 0 ? await tx.get(`SELECT 1 AS one FROM model_versions WHERE name = ? AND version = ?${this.ws}`, [modelName, wanted]) : true;
      const max = Number((await tx.get(`SELECT MAX(version) AS max FROM model_versions WHERE name = ?${this.ws}`, [modelName]))?.max ?? 0);
      const number = taken ? max + 1 : wanted;
      await tx.run(
        `INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, storage_location, run_id, run_link, status, status_message)
         VALUES (?, ?, ?, ?, ?, ?, 'None', ?, ?, ?, ?, ?, NULL)`,
        [modelName, number, created, updated, version.description ?? null, version.user ?? null, source, storage, runId ?? null, target.runLink ?? null, VERSION_STATUSES.has(version.status) ? version.status : 'READY'],
      );
      await tx.insertRows('INSERT OR REPLACE INTO model_version_tags ("key", "value", name, version)', 4, Object.entries(version.tags).map(([k, v]) => [k, v, modelName, number]), 250);
      if (target.location.type === 'logged-model') await this.listOnLoggedModel(tx, target.location.modelId, modelName, number);
      return String(number);
    });
  }

  /**
   * As MLflow's server does when it registers a logged model (set_model_versions_tags): the
   * version added to the model's `mlflow.modelVersions` tag, in Python's json.dumps, the version
   * as the string the server gives it.
   */
  private async listOnLoggedModel(tx: SqlWriter, modelId: string, modelName: string, number: number): Promise<void> {
    const row = await tx.get('SELECT experiment_id FROM logged_models WHERE model_id = ?', [modelId]);
    if (!row) return;
    const held = await tx.get('SELECT tag_value FROM logged_model_tags WHERE model_id = ? AND tag_key = ?', [modelId, MODEL_VERSIONS_TAG]);
    let list: Array<{ name: string; version: unknown }> = [];
    try {
      const parsed: unknown = held ? JSON.parse(String(held.tag_value)) : [];
      if (Array.isArray(parsed)) list = parsed.filter((v): v is { name: string; version: unknown } => typeof v?.name === 'string');
    } catch {
      // not a list: replaced, as MLflow could not extend it either
    }
    if (list.some((v) => v.name === modelName && String(v.version) === String(number))) return;
    list.push({ name: modelName, version: String(number) });
    const text = `[${list.map((v) => `{"name": ${JSON.stringify(v.name)}, "version": ${JSON.stringify(v.version)}}`).join(', ')}]`;
    await tx.run('INSERT OR REPLACE INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) VALUES (?, ?, ?, ?)', [modelId, row.experiment_id as WriteParam, MODEL_VERSIONS_TAG, text]);
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run(`UPDATE model_versions SET description = ? WHERE name = ? AND version = ?${this.ws}`, [version.description ?? null, modelName, Number(number)]);
      await tx.insertRows('INSERT OR REPLACE INTO model_version_tags ("key", "value", name, version)', 4, Object.entries(version.tags).map(([k, v]) => [k, v, modelName, Number(number)]), 250);
    });
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    // as MLflow's delete_model_version: the row stays, so that its number is never given again
    await this.db.transaction(async (tx) => {
      await tx.run(`DELETE FROM registered_model_aliases WHERE name = ? AND version = ?${this.ws}`, [modelName, Number(number)]);
      await tx.run(`DELETE FROM model_version_tags WHERE name = ? AND version = ?${this.ws}`, [modelName, Number(number)]);
      await tx.run(
        `UPDATE model_versions SET current_stage = '${DELETED_STAGE}', last_updated_time = ?, description = NULL, user_id = NULL, source = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', status_message = NULL WHERE name = ? AND version = ?${this.ws}`,
        [Date.now(), modelName, Number(number)],
      );
    });
  }

  async setStage(modelName: string, number: string, stage: ModelStage, archiveOthers = false): Promise<void> {
    // the times stay the source's: a stage is part of the copied version, not a change made to it
    await this.db.transaction(async (tx) => {
      if (archiveOthers && (stage === 'Staging' || stage === 'Production')) {
        await tx.run(`UPDATE model_versions SET current_stage = 'Archived' WHERE name = ? AND current_stage = ? AND version != ?${this.ws}`, [modelName, stage, Number(number)]);
      }
      await tx.run(`UPDATE model_versions SET current_stage = ? WHERE name = ? AND version = ?${this.ws}`, [stage, modelName, Number(number)]);
    });
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run(`DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?${this.ws}`, [modelName, alias]);
      await tx.run('INSERT INTO registered_model_aliases (alias, version, name) VALUES (?, ?, ?)', [alias, Number(number), modelName]);
    });
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    await this.db.run('INSERT OR REPLACE INTO model_version_tags ("key", "value", name, version) VALUES (?, ?, ?, ?)', [key, value, modelName, Number(number)]);
  }
}
