/**
 * Reading a directory written by mlflow-export-import or mlflow-migration: a single run, a
 * single experiment (`experiment.json` + `<run_id>/run.json` or `runs/<run_id>/run.json`), a
 * bulk export (`experiments/…`, `models/…`, manifest files) or a model export (`model.json`).
 * The layouts differ between tools and versions, so the directory is walked once: every
 * `experiment.json`, `run.json`, `model.json` and `logged_model.json` found (never inside an
 * `artifacts/` folder) is read, and runs and logged models join their experiment by id. MLflow 3
 * logged models are read where mlflow-export-import writes them (./format.ts): each
 * `logged_model.json` with the model's files in the `artifacts/` folder beside it. Their own
 * metrics (in logged_model.json) are not read: the neutral model carries none. A version whose
 * model_id names a logged model of the export is registered from it; trackshift's own exports
 * also link that model's files into the version's run for the Python importers (./write.ts),
 * and those links (the same files as the logged model's) are not listed as the run's artifacts.
 * Read only.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, LoggedModel, MetricPoint, ModelStage, ModelVersion, RegisteredModel, Run } from '../../model/index.js';
import { MLFLOW_TAGS, MODEL_STAGES, mlflowSeries } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { isDir, listEntries, refuseLink, walkFiles } from '../../util/fs.js';
import { safeJoin } from '../../util/paths.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import type { LoggedModelReader, RegistryReader, RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { STATUS_NUMBERS, experimentSchema, loggedModelSchema, modelSchema, readExportFile, runSchema, versionSchema, type EximModel, type EximRun } from './format.js';

const PAGE = 10_000;
/** how deep export files are looked for (bulk: <dir>/models/experiments/<exp>/runs/<run>/run.json) */
const MAX_DEPTH = 6;
/** the tags the tools wrote on runs in their oldest versions, naming the run's experiment */
const EXPERIMENT_NAME_TAG = 'mlflow_export_import.metadata.experiment_name';
/** where a run's `info.run_name` is kept when its `mlflow.runName` tag says otherwise (the tag is the name) */
export const SOURCE_RUN_NAME_TAG = 'trackshift.source.run_name';

interface Found {
  experiments: string[];
  runs: string[];
  models: string[];
  versions: string[];
  loggedModels: string[];
}

async function walk(dir: string, depth: number, found: Found): Promise<void> {
  for (const entry of await listEntries(dir)) {
    const path = join(dir, entry.name);
    // a link named like an export file is listed too, so that reading it refuses it by name
    if (entry.isFile() || entry.isSymbolicLink()) {
      if (entry.name === 'experiment.json') found.experiments.push(path);
      else if (entry.name === 'run.json') found.runs.push(path);
      else if (entry.name === 'model.json') found.models.push(path);
      else if (entry.name === 'version.json') found.versions.push(path);
      else if (entry.name === 'logged_model.json') found.loggedModels.push(path);
    } else if (entry.isDirectory() && entry.name !== 'artifacts' && depth < MAX_DEPTH) {
      await walk(path, depth + 1, found);
    }
  }
}

/** True when `dir` holds files of the export tools (and is not a trackshift bundle). */
export async function looksLikeExim(dir: string): Promise<boolean> {
  if (!(await isDir(dir))) return false;
  const names = new Set((await listEntries(dir)).map((e) => e.name));
  if (names.has('trackshift-bundle.json')) return false;
  if (['experiment.json', 'run.json', 'model.json', 'manifest.json', 'experiments.json', 'models.json'].some((n) => names.has(n))) return true;
  for (const sub of ['experiments', 'models']) {
    if (names.has(sub)) {
      const inner = new Set((await listEntries(join(dir, sub))).map((e) => e.name));
      if (inner.has('experiments.json') || inner.has('models.json')) return true;
    }
  }
  return false;
}

interface RunEntry {
  run: Run;
  dir: string;
  metrics: EximRun['metrics'];
}

interface LoggedModelEntry {
  model: LoggedModel;
  /** the folder of logged_model.json; the model's files are in its artifacts/ */
  dir: string;
}

export class EximSource implements Source {
  readonly kind = 'exim';
  readonly capabilities = { filter: false };
  readonly root: string;
  readonly uri: string;
  readonly registry: RegistryReader;
  readonly loggedModels: LoggedModelReader;
  /** files that could not be read: their objects are left out and reported as failed */
  readonly unreadable: UnreadableObject[] = [];
  /** runs found twice (imported once) */
  readonly warnings: Array<{ object: string; message: string }> = [];
  private loaded?: Promise<{ experiments: Map<string, Experiment>; runs: Map<string, RunEntry>; models: Map<string, EximModel>; loggedModels: Map<string, LoggedModelEntry> }>;

