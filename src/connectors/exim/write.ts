/**
 * Writing a directory that the Python mlflow-export-import / mlflow-migration importers read,
 * in their bulk layout and current file version (`export --format mlflow-export-import`):
 *
 *   <dir>/manifest.json
 *   <dir>/experiments/experiments.json                     {mlflow: {experiments: [{id, name, …}]}}
 *   <dir>/experiments/<exp>/experiment.json                {mlflow: {experiment: {…}, runs: [ids]}}
 *   <dir>/experiments/<exp>/<run>/run.json + artifacts/    (import-experiment takes <dir>/experiments/<exp>)
 *
 * Their run.json holds every metric point in one document. trackshift keeps memory flat all the
 * same: points are appended to one file per key while a run is copied, and run.json is then
 * streamed together from them; it is written last (temporary file + rename), so a run folder
 * without run.json is partial. Python's json reads the bare NaN / Infinity tokens written here.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, DatasetInput, Experiment, ModelStage, ModelVersion, RegisteredModel, Run } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { exists, isFile, listDirs } from '../../util/fs.js';
import { idToFolderName, keyToFileName, safeJoin } from '../../util/paths.js';
import { writeJsonAtomic } from '../bundle/format.js';
import type { Destination, ExistingRun, ExistingVersion, RegistryWriter, RunBatch, VersionTarget, WriteLimits } from '../types.js';
import { parsePythonJson } from './format.js';

const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };
const PARTIAL = '.trackshift-partial';
const FILE_VERSION = '2';

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
  private readonly runs = new Map<string, RunState>();
  private readonly experimentsDir: string;
  /** experiment.json is read, changed and written again: one change at a time */
  private lock: Promise<unknown> = Promise.resolve();

  readonly registry: EximRegistryWriter;

  constructor(
    readonly root: string,
    readonly uri: string,
  ) {
    this.experimentsDir = join(root, 'experiments');
    this.registry = new EximRegistryWriter(root, async (runId) => {
      for (const folder of await listDirs(this.experimentsDir)) {
        if (await isFile(join(this.experimentDir(folder), idToFolderName(runId), 'run.json'))) {
          const held = await this.readExperiment(folder);
          return { experimentId: folder, name: String(held?.experiment.name ?? folder), dir: join(this.experimentDir(folder), idToFolderName(runId)) };
        }
      }
      return undefined;
    });
  }

  private experimentDir(id: string) {
    return join(this.experimentsDir, idToFolderName(id));
  }

  private async readExperiment(id: string): Promise<{ experiment: Record<string, unknown>; runs: string[] } | undefined> {
    const file = join(this.experimentDir(id), 'experiment.json');
    if (!(await isFile(file))) return undefined;
    return (parsePythonJson(await readFile(file, 'utf8')) as { mlflow: { experiment: Record<string, unknown>; runs: string[] } }).mlflow;
  }

  private async writeExperiment(id: string, experiment: Record<string, unknown>, runs: string[]): Promise<void> {
    await mkdir(this.experimentDir(id), { recursive: true });
    await writeJsonAtomic(join(this.experimentDir(id), 'experiment.json'), {
      system: system('export_experiment.py'),
      info: { num_total_runs: runs.length, num_ok_runs: runs.length, num_failed_runs: 0, failed_runs: [] },
      mlflow: { experiment, runs },
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
    await this.writeExperiment(id, experiment, held?.runs ?? []);
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
      if (held) await this.writeExperiment(experimentId, { ...held.experiment, lifecycle_stage: exp.lifecycle }, held.runs);
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
    await rm(dir, { recursive: true, force: true });
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
    await write(`},\n"tags": ${JSON.stringify(tags)},\n"inputs": ${JSON.stringify(inputs)}\n}\n}\n`);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await rename(tmp, join(state.dir, 'run.json'));
    await rm(join(state.dir, PARTIAL), { recursive: true, force: true });
    this.runs.delete(runId);
    // the experiment lists its complete runs
    await this.serially(async () => {
      const held = await this.readExperiment(state.experimentId);
      if (held && !held.runs.includes(run.id)) await this.writeExperiment(state.experimentId, held.experiment, [...held.runs, run.id]);
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
    if (state) await rm(state.dir, { recursive: true, force: true });
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
  ) {}

  /**
   * The tools' import-model reads a version's run from `<model dir>/<run_id>/`: the run folder
   * is linked there (hard links: no second copy of the bytes; a copy where links fail).
   */
  private async linkRun(modelName: string, runId: string, runDir: string): Promise<void> {
    const target = join(dirname(this.file(modelName)), idToFolderName(runId));
    if (await isFile(join(target, 'run.json'))) return;
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    const files = (await readdir(runDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && !e.parentPath.includes(PARTIAL));
    for (const entry of files) {
      const from = join(entry.parentPath, entry.name);
      const to = join(target, relative(runDir, from));
      await mkdir(dirname(to), { recursive: true });
      await link(from, to).catch(() => copyFile(from, to));
    }
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
    await rm(dirname(this.file(name)), { recursive: true, force: true });
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for (const v of (await this.read(modelName))?.versions ?? []) yield { version: String(v.version), tags: v.tags };
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const runId = target.location.type === 'run' ? target.location.runId : target.runId;
    const run = runId ? await this.experimentNameOfRun(runId) : undefined;
    if (run && runId) await this.linkRun(modelName, runId, run.dir);
    const source =
      target.location.type === 'run' && run
        ? `mlflow-artifacts:/${run.experimentId}/${target.location.runId}/artifacts/${target.location.path}`
        : target.location.type === 'uri'
          ? target.location.uri
          : target.location.type === 'logged-model'
            ? `models:/${target.location.modelId}`
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
