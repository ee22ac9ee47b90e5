/**
 * Reading an MLflow file store (an `mlruns` folder) without MLflow. Read only: nothing under the
 * folder is ever written. Metric files are streamed line by line and handed out in pages.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ArtifactFile, DatasetInput, Experiment, MetricPoint, Run } from '../../model/index.js';
import { MLFLOW_TAGS, mlflowSeries } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { exists, isDir, isFile, listDirs, walkFiles } from '../../util/fs.js';
import { relativePathProblem, safeJoin } from '../../util/paths.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { listFilesDeep, readKeyValueFolder } from './files.js';
import { MlrunsLoggedModels } from './logged-models.js';
import { MlrunsRegistry } from './registry.js';
import {
  EXPERIMENT_RESERVED,
  META,
  ROOT_RESERVED,
  TRASH,
  experimentMetaSchema,
  inputMetaSchema,
  outputMetaSchema,
  parseMetricLine,
  readMeta,
  runMetaSchema,
  type RunMeta,
} from './format.js';
import { datasetMetaSchema } from '../mlflow-common/datasets.js';

export const PAGE_SIZE = 10_000;

interface RunLocation {
  dir: string;
  meta: RunMeta;
  /** where the run's artifacts are, resolved once */
  artifacts?: string;
}

export class MlrunsSource implements Source {
  readonly kind = 'mlruns';
  readonly capabilities = { filter: false };
  readonly root: string;
  readonly uri: string;
  /** experiment id → its folder (under the root, or under .trash) */
  private readonly experimentDirs = new Map<string, string>();
  private readonly runs = new Map<string, RunLocation>();
  /** experiments and runs whose meta.yaml is malformed: left out, reported as failed */
  readonly unreadable: UnreadableObject[] = [];
  readonly registry: MlrunsRegistry;
  readonly loggedModels: MlrunsLoggedModels;

  constructor(root: string) {
    this.root = resolve(root);
    this.uri = this.root;
    this.registry = new MlrunsRegistry(this.root, this.unreadable);
    this.loggedModels = new MlrunsLoggedModels((experimentId) => this.experimentDir(experimentId), this.unreadable);
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const places = [
      ...(await listDirs(this.root)).filter((d) => !ROOT_RESERVED.has(d)).map((d) => join(this.root, d)),
      ...(await listDirs(join(this.root, TRASH))).map((d) => join(this.root, TRASH, d)),
    ];
    for (const dir of places) {
      const file = join(dir, META);
      // a folder without meta.yaml is not an experiment (MLflow skips it too)
      if (!(await isFile(file))) continue;
      const read = await readOrRecord(this.unreadable, { type: 'experiment', file }, async () => ({
        meta: await readMeta(file, experimentMetaSchema),
        tags: await readKeyValueFolder(join(dir, 'tags')),
      }));
      if (!read) continue;
      const { meta, tags } = read;
      this.experimentDirs.set(meta.experiment_id, dir);
      yield {
        id: meta.experiment_id,
        name: meta.name,
        tags,
        lifecycle: meta.lifecycle_stage,
        creationTime: meta.creation_time,
        lastUpdateTime: meta.last_update_time,
        artifactLocation: meta.artifact_location ?? undefined,
      };
    }
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'an mlruns folder cannot be filtered with a search expression');
    const expDir = await this.experimentDir(experimentId);
    for (const name of await listDirs(expDir)) {
      if (EXPERIMENT_RESERVED.has(name)) continue;
      const dir = join(expDir, name);
      if (!(await isFile(join(dir, META)))) continue;
      const run = await readOrRecord(this.unreadable, { type: 'run', file: join(dir, META) }, () => this.readRun(dir, experimentId));
      if (!run) continue;
      if (run.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield run;
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    // an id (from --run-id or a model version) names a run folder only when it is one plain name
    if (runId.includes('/') || relativePathProblem(runId)) return undefined;
    for await (const exp of this.listExperiments()) {
      const dir = join(this.experimentDirs.get(exp.id)!, runId);
      if (!EXPERIMENT_RESERVED.has(runId) && (await isFile(join(dir, META)))) return this.readRun(dir, exp.id);
    }
    return undefined;
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const { dir } = await this.locate(run);
    // keys with `/` are sub-folders, exactly as the path reads
    const file = safeJoin(join(dir, 'metrics'), key, `metric of run ${run.id}`);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw new InvalidInputError(file, `cannot read metric ${JSON.stringify(key)}: ${errorMessage(err)}`);
    }
    let page: MetricPoint[] = [];
    let lineNo = 0;
    try {
      for await (const line of handle.readLines({ encoding: 'utf8' })) {
        lineNo++;
        if (line.trim() === '') continue;
        const point = parseMetricLine(line);
        if (typeof point === 'string') throw new InvalidInputError(`${file}:${lineNo}`, point);
        // one literal of four fields: V8 keeps them in the object (a spread adds a second array per point)
        page.push({ key, timestamp: point.timestamp, value: point.value, step: point.step });
        if (page.length >= PAGE_SIZE) {
          yield page;
          page = [];
        }
      }
    } finally {
      await handle.close();
    }
    if (page.length > 0) yield page;
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const root = await this.artifactDir(run);
    if (root) yield* walkFiles(root, 'follow');
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const root = await this.artifactDir(run);
    if (!root) throw new InvalidInputError(`run ${run.id}`, `has no artifacts folder, so no ${path}`);
    const file = safeJoin(root, path, `artifact of run ${run.id}`);
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }

