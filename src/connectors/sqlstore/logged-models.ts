/** MLflow 3 logged models of MLflow's SQL store (tables logged_models, logged_model_params, logged_model_tags), read. */
import type { Readable } from 'node:stream';
import type { ArtifactFile, LoggedModel } from '../../model/index.js';
import type { LoggedModelReader } from '../types.js';
import { str, time, type SqlTables } from './tables.js';

const LOGGED_MODEL_STATUS: Record<number, string> = { 0: 'LOGGED_MODEL_STATUS_UNSPECIFIED', 1: 'LOGGED_MODEL_PENDING', 2: 'LOGGED_MODEL_READY', 3: 'LOGGED_MODEL_UPLOAD_FAILED' };

export class SqlStoreLoggedModels implements LoggedModelReader {
  constructor(private readonly tables: SqlTables) {}

  async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    if (!(await this.tables.has('logged_models'))) return;
    const rows = await this.tables.all("SELECT * FROM logged_models WHERE experiment_id = ? AND lifecycle_stage = 'active' ORDER BY creation_timestamp_ms, model_id", experimentId);
    for (const r of rows) {
      const id = String(r.model_id);
      const params = await this.tables.all('SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?', id);
      const tags = await this.tables.all('SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?', id);
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
    return str((await this.tables.all('SELECT artifact_location FROM logged_models WHERE model_id = ?', modelId))[0]?.artifact_location) ?? '';
  }

  listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    return this.tables.listLocalArtifacts(() => this.loggedModelLocation(model.id), `logged model ${model.id}`);
  }

  readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    return this.tables.readLocalArtifact(() => this.loggedModelLocation(model.id), path, `logged model ${model.id}`);
  }
}
