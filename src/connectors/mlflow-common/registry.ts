/**
 * The MLflow model registry over REST (workspace registry of an MLflow server, 2.x and 3.x):
 * registered models, versions, stages, aliases and tags, read and written.
 *
 * Version numbers are assigned by the server in creation order; deleted versions keep their
 * number, so the engine can fill gaps (create, then delete) to keep numbers as in the source.
 */
import type { z } from 'zod';
import type { ModelSource, ModelStage, ModelVersion, RegisteredModel } from '../../model/index.js';
import { MODEL_STAGES, SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../../model/index.js';
import type { ExistingVersion, RegistryReader, RegistryWriter, VersionTarget } from '../types.js';
import { HttpError } from '../../util/http.js';
import { UsageError } from '../../util/errors.js';
import { isNotFound, type MlflowApi } from './client.js';
import { proxyPath } from './proxy.js';
import { parseVersionSource } from './version-source.js';
import * as schema from './schemas.js';

const MODEL_PAGE = 1000;
const VERSION_PAGE = 1000;

const toTags = (list: Array<{ key: string; value: string }>) => Object.fromEntries(list.map((t) => [t.key, t.value]));
const quote = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function toStage(stage: string): ModelStage {
  return (MODEL_STAGES as readonly string[]).includes(stage) ? (stage as ModelStage) : 'None';
}

/** A registered model as MLflow's REST API (and Unity Catalog's) sends it. */
export function toRegisteredModel(raw: {
  name: string;
  description?: string;
  tags: Array<{ key: string; value: string }>;
  aliases: Array<{ alias: string; version: string }>;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
}): RegisteredModel {
  return {
    name: raw.name,
    ...(raw.description ? { description: raw.description } : {}),
    tags: toTags(raw.tags),
    aliases: Object.fromEntries(raw.aliases.map((a) => [a.alias, a.version])),
    creationTime: raw.creation_timestamp,
    lastUpdatedTime: raw.last_updated_timestamp,
  };
}

export class MlflowRegistry implements RegistryReader, RegistryWriter {
  readonly hasStages = true;

  constructor(private readonly api: MlflowApi) {}

  // reading

  private toModel(raw: z.infer<typeof schema.registeredModel>): RegisteredModel {
    return toRegisteredModel(raw);
  }

  async *listModels(): AsyncIterable<RegisteredModel> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.get('registered-models/search', { max_results: MODEL_PAGE, page_token: pageToken }, schema.searchRegisteredModels);
      for (const raw of page.registered_models) yield this.toModel(raw);
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    try {
      return this.toModel((await this.api.get('registered-models/get', { name }, schema.getRegisteredModel)).registered_model);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async *rawVersions(modelName: string): AsyncIterable<schema.MlflowModelVersion> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.get(
        'model-versions/search',
        { filter: `name=${quote(modelName)}`, max_results: VERSION_PAGE, page_token: pageToken },
        schema.searchModelVersions,
      );
      yield* page.model_versions;
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async *listVersions(modelName: string): AsyncIterable<ModelVersion> {
    const raws: schema.MlflowModelVersion[] = [];
    for await (const raw of this.rawVersions(modelName)) raws.push(raw);
    raws.sort((a, b) => Number(a.version) - Number(b.version));
    for (const raw of raws) {
      const location = parseVersionSource(raw.source, raw.run_id || undefined, raw.model_id || undefined);
      yield {
        modelName: raw.name,
        version: raw.version,
        source: raw.source,
        location,
        portableSource: await this.portableSource(raw.source, location),
        ...(raw.run_id ? { runId: raw.run_id } : {}),
        ...(raw.run_link ? { runLink: raw.run_link } : {}),
        // servers do not always send model_id; a models:/m-… source names it as well
        ...(raw.model_id || location.type === 'logged-model' ? { loggedModelId: raw.model_id || (location as { modelId: string }).modelId } : {}),
        status: raw.status,
        stage: toStage(raw.current_stage),
        ...(raw.description ? { description: raw.description } : {}),
        tags: toTags(raw.tags),
        ...(raw.user_id ? { user: raw.user_id } : {}),
        creationTime: raw.creation_timestamp,
        lastUpdatedTime: raw.last_updated_timestamp,
      };
    }
  }

  /**
   * The version's files as a URI that works from another server: `mlflow-artifacts:` paths
   * (relative to this server) become this server's artifact-proxy URL.
   */
  private async portableSource(source: string, location: ModelSource): Promise<string | undefined> {
    let uri = source;
    try {
      if (location.type === 'run' && source.startsWith('runs:/')) {
        const { run } = await this.api.get('runs/get', { run_id: location.runId }, schema.getRun);
        uri = `${(run.info.artifact_uri ?? '').replace(/\/+$/, '')}/${location.path}`;
      } else if (location.type === 'logged-model') {
        const { model } = await this.api.get(`logged-models/${encodeURIComponent(location.modelId)}`, {}, schema.getLoggedModel);
        uri = model.info.artifact_uri ?? source;
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return undefined;
    }
    if (!uri.startsWith('mlflow-artifacts:')) return /^[a-z][a-z0-9+.-]*:/i.test(uri) && !uri.startsWith('runs:') && !uri.startsWith('models:') ? uri : undefined;
    return `${this.api.baseUrl}api/2.0/mlflow-artifacts/artifacts/${proxyPath(uri)}`;
  }

  // writing

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    const model = await this.getModel(name);
    return model && { tags: model.tags };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    const tags = Object.entries(model.tags).map(([key, value]) => ({ key, value }));
    let existing = await this.getModel(name);
    if (!existing) {
      try {
        await this.api.post('registered-models/create', { name, tags, description: model.description }, schema.empty);
        return;
      } catch (err) {
        // names are unique: a repeated create fails, and the model is then updated
        if (!(err instanceof HttpError && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
        existing = await this.getModel(name);
        if (!existing) throw err;
      }
    }
    if ((existing.description ?? '') !== (model.description ?? '')) {
      await this.api.send('PATCH', 'registered-models/update', { name, description: model.description ?? '' }, schema.empty);
    }
    for (const { key, value } of tags) {
      if (existing.tags[key] !== value) await this.api.post('registered-models/set-tag', { name, key, value }, schema.empty);
    }
  }

  async deleteModel(name: string): Promise<void> {
    try {
      await this.api.send('DELETE', 'registered-models/delete', { name }, schema.empty);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for await (const raw of this.rawVersions(modelName)) yield { version: raw.version, tags: toTags(raw.tags) };
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const body = {
      name: modelName,
      source: await this.sourceFor(target.location),
      run_id: target.runId,
      run_link: target.runLink,
      model_id: target.loggedModelId,
      description: version.description,
      tags: Object.entries(version.tags).map(([key, value]) => ({ key, value })),
    };
    const sourceId = version.tags[SOURCE_TAGS.id];
    // it may have been created before the answer was lost: a version with its provenance tags is it
    const lookup = async () => {
      if (!sourceId) return undefined;
      for await (const existing of this.listExistingVersions(modelName)) {
        if (Object.entries(version.tags).every(([key, value]) => !key.startsWith(SOURCE_TAG_PREFIX) || existing.tags[key] === value)) return existing.version;
      }
      return undefined;
    };
    try {
      return await this.api.creating(async () => (await this.api.post('model-versions/create', body, schema.getModelVersion, false)).model_version.version, lookup);
    } catch (err) {
      if (target.location.type === 'uri' && err instanceof HttpError && err.errorCode === 'INVALID_PARAMETER_VALUE') {
        throw new UsageError(
          `${this.api.uri} refuses a version whose files stay at ${target.location.uri} (a shallow copy): ${err.message} ` +
            'MLflow 3 servers take files on another MLflow server only with a run of their own; a shallow copy between servers ' +
            'works for files on storage both reach (s3://, gs://, …; the server may need MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES). ' +
            'Otherwise copy deep: drop --models-only, or give copy-model-version a --dst-experiment.',
        );
      }
      throw err;
    }
  }

  /** The source string a new version gets: where the files are, as the server names it. */
  private async sourceFor(location: ModelSource): Promise<string> {
    if (location.type === 'uri') return location.uri;
    if (location.type === 'logged-model') return `models:/${location.modelId}`;
    // as mlflow.register_model does: the run's artifact location, not a runs:/ URI
    const { run } = await this.api.get('runs/get', { run_id: location.runId }, schema.getRun);
    const root = (run.info.artifact_uri ?? '').replace(/\/+$/, '');
    return root ? `${root}/${location.path}` : `runs:/${location.runId}/${location.path}`;
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    const { model_version: current } = await this.api.get('model-versions/get', { name: modelName, version: number }, schema.getModelVersion);
    if ((current.description ?? '') !== (version.description ?? '')) {
      await this.api.send('PATCH', 'model-versions/update', { name: modelName, version: number, description: version.description ?? '' }, schema.empty);
    }
    const tags = toTags(current.tags);
    for (const [key, value] of Object.entries(version.tags)) {
      if (tags[key] !== value) await this.setVersionTag(modelName, number, key, value);
    }
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    try {
      await this.api.send('DELETE', 'model-versions/delete', { name: modelName, version: number }, schema.empty);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async setStage(modelName: string, number: string, stage: ModelStage, archiveOthers = false): Promise<void> {
    // MLflow only archives others when moving into Staging or Production
    const archive = archiveOthers && (stage === 'Staging' || stage === 'Production');
    await this.api.post('model-versions/transition-stage', { name: modelName, version: number, stage, archive_existing_versions: archive }, schema.empty);
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    await this.api.post('registered-models/alias', { name: modelName, alias, version: number }, schema.empty);
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    await this.api.post('model-versions/set-tag', { name: modelName, version: number, key, value }, schema.empty);
  }
}
