/**
 * Moving MLflow 3 logged models and the model registry, after the runs they point at.
 *
 * Versions of a model are created one at a time in the source's order, so that on a new
 * destination model they get the source's numbers; a gap in the source's numbers (a deleted
 * version) is kept by creating a version and deleting it again, which is what the source did.
 * Where numbers cannot match (the model existed before), the report lists how they map.
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, LoggedModel, ModelStage, ModelVersion, RegisteredModel } from '../model/index.js';
import { SOURCE_TAGS } from '../model/index.js';
import type { Destination, ExistingVersion, RegistryWriter, Source, VersionTarget } from '../connectors/types.js';
import { errorMessage } from '../util/errors.js';
import type { Journal } from './journal.js';
import type { ModelPlan } from './plan.js';
import { versionRunId } from './plan.js';

/** Tags that record a version's lineage (`--lineage-tags`). */
export const LINEAGE_TAGS = {
  model: 'trackshift.lineage.model',
  version: 'trackshift.lineage.version',
  runId: 'trackshift.lineage.run_id',
  trackingUri: 'trackshift.lineage.tracking_uri',
} as const;

/**
 * Tags a registry derives and maintains itself: MLflow 3 lists on a logged model the versions
 * registered from it. Copied, they would name the source's versions; the destination writes its own.
 */
export const DERIVED_LOGGED_MODEL_TAGS = ['mlflow.modelVersions'];

/** On a shallow copy in another system, the source run its files belong to. */
export const SHALLOW_RUN_TAG = 'trackshift.source.run_id';

/** Kept on copies in registries that cannot set creation times, so the original is not lost. */
export const CREATED_TAG = 'trackshift.source.creation_time';

/** Registries without stages (Unity Catalog) get an alias per stage: `Production` → `production`. */
export const stageAlias = (stage: ModelStage) => stage.toLowerCase();

/**
 * For a registry without stages (Unity Catalog): each stage other than None becomes an alias
 * (its name in lower case) on the newest version in that stage, unless that alias is `taken`.
 */
export function stageAliases(versions: ModelVersion[], taken: (alias: string) => boolean): Map<string, ModelVersion> {
  const newest = new Map<string, ModelVersion>();
  for (const version of versions) {
    if (version.stage === 'None' || taken(stageAlias(version.stage))) continue;
    const current = newest.get(stageAlias(version.stage));
    if (!current || Number(version.version) > Number(current.version)) newest.set(stageAlias(version.stage), version);
  }
  return newest;
}

export interface ModelTransferContext {
  source: Source;
  destination: Destination;
  journal: Journal;
  /** destination run id of a source run that is copied (now or earlier), if any */
  runCopy(sourceRunId: string): string | undefined;
  loggedModelCopy(sourceModelId: string): string | undefined;
  /** why a run or logged model failed in this job, if it did: its versions fail with it, not turn shallow */
  failedHere?(type: 'run' | 'logged-model', sourceId: string): string | undefined;
  warn(object: string, message: string): void;
  lineageTags: boolean;
  deleteExisting: boolean;
  /**
   * Copies a source version's files (its run's folder, or its logged model) through `write`,
   * `MLmodel` files getting the ids in `ids`: for registries that keep files themselves.
   */
  copyVersionFiles(version: ModelVersion, write: (file: ArtifactFile, body: Readable) => Promise<void>, ids: ReadonlyMap<string, string>): Promise<unknown>;
  /** `--archive-existing-versions`: a version moved into Staging/Production archives the destination's others there */
  archiveExisting: boolean;
  /** give versions the source's numbers in a new model (false: the next free numbers, as copy-model-version does) */
  keepNumbers: boolean;
}

export interface ModelOutcome {
  model: string;
  destinationModel: string;
  /** source version → destination version, for every version handled */
  versions: Record<string, string>;
  copied: number;
  skipped: number;
  /** versions that point at the source's files, not at a copy */
  shallow: string[];
  failed: Array<{ version?: string; reason: string }>;
}

const versionKey = (model: string, version: string) => `${model}/${version}`;

/**
 * Whether an object's tags say it is the copy of source object `id`. Model names and version
 * numbers repeat across registries, so the source's creation time (kept through bundles, and
 * the same each time one source is read) tells copies of different sources apart; without it,
 * the source URI does.
 */
export function isCopyOf(tags: Record<string, string>, id: string, creationTime: number | undefined, sourceUri: string): boolean {
  if (tags[SOURCE_TAGS.id] !== id) return false;
  return creationTime !== undefined ? tags[CREATED_TAG] === String(creationTime) : tags[SOURCE_TAGS.uri] === sourceUri;
}

export class ModelTransfer {
  constructor(private readonly ctx: ModelTransferContext) {}

  private get registry(): RegistryWriter {
    const registry = this.ctx.destination.registry;
    if (!registry) throw new Error(`${this.ctx.destination.uri} (${this.ctx.destination.kind}) has no model registry to write to`);
    return registry;
  }

