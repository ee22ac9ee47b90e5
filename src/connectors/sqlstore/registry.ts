/** The model registry of MLflow's SQL store (tables registered_models, model_versions and their tags and aliases), read. */
import type { ModelStage, ModelVersion, RegisteredModel } from '../../model/index.js';
import { MODEL_STAGES } from '../../model/index.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import type { RegistryReader } from '../types.js';
import type { Row } from './db.js';
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