  constructor(root: string) {
    this.root = resolve(root);
    this.uri = this.root;
    this.registry = {
      listModels: () => this.listModels(),
      getModel: async (name) => {
        const model = (await this.load()).models.get(name);
        return model && toModel(model);
      },
      listVersions: (name) => this.listVersions(name),
    };
    this.loggedModels = {
      listLoggedModels: (experimentId) => this.listLoggedModels(experimentId),
      listLoggedModelArtifacts: (model) => this.listLoggedModelArtifacts(model),
      readLoggedModelArtifact: (model, path) => this.readLoggedModelArtifact(model, path),
    };
  }

  private load() {
    this.loaded ??= this.read();
    return this.loaded;
  }

  private async read() {
    const found: Found = { experiments: [], runs: [], models: [], versions: [], loggedModels: [] };
    await walk(this.root, 0, found);
    const experiments = new Map<string, Experiment>();
    // one malformed file fails its object alone (Source.unreadable); the rest is read
    const readOr = <T>(type: UnreadableObject['type'], file: string, read: () => Promise<T>) => readOrRecord(this.unreadable, { type, file }, read);
    /** folders of experiment.json files that could not be read: the runs under them are not theirs to guess */
    const unreadableExperimentDirs: string[] = [];
    for (const file of found.experiments.sort()) {
      const read = await readOr('experiment', file, () => readExportFile(file, experimentSchema));
      if (!read) {
        unreadableExperimentDirs.push(dirname(file));
        continue;
      }
      const e = read.experiment;
      experiments.set(e.experiment_id, {
        id: e.experiment_id,
        name: e.name,
        tags: e.tags,
        lifecycle: e.lifecycle_stage,
        creationTime: e.creation_time,
        lastUpdateTime: e.last_update_time,
        ...(e.artifact_location ? { artifactLocation: e.artifact_location } : {}),
      });
    }
    const models = new Map<string, EximModel>();
    for (const file of found.models.sort()) {
      const model = (await readOr('model', file, () => readExportFile(file, modelSchema)))?.registered_model;
      if (model) models.set(model.name, model);
    }
    // export-model-version: a version.json beside its model's model.json (which lists no versions)
    for (const file of found.versions.sort()) {
      const version = (await readOr('version', file, () => readExportFile(file, versionSchema)))?.model_version;
      if (!version) continue;
      const name = version.name ?? basename(dirname(file));
      const model: EximModel = models.get(name) ?? { name, tags: {}, aliases: [], versions: [], creation_timestamp: undefined, last_updated_timestamp: undefined };
      if (!model.versions.some((v) => v.version === version.version)) model.versions.push(version);
      models.set(name, model);
    }
    const versionExperimentNames = new Map<string, string>();
    for (const model of models.values()) for (const v of model.versions) if (v.run_id && v._experiment_name) versionExperimentNames.set(v.run_id, v._experiment_name);

    const runs = new Map<string, RunEntry>();
    for (const file of found.runs.sort()) {
      const ownerUnreadable = unreadableExperimentDirs.find((dir) => file.startsWith(dir + sep));
      if (ownerUnreadable) {
        this.unreadable.push({ type: 'run', sourceId: basename(dirname(file)), reason: `${file}: not read, because its experiment's file ${join(ownerUnreadable, 'experiment.json')} could not be read` });
        continue;
      }
      const read = await readOr('run', file, async () => {
        const record = await readExportFile(file, runSchema);
        return { record, run: toRun(record, file) };
      });
      if (!read) continue;
      const { record, run } = read;
      // bulk exports may hold a run twice (under experiments/ and models/experiments/); a user's folders too
      const held = runs.get(run.id);
      if (held) {
        const modelCopy = file.includes(`${sep}models${sep}`) || held.dir.includes(`${sep}models${sep}`);
        if (!modelCopy) this.warnings.push({ object: `run ${run.id}`, message: `found twice, in ${held.dir} and ${dirname(file)}: imported once, from the first` });
        continue;
      }
      runs.set(run.id, { run, dir: dirname(file), metrics: record.metrics });
      if (!experiments.has(run.experimentId)) {
        const name = record.tags[EXPERIMENT_NAME_TAG] || versionExperimentNames.get(run.id) || `exim-experiment-${run.experimentId}`;
        experiments.set(run.experimentId, { id: run.experimentId, name, tags: {}, lifecycle: 'active' });
      }
    }
    const loggedModels = new Map<string, LoggedModelEntry>();
    for (const file of found.loggedModels.sort()) {
      const m = await readOr('logged-model', file, () => readExportFile(file, loggedModelSchema));
      if (!m) continue;
      // bulk exports may hold a model twice (under its experiment and under a registered model)
      if (loggedModels.has(m.model_id)) continue;
      loggedModels.set(m.model_id, {
        dir: dirname(file),
        model: {
          id: m.model_id,
          experimentId: m.experiment_id,
          name: m.name,
          ...(m.source_run_id ? { sourceRunId: m.source_run_id } : {}),
          ...(m.model_type ? { modelType: m.model_type } : {}),
          status: m.status,
          ...(m.status_message ? { statusMessage: m.status_message } : {}),
          params: m.params,
          tags: m.tags,
          creationTime: m.creation_time ?? m.creation_timestamp,
          lastUpdatedTime: m.last_updated_timestamp,
        },
      });
    }
    if (experiments.size === 0 && models.size === 0 && this.unreadable.length === 0) {
      throw new InvalidInputError(this.root, 'holds no experiment.json, run.json or model.json of mlflow-export-import');
    }
    return { experiments, runs, models, loggedModels };
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const e of (await this.load()).experiments.values()) yield structuredClone(e);
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    for (const { run } of (await this.load()).runs.values()) {
      if (run.experimentId !== experimentId) continue;
      if (run.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield structuredClone(run);
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const entry = (await this.load()).runs.get(runId);
    return entry && structuredClone(entry.run);
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const entry = await this.entry(run);
    const history = entry.metrics[key];
    if (history === undefined) return;
    // the oldest exports kept the latest value only: one point, at the run's end
    const points: MetricPoint[] = Array.isArray(history)
      ? history.map((p) => ({ key, value: p.value, timestamp: p.timestamp, step: p.step }))
      : [{ key, value: history, timestamp: run.endTime ?? run.startTime ?? 0, step: 0 }];
    for (let i = 0; i < points.length; i += PAGE) yield points.slice(i, i + PAGE);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const dir = join((await this.entry(run)).dir, 'artifacts');
    if (!(await isDir(dir))) return;
    const linked = await this.linkedModelFolders(run.id);
    for await (const file of walkFiles(dir, 'refuse')) {
      const folder = linked.find((l) => file.path.startsWith(`${l.path}/`));
      if (folder && (await sameFile(join(dir, file.path), join(folder.modelDir, file.path.slice(folder.path.length + 1))))) continue;
      yield file;
    }
  }

  /** Folders of a run's artifacts that trackshift's export filled with links to a logged model's files. */
  private async linkedModelFolders(runId: string): Promise<Array<{ path: string; modelDir: string }>> {
    const { models, loggedModels } = await this.load();
    const out: Array<{ path: string; modelDir: string }> = [];
    for (const model of models.values()) {
      for (const v of model.versions) {
        const logged = v.model_id ? loggedModels.get(v.model_id) : undefined;
        if (!logged || v.run_id !== runId) continue;
        const location = parseVersionSource(v.source ?? '', v.run_id, v.model_id ?? undefined);
        if (location.type === 'run' && location.path) out.push({ path: location.path, modelDir: join(logged.dir, 'artifacts') });
      }
    }
    return out;
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const file = safeJoin(join((await this.entry(run)).dir, 'artifacts'), path, `artifact of run ${run.id} in ${this.uri}`);
    await refuseLink(file, 'an export');
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }

  private async entry(run: Run): Promise<RunEntry> {
    const entry = (await this.load()).runs.get(run.id);
    if (!entry) throw new InvalidInputError(this.uri, `no run ${run.id} in this export`);
    return entry;
  }

  private async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    for (const { model } of (await this.load()).loggedModels.values()) if (model.experimentId === experimentId) yield structuredClone(model);
  }

