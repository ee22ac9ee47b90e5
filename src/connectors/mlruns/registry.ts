/**
 * The model registry of an mlruns folder, read and written, as mlflow 3.17's FileStore writes
 * it (MLflow 3 logged models: ./logged-models.ts):
 *
 *   <root>/models/<name>/meta.yaml              name, description, creation/last_updated_timestamp, aliases
 *   <root>/models/<name>/tags/<key>             model tags
 *   <root>/models/<name>/aliases/<alias>        the version number (older stores; newer ones also in meta.yaml)
 *   <root>/models/<name>/version-<n>/meta.yaml  version, source, run_id, run_link, current_stage
 *                                               (Deleted_Internal: deleted), status, description, model_id …
 *   <root>/models/<name>/version-<n>/tags/<key>
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import type { ModelVersion, RegisteredModel } from '../../model/index.js';
import { MODEL_STAGES, type ModelStage } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { isFile, listDirs, listFiles } from '../../util/fs.js';
import { removeInside, safeJoin } from '../../util/paths.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import type { ExistingVersion, RegistryReader, RegistryWriter, UnreadableObject, VersionTarget } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { readKeyValueFolder } from './files.js';
import { META, readMeta } from './format.js';
import type { MlrunsLoggedModelWriter } from './logged-models.js';

const MODELS = 'models';
/** how the file store marks a deleted version (its number stays taken) */
const DELETED_STAGE = 'Deleted_Internal';

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

/**
 * The registry of a file store (`models/<name>/…`), as FileStore writes it. A file store keeps
 * version numbers as given, and each version's source is the copied run's artifact folder.
 */
export class MlrunsRegistryWriter implements RegistryWriter {
  readonly hasStages = true;
  readonly keepsVersionNumbers = true;

  constructor(
    private readonly root: string,
    private readonly runFolder: (runId: string) => Promise<string | undefined>,
    private readonly loggedModels: MlrunsLoggedModelWriter,
  ) {}

  private modelDir(name: string): string {
    return safeJoin(join(this.root, 'models'), name, `model ${name}`);
  }

  private versionDir(name: string, number: string): string {
    if (!/^\d+$/.test(number)) throw new InvalidInputError(`model ${name}`, `"${number}" is not a version number`);
    return join(this.modelDir(name), `version-${number}`);
  }

  private async readYaml(file: string): Promise<Record<string, unknown>> {
    return (parse(await readFile(file, 'utf8')) as Record<string, unknown> | null) ?? {};
  }

  private async writeTags(dir: string, tags: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(tags)) {
      const file = safeJoin(join(dir, 'tags'), key, `tag of ${dir}`);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, value);
    }
  }

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    if (!(await isFile(join(this.modelDir(name), META)))) return undefined;
    return { tags: await readKeyValueFolder(join(this.modelDir(name), 'tags')) };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    const dir = this.modelDir(name);
    const file = join(dir, META);
    const held = (await isFile(file)) ? await this.readYaml(file) : undefined;
    const now = Date.now();
    await mkdir(dir, { recursive: true });
    await writeFile(
      file,
      stringify({
        ...held,
        creation_timestamp: held?.creation_timestamp ?? model.creationTime ?? now,
        description: model.description ?? null,
        last_updated_timestamp: model.lastUpdatedTime ?? now,
        name,
      }),
    );
    await this.writeTags(dir, model.tags);
  }

  async deleteModel(name: string): Promise<void> {
    await removeInside(join(this.root, 'models'), this.modelDir(name));
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for (const folder of await listDirs(this.modelDir(modelName))) {
      const match = /^version-(\d+)$/.exec(folder);
      if (!match) continue;
      const meta = await this.readYaml(join(this.modelDir(modelName), folder, META));
      if (meta.current_stage === 'Deleted_Internal') continue;
      yield { version: match[1]!, tags: await readKeyValueFolder(join(this.modelDir(modelName), folder, 'tags')) };
    }
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    let source: string;
    let storageLocation: string;
    let runId = target.runId;
    if (target.location.type === 'run') {
      const runDir = await this.runFolder(target.location.runId);
      if (!runDir) throw new InvalidInputError(this.root, `version ${version.version} of ${modelName} points at run ${target.location.runId}, which is not in this store`);
      const artifacts = join(runDir, 'artifacts');
      const where = `version ${version.version} of ${modelName}`;
      source = storageLocation = pathToFileURL(target.location.path ? safeJoin(artifacts, target.location.path.replace(/\/+$/, ''), where) : artifacts).href;
    } else if (target.location.type === 'logged-model') {
      // as FileStore registers models:/<id>: downloaded from the logged model's artifact folder, run from the model
      source = `models:/${target.location.modelId}`;
      const location = await this.loggedModels.artifactLocation(target.location.modelId);
      if (!location) throw new InvalidInputError(this.root, `version ${version.version} of ${modelName} points at logged model ${target.location.modelId}, which is not in this store`);
      storageLocation = location;
      runId ??= await this.loggedModels.sourceRun(target.location.modelId);
    } else source = storageLocation = target.location.uri;
    const dir = this.versionDir(modelName, version.version);
    const now = Date.now();
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, META),
      stringify({
        creation_timestamp: version.creationTime ?? now,
        current_stage: 'None',
        description: version.description ?? null,
        last_updated_timestamp: version.lastUpdatedTime ?? now,
        model_id: target.loggedModelId ?? null,
        name: modelName,
        run_id: runId ?? null,
        run_link: target.runLink ?? null,
        source,
        status: 'READY',
        status_message: null,
        storage_location: storageLocation,
        user_id: version.user ?? null,
        version: Number(version.version),
      }),
    );
    await this.writeTags(dir, version.tags);
    // mlflow.register_model lists the version on the logged model it came from
    if (target.location.type === 'logged-model') await this.loggedModels.addModelVersion(target.location.modelId, modelName, version.version);
    return version.version;
  }

  private async updateMeta(modelName: string, number: string, change: Record<string, unknown>): Promise<void> {
    const file = join(this.versionDir(modelName, number), META);
    await writeFile(file, stringify({ ...(await this.readYaml(file)), ...change }));
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    await this.updateMeta(modelName, number, { description: version.description ?? null });
    await this.writeTags(this.versionDir(modelName, number), version.tags);
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    // as FileStore: the number stays taken
    if (await isFile(join(this.versionDir(modelName, number), META))) await this.updateMeta(modelName, number, { current_stage: 'Deleted_Internal' });
  }

  async setStage(modelName: string, number: string, stage: ModelStage, archiveOthers = false): Promise<void> {
    if (archiveOthers && (stage === 'Staging' || stage === 'Production')) {
      for await (const other of this.listExistingVersions(modelName)) {
        const meta = await this.readYaml(join(this.versionDir(modelName, other.version), META));
        if (other.version !== number && meta.current_stage === stage) await this.updateMeta(modelName, other.version, { current_stage: 'Archived' });
      }
    }
    await this.updateMeta(modelName, number, { current_stage: stage });
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    const dir = join(this.modelDir(modelName), 'aliases');
    await mkdir(dir, { recursive: true });
    await writeFile(safeJoin(dir, alias, `alias of ${modelName}`), number);
    const file = join(this.modelDir(modelName), META);
    const meta = await this.readYaml(file);
    await writeFile(file, stringify({ ...meta, aliases: { ...((meta.aliases as Record<string, string> | null) ?? {}), [alias]: number } }));
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    await this.writeTags(this.versionDir(modelName, number), { [key]: value });
  }
}
