/**
 * Writing an MLflow file store (an `mlruns` folder) that MLflow itself opens (with
 * MLFLOW_ALLOW_FILE_STORE=true since 3.7) and shows as the source: experiments with their
 * tags and times, runs with their ids, names, users, status, start and end times, params, tags,
 * full metric histories (one `timestamp value step` line per point), dataset inputs, nested
 * links and artifacts, deleted ones under `.trash/` or marked deleted, as FileStore does.
 *
 * Run folders keep the source's run ids, so a run id must be able to name a folder of the store
 * as it is: one that is not a single plain name (`..`, `a/b`, an absolute path, NUL) or that is a
 * name the store uses itself (`tags`, `meta.yaml`, …) is refused, and only that run fails. A run is complete when its `trackshift.complete` tag
 * file exists (written last); a partial one is removed and written again. The registry is
 * written by ./registry.ts, MLflow 3 logged models by ./logged-models.ts.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { ArtifactFile, DatasetInput, Experiment, Run, RunStatus } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { exists, isFile, listDirs } from '../../util/fs.js';
import { joinSegment, quoted, relativePathProblem, removeInside, safeJoin } from '../../util/paths.js';
import type { Destination, ExistingRun, RunBatch, WriteLimits } from '../types.js';
import { MLFLOW_HOLDS } from '../mlflow-common/holds.js';
import { MLMODEL_IDS } from '../mlflow-common/mlmodel.js';
import { withParentTag } from '../mlflow-common/parent-tag.js';
import { EXPERIMENT_RESERVED, META, TRASH, experimentMetaSchema, readMeta } from './format.js';
import { MlrunsLoggedModelWriter } from './logged-models.js';
import { MlrunsRegistryWriter } from './registry.js';

const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };
const STATUS_NUMBER: Record<RunStatus, number> = { RUNNING: 1, SCHEDULED: 2, FINISHED: 3, FAILED: 4, KILLED: 5 };

/** A float as Python's repr writes it, which MLflow's float() reads back exactly. */
export function pythonFloat(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Object.is(v, -0)) return '-0.0';
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v}.0`;
  return String(v);
}

/** Keys with `/` are sub-folders in the file store; no segment may climb out. */
function keyPath(dir: string, key: string, where: string): string {
  return safeJoin(dir, key, where);
}

/** The folder of run `runId` in experiment folder `experimentDir`: the id itself, when it can be one. */
export function runDirOf(experimentDir: string, runId: string): string {
  if (EXPERIMENT_RESERVED.has(runId) || runId === META) {
    throw new InvalidInputError(`run ${quoted(runId)}`, `its id is a name the mlruns store uses itself, so it cannot be a run folder`);
  }
  return joinSegment(experimentDir, runId, `run ${quoted(runId)} (an mlruns store keeps run ids as folder names)`);
}

interface RunState {
  dir: string;
  metrics: Map<string, WriteStream>;
}

export class MlrunsDestination implements Destination {
  readonly kind = 'mlruns';
  readonly limits = LIMITS;
  readonly holds = MLFLOW_HOLDS;
  readonly idsInFiles = MLMODEL_IDS;
  private readonly runs = new Map<string, RunState>();
  private readonly runExperiment = new Map<string, string>();
  readonly registry: MlrunsRegistryWriter;
  readonly loggedModels: MlrunsLoggedModelWriter;

  constructor(
    readonly root: string,
    readonly uri: string,
  ) {
    this.loggedModels = new MlrunsLoggedModelWriter({
      experimentDir: (id) => this.experimentDir(id),
      experimentFolders: async () => (await this.experimentDirs()).map((e) => e.dir),
      runFolder: (runId) => this.runFolder(runId),
    });
    this.registry = new MlrunsRegistryWriter(root, (runId) => this.runFolder(runId), this.loggedModels);
  }

  /** where a run of this store is, whichever experiment holds it */
  private async runFolder(runId: string): Promise<string | undefined> {
    if (relativePathProblem(runId) || runId.includes('/')) return undefined; // no such folder can be here
    for (const { dir } of await this.experimentDirs()) if (await isFile(join(dir, runId, META))) return runDirOf(dir, runId);
    return undefined;
  }

  /** A new store gets MLflow's Default experiment (0), as FileStore makes it. */
  async initialise(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    if ((await this.experimentDirs()).length === 0) {
      await this.writeExperimentMeta(join(this.root, '0'), '0', { id: '0', name: 'Default', tags: {}, lifecycle: 'active' }, 'Default', 'active');
    }
  }

  private async experimentDirs(): Promise<Array<{ dir: string; id: string; name: string; lifecycle: Experiment['lifecycle'] }>> {
    const out = [];
    for (const base of [this.root, join(this.root, TRASH)]) {
      for (const folder of await listDirs(base)) {
        const file = join(base, folder, META);
        if (folder === 'models' || folder === TRASH || !(await isFile(file))) continue;
        const meta = await readMeta(file, experimentMetaSchema);
        out.push({ dir: join(base, folder), id: meta.experiment_id, name: meta.name, lifecycle: meta.lifecycle_stage });
      }
    }
    return out;
  }

  private async experimentDir(id: string): Promise<string> {
    const found = (await this.experimentDirs()).find((e) => e.id === id);
    if (!found) throw new InvalidInputError(this.root, `no experiment ${id}`);
    return found.dir;
  }

  async findExperiment(name: string) {
    const found = (await this.experimentDirs()).find((e) => e.name === name);
    return found && { id: found.id, lifecycle: found.lifecycle };
  }

  private async writeExperimentMeta(dir: string, id: string, exp: Experiment, name: string, lifecycle: Experiment['lifecycle']): Promise<void> {
    const now = Date.now();
    const meta = {
      artifact_location: pathToFileURL(join(this.root, id)).href,
      creation_time: exp.creationTime ?? now,
      experiment_id: id,
      last_update_time: exp.lastUpdateTime ?? exp.creationTime ?? now,
      lifecycle_stage: lifecycle,
      name,
    };
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, META), stringify(meta));
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const existing = (await this.experimentDirs()).find((e) => e.name === name);
    let id: string;
    let dir: string;
    if (existing) {
      ({ id, dir } = existing);
      if (existing.lifecycle === 'deleted') {
        // restored, as MLflow restores: back from .trash
        const back = joinSegment(this.root, id, join(dir, META));
        await rename(dir, back);
        dir = back;
      }
    } else {
      // MLflow's ids are numbers in decimal; the source's is kept when free
      id = /^\d+$/.test(exp.id) && !(await exists(join(this.root, exp.id))) && !(await exists(join(this.root, TRASH, exp.id))) ? exp.id : await this.freeId();
      dir = join(this.root, id);
    }
    await this.writeExperimentMeta(dir, id, exp, name, 'active');
    for (const [key, value] of Object.entries(exp.tags)) {
      const file = keyPath(join(dir, 'tags'), key, `tag of experiment ${name}`);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, value);
    }
    return id;
  }

  private async freeId(): Promise<string> {
    const taken = new Set((await this.experimentDirs()).map((e) => e.id));
    for (let n = 1; ; n++) if (!taken.has(String(n)) && !(await exists(join(this.root, String(n))))) return String(n);
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    if (exp.lifecycle !== 'deleted') return;
    // FileStore deletes an experiment by marking it and moving its folder to .trash
    const dir = await this.experimentDir(experimentId);
    const meta = await readMeta(join(dir, META), experimentMetaSchema);
    await this.writeExperimentMeta(dir, experimentId, { ...exp, creationTime: meta.creation_time, lastUpdateTime: Date.now() }, meta.name, 'deleted');
    await mkdir(join(this.root, TRASH), { recursive: true });
    await rename(dir, joinSegment(join(this.root, TRASH), experimentId, join(dir, META)));
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const dir = runDirOf(await this.experimentDir(experimentId), sourceRunId);
    if (!(await isFile(join(dir, META)))) return (await exists(dir)) ? { id: sourceRunId, complete: false } : undefined;
    this.runExperiment.set(sourceRunId, experimentId);
    return { id: sourceRunId, complete: await isFile(join(dir, 'tags', SOURCE_TAGS.complete)) };
  }

  private runMeta(run: Run, experimentId: string, dir: string, status: RunStatus, endTime: number | undefined, lifecycle: Experiment['lifecycle']) {
    return {
      artifact_uri: pathToFileURL(join(dir, 'artifacts')).href,
      end_time: endTime ?? null,
      entry_point_name: '',
      experiment_id: experimentId,
      lifecycle_stage: lifecycle,
      run_id: run.id,
      run_name: run.name ?? '',
      run_uuid: run.id,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: run.startTime ?? null,
      status: STATUS_NUMBER[status],
      tags: [],
      user_id: run.user ?? '',
      ...(lifecycle === 'deleted' ? { deleted_time: Date.now() } : {}),
    };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const experimentDir = await this.experimentDir(experimentId);
    const dir = runDirOf(experimentDir, run.id);
    await removeInside(experimentDir, dir);
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) await mkdir(join(dir, sub), { recursive: true });
    await writeFile(join(dir, META), stringify(this.runMeta(run, experimentId, dir, 'RUNNING', undefined, 'active')));
    this.runs.set(run.id, { dir, metrics: new Map() });
    this.runExperiment.set(run.id, experimentId);
    for (const [key, value] of Object.entries(withParentTag(run.tags, run.parentId))) if (key !== SOURCE_TAGS.complete) await this.writeValue(dir, 'tags', key, value);
    return run.id;
  }

  private async writeValue(dir: string, kind: 'params' | 'tags', key: string, value: string): Promise<void> {
    const file = keyPath(join(dir, kind), key, `${kind} of ${dir}`);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, value);
  }

  private state(runId: string): RunState {
    const state = this.runs.get(runId);
    if (!state) throw new Error(`mlruns: run ${runId} is not being written`);
    return state;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const state = this.state(runId);
    for (const { key, value } of batch.params) await this.writeValue(state.dir, 'params', key, value);
    for (const { key, value } of batch.tags) await this.writeValue(state.dir, 'tags', key, value);
    for (const point of batch.metrics) {
      let stream = state.metrics.get(point.key);
      if (!stream) {
        const file = keyPath(join(state.dir, 'metrics'), point.key, `metric of run ${runId}`);
        await mkdir(dirname(file), { recursive: true });
        stream = createWriteStream(file, { flags: 'a' });
        state.metrics.set(point.key, stream);
      }
      if (!stream.write(`${point.timestamp} ${pythonFloat(point.value)} ${point.step}\n`)) await once(stream, 'drain');
    }
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const state = this.state(runId);
    const experimentDir = dirname(state.dir);
    for (const input of inputs) {
      // datasets are kept once per experiment, named by a digest of their identity, as FileStore does
      const d = input.dataset;
      const datasetId = createHash('md5').update(`${d.name}\u0000${d.digest}`).digest('hex');
      const datasetDir = join(experimentDir, 'datasets', datasetId);
      await mkdir(datasetDir, { recursive: true });
      await writeFile(
        join(datasetDir, META),
        stringify({ digest: d.digest, name: d.name, profile: d.profile ?? null, schema: d.schema ?? null, source: d.source, source_type: d.sourceType }),
      );
      const inputId = createHash('md5').update(`${datasetId}\u0000${runId}`).digest('hex');
      await mkdir(join(state.dir, 'inputs', inputId), { recursive: true });
      await writeFile(
        join(state.dir, 'inputs', inputId, META),
        stringify({ destination_id: runId, destination_type: 'RUN', source_id: datasetId, source_type: 'DATASET', tags: input.tags }),
      );
    }
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(join(this.state(runId).dir, 'artifacts'), file.path, `artifact of run ${runId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishRun(runId: string, run: Run): Promise<void> {
    const state = this.runs.get(runId);
    const experimentId = this.runExperiment.get(runId) ?? run.experimentId;
    const dir = state?.dir ?? runDirOf(await this.experimentDir(experimentId), runId);
    for (const stream of state?.metrics.values() ?? []) await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await writeFile(join(dir, META), stringify(this.runMeta(run, experimentId, dir, run.status, run.endTime, run.lifecycle)));
    // complete only once everything else is there
    await writeFile(join(dir, 'tags', SOURCE_TAGS.complete), 'true');
    this.runs.delete(runId);
  }

  async discardRun(runId: string): Promise<void> {
    const state = this.runs.get(runId);
    for (const stream of state?.metrics.values() ?? []) stream.destroy();
    this.runs.delete(runId);
    const experimentId = this.runExperiment.get(runId);
    if (state) await removeInside(dirname(state.dir), state.dir);
    else if (experimentId) {
      const experimentDir = await this.experimentDir(experimentId);
      await removeInside(experimentDir, runDirOf(experimentDir, runId));
    }
  }

  async close(): Promise<void> {
    for (const state of this.runs.values()) for (const stream of state.metrics.values()) stream.destroy();
    this.runs.clear();
  }
}