  private async loggedModelDir(model: LoggedModel): Promise<string> {
    const entry = (await this.load()).loggedModels.get(model.id);
    if (!entry) throw new InvalidInputError(this.uri, `no logged model ${model.id} in this export`);
    return join(entry.dir, 'artifacts');
  }

  private async *listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    const dir = await this.loggedModelDir(model);
    if (await isDir(dir)) yield* walkFiles(dir, 'refuse');
  }

  private async readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    const file = safeJoin(await this.loggedModelDir(model), path, `artifact of logged model ${model.id} in ${this.uri}`);
    await refuseLink(file, 'an export');
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }

  private async *listModels(): AsyncIterable<RegisteredModel> {
    for (const model of (await this.load()).models.values()) yield toModel(model);
  }

  private async *listVersions(name: string): AsyncIterable<ModelVersion> {
    const model = (await this.load()).models.get(name);
    if (!model) return;
    const versions = [...model.versions].sort((a, b) => Number(a.version) - Number(b.version));
    const { loggedModels } = await this.load();
    for (const v of versions) {
      const source = v.source ?? '';
      const stage = (MODEL_STAGES as readonly string[]).includes(v.current_stage ?? '') ? (v.current_stage as ModelStage) : 'None';
      // registered from a logged model the export holds: that is where its files are
      const fromModel = v.model_id && loggedModels.has(v.model_id);
      yield {
        modelName: model.name,
        version: v.version,
        source,
        location: fromModel ? { type: 'logged-model', modelId: v.model_id! } : parseVersionSource(source, v.run_id ?? undefined, v.model_id ?? undefined),
        ...(/^(s3|gs|wasbs?|abfss?|https?|dbfs):/.test(source) ? { portableSource: source } : {}),
        ...(v.run_id ? { runId: v.run_id } : {}),
        ...(v.run_link ? { runLink: v.run_link } : {}),
        ...(v.model_id ? { loggedModelId: v.model_id } : {}),
        status: v.status || 'READY',
        stage,
        ...(v.description ? { description: v.description } : {}),
        tags: v.tags,
        ...(v.user_id ? { user: v.user_id } : {}),
        creationTime: v.creation_timestamp,
        lastUpdatedTime: v.last_updated_timestamp,
      };
    }
  }
}

