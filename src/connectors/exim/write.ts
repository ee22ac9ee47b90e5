/**
 * Writing a directory that the Python mlflow-export-import / mlflow-migration importers read,
 * in their bulk layout and current file version (`export --format mlflow-export-import`):
 *
 *   <dir>/manifest.json
 *   <dir>/experiments/experiments.json                     {mlflow: {experiments: [{id, name, …}]}}
 *   <dir>/experiments/<exp>/experiment.json                {mlflow: {experiment: {…}, runs: [ids]}}
 *   <dir>/experiments/<exp>/<run>/run.json + artifacts/    (import-experiment takes <dir>/experiments/<exp>)
 *   <dir>/experiments/<exp>/logged_models/<model_id>/logged_model.json + artifacts/
 *   <dir>/experiments/<exp>/logged_models/logged_models.json
 *   <dir>/models/models.json, <dir>/models/<name>/model.json + <run_id>/ (EximRegistryWriter)
 *
 * MLflow 3 logged models are written as mlflow/mlflow-export-import writes them since 2025
 * (./format.ts; experiment.json lists them, run.json names them under outputs.model_outputs).
 * Its fork mlflow-migration, whose layout this is otherwise, knows no logged models: a version
 * registered from one also gets the model's files linked into its run's artifacts
 * (`artifacts/<model name>/`) and a source naming that folder, which is how their import-model
 * and import-all bring it in (as a version of the run's files); trackshift's reader sees the
 * version as registered from the logged model and leaves those linked files out of the run.
 *
 * Their run.json holds every metric point in one document. trackshift keeps memory flat all the
 * same: points are appended to one file per key while a run is copied, and run.json is then
 * streamed together from them; it is written last (temporary file + rename), so a run folder
 * without run.json is partial. Python's json reads the bare NaN / Infinity tokens written here.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, DatasetInput, Experiment, LoggedModel, ModelStage, ModelVersion, RegisteredModel, Run } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { exists, isFile, listDirs, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, joinSegment, keyToFileName, removeInside, safeJoin } from '../../util/paths.js';
import type { Destination, ExistingRun, ExistingVersion, LoggedModelWriter, RegistryWriter, RunBatch, VersionTarget, WriteLimits } from '../types.js';
import { MLFLOW_HOLDS } from '../mlflow-common/holds.js';
import { parsePythonJson } from './format.js';

const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };
const PARTIAL = '.trackshift-partial';
const FILE_VERSION = '2';
const LOGGED_MODELS = 'logged_models';
const LOGGED_MODEL_FILE = 'logged_model.json';
/** a logged model being written: what logged_model.json will say (it is written last) */
const PARTIAL_LOGGED_MODEL = '.trackshift-partial.json';
/** the neutral statuses (proto names) as mlflow.entities.LoggedModelStatus values, which their files hold */
const LOGGED_MODEL_STATUS: Record<string, string> = {
  LOGGED_MODEL_STATUS_UNSPECIFIED: 'UNSPECIFIED',
  LOGGED_MODEL_PENDING: 'PENDING',
  LOGGED_MODEL_READY: 'READY',
  LOGGED_MODEL_UPLOAD_FAILED: 'FAILED',
};

interface ExperimentFile {
  experiment: Record<string, unknown>;
  runs: string[];
  logged_models?: string[];
}

/** A number as Python's json writes it (NaN and the infinities as bare tokens). */
const pyNumber = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : JSON.stringify(v));

function system(script: string) {
  const now = Date.now();
  return {
    package_version: 'trackshift',
    script,
    export_file_version: FILE_VERSION,
    export_time: Math.floor(now / 1000),
    _export_time: new Date(now).toISOString().replace('T', ' ').slice(0, 19),
  };
}

interface RunState {
  dir: string;
  experimentId: string;
  run: Run;
  params: Record<string, string>;
  tags: Record<string, string>;
  inputs: DatasetInput[];
  /** metric key → its points file (JSON lines) and open stream */
  metrics: Map<string, { file: string; stream?: WriteStream }>;
}

export class EximDestination implements Destination {
  readonly kind = 'exim';
  readonly limits = LIMITS;
  readonly holds = MLFLOW_HOLDS;
  private readonly runs = new Map<string, RunState>();
  private readonly experimentsDir: string;
  /** experiment.json is read, changed and written again: one change at a time */
  private lock: Promise<unknown> = Promise.resolve();

