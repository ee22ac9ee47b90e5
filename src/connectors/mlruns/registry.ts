/**
 * The model registry and MLflow 3 logged models of an mlruns folder (read only), as mlflow
 * 3.17's FileStore writes them:
 *
 *   <root>/models/<name>/meta.yaml              name, description, creation/last_updated_timestamp, aliases
 *   <root>/models/<name>/tags/<key>             model tags
 *   <root>/models/<name>/aliases/<alias>        the version number (older stores; newer ones also in meta.yaml)
 *   <root>/models/<name>/version-<n>/meta.yaml  version, source, run_id, run_link, current_stage
 *                                               (Deleted_Internal: deleted), status, description, model_id …
 *   <root>/models/<name>/version-<n>/tags/<key>
 *   <root>/<exp>/models/<model_id>/meta.yaml    a logged model: name, source_run_id, status (0-3), model_type …
 *   <root>/<exp>/models/<model_id>/params/, tags/, artifacts/
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArtifactFile, LoggedModel, ModelVersion, RegisteredModel } from '../../model/index.js';
import { MODEL_STAGES, type ModelStage } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { isDir, isFile, listDirs, listFiles, walkFiles } from '../../util/fs.js';
import { safeJoin } from '../../util/paths.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import type { LoggedModelReader, RegistryReader, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { readKeyValueFolder } from './files.js';
import { META, readMeta } from './format.js';

const MODELS = 'models';
/** how the file store marks a deleted version (its number stays taken) */
const DELETED_STAGE = 'Deleted_Internal';
/** LoggedModelStatus enum values */
export const LOGGED_MODEL_STATUS: Record<number, string> = { 0: 'LOGGED_MODEL_STATUS_UNSPECIFIED', 1: 'LOGGED_MODEL_PENDING', 2: 'LOGGED_MODEL_READY', 3: 'LOGGED_MODEL_UPLOAD_FAILED' };

const time = z.number().int().nullish().transform((t) => t ?? undefined);
const text = z.string().nullish().transform((t) => t ?? undefined);
const number = z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform(String);

const modelMetaSchema = z.object({
  name: z.string().min(1),
  description: text,
  creation_timestamp: time,
  last_updated_timestamp: time,
  aliases: z.record(z.string(), number).nullish(),
});

const versionMetaSchema = z.object({
  name: z.string().min(1),
  version: number,
  source: z.string().nullish().transform((s) => s ?? ''),
  run_id: text,
  run_link: text,
  current_stage: z.string().nullish().transform((s) => s ?? 'None'),
  status: z.string().nullish().transform((s) => s ?? 'READY'),
  description: text,
  user_id: text,
  creation_timestamp: time,
  last_updated_timestamp: time,
  model_id: text,
});

const loggedModelMetaSchema = z.object({
  model_id: z.string().min(1),
  experiment_id: z.union([z.string(), z.number()]).transform(String),
  name: z.string().nullish().transform((s) => s ?? ''),
  source_run_id: text,
  model_type: text,
  status: z.union([z.number().int(), z.string()]).nullish(),
  status_message: text,
  creation_timestamp: time,
  last_updated_timestamp: time,
});

export class MlrunsRegistry implements RegistryReader {
  /** `unreadable`: where models and versions with a malformed meta.yaml are recorded (Source.unreadable) */
  constructor(
    private readonly root: string,
    private readonly unreadable: UnreadableObject[] = [],
  ) {}

  private async modelDirs(): Promise<Map<string, string>> {
    const base = join(this.root, MODELS);
    const dirs = new Map<string, string>();
    for (const folder of await listDirs(base)) {
      const file = join(base, folder, META);
      if (!(await isFile(file))) continue;
      const meta = await readOrRecord(this.unreadable, { type: 'model', file }, () => readMeta(file, modelMetaSchema));
      if (meta) dirs.set(meta.name, join(base, folder));
    }
    return dirs;
  }

  private async readModel(dir: string): Promise<RegisteredModel> {
    const meta = await readMeta(join(dir, META), modelMetaSchema);
    const aliases: Record<string, string> = { ...(meta.aliases ?? {}) };
    const aliasDir = join(dir, 'aliases');
    for (const alias of await listFiles(aliasDir)) aliases[alias] = (await readFile(join(aliasDir, alias), 'utf8')).trim();
    return {
      name: meta.name,
      ...(meta.description ? { description: meta.description } : {}),
      tags: await readKeyValueFolder(join(dir, 'tags')),
      aliases,
      creationTime: meta.creation_timestamp,
      lastUpdatedTime: meta.last_updated_timestamp,
    };
  }