  async copyModel(plan: ModelPlan): Promise<ModelOutcome> {
    const { model, destinationName: name } = plan;
    const outcome: ModelOutcome = { model: model.name, destinationModel: name, versions: {}, copied: 0, skipped: 0, shallow: [], failed: [] };
    const { journal } = this.ctx;
    const registry = this.registry;

    if (this.ctx.deleteExisting && !journal.deletedModels.has(name)) {
      await registry.deleteModel(name);
      journal.modelDeleted(name);
    }
    const before = await registry.findModel(name);
    // numbers can be kept when the model is new, or was made by trackshift from this very model
    const own = !before || isCopyOf(before.tags, model.name, model.creationTime, this.ctx.source.uri);
    await registry.ensureModel(this.modelWithProvenance(model), name);

    const existing: ExistingVersion[] = [];
    for await (const version of registry.listExistingVersions(name)) existing.push(version);
    for (const version of plan.versions) {
      const key = versionKey(model.name, version.version);
      try {
        const done = journal.doneVersions.get(key);
        const found = existing.find((e) => isCopyOf(e.tags, key, version.creationTime, this.ctx.source.uri));
        if (done || found?.tags[SOURCE_TAGS.complete] === 'true') {
          outcome.versions[version.version] = done ? done.slice(name.length + 1) : found!.version;
          outcome.skipped++;
          continue;
        }
        const number = await this.writeVersion(version, name, found, own, outcome);
        outcome.versions[version.version] = number;
        journal.versionDone(key, versionKey(name, number));
        outcome.copied++;
      } catch (err) {
        outcome.failed.push({ version: version.version, reason: errorMessage(err) });
      }
    }
    try {
      await this.setAliases(model, plan.versions, name, outcome);
    } catch (err) {
      outcome.failed.push({ reason: `aliases: ${errorMessage(err)}` });
    }
    const moved = Object.entries(outcome.versions).filter(([from, to]) => from !== to);
    if (moved.length > 0) {
      this.ctx.warn(
        `model "${model.name}"`,
        `version numbers differ in the destination model "${name}" (it held versions before): ${moved.map(([from, to]) => `${from} → ${to}`).join(', ')}`,
      );
    }
    return outcome;
  }

  private modelWithProvenance(model: RegisteredModel): RegisteredModel {
    const tags: Record<string, string> = { ...model.tags, [SOURCE_TAGS.id]: model.name, [SOURCE_TAGS.uri]: this.ctx.source.uri };
    if (model.creationTime !== undefined) tags[CREATED_TAG] = String(model.creationTime);
    return { ...model, tags };
  }

  /** Where the copy points: the copied run or logged model (deep), or the source's files (shallow). */
  private target(version: ModelVersion, outcome: ModelOutcome): VersionTarget {
    const { location } = version;
    const runId = versionRunId(version);
    const copiedRun = runId ? this.ctx.runCopy(runId) : undefined;
    if (location.type === 'run' && copiedRun) return { location: { type: 'run', runId: copiedRun, path: location.path }, runId: copiedRun };
    if (location.type === 'logged-model') {
      const copiedModel = this.ctx.loggedModelCopy(location.modelId);
      if (copiedModel) return { location: { type: 'logged-model', modelId: copiedModel }, loggedModelId: copiedModel, runId: copiedRun };
    }
    // a run or logged model that this job tried and failed to copy: a shallow copy would not be what was asked
    const failedRun = runId ? this.ctx.failedHere?.('run', runId) : undefined;
    if (failedRun) throw new Error(`its run ${runId} was not copied: ${failedRun}`);
    const failedModel = location.type === 'logged-model' ? this.ctx.failedHere?.('logged-model', location.modelId) : undefined;
    if (failedModel) throw new Error(`its logged model ${location.type === 'logged-model' ? location.modelId : ''} was not copied: ${failedModel}`);
    outcome.shallow.push(version.version);
    // within one system the version points where the source version does, run and all
    if (this.ctx.source.uri === this.ctx.destination.uri) {
      return {
        location,
        runId: version.runId,
        runLink: version.runLink,
        loggedModelId: location.type === 'logged-model' ? location.modelId : version.loggedModelId,
      };
    }
    // elsewhere a run id would have to name a run there: the source run is kept in SHALLOW_RUN_TAG
    return { location: { type: 'uri', uri: version.portableSource ?? version.source }, runLink: version.runLink };
  }

  private versionTags(version: ModelVersion, number?: string): Record<string, string> {
    const tags: Record<string, string> = { ...version.tags };
    delete tags[SOURCE_TAGS.complete];
    tags[SOURCE_TAGS.id] = versionKey(version.modelName, version.version);
    tags[SOURCE_TAGS.uri] = this.ctx.source.uri;
    if (version.creationTime !== undefined) tags[CREATED_TAG] = String(version.creationTime);
    if (version.runId) tags[SHALLOW_RUN_TAG] = version.runId;
    if (this.ctx.lineageTags) {
      tags[LINEAGE_TAGS.model] = version.modelName;
      tags[LINEAGE_TAGS.version] = number ?? version.version;
      if (version.runId) tags[LINEAGE_TAGS.runId] = version.runId;
      tags[LINEAGE_TAGS.trackingUri] = this.ctx.source.uri;
    }
    return tags;
  }