  // ---- helpers ----

  private async experimentDir(experimentId: string): Promise<string> {
    if (!this.experimentDirs.has(experimentId)) for await (const _ of this.listExperiments());
    const dir = this.experimentDirs.get(experimentId);
    if (!dir) throw new InvalidInputError(this.uri, `no experiment ${experimentId}`);
    return dir;
  }

  private async locate(run: Run): Promise<RunLocation> {
    const known = this.runs.get(run.id);
    if (known) return known;
    const dir = safeJoin(await this.experimentDir(run.experimentId), run.id, this.uri);
    await this.readRun(dir, run.experimentId);
    return this.runs.get(run.id)!;
  }

  private async readRun(dir: string, experimentId: string): Promise<Run> {
    const file = join(dir, META);
    const meta = await readMeta(file, runMetaSchema);
    const id = meta.run_id ?? meta.run_uuid;
    if (!id) throw new InvalidInputError(file, 'has no run_id');
    if (dir.split(sep).pop() !== id) throw new InvalidInputError(file, `says run_id ${id}, but its folder is ${dir}`);
    if (meta.experiment_id !== experimentId) throw new InvalidInputError(file, `says experiment_id ${meta.experiment_id}, but it is in experiment ${experimentId}`);
    this.runs.set(id, { dir, meta });
    const tags = await readKeyValueFolder(join(dir, 'tags'));
    return {
      id,
      experimentId,
      name: meta.run_name || tags[MLFLOW_TAGS.runName] || undefined,
      status: meta.status,
      startTime: meta.start_time,
      endTime: meta.end_time,
      user: meta.user_id || tags[MLFLOW_TAGS.user] || undefined,
      lifecycle: meta.lifecycle_stage,
      parentId: tags[MLFLOW_TAGS.parentRunId] || undefined,
      params: await readKeyValueFolder(join(dir, 'params')),
      tags,
      inputs: await this.readInputs(dir, experimentId),
      series: (await listFilesDeep(join(dir, 'metrics'), '')).sort().map(mlflowSeries),
      ...(await this.readOutputs(dir)),
    };
  }

  /** MLflow 3: `outputs/<model_id>/meta.yaml` for each logged model the run produced. */
  private async readOutputs(runDir: string): Promise<Pick<Run, 'modelOutputs'>> {
    const outputsDir = join(runDir, 'outputs');
    const modelOutputs: NonNullable<Run['modelOutputs']> = [];
    for (const name of await listDirs(outputsDir)) {
      const file = join(outputsDir, name, META);
      if (!(await isFile(file))) continue;
      const output = await readMeta(file, outputMetaSchema);
      if (output.destination_type === 'MODEL_OUTPUT') modelOutputs.push({ modelId: output.destination_id, step: output.step ?? 0 });
    }
    return modelOutputs.length > 0 ? { modelOutputs } : {};
  }