  async *listModels(): AsyncIterable<RegisteredModel> {
    for (const dir of (await this.modelDirs()).values()) yield this.readModel(dir);
  }

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    const dir = (await this.modelDirs()).get(name);
    return dir ? this.readModel(dir) : undefined;
  }

  async *listVersions(modelName: string): AsyncIterable<ModelVersion> {
    const dir = (await this.modelDirs()).get(modelName);
    if (!dir) return;
    const versions: ModelVersion[] = [];
    for (const folder of await listDirs(dir)) {
      if (!/^version-\d+$/.test(folder)) continue;
      const file = join(dir, folder, META);
      const meta = await readOrRecord(this.unreadable, { type: 'version', file, sourceId: `${modelName}/${folder.slice('version-'.length)}` }, async () => {
        const read = await readMeta(file, versionMetaSchema);
        if (`version-${read.version}` !== folder) throw new InvalidInputError(file, `says version ${read.version}, but its folder is ${folder}`);
        return read;
      });
      if (!meta) continue;
      if (meta.current_stage === DELETED_STAGE) continue;
      const location = parseVersionSource(meta.source, meta.run_id, meta.model_id);
      versions.push({
        modelName,
        version: meta.version,
        source: meta.source,
        location,
        // a local path reaches nothing outside this machine: no portable form
        ...(/^[a-z][a-z0-9+.-]+:\/\//i.test(meta.source) && !meta.source.startsWith('file:') ? { portableSource: meta.source } : {}),
        ...(meta.run_id ? { runId: meta.run_id } : {}),
        ...(meta.run_link ? { runLink: meta.run_link } : {}),
        ...(meta.model_id ? { loggedModelId: meta.model_id } : {}),
        status: meta.status,
        stage: (MODEL_STAGES as readonly string[]).includes(meta.current_stage) ? (meta.current_stage as ModelStage) : 'None',
        ...(meta.description ? { description: meta.description } : {}),
        tags: await readKeyValueFolder(join(dir, folder, 'tags')),
        ...(meta.user_id ? { user: meta.user_id } : {}),
        creationTime: meta.creation_timestamp,
        lastUpdatedTime: meta.last_updated_timestamp,
      });
    }
    versions.sort((a, b) => Number(a.version) - Number(b.version));
    yield* versions;
  }
}

export class MlrunsLoggedModels implements LoggedModelReader {
  /** model id → its folder */
  private readonly dirs = new Map<string, string>();

  constructor(
    private readonly experimentDir: (experimentId: string) => Promise<string>,
    private readonly unreadable: UnreadableObject[] = [],
  ) {}

  async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    const base = join(await this.experimentDir(experimentId), MODELS);
    for (const folder of await listDirs(base)) {
      const file = join(base, folder, META);
      if (!(await isFile(file))) continue;
      const meta = await readOrRecord(this.unreadable, { type: 'logged-model', file }, async () => {
        const read = await readMeta(file, loggedModelMetaSchema);
        if (read.model_id !== folder) throw new InvalidInputError(file, `says model_id ${read.model_id}, but its folder is ${folder}`);
        return read;
      });
      if (!meta) continue;
      this.dirs.set(meta.model_id, join(base, folder));
      const status = typeof meta.status === 'number' ? LOGGED_MODEL_STATUS[meta.status] : meta.status;
      yield {
        id: meta.model_id,
        experimentId,
        name: meta.name,
        ...(meta.source_run_id ? { sourceRunId: meta.source_run_id } : {}),
        ...(meta.model_type ? { modelType: meta.model_type } : {}),
        status: status ?? 'LOGGED_MODEL_READY',
        ...(meta.status_message ? { statusMessage: meta.status_message } : {}),
        params: await readKeyValueFolder(join(base, folder, 'params')),
        tags: await readKeyValueFolder(join(base, folder, 'tags')),
        creationTime: meta.creation_timestamp,
        lastUpdatedTime: meta.last_updated_timestamp,
      };
    }
  }

  private async artifacts(model: LoggedModel): Promise<string> {
    if (!this.dirs.has(model.id)) for await (const _ of this.listLoggedModels(model.experimentId));
    const dir = this.dirs.get(model.id);
    if (!dir) throw new InvalidInputError(model.experimentId, `no logged model ${model.id}`);
    return join(dir, 'artifacts');
  }

  async *listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    const dir = await this.artifacts(model);
    if (await isDir(dir)) yield* walkFiles(dir, 'follow');
  }

  async readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    const file = safeJoin(await this.artifacts(model), path, `artifact of logged model ${model.id}`);
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }
}
