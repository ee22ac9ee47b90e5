/**
 * An in-memory model registry that numbers versions the way an MLflow server does: the next
 * number after every version ever created (deleted ones keep theirs). `hasStages: false`
 * makes it behave like Unity Catalog. Drives the engine's registry tests.
 */
import type { ModelStage, ModelVersion, RegisteredModel } from '../../model/index.js';
import type { ExistingVersion, RegistryReader, RegistryWriter, VersionTarget } from '../types.js';

export interface MemoryModel {
  model: RegisteredModel;
  versions: Map<string, ModelVersion>;
  /** the highest number ever given, deleted versions included */
  lastNumber: number;
}

export class MemoryRegistry implements RegistryReader, RegistryWriter {
  readonly models = new Map<string, MemoryModel>();

  constructor(readonly hasStages = true) {}

  private held(name: string): MemoryModel {
    const held = this.models.get(name);
    if (!held) throw new Error(`memory: no registered model "${name}"`);
    return held;
  }

  private version(name: string, number: string): ModelVersion {
    const version = this.held(name).versions.get(number);
    if (!version) throw new Error(`memory: no version ${number} of "${name}"`);
    return version;
  }

  /** Adds a model with versions numbered as given (a source for tests). */
  add(model: RegisteredModel, versions: ModelVersion[]): void {
    const held: MemoryModel = { model: structuredClone(model), versions: new Map(), lastNumber: 0 };
    for (const v of versions) {
      held.versions.set(v.version, structuredClone(v));
      held.lastNumber = Math.max(held.lastNumber, Number(v.version));
    }
    this.models.set(model.name, held);
  }

  // reading

  async *listModels(): AsyncIterable<RegisteredModel> {
    for (const { model } of this.models.values()) yield structuredClone(model);
  }

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    const held = this.models.get(name);
    return held && structuredClone(held.model);
  }

  async *listVersions(modelName: string): AsyncIterable<ModelVersion> {
    const versions = [...this.held(modelName).versions.values()].sort((a, b) => Number(a.version) - Number(b.version));
    for (const v of versions) yield structuredClone(v);
  }

  // writing

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    const held = this.models.get(name);
    return held && { tags: { ...held.model.tags } };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    const held = this.models.get(name);
    if (!held) this.models.set(name, { model: { ...structuredClone(model), name, aliases: {} }, versions: new Map(), lastNumber: 0 });
    else held.model = { ...held.model, description: model.description, tags: { ...held.model.tags, ...model.tags } };
  }

  async deleteModel(name: string): Promise<void> {
    this.models.delete(name);
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for (const v of this.held(modelName).versions.values()) yield { version: v.version, tags: { ...v.tags } };
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const held = this.held(modelName);
    const number = String(++held.lastNumber);
    const location = target.location;
    const source = location.type === 'uri' ? location.uri : location.type === 'run' ? `runs:/${location.runId}/${location.path}` : `models:/${location.modelId}`;
    held.versions.set(number, {
      ...structuredClone(version),
      modelName,
      version: number,
      source,
      location,
      runId: target.runId,
      loggedModelId: target.loggedModelId,
      stage: 'None',
    });
    return number;
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    const held = this.version(modelName, number);
    held.description = version.description;
    held.tags = { ...held.tags, ...version.tags };
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    const held = this.held(modelName);
    held.versions.delete(number);
    for (const [alias, v] of Object.entries(held.model.aliases)) if (v === number) delete held.model.aliases[alias];
  }

  async setStage(modelName: string, number: string, stage: ModelStage, archiveOthers = false): Promise<void> {
    if (!this.hasStages) throw new Error('memory: this registry has no stages');
    if (archiveOthers && (stage === 'Staging' || stage === 'Production')) {
      for (const other of this.held(modelName).versions.values()) if (other.stage === stage) other.stage = 'Archived';
    }
    this.version(modelName, number).stage = stage;
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    this.version(modelName, number);
    this.held(modelName).model.aliases[alias] = number;
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    this.version(modelName, number).tags[key] = value;
  }
}