  /** Dataset inputs: `inputs/<id>/meta.yaml` points at the experiment's `datasets/<id>/meta.yaml`. */
  private async readInputs(runDir: string, experimentId: string): Promise<DatasetInput[]> {
    const inputsDir = join(runDir, 'inputs');
    const inputs: DatasetInput[] = [];
    for (const name of await listDirs(inputsDir)) {
      const file = join(inputsDir, name, META);
      if (!(await isFile(file))) continue;
      const input = await readMeta(file, inputMetaSchema);
      if (input.source_type !== 'DATASET') continue; // MODEL inputs are logged models, not datasets
      const datasetFile = join(safeJoin(join(await this.experimentDir(experimentId), 'datasets'), input.source_id, file), META);
      if (!(await isFile(datasetFile))) throw new InvalidInputError(file, `names dataset ${input.source_id}, but ${datasetFile} does not exist`);
      const ds = await readMeta(datasetFile, datasetMetaSchema);
      inputs.push({
        dataset: {
          name: ds.name,
          digest: ds.digest,
          sourceType: ds.source_type,
          source: ds.source,
          schema: ds.schema ?? undefined,
          profile: ds.profile ?? undefined,
        },
        tags: input.tags ?? {},
      });
    }
    return inputs;
  }

  /**
   * Where a run's artifacts are. A local `artifact_uri` is used when it exists. A store that was
   * moved or copied (the sample in this repo, an mlruns folder carried to another machine) still
   * holds absolute `file:///old/place/<exp>/<run>/artifacts` URIs: when that path is gone and ends
   * like the run's own folder, the run's `artifacts/` folder is used. Non-local URIs (s3:, …) are
   * refused with a clear message rather than copied as "no artifacts".
   */
  private async artifactDir(run: Run): Promise<string | undefined> {
    const location = await this.locate(run);
    if (location.artifacts !== undefined) return location.artifacts || undefined;
    const where = join(location.dir, META);
    const own = join(location.dir, 'artifacts');
    const uri = location.meta.artifact_uri;
    let found: string | undefined;
    if (!uri) {
      found = (await isDir(own)) ? own : undefined;
    } else {
      const local = localPath(uri);
      if (local === undefined) {
        throw new InvalidInputError(where, `artifact_uri ${uri} is not a local folder; the mlruns reader reads local artifacts only`);
      }
      const path = resolve(this.root, local);
      if (await isDir(path)) found = path;
      else if (endsWithRunFolder(path, location.dir) && (await isDir(own))) found = own;
      else if (!(await exists(path))) {
        // MLflow creates the folder lazily in some versions: no folder anywhere means no artifacts
        if (!endsWithRunFolder(path, location.dir)) throw new InvalidInputError(where, `artifact_uri ${uri} does not exist`);
      } else throw new InvalidInputError(where, `artifact_uri ${uri} is not a folder`);
    }
    location.artifacts = found ?? '';
    return found;
  }
}

/** A local path from `file:` URIs and plain paths; undefined for any other scheme. */
function localPath(uri: string): string | undefined {
  if (uri.startsWith('file:')) {
    try {
      return fileURLToPath(uri.startsWith('file://') ? uri : `file://${uri.slice('file:'.length)}`);
    } catch {
      return uri.slice('file:'.length); // file:relative/path
    }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) && !/^[a-z]:[\\/]/i.test(uri)) return undefined;
  return uri;
}

/** `/old/place/<exp>/<run>/artifacts` for run folder `<root>/<exp>/<run>` */
function endsWithRunFolder(path: string, runDir: string): boolean {
  const tail = runDir.split(sep).slice(-2).concat('artifacts');
  const parts = resolve(path).split(sep);
  return parts.length >= 3 && parts.slice(-3).join('/') === tail.join('/');
}