  readonly registry: EximRegistryWriter;
  readonly loggedModels: EximLoggedModelWriter;

  constructor(
    readonly root: string,
    readonly uri: string,
  ) {
    this.experimentsDir = join(root, 'experiments');
    this.loggedModels = new EximLoggedModelWriter(
      this.experimentsDir,
      (id) => this.experimentDir(id),
      (experimentId, modelId) =>
        this.serially(async () => {
          const held = await this.readExperiment(experimentId);
          if (!held) return;
          const loggedModels = [...new Set([...(held.logged_models ?? []), modelId])];
          await this.writeExperiment(experimentId, held.experiment, held.runs, loggedModels);
          await writeJsonAtomic(join(this.experimentDir(experimentId), LOGGED_MODELS, 'logged_models.json'), {
            system: system('export_logged_models.py'),
            info: { num_total_logged_models: loggedModels.length, num_ok_logged_models: loggedModels.length, num_failed_logged_models: 0, failed_logged_models: [] },
            mlflow: { experiments: [{ id: experimentId, name: held.experiment.name, logged_models: loggedModels }] },
          });
        }),
      // written again after an interrupted attempt: versions already linked to it get its new files
      (modelId) => this.registry.relinkLoggedModel(modelId),
    );
    this.registry = new EximRegistryWriter(root, async (runId) => {
      for (const folder of await listDirs(this.experimentsDir)) {
        if (await isFile(join(this.experimentDir(folder), idToFolderName(runId), 'run.json'))) {
          const held = await this.readExperiment(folder);
          return { experimentId: folder, name: String(held?.experiment.name ?? folder), dir: join(this.experimentDir(folder), idToFolderName(runId)) };
        }
      }
      return undefined;
    }, (modelId) => this.loggedModels.folder(modelId));
  }

  private experimentDir(id: string) {
    return join(this.experimentsDir, idToFolderName(id));
  }

  private async readExperiment(id: string): Promise<ExperimentFile | undefined> {
    const file = join(this.experimentDir(id), 'experiment.json');
    if (!(await isFile(file))) return undefined;
    return (parsePythonJson(await readFile(file, 'utf8')) as { mlflow: ExperimentFile }).mlflow;
  }

  private async writeExperiment(id: string, experiment: Record<string, unknown>, runs: string[], loggedModels: string[] = []): Promise<void> {
    await mkdir(this.experimentDir(id), { recursive: true });
    const counts = loggedModels.length > 0 ? { ok_logged_models: loggedModels.length, failed_logged_models: 0 } : {};
    await writeJsonAtomic(join(this.experimentDir(id), 'experiment.json'), {
      system: system('export_experiment.py'),
      info: { num_total_runs: runs.length, num_ok_runs: runs.length, num_failed_runs: 0, failed_runs: [], ...counts },
      mlflow: { experiment, runs, ...(loggedModels.length > 0 ? { logged_models: loggedModels } : {}) },
    });
    await this.writeIndex();
  }

  /** experiments.json and manifest.json: what the bulk importers start from */
  private async writeIndex(): Promise<void> {
    const experiments = [];
    for (const folder of await listDirs(this.experimentsDir)) {
      const held = await this.readExperiment(folder);
      if (held) experiments.push({ id: folder, name: held.experiment.name, ok_runs: held.runs.length, failed_runs: 0, duration: 0 });
    }
    await writeJsonAtomic(join(this.experimentsDir, 'experiments.json'), {
      system: system('export_experiments.py'),
      info: { num_total_experiments: experiments.length, num_ok_experiments: experiments.length, num_failed_experiments: 0 },
      mlflow: { experiments },
    });
    await writeJsonAtomic(join(this.root, 'manifest.json'), { system: system('export_all.py'), info: { experiments: experiments.length }, mlflow: {} });
  }

