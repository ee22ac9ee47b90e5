/**
 * MLflow 3 logged models over REST (`/api/2.0/mlflow/logged-models`): a model with its own
 * id, params, tags and artifacts, usually made by a run. Read and written; a server without
 * them (MLflow 2.x) simply has none.
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, LoggedModel } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import type { LoggedModelReader, LoggedModelWriter } from '../types.js';
import { HttpError } from '../../util/http.js';
import { UsageError } from '../../util/errors.js';
import { isNotFound, type MlflowApi } from './client.js';
import { proxyPath } from './proxy.js';
import * as schema from './schemas.js';

const PAGE = 100;
const READY = 'LOGGED_MODEL_READY';

const toTags = (list: Array<{ key: string; value: string }>) => Object.fromEntries(list.map((t) => [t.key, t.value]));
const tagList = (tags: Record<string, string>) => Object.entries(tags).map(([key, value]) => ({ key, value }));
const modelPath = (id: string) => `logged-models/${encodeURIComponent(id)}`;

/** A server that has no logged-model endpoints (MLflow 2.x) answers 404 or 405 for all of them. */
const isUnsupported = (err: unknown) => err instanceof HttpError && (err.status === 404 || err.status === 405) && !err.errorCode;

export function toLoggedModel(raw: schema.MlflowLoggedModel): LoggedModel {
  const { info } = raw;
  return {
    id: info.model_id,
    experimentId: info.experiment_id,
    name: info.name,
    ...(info.source_run_id ? { sourceRunId: info.source_run_id } : {}),
    ...(info.model_type ? { modelType: info.model_type } : {}),
    status: info.status,
    ...(info.status_message ? { statusMessage: info.status_message } : {}),
    params: toTags(raw.data.params),
    tags: toTags(info.tags),
    creationTime: info.creation_timestamp_ms,
    lastUpdatedTime: info.last_updated_timestamp_ms,
  };
}

export class MlflowLoggedModels implements LoggedModelReader, LoggedModelWriter {
  /** logged model id → its folder under the artifact proxy */
  private readonly roots = new Map<string, string>();

  constructor(protected readonly api: MlflowApi) {}

  private async *search(experimentId: string): AsyncIterable<schema.MlflowLoggedModel> {
    let pageToken: string | undefined;
    do {
      let page: ReturnType<typeof schema.searchLoggedModels.parse>;
      try {
        page = await this.api.post('logged-models/search', { experiment_ids: [experimentId], max_results: PAGE, page_token: pageToken }, schema.searchLoggedModels);
      } catch (err) {
        if (isUnsupported(err)) return;
        throw err;
      }
      for (const raw of page.models) {
        if (raw.info.artifact_uri) this.roots.set(raw.info.model_id, proxyPath(raw.info.artifact_uri));
        yield raw;
      }
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    for await (const raw of this.search(experimentId)) yield toLoggedModel(raw);
  }

  async *listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    const folders = [''];
    while (folders.length > 0) {
      const folder = folders.shift()!;
      const page = await this.api.get(`${modelPath(model.id)}/artifacts/directories`, { artifact_directory_path: folder || undefined }, schema.listArtifacts);
      for (const file of page.files) {
        // the answer names files relative to the folder asked for on some versions, to the root on others
        const path = folder && !file.path.startsWith(`${folder}/`) ? `${folder}/${file.path}` : file.path;
        if (file.is_dir) folders.push(path);
        else yield { path, size: file.file_size };
      }
    }
  }

  readArtifact(modelId: string, path: string): Promise<Readable> {
    // served under ajax-api only (MLflow 3.x), through whatever store the server uses
    return this.api.http.download(`ajax-api/2.0/mlflow/${modelPath(modelId)}/artifacts/files`, { artifact_file_path: path });
  }

  readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    return this.readArtifact(model.id, path);
  }

  // writing

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    const found: Array<{ id: string; complete: boolean }> = [];
    for await (const raw of this.search(experimentId)) {
      const tags = toTags(raw.info.tags);
      if (tags[SOURCE_TAGS.id] === sourceModelId) found.push({ id: raw.info.model_id, complete: tags[SOURCE_TAGS.complete] === 'true' });
    }
    return found.find((m) => m.complete) ?? found[0];
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const tags = { ...model.tags };
    delete tags[SOURCE_TAGS.complete];
    let created: schema.MlflowLoggedModel;
    try {
      const body = {
        experiment_id: experimentId,
        name: model.name,
        model_type: model.modelType,
        source_run_id: sourceRunId,
        params: tagList(model.params),
        tags: tagList(tags),
      };
      const sourceId = tags[SOURCE_TAGS.id];
      ({ model: created } = await this.api.creating(
        () => this.api.post('logged-models', body, schema.getLoggedModel, false),
        // one created before its answer was lost carries the source's id
        async () => {
          const found = sourceId ? await this.findLoggedModel(experimentId, sourceId) : undefined;
          return found ? this.api.get(modelPath(found.id), {}, schema.getLoggedModel) : undefined;
        },
      ));
    } catch (err) {
      if (isUnsupported(err)) throw new UsageError(`${this.api.uri} has no logged models (MLflow 3 feature); it cannot receive MLflow 3 logged models`);
      throw err;
    }
    this.roots.set(created.info.model_id, proxyPath(created.info.artifact_uri));
    return created.info.model_id;
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    let root = this.roots.get(modelId);
    if (root === undefined) {
      const { model } = await this.api.get(modelPath(modelId), {}, schema.getLoggedModel);
      root = proxyPath(model.info.artifact_uri);
      this.roots.set(modelId, root);
    }
    if (!root) throw new UsageError(`${this.api.uri} keeps logged model artifacts where trackshift cannot write through the server; start it with --serve-artifacts`);
    await this.api.upload(`${root}/${file.path}`, body, file.size);
  }

  async finishLoggedModel(modelId: string, model: LoggedModel, output?: { runId: string; step: number }): Promise<void> {
    // pending → the source's status (a failed upload stays failed); then complete, last
    const status = model.status.startsWith('LOGGED_MODEL_') ? model.status : READY;
    await this.api.send('PATCH', modelPath(modelId), { model_id: modelId, status }, schema.empty);
    // the run lists the model among its outputs, as mlflow's log_model does (repeating it is harmless)
    if (output) await this.api.post('runs/outputs', { run_id: output.runId, models: [{ model_id: modelId, step: output.step }] }, schema.empty);
    await this.api.send('PATCH', `${modelPath(modelId)}/tags`, { model_id: modelId, tags: [{ key: SOURCE_TAGS.complete, value: 'true' }] }, schema.empty);
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    try {
      await this.api.send('DELETE', modelPath(modelId), { model_id: modelId }, schema.empty);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