  private async writeVersion(version: ModelVersion, name: string, found: ExistingVersion | undefined, own: boolean, outcome: ModelOutcome): Promise<string> {
    const registry = this.registry;
    const wanted = Number(version.version);
    const withTags = { ...version, tags: this.versionTags(version) };
    const keepNumbers = this.ctx.keepNumbers && own && !registry.keepsVersionNumbers;
    let number: string | undefined = found?.version;
    // a gap filler left behind by an interrupted attempt: delete it, as the source did
    if (number !== undefined && keepNumbers && Number(number) < wanted) {
      await registry.deleteVersion(name, number);
      number = undefined;
    }
    if (number === undefined) {
      const target = this.target(version, outcome);
      number = await registry.createVersion(name, withTags, target);
      // the source deleted the versions in between: do the same, so the numbers stay equal
      for (let guard = 0; keepNumbers && Number(number) < wanted && guard < wanted; guard++) {
        await registry.deleteVersion(name, number);
        number = await registry.createVersion(name, withTags, target);
      }
    } else {
      await registry.updateVersion(name, number, withTags);
    }
    if (registry.writeVersionFile) {
      // the registry keeps the files itself: they come from the source, naming the copied run
      const ids = new Map<string, string>();
      const runId = versionRunId(version);
      const runCopy = runId ? this.ctx.runCopy(runId) : undefined;
      if (runId && runCopy) ids.set(runId, runCopy);
      const modelCopy = version.loggedModelId ? this.ctx.loggedModelCopy(version.loggedModelId) : undefined;
      if (version.loggedModelId && modelCopy) ids.set(version.loggedModelId, modelCopy);
      await this.ctx.copyVersionFiles(version, (file, body) => registry.writeVersionFile!(name, number!, file, body), ids);
      await registry.finishVersion?.(name, number);
    }
    await this.setStage(version, name, number);
    await registry.setVersionTag(name, number, SOURCE_TAGS.complete, 'true');
    return number;
  }

  private async setStage(version: ModelVersion, name: string, number: string): Promise<void> {
    if (version.stage === 'None') return;
    if (this.registry.hasStages) await this.registry.setStage(name, number, version.stage, this.ctx.archiveExisting);
    // without stages, the alias of the stage is set with the model's aliases (the newest version wins)
  }

  private async setAliases(model: RegisteredModel, versions: ModelVersion[], name: string, outcome: ModelOutcome): Promise<void> {
    const aliases = new Map<string, string>();
    for (const [alias, version] of Object.entries(model.aliases)) {
      const number = outcome.versions[version];
      if (number) aliases.set(alias, number);
    }
    if (!this.registry.hasStages) {
      const mapped: string[] = [];
      const copied = versions.filter((v) => outcome.versions[v.version]);
      for (const [alias, newest] of stageAliases(copied, (a) => aliases.has(a))) {
        const newestNumber = outcome.versions[newest.version]!;
        aliases.set(alias, newestNumber);
        mapped.push(`${newest.stage} → alias "${alias}" on version ${newestNumber}`);
      }
      if (mapped.length > 0) {
        this.ctx.warn(`model "${model.name}"`, `${this.ctx.destination.uri} has no stages; stages became aliases: ${mapped.join(', ')}`);
      }
    }
    for (const [alias, number] of aliases) await this.registry.setAlias(name, alias, number);
  }
}

/** Copies one logged model (pending → artifacts → finished), or finds the copy made before. */
export async function copyLoggedModel(
  ctx: ModelTransferContext,
  model: LoggedModel,
  experimentId: string,
  copyFiles: (model: LoggedModel, destinationId: string) => Promise<unknown>,
  /** the step at which its run logged it, when the run lists it among its outputs */
  outputStep?: number,
): Promise<{ id: string; copied: boolean }> {
  const { source, destination, journal } = ctx;
  const writer = destination.loggedModels;
  if (!writer || !source.loggedModels) throw new Error(`${destination.uri} (${destination.kind}) cannot hold MLflow 3 logged models`);
  const done = journal.doneLoggedModels.get(model.id);
  if (done) return { id: done, copied: false };
  const existing = await writer.findLoggedModel(experimentId, model.id);
  if (existing?.complete) {
    journal.loggedModelDone(model.id, existing.id);
    return { id: existing.id, copied: false };
  }
  if (existing) await writer.discardLoggedModel(existing.id);
  const runId = model.sourceRunId ? ctx.runCopy(model.sourceRunId) : undefined;
  const tags: Record<string, string> = { ...model.tags, [SOURCE_TAGS.id]: model.id, [SOURCE_TAGS.uri]: source.uri };
  for (const key of DERIVED_LOGGED_MODEL_TAGS) delete tags[key];
  if (model.creationTime !== undefined) tags[CREATED_TAG] = String(model.creationTime);
  const id = await writer.createLoggedModel(experimentId, { ...model, tags }, runId);
  await copyFiles(model, id);
  await writer.finishLoggedModel(id, model, runId !== undefined && outputStep !== undefined ? { runId, step: outputStep } : undefined);
  journal.loggedModelDone(model.id, id);
  return { id, copied: true };
}
