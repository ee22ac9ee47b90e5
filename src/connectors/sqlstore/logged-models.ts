/** MLflow 3 logged models of MLflow's SQL store (tables logged_models, logged_model_params, logged_model_tags), read and written. */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, LoggedModel } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { removeInside, safeJoin } from '../../util/paths.js';
import type { LoggedModelReader, LoggedModelWriter } from '../types.js';
import { toBigInt, type WriteDb, type WriteParam } from './statements.js';
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

const STATUS_NUMBER: Record<string, number> = Object.fromEntries(Object.entries(LOGGED_MODEL_STATUS).map(([n, s]) => [s, Number(n)]));

/**
 * MLflow 3 logged models written into MLflow's tables, as its create_logged_model
 * writes them (`m-` and uuid4 hex ids, artifacts under `<experiment>/models/<id>/artifacts`),
 * with their exact creation and last-update times. A model is complete once its completion tag
 * is there, written last with its final status.
 */
export class SqlStoreLoggedModelWriter implements LoggedModelWriter {
  constructor(
    private readonly db: WriteDb,
    private readonly artifacts: {
      /** an experiment's artifact location */
      experimentLocation(experimentId: bigint): Promise<string | undefined>;
      /** the local folder of an artifact URI */
      folder(uri: string, what: string): string;
    },
  ) {}

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    const rows = await this.db.all(
      `SELECT m.model_id, c.tag_value AS complete FROM logged_models m
       JOIN logged_model_tags s ON s.model_id = m.model_id AND s.tag_key = ? AND s.tag_value = ?
       LEFT JOIN logged_model_tags c ON c.model_id = m.model_id AND c.tag_key = ?
       WHERE m.experiment_id = ?`,
      [SOURCE_TAGS.id, sourceModelId, SOURCE_TAGS.complete, toBigInt(experimentId)],
    );
    const found = rows.map((r) => ({ id: String(r.model_id), complete: r.complete === 'true' }));
    return found.find((m) => m.complete) ?? found[0];
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const experiment = toBigInt(experimentId);
    const root = await this.artifacts.experimentLocation(experiment);
    if (root === undefined) throw new InvalidInputError(`logged model ${model.id}`, `experiment ${experimentId} is not in this database`);
    const id = `m-${randomUUID().replace(/-/g, '')}`;
    const tags = { ...model.tags };
    delete tags[SOURCE_TAGS.complete];
    const created = model.creationTime ?? Date.now();
    await this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
        [id, experiment, model.name, `${root.replace(/\/+$/, '')}/models/${id}/artifacts`, created, model.lastUpdatedTime ?? created, STATUS_NUMBER.LOGGED_MODEL_PENDING!, model.modelType ?? null, sourceRunId ?? null, model.statusMessage ?? null],
      );
      await tx.insertRows('INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value)', 4, Object.entries(model.params).map(([k, v]) => [id, experiment, k, v]), 250);
      await tx.insertRows('INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value)', 4, Object.entries(tags).map(([k, v]) => [id, experiment, k, v]), 250);
    });
    return id;
  }

  private async folder(modelId: string): Promise<string> {
    const row = await this.db.get('SELECT artifact_location FROM logged_models WHERE model_id = ?', [modelId]);
    if (!row) throw new InvalidInputError(`logged model ${modelId}`, 'is not in this database');
    return this.artifacts.folder(String(row.artifact_location), `logged model ${modelId}`);
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(await this.folder(modelId), file.path, `artifact of logged model ${modelId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishLoggedModel(modelId: string, model: LoggedModel, output?: { runId: string; step: number }): Promise<void> {
    const status = STATUS_NUMBER[model.status] ?? STATUS_NUMBER.LOGGED_MODEL_READY!;
    await this.db.transaction(async (tx) => {
      const row = await tx.get('SELECT experiment_id FROM logged_models WHERE model_id = ?', [modelId]);
      if (!row) throw new InvalidInputError(`logged model ${modelId}`, 'is not in this database');
      await tx.run('UPDATE logged_models SET status = ? WHERE model_id = ?', [status, modelId]);
      // the run lists the model among its outputs, as MLflow's log_outputs writes it (once)
      if (output) {
        await tx.run("INSERT OR IGNORE INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) VALUES (?, 'RUN_OUTPUT', ?, 'MODEL_OUTPUT', ?, ?)", [
          randomUUID().replace(/-/g, ''),
          output.runId,
          modelId,
          output.step,
        ]);
      }
      await tx.run('INSERT OR REPLACE INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) VALUES (?, ?, ?, ?)', [modelId, row.experiment_id as WriteParam, SOURCE_TAGS.complete, 'true']);
    });
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    let folder: string | undefined;
    try {
      folder = await this.folder(modelId);
    } catch {
      folder = undefined; // not there, or its files are not on this machine
    }
    await this.db.transaction(async (tx) => {
      for (const table of ['logged_model_params', 'logged_model_tags', 'logged_model_metrics']) await tx.run(`DELETE FROM ${table} WHERE model_id = ?`, [modelId]);
      await tx.run("DELETE FROM inputs WHERE destination_type = 'MODEL_OUTPUT' AND destination_id = ?", [modelId]);
      await tx.run('DELETE FROM logged_models WHERE model_id = ?', [modelId]);
    });
    // <experiment>/models/<id>/artifacts: the model's own folder goes
    if (folder && folder.endsWith('artifacts')) await removeInside(dirname(dirname(folder)), dirname(folder));
  }
}