function toRun(record: EximRun, file: string): Run {
  const { info } = record;
  const id = info.run_id ?? info.run_uuid;
  if (!id) throw new InvalidInputError(file, 'has no run_id');
  // the id in run.json is the run, whatever its folder is called (users rename single-run exports)
  // the mlflow.runName tag is the name (MLflow's UI shows it); a run_name that disagrees is kept in a tag
  const tagName = record.tags[MLFLOW_TAGS.runName];
  const runName = tagName || info.run_name || undefined;
  const tags = tagName && info.run_name && info.run_name !== tagName ? { ...record.tags, [SOURCE_RUN_NAME_TAG]: info.run_name } : record.tags;
  const status = typeof info.status === 'number' ? STATUS_NUMBERS[info.status] ?? 'FINISHED' : info.status;
  return {
    id,
    experimentId: info.experiment_id,
    name: runName,
    status,
    startTime: info.start_time,
    endTime: info.end_time,
    user: info.user_id || record.tags[MLFLOW_TAGS.user] || undefined,
    lifecycle: info.lifecycle_stage,
    parentId: record.tags[MLFLOW_TAGS.parentRunId] || undefined,
    params: record.params,
    tags,
    inputs: record.inputs.map((input) => ({
      dataset: {
        name: input.dataset.name,
        digest: input.dataset.digest,
        sourceType: input.dataset.source_type,
        source: input.dataset.source,
        ...(input.dataset.schema ? { schema: input.dataset.schema } : {}),
        ...(input.dataset.profile ? { profile: input.dataset.profile } : {}),
      },
      tags: input.tags,
    })),
    series: Object.keys(record.metrics).map(mlflowSeries),
    ...(record.outputs?.model_outputs?.length ? { modelOutputs: record.outputs.model_outputs.map((o) => ({ modelId: o.model_id, step: o.step })) } : {}),
  };
}

function toModel(model: EximModel): RegisteredModel {
  // aliases are listed on the model, or (Unity Catalog exports) on each version
  const onVersions = model.versions.flatMap((v) => v.aliases.map((a) => [typeof a === 'string' ? a : a.alias, v.version] as const));
  return {
    name: model.name,
    ...(model.description ? { description: model.description } : {}),
    tags: model.tags,
    aliases: Object.fromEntries([...onVersions, ...model.aliases.map((a) => [a.alias, a.version] as const)]),
    creationTime: model.creation_timestamp,
    lastUpdatedTime: model.last_updated_timestamp,
  };
}

/** Whether two paths are the same file (hard links to one another). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.ino === y.ino && x.dev === y.dev;
}