  async findExperiment(name: string) {
    for (const folder of await listDirs(this.experimentsDir)) {
      const held = await this.readExperiment(folder);
      if (held?.experiment.name === name) return { id: folder, lifecycle: (held.experiment.lifecycle_stage as Experiment['lifecycle']) ?? 'active' };
    }
    return undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const existing = await this.findExperiment(name);
    const id = existing?.id ?? (await this.freeId(exp.id));
    const held = await this.readExperiment(id);
    const experiment = {
      experiment_id: id,
      name,
      artifact_location: exp.artifactLocation ?? '',
      lifecycle_stage: 'active',
      tags: { ...(held?.experiment.tags as Record<string, string> | undefined), ...exp.tags },
      creation_time: exp.creationTime ?? null,
      last_update_time: exp.lastUpdateTime ?? null,
    };
    await this.writeExperiment(id, experiment, held?.runs ?? [], held?.logged_models);
    return id;
  }

  private async freeId(wanted: string): Promise<string> {
    for (let n = 1; ; n++) {
      const id = n === 1 ? wanted : `${wanted}-${n}`;
      if (!(await exists(this.experimentDir(id)))) return id;
    }
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    await this.serially(async () => {
      const held = await this.readExperiment(experimentId);
      if (held) await this.writeExperiment(experimentId, { ...held.experiment, lifecycle_stage: exp.lifecycle }, held.runs, held.logged_models);
    });
  }

  private runDir(experimentId: string, runId: string) {
    return join(this.experimentDir(experimentId), idToFolderName(runId));
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const dir = this.runDir(experimentId, sourceRunId);
    if (!(await exists(dir))) return undefined;
    return { id: sourceRunId, complete: await isFile(join(dir, 'run.json')) };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    // the tools name run folders by run id: the source's id is kept
    const dir = this.runDir(experimentId, run.id);
    await removeInside(this.root, dir);
    await mkdir(join(dir, PARTIAL), { recursive: true });
    this.runs.set(run.id, { dir, experimentId, run, params: {}, tags: { ...run.tags }, inputs: [], metrics: new Map() });
    return run.id;
  }

