/**
 * The model registry in a bundle (docs/bundle-format.md):
 *
 *   models/<model>/model.json                         name, description, tags, aliases, times
 *   models/<model>/versions/<n>.json                  one file per version, rewritten whole
 *
 * A bundle keeps the source's version numbers and times. A version is complete when its tags
 * hold `trackshift.complete` (set last by the engine); readers skip the others.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ModelStage, ModelVersion, RegisteredModel } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { exists, isFile, listDirs, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, relativePathProblem, removeInside } from '../../util/paths.js';
import type { ExistingVersion, RegistryReader, RegistryWriter, UnreadableObject, VersionTarget } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { MODELS_DIR, MODEL_FILE, VERSIONS_DIR, modelSchema, readJsonFile, versionSchema, withoutUndefined, type ModelFile, type VersionFile } from './format.js';

const isComplete = (tags: Record<string, string>) => tags[SOURCE_TAGS.complete] === 'true';


export class BundleRegistry implements RegistryReader, RegistryWriter {
  readonly hasStages = true;
  readonly keepsVersionNumbers = true;

  /** `unreadable`: where a reader records models and versions whose files are malformed (Source.unreadable) */
  constructor(
    private readonly root: string,
    private readonly unreadable?: UnreadableObject[],
  ) {}

  private modelDir(name: string): string {
    return join(this.root, MODELS_DIR, idToFolderName(name));
  }

  private versionFile(name: string, number: string): string {
    if (!/^\d+$/.test(number)) throw new InvalidInputError(this.modelDir(name), `"${number}" is not a version number`);
    return join(this.modelDir(name), VERSIONS_DIR, `${number}.json`);
  }

  private async readModel(name: string): Promise<ModelFile | undefined> {
    const file = join(this.modelDir(name), MODEL_FILE);
    if (!(await isFile(file))) return undefined;
    const model = await readJsonFile(file, modelSchema);
    if (model.name !== name) throw new InvalidInputError(file, `holds model "${model.name}", which does not belong in this folder`);
    return model;
  }

  /** One version file, checked: its number and model, and a path inside its run's artifacts. */
  private async readVersion(file: string, fileName: string, name: string): Promise<VersionFile> {
    const version = await readJsonFile(file, versionSchema);
    if (`${version.version}.json` !== fileName || version.modelName !== name) {
      throw new InvalidInputError(file, `holds version ${version.version} of "${version.modelName}", which does not belong in this file`);
    }
    const { location } = version;
    const problem = location.type === 'run' && location.path !== '' ? relativePathProblem(location.path.replace(/\/+$/, '')) : undefined;
    if (problem) throw new InvalidInputError(file, `location.path ${JSON.stringify(location.type === 'run' ? location.path : '')} is not a path inside its run's artifacts: ${problem}`);
    return version;
  }

  /** `record`: a malformed version is recorded as unreadable and left out (reading), else thrown (writing) */
  private async readVersions(name: string, record = false): Promise<VersionFile[]> {
    const dir = join(this.modelDir(name), VERSIONS_DIR);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /^\d+\.json$/.test(n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new InvalidInputError(dir, `cannot list versions: ${errorMessage(err)}`);
    }
    const versions: VersionFile[] = [];
    for (const fileName of names) {
      const file = join(dir, fileName);
      const read = () => this.readVersion(file, fileName, name);
      const version = record && this.unreadable ? await readOrRecord(this.unreadable, { type: 'version', file, sourceId: `${name}/${fileName.replace(/\.json$/, '')}` }, read) : await read();
      if (version) versions.push(version);
    }
    return versions.sort((a, b) => Number(a.version) - Number(b.version));
  }

  // reading

  async *listModels(): AsyncIterable<RegisteredModel> {
    for (const folder of await listDirs(join(this.root, MODELS_DIR))) {
      const file = join(this.root, MODELS_DIR, folder, MODEL_FILE);
      if (!(await isFile(file))) continue;
      const model = await readOrRecord(this.unreadable ?? [], { type: 'model', file }, async () => {
        const read = await readJsonFile(file, modelSchema);
        if (idToFolderName(read.name) !== folder) throw new InvalidInputError(file, `holds model "${read.name}", which does not belong in folder "${folder}"`);
        return read;
      });
      if (model) yield model;
    }
  }

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    return this.readModel(name);
  }

  async *listVersions(modelName: string): AsyncIterable<ModelVersion> {
    for (const version of await this.readVersions(modelName, true)) {
      if (!isComplete(version.tags)) continue; // cut off part way: not part of the bundle
      const tags = { ...version.tags };
      delete tags[SOURCE_TAGS.complete];
      yield { ...version, tags };
    }
  }

  // writing

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    const model = await this.readModel(name);
    return model && { tags: model.tags };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    const existing = await this.readModel(name);
    const record: ModelFile = withoutUndefined({
      name,
      description: model.description,
      tags: { ...existing?.tags, ...model.tags },
      aliases: existing?.aliases ?? {},
      creationTime: existing?.creationTime ?? model.creationTime,
      lastUpdatedTime: model.lastUpdatedTime,
    });
    await mkdir(join(this.modelDir(name), VERSIONS_DIR), { recursive: true });
    await writeJsonAtomic(join(this.modelDir(name), MODEL_FILE), record);
  }

  async deleteModel(name: string): Promise<void> {
    // model.json first: whatever happens next, the model is gone for readers
    await rm(join(this.modelDir(name), MODEL_FILE), { force: true });
    await removeInside(this.root, this.modelDir(name));
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for (const version of await this.readVersions(modelName)) yield { version: version.version, tags: version.tags };
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const file = this.versionFile(modelName, version.version);
    if (await exists(file)) {
      const held = await readJsonFile(file, versionSchema);
      if (held.tags[SOURCE_TAGS.id] !== version.tags[SOURCE_TAGS.id]) {
        throw new InvalidInputError(file, `version ${version.version} of "${modelName}" already holds ${held.tags[SOURCE_TAGS.id] ?? 'another version'}; a bundle keeps source version numbers, so two source models cannot share one bundle model`);
      }
    }
    const record: VersionFile = withoutUndefined({
      modelName,
      version: version.version,
      source: version.source,
      location: target.location,
      portableSource: version.portableSource,
      runId: target.runId,
      runLink: target.runLink ?? version.runLink,
      loggedModelId: target.loggedModelId,
      status: version.status,
      stage: 'None' as ModelStage,
      description: version.description,
      tags: version.tags,
      user: version.user,
      creationTime: version.creationTime,
      lastUpdatedTime: version.lastUpdatedTime,
    });
    await mkdir(dirname(file), { recursive: true });
    await writeJsonAtomic(file, record);
    return version.version;
  }

  private async updateFile(modelName: string, number: string, change: (record: VersionFile) => VersionFile): Promise<void> {
    const file = this.versionFile(modelName, number);
    await writeJsonAtomic(file, change(await readJsonFile(file, versionSchema)));
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    await this.updateFile(modelName, number, (record) => withoutUndefined({ ...record, description: version.description, tags: { ...record.tags, ...version.tags } }));
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    await rm(this.versionFile(modelName, number), { force: true });
  }

  async setStage(modelName: string, number: string, stage: ModelStage, archiveOthers = false): Promise<void> {
    if (archiveOthers && (stage === 'Staging' || stage === 'Production')) {
      for (const other of await this.readVersions(modelName)) {
        if (other.version !== number && other.stage === stage) await this.updateFile(modelName, other.version, (record) => ({ ...record, stage: 'Archived' }));
      }
    }
    await this.updateFile(modelName, number, (record) => ({ ...record, stage }));
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    const file = join(this.modelDir(modelName), MODEL_FILE);
    const model = await readJsonFile(file, modelSchema);
    await writeJsonAtomic(file, { ...model, aliases: { ...model.aliases, [alias]: number } });
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    await this.updateFile(modelName, number, (record) => ({ ...record, tags: { ...record.tags, [key]: value } }));
  }
}
