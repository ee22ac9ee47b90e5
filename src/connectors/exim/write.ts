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
 *   <dir>/models/models.json, <dir>/models/<name>/model.json + <run_id>/ (./registry.ts)
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
import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, DatasetInput, Experiment, Run } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { exists, isFile, listDirs, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, keyToFileName, removeInside, safeJoin } from '../../util/paths.js';
import type { Destination, ExistingRun, RunBatch, WriteLimits } from '../types.js';
import { MLFLOW_HOLDS } from '../mlflow-common/holds.js';
import { MLMODEL_IDS } from '../mlflow-common/mlmodel.js';
import { withParentTag } from '../mlflow-common/parent-tag.js';
import { LOGGED_MODELS, PARTIAL, system } from './export-files.js';
import { parsePythonJson } from './format.js';
import { EximLoggedModelWriter } from './logged-models.js';
import { EximRegistryWriter } from './registry.js';

const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };

interface ExperimentFile {
  experiment: Record<string, unknown>;
  runs: string[];
  logged_models?: string[];
}

/** A number as Python's json writes it (NaN and the infinities as bare tokens). */
const pyNumber = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : JSON.stringify(v));

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
  readonly idsInFiles = MLMODEL_IDS;
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
    this.runs.set(run.id, { dir, experimentId, run, params: {}, tags: withParentTag(run.tags, run.parentId), inputs: [], metrics: new Map() });
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