  private state(runId: string): RunState {
    const state = this.runs.get(runId);
    if (!state) throw new Error(`exim: run ${runId} is not being written`);
    return state;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const state = this.state(runId);
    for (const { key, value } of batch.params) state.params[key] = value;
    for (const { key, value } of batch.tags) state.tags[key] = value;
    for (const point of batch.metrics) {
      let metric = state.metrics.get(point.key);
      if (!metric) {
        metric = { file: join(state.dir, PARTIAL, keyToFileName(point.key, '.jsonl')) };
        state.metrics.set(point.key, metric);
      }
      metric.stream ??= createWriteStream(metric.file, { flags: 'a' });
      const line = `{"value": ${pyNumber(point.value)}, "timestamp": ${point.timestamp}, "step": ${point.step}}\n`;
      if (!metric.stream.write(line)) await once(metric.stream, 'drain');
    }
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    this.state(runId).inputs.push(...inputs);
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(join(this.state(runId).dir, 'artifacts'), file.path, `artifact of run ${runId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishRun(runId: string, run: Run): Promise<void> {
    const state = this.runs.get(runId);
    if (!state) return; // complete already (a re-run changed only its lifecycle): nothing the tools would read differently
    for (const metric of state.metrics.values()) {
      if (metric.stream) await new Promise<void>((resolve, reject) => metric.stream!.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    const info = {
      run_uuid: run.id,
      run_id: run.id,
      experiment_id: state.experimentId,
      user_id: run.user ?? '',
      status: run.status,
      start_time: run.startTime ?? null,
      end_time: run.endTime ?? null,
      lifecycle_stage: run.lifecycle,
      artifact_uri: '',
      run_name: run.name ?? '',
    };
    const tags = { ...state.tags };
    delete tags[SOURCE_TAGS.complete];
    const inputs = state.inputs.map((input) => ({
      dataset: {
        name: input.dataset.name,
        digest: input.dataset.digest,
        source_type: input.dataset.sourceType,
        source: input.dataset.source,
        ...(input.dataset.schema !== undefined ? { schema: input.dataset.schema } : {}),
        ...(input.dataset.profile !== undefined ? { profile: input.dataset.profile } : {}),
      },
      tags: Object.entries(input.tags).map(([key, value]) => ({ key, value })),
    }));
    // run.json streamed together: the histories come from their files, one line at a time
    const tmp = join(state.dir, PARTIAL, 'run.json.tmp');
    const out = createWriteStream(tmp);
    const write = async (text: string) => {
      if (!out.write(text)) await once(out, 'drain');
    };
    await write(`{\n"system": ${JSON.stringify(system('export_run.py'))},\n"mlflow": {\n"info": ${JSON.stringify(info)},\n"params": ${JSON.stringify(state.params)},\n"metrics": {`);
    let firstKey = true;
    for (const [key, metric] of state.metrics) {
      await write(`${firstKey ? '' : ','}\n${JSON.stringify(key)}: [`);
      firstKey = false;
      let firstPoint = true;
      for await (const line of createInterface({ input: createReadStream(metric.file), crlfDelay: Infinity })) {
        if (!line) continue;
        await write(`${firstPoint ? '' : ','}\n${line}`);
        firstPoint = false;
      }
      await write(']');
    }
    // MLflow 3: the logged models the run made, as mlflow-export-import names them
    const outputs = run.modelOutputs?.length ? `,\n"outputs": ${JSON.stringify({ model_outputs: run.modelOutputs.map((o) => ({ model_id: o.modelId, step: o.step })) })}` : '';
    await write(`},\n"tags": ${JSON.stringify(tags)},\n"inputs": ${JSON.stringify(inputs)}${outputs}\n}\n}\n`);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await rename(tmp, join(state.dir, 'run.json'));
    await removeInside(this.root, join(state.dir, PARTIAL));
    this.runs.delete(runId);
    // the experiment lists its complete runs
    await this.serially(async () => {
      const held = await this.readExperiment(state.experimentId);
      if (held && !held.runs.includes(run.id)) await this.writeExperiment(state.experimentId, held.experiment, [...held.runs, run.id], held.logged_models);
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.lock.then(work, work);
    this.lock = next.catch(() => undefined);
    return next;
  }

  async discardRun(runId: string): Promise<void> {
    const state = this.runs.get(runId);
    for (const metric of state?.metrics.values() ?? []) metric.stream?.destroy();
    this.runs.delete(runId);
    if (state) await removeInside(this.root, state.dir);
  }

  async close(): Promise<void> {
    for (const state of this.runs.values()) for (const metric of state.metrics.values()) metric.stream?.destroy();
    this.runs.clear();
  }
}

/**
 * Registered models in the tools' bulk layout: `models/models.json` lists them, and
 * `models/<name>/model.json` holds each with its versions, whose `source` names the run's
 * artifact folder (`…/<run_id>/artifacts/<path>`), which is how the tools' importer finds the
 * model's files among the imported run's artifacts. Version numbers are kept.
 */
export class EximRegistryWriter implements RegistryWriter {
  readonly hasStages = true;
  readonly keepsVersionNumbers = true;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly root: string,
    private readonly experimentNameOfRun: (runId: string) => Promise<{ experimentId: string; name: string; dir: string } | undefined>,
    /** the folder of a complete logged model of this export */
    private readonly loggedModelFolder: (modelId: string) => Promise<{ dir: string; name: string } | undefined>,
  ) {}

  /**
   * The tools' import-model reads a version's run from `<model dir>/<run_id>/`: the run folder
   * is linked there (hard links: no second copy of the bytes; a copy where links fail). Files
   * linked there before are kept; files added to the run since (a logged model's) are added.
   */
  private async linkRun(modelName: string, runId: string, runDir: string): Promise<void> {
    const target = join(dirname(this.file(modelName)), idToFolderName(runId));
    if (!(await isFile(join(target, 'run.json')))) await removeInside(this.root, target);
    await linkTree(runDir, target);
  }

  /**
   * For the tools, which know no logged models: the logged model's files linked into the
   * version's run, at `artifacts/<model name>` (its name is what MLflow 2 called the artifact
   * path), or `artifacts/<name>-<model id>` when the run holds other files there. Returns the path.
   */
  private async linkLoggedModel(modelId: string, runDir: string): Promise<string | undefined> {
    const model = await this.loggedModelFolder(modelId);
    if (!model) return undefined;
    const from = join(model.dir, 'artifacts');
    // the model id is the source's: a folder name only through idToFolderName
    const plain = /^[A-Za-z0-9][A-Za-z0-9._ -]*$/.test(model.name) && model.name.length <= 100 ? model.name : idToFolderName(modelId);
    for (const path of [plain, idToFolderName(`${plain}-${modelId}`)]) {
      const to = joinSegment(join(runDir, 'artifacts'), path, `logged model ${modelId}`);
      if (!(await exists(to)) || (await sameFiles(from, to))) {
        await linkTree(from, to);
        return path;
      }
    }
    return undefined;
  }

  private file(name: string): string {
    return join(safeJoin(join(this.root, 'models'), idToFolderName(name), `model ${name}`), 'model.json');
  }

  private async read(name: string): Promise<EximModelFile | undefined> {
    if (!(await isFile(this.file(name)))) return undefined;
    return (parsePythonJson(await readFile(this.file(name), 'utf8')) as { mlflow: { registered_model: EximModelFile } }).mlflow.registered_model;
  }

  /** one read-change-write of a model file at a time */
  private change(name: string, work: (model: EximModelFile | undefined) => EximModelFile | Promise<EximModelFile>): Promise<void> {
    const next = this.lock.then(async () => {
      const model = await work(await this.read(name));
      await mkdir(dirname(this.file(name)), { recursive: true });
      await writeJsonAtomic(this.file(name), { system: system('export_model.py'), info: { num_src_versions: model.versions.length, failed_versions: [] }, mlflow: { registered_model: model } });
      const names = [];
      for (const folder of await listDirs(join(this.root, 'models'))) {
        const held = await isFile(join(this.root, 'models', folder, 'model.json'));
        if (held) names.push(((parsePythonJson(await readFile(join(this.root, 'models', folder, 'model.json'), 'utf8')) as { mlflow: { registered_model: EximModelFile } }).mlflow.registered_model).name);
      }
      await writeJsonAtomic(join(this.root, 'models', 'models.json'), { system: system('export_models.py'), info: { num_models: names.length }, mlflow: { models: names } });
    });
    this.lock = next.catch(() => undefined);
    return next;
  }

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    const model = await this.read(name);
    return model && { tags: Object.fromEntries(model.tags.map((t) => [t.key, t.value])) };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    await this.change(name, (held) => ({
      name,
      creation_timestamp: held?.creation_timestamp ?? model.creationTime ?? Date.now(),
      last_updated_timestamp: model.lastUpdatedTime ?? Date.now(),
      description: model.description ?? '',
      tags: Object.entries({ ...Object.fromEntries((held?.tags ?? []).map((t) => [t.key, t.value])), ...model.tags }).map(([key, value]) => ({ key, value })),
      aliases: held?.aliases ?? [],
      versions: held?.versions ?? [],
    }));
  }

  async deleteModel(name: string): Promise<void> {
    await removeInside(join(this.root, 'models'), dirname(this.file(name)));
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for (const v of (await this.read(modelName))?.versions ?? []) yield { version: String(v.version), tags: v.tags };
  }

  /**
   * A logged model written again (its earlier attempt cut off): the runs of versions registered
   * from it get links to its new files in place of the old ones.
   */
  async relinkLoggedModel(modelId: string): Promise<void> {
    const model = await this.loggedModelFolder(modelId);
    if (!model) return;
    for (const folder of await listDirs(join(this.root, 'models'))) {
      if (!(await isFile(join(this.root, 'models', folder, 'model.json')))) continue;
      const held = (parsePythonJson(await readFile(join(this.root, 'models', folder, 'model.json'), 'utf8')) as { mlflow: { registered_model: EximModelFile } }).mlflow.registered_model;
      for (const v of held.versions) {
        if (v.model_id !== modelId || !v.run_id) continue;
        const marker = `/${v.run_id}/artifacts/`;
        const at = v.source.indexOf(marker);
        if (at < 0) continue;
        const path = v.source.slice(at + marker.length);
        const run = await this.experimentNameOfRun(v.run_id);
        const runDirs = [join(this.root, 'models', folder, idToFolderName(v.run_id)), ...(run ? [run.dir] : [])];
        for (const runDir of runDirs) {
          const to = safeJoin(join(runDir, 'artifacts'), path, `model files of version ${v.version} of ${held.name}`);
          if (!(await exists(to)) || (await sameFiles(join(model.dir, 'artifacts'), to))) continue;
          await removeInside(this.root, to);
          await linkTree(join(model.dir, 'artifacts'), to);
        }
      }
    }
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const runId = target.location.type === 'run' ? target.location.runId : target.runId;
    const run = runId ? await this.experimentNameOfRun(runId) : undefined;
    // registered from a logged model: its files also in the run, where the tools look for them
    const inRun = target.location.type === 'logged-model' && run ? await this.linkLoggedModel(target.location.modelId, run.dir) : undefined;
    if (run && runId) await this.linkRun(modelName, runId, run.dir);
    const source =
      target.location.type === 'run' && run
        ? `mlflow-artifacts:/${run.experimentId}/${target.location.runId}/artifacts/${target.location.path}`
        : target.location.type === 'uri'
          ? target.location.uri
          : target.location.type === 'logged-model'
            ? inRun !== undefined && run
              ? `mlflow-artifacts:/${run.experimentId}/${runId}/artifacts/${inRun}`
              : `models:/${target.location.modelId}`
            : version.source;
    await this.change(modelName, (held) => {
      if (!held) throw new Error(`exim: model ${modelName} is not written yet`);
      const entry: EximVersionFile = {
        name: modelName,
        version: version.version,
        creation_timestamp: version.creationTime ?? Date.now(),
        last_updated_timestamp: version.lastUpdatedTime ?? Date.now(),
        current_stage: 'None',
        description: version.description ?? '',
        source,
        run_id: runId ?? '',
        run_link: target.runLink ?? '',
        status: 'READY',
        status_message: '',
        user_id: version.user ?? '',
        tags: version.tags,
        aliases: [],
        ...(target.loggedModelId ? { model_id: target.loggedModelId } : {}),
        _experiment_name: run?.name ?? '',
        _run_artifact_uri: run ? `mlflow-artifacts:/${run.experimentId}/${runId}/artifacts` : '',
      };
      return { ...held, versions: [...held.versions.filter((v) => String(v.version) !== version.version), entry].sort((a, b) => Number(a.version) - Number(b.version)) };
    });
    return version.version;
  }

  private async changeVersion(modelName: string, number: string, change: (v: EximVersionFile) => EximVersionFile): Promise<void> {
    await this.change(modelName, (held) => ({ ...held!, versions: held!.versions.map((v) => (String(v.version) === number ? change(v) : v)) }));
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    await this.changeVersion(modelName, number, (v) => ({ ...v, description: version.description ?? '', tags: { ...v.tags, ...version.tags } }));
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    await this.change(modelName, (held) => ({ ...held!, versions: held!.versions.filter((v) => String(v.version) !== number) }));
  }

  async setStage(modelName: string, number: string, stage: ModelStage): Promise<void> {
    await this.changeVersion(modelName, number, (v) => ({ ...v, current_stage: stage }));
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    await this.change(modelName, (held) => ({ ...held!, aliases: [...held!.aliases.filter((a) => a.alias !== alias), { alias, version: number }] }));
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    await this.changeVersion(modelName, number, (v) => ({ ...v, tags: { ...v.tags, [key]: value } }));
  }
}

interface EximVersionFile {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  current_stage: string;
  description: string;
  source: string;
  run_id: string;
  run_link: string;
  status: string;
  status_message: string;
  user_id: string;
  tags: Record<string, string>;
  aliases: string[];
  /** MLflow 3: the logged model it was registered from */
  model_id?: string;
  _experiment_name: string;
  _run_artifact_uri: string;
}

interface EximModelFile {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description: string;
  tags: Array<{ key: string; value: string }>;
  aliases: Array<{ alias: string; version: string }>;
  versions: EximVersionFile[];
}

/** Links every file under `from` into `to` (hard links, a copy where links fail); files already there are kept. */
async function linkTree(from: string, to: string): Promise<void> {
  const files = (await readdir(from, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile() && !e.parentPath.includes(PARTIAL));
  for (const entry of files) {
    const source = join(entry.parentPath, entry.name);
    const target = join(to, relative(from, source));
    if (await exists(target)) continue;
    await mkdir(dirname(target), { recursive: true });
    await link(source, target).catch(() => copyFile(source, target));
  }
}

/** Whether every file under `to` is one of `from`'s, linked (the same file, not a copy of its bytes). */
async function sameFiles(from: string, to: string): Promise<boolean> {
  const files = (await readdir(to, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());
  for (const entry of files) {
    const there = join(entry.parentPath, entry.name);
    const [a, b] = await Promise.all([stat(there), stat(join(from, relative(to, there))).catch(() => undefined)]);
    if (!b || a.ino !== b.ino || a.dev !== b.dev) return false;
  }
  return true;
}

/**
 * MLflow 3 logged models as mlflow-export-import writes them (./format.ts):
 * `experiments/<exp>/logged_models/<model_id>/logged_model.json`, written last (a folder without
 * it is partial), with the files in `artifacts/` beside it. The source's model ids are kept, as
 * run ids are; the experiment's experiment.json and logged_models.json list the complete ones.
 */
export class EximLoggedModelWriter implements LoggedModelWriter {
  /** model id → its experiment in this export */
  private readonly experimentOf = new Map<string, string>();

  constructor(
    private readonly experimentsDir: string,
    private readonly experimentDir: (experimentId: string) => string,
    private readonly listed: (experimentId: string, modelId: string) => Promise<void>,
    private readonly rewritten: (modelId: string) => Promise<void>,
  ) {}

  private dir(experimentId: string, modelId: string): string {
    return join(this.experimentDir(experimentId), LOGGED_MODELS, idToFolderName(modelId));
  }

  private known(modelId: string): string {
    const experimentId = this.experimentOf.get(modelId);
    if (experimentId === undefined) throw new Error(`exim: logged model ${modelId} is not being written (createLoggedModel first)`);
    return this.dir(experimentId, modelId);
  }

  /** the folder and name of a complete logged model, in whichever experiment holds it */
  async folder(modelId: string): Promise<{ dir: string; name: string } | undefined> {
    for (const experiment of await listDirs(this.experimentsDir)) {
      const dir = join(this.experimentsDir, experiment, LOGGED_MODELS, idToFolderName(modelId));
      const file = join(dir, LOGGED_MODEL_FILE);
      if (!(await isFile(file))) continue;
      const held = (parsePythonJson(await readFile(file, 'utf8')) as { mlflow: { model_id: string; name?: string } }).mlflow;
      if (held.model_id === modelId) return { dir, name: held.name ?? '' };
    }
    return undefined;
  }

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    const dir = this.dir(experimentId, sourceModelId);
    if (!(await exists(dir))) return undefined;
    this.experimentOf.set(sourceModelId, experimentId);
    return { id: sourceModelId, complete: await isFile(join(dir, LOGGED_MODEL_FILE)) };
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const dir = this.dir(experimentId, model.id);
    await removeInside(this.experimentsDir, dir);
    await mkdir(join(dir, 'artifacts'), { recursive: true });
    const tags = { ...model.tags };
    delete tags[SOURCE_TAGS.complete];
    // the LoggedModel entity's fields, as their export_logged_model writes them
    const record = {
      experiment_id: experimentId,
      model_id: model.id,
      name: model.name,
      artifact_location: `mlflow-artifacts:/${experimentId}/models/${model.id}/artifacts`,
      creation_time: model.creationTime ?? null,
      last_updated_timestamp: model.lastUpdatedTime ?? null,
      model_type: model.modelType ?? null,
      source_run_id: sourceRunId ?? null,
      status: LOGGED_MODEL_STATUS.LOGGED_MODEL_PENDING,
      status_message: model.statusMessage ?? null,
      tags,
      params: model.params,
      // a logged model's own metrics are not carried (the neutral model has none)
      metrics: [],
      model_uri: `models:/${model.id}`,
    };
    await writeJsonAtomic(join(dir, PARTIAL_LOGGED_MODEL), record);
    this.experimentOf.set(model.id, experimentId);
    return model.id;
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(join(this.known(modelId), 'artifacts'), file.path, `artifact of logged model ${modelId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishLoggedModel(modelId: string, model: LoggedModel): Promise<void> {
    const dir = this.known(modelId);
    const record = JSON.parse(await readFile(join(dir, PARTIAL_LOGGED_MODEL), 'utf8')) as Record<string, unknown>;
    await writeJsonAtomic(join(dir, LOGGED_MODEL_FILE), {
      system: system('export_logged_model.py'),
      mlflow: { ...record, status: LOGGED_MODEL_STATUS[model.status] ?? LOGGED_MODEL_STATUS.LOGGED_MODEL_READY },
    });
    await rm(join(dir, PARTIAL_LOGGED_MODEL), { force: true });
    await this.listed(this.experimentOf.get(modelId)!, modelId);
    await this.rewritten(modelId);
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    await removeInside(this.experimentsDir, this.known(modelId));
  }
}
