/**
 * Writing a bundle (format version 2). A run is written into its folder with a
 * `run.partial.json` first; the points of every series (float, string, file, histogram) are
 * appended to one JSON-lines file per series as they come; series files and artifacts are piped
 * to plain files; `finishRun` closes everything and writes `run.json` last, atomically. A run
 * folder without run.json is therefore always recognisable as partial.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, DatasetInput, Experiment, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { encodeEntry, pointToLine } from '../../model/json.js';
import { InvalidInputError } from '../../util/errors.js';
import { exists, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, keyToFileName, quoted, removeInside, safeJoin } from '../../util/paths.js';
import { HOLDS_EVERYTHING, type Destination, type ExistingRun, type RunBatch, type WriteLimits } from '../types.js';
import {
  ARTIFACTS_DIR,
  EXPERIMENTS_DIR,
  EXPERIMENT_FILE,
  PARTIAL_RUN_FILE,
  ROOT_FILE,
  RUNS_DIR,
  RUN_FILE,
  SERIES_DIR,
  SERIES_FILES_DIR,
  experimentSchema,
  readJsonFile,
  rootSchema,
  runSchema,
  type ExperimentFile,
  type RunFile,
  type SeriesEntry,
} from './format.js';
import { withParentTag } from '../mlflow-common/parent-tag.js';
import { BundleReader } from './read.js';

/** A bundle is files: no request size to respect, only batches small enough to stream. */
const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };
/** open series files per run; a run with more series than this closes and reopens (append) */
const MAX_OPEN_FILES = 16;

interface SeriesLines {
  entry: SeriesEntry;
  stream?: WriteStream;
  /** a write error (disk full…), kept to fail the next call instead of crashing the process */
  error?: Error;
}

/** What a run being written holds in memory: its record (small) and its open series files. */
interface RunState {
  dir: string;
  record: RunFile & { series: SeriesEntry[] };
  series: Map<string, SeriesLines>;
  open: string[];
  /** the series createRun was told of, by key, with their place in the source's list */
  declared: Map<string, { info: SeriesInfo; index: number }>;
  artifactFiles: number;
  artifactBytes: number;
}

export class BundleDestination extends BundleReader implements Destination {
  readonly limits = LIMITS;
  /** format version 2 holds every part of the model natively */
  readonly holds = HOLDS_EVERYTHING;
  private readonly writing = new Map<string, RunState>();
  /** destination run id → experiment id, for runs created or found in this session */
  private readonly runExperiment = new Map<string, string>();

  async findExperiment(name: string): Promise<{ id: string; lifecycle: Experiment['lifecycle'] } | undefined> {
    for await (const exp of this.listExperiments()) if (exp.name === name) return { id: exp.id, lifecycle: exp.lifecycle };
    return undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const existing = await this.findExperiment(name);
    // the bundle keeps the source's ids; another experiment holding this id gets a suffixed one
    let id = existing?.id ?? exp.id;
    if (!existing) {
      for (let n = 2; (await this.readExperimentFile(id)) !== undefined; n++) id = `${exp.id}-${n}`;
    }
    const previous = await this.readExperimentFile(id);
    const record: ExperimentFile = {
      id,
      name,
      tags: { ...previous?.tags, ...exp.tags },
      lifecycle: 'active',
      creationTime: previous?.creationTime ?? exp.creationTime,
      lastUpdateTime: exp.lastUpdateTime ?? previous?.lastUpdateTime,
      artifactLocation: exp.artifactLocation ?? previous?.artifactLocation,
      source: { id: exp.tags[SOURCE_TAGS.id] ?? exp.id, uri: exp.tags[SOURCE_TAGS.uri] },
    };
    const dir = this.experimentDir(id);
    await mkdir(join(dir, RUNS_DIR), { recursive: true });
    await writeJsonAtomic(join(dir, EXPERIMENT_FILE), record);
    await this.noteSource(record.source?.uri);
    return id;
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    const record = await this.readExperimentFile(experimentId);
    if (!record) throw new Error(`bundle: no experiment ${experimentId} in ${this.uri}`);
    if (record.lifecycle === exp.lifecycle) return;
    await writeJsonAtomic(join(this.experimentDir(experimentId), EXPERIMENT_FILE), { ...record, lifecycle: exp.lifecycle });
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const dir = this.runDir(experimentId, sourceRunId);
    if (!(await exists(dir))) return undefined;
    this.runExperiment.set(sourceRunId, experimentId);
    if (!(await exists(join(dir, RUN_FILE)))) return { id: sourceRunId, complete: false };
    const record = await readJsonFile(join(dir, RUN_FILE), runSchema);
    if ((record.source?.id ?? record.id) !== sourceRunId) {
      throw new InvalidInputError(join(dir, RUN_FILE), `holds run ${record.source?.id ?? record.id}, expected ${sourceRunId}`);
    }
    return { id: record.id, complete: true, lifecycle: record.lifecycle };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    // the bundle keeps the source run id (the engine calls this only after findRun said no)
    const id = run.id;
    const dir = this.runDir(experimentId, id);
    if (await exists(dir)) throw new Error(`bundle: run folder ${dir} already exists`);
    await mkdir(join(dir, SERIES_DIR), { recursive: true });
    await mkdir(join(dir, ARTIFACTS_DIR), { recursive: true });
    const record: RunState['record'] = {
      id,
      experimentId,
      name: run.name,
      status: 'RUNNING',
      startTime: run.startTime,
      endTime: undefined, // set by finishRun; listed here to keep run.json's field order readable
      user: run.user,
      lifecycle: 'active',
      parentId: run.parentId,
      params: {},
      // MLflow's parent tag names the copy's parent, as in MLflow's own stores
      tags: withParentTag(run.tags, run.parentId),
      inputs: [],
      series: [],
      ...(run.config ? { config: run.config.map(encodeEntry) } : {}),
      ...(run.summary ? { summary: run.summary.map(encodeEntry) } : {}),
      ...(run.fork ? { fork: { ...run.fork } } : {}),
      ...(run.group !== undefined ? { group: run.group } : {}),
      ...(run.sourceState !== undefined ? { sourceState: run.sourceState } : {}),
      artifacts: { files: 0, bytes: 0 },
      // logged model ids are kept in a bundle, so the links stay as they are
      ...(run.modelOutputs?.length ? { modelOutputs: run.modelOutputs } : {}),
      source: { id: run.tags[SOURCE_TAGS.id] ?? run.id, uri: run.tags[SOURCE_TAGS.uri] },
    };
    // for a reader's eyes only (what was being written when a copy stopped); never read back
    await writeJsonAtomic(join(dir, PARTIAL_RUN_FILE), record);
    const declared = new Map(run.series.map((info, index) => [info.key, { info, index }]));
    this.writing.set(id, { dir, record, series: new Map(), open: [], declared, artifactFiles: 0, artifactBytes: 0 });
    this.runExperiment.set(id, experimentId);
    return id;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const state = this.state(runId);
    for (const { key, value } of batch.params) {
      const old = state.record.params[key];
      if (old !== undefined && old !== value) throw new Error(`bundle: param ${key} of run ${runId} cannot change value`);
      state.record.params[key] = value;
    }
    for (const { key, value } of batch.tags) state.record.tags[key] = value;
    // group by key so each file gets one write per batch
    const lines = new Map<string, string[]>();
    for (const p of batch.metrics) {
      let list = lines.get(p.key);
      if (!list) lines.set(p.key, (list = []));
      list.push(pointToLine('float', p));
    }
    for (const [key, list] of lines) {
      // a float series is marked system (or not) as the source listed it
      const declared = state.declared.get(key)?.info;
      await this.append(state, declared?.type === 'float' ? declared : { key, type: 'float' }, list);
    }
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    if (series.type === 'float') throw new Error(`bundle: the float series ${quoted(series.key)} is written with writeBatch`);
    const type = series.type;
    await this.append(this.state(runId), series, points.map((p) => pointToLine(type, p)));
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    const state = this.state(runId);
    const bytes = await pipeToFile(join(state.dir, SERIES_FILES_DIR), file.path, `series file of run ${runId}`, body);
    if (file.size !== undefined && bytes !== file.size) throw new Error(`bundle: series file ${quoted(file.path)} of run ${runId}: ${bytes} bytes arrived, ${file.size} expected`);
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    this.state(runId).record.inputs.push(...structuredClone(inputs));
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const state = this.state(runId);
    state.artifactBytes += await pipeToFile(join(state.dir, ARTIFACTS_DIR), file.path, `artifact of run ${runId}`, body);
    state.artifactFiles++;
  }

  async finishRun(runId: string, run: Run): Promise<void> {
    const state = this.writing.get(runId);
    let record: RunFile;
    let dir: string;
    if (state) {
      // a series told of that got no point is listed too, with an empty file
      for (const { info } of state.declared.values()) if (!state.series.has(info.key)) await this.append(state, info, []);
      await Promise.all([...state.series.values()].map((f) => closeStream(f)));
      // listed in the source's order (the engine writes several series at once)
      const place = (s: SeriesEntry) => state.declared.get(s.key)?.index ?? state.declared.size;
      record = {
        ...state.record,
        series: [...state.record.series].sort((a, b) => place(a) - place(b)),
        artifacts: { files: state.artifactFiles, bytes: state.artifactBytes },
      };
      dir = state.dir;
    } else {
      // finishing again a run completed earlier (its lifecycle changed): rewrite its run.json
      const experimentId = this.runExperiment.get(runId) ?? run.experimentId;
      dir = this.runDir(experimentId, runId);
      record = await readJsonFile(join(dir, RUN_FILE), runSchema);
    }
    record = {
      ...record,
      status: run.status,
      endTime: run.endTime,
      lifecycle: run.lifecycle,
      tags: { ...record.tags, [SOURCE_TAGS.complete]: 'true' },
      completed: record.completed ?? new Date().toISOString(),
    };
    await writeJsonAtomic(join(dir, RUN_FILE), record); // from here on the run is complete
    await rm(join(dir, PARTIAL_RUN_FILE), { force: true });
    this.writing.delete(runId);
    this.located.delete(runId); // what this object read of the run before is out of date
  }

  async discardRun(runId: string): Promise<void> {
    const state = this.writing.get(runId);
    if (state) {
      for (const f of state.series.values()) f.stream?.destroy();
      this.writing.delete(runId);
    }
    const experimentId = this.runExperiment.get(runId);
    if (experimentId === undefined) throw new Error(`bundle: discardRun of unknown run ${runId}`);
    // run.json first: whatever happens next, the folder no longer looks complete
    const dir = this.runDir(experimentId, runId);
    await rm(join(dir, RUN_FILE), { force: true });
    await removeInside(this.root, dir);
    this.located.delete(runId);
  }

  async close(): Promise<void> {
    // runs never finished stay partial on disk (no run.json); just release the files
    for (const state of this.writing.values()) for (const f of state.series.values()) f.stream?.destroy();
    this.writing.clear();
  }

  // ---- helpers ----

  private state(runId: string): RunState {
    const state = this.writing.get(runId);
    if (!state) throw new Error(`bundle: run ${runId} is not being written (createRun first)`);
    return state;
  }

  /** Appends lines to a series' file, waiting for the disk when it is behind. */
  private async append(state: RunState, series: SeriesInfo, lines: string[]): Promise<void> {
    const file = await this.seriesLines(state, series);
    if (file.error) throw file.error;
    file.entry.points += lines.length;
    if (lines.length === 0) return;
    if (!file.stream!.write(lines.join('\n') + '\n')) await once(file.stream!, 'drain');
  }

  /** The open append stream of a series' file, opening (or reopening) it and closing the oldest. */
  private async seriesLines(state: RunState, series: SeriesInfo): Promise<SeriesLines> {
    const { key, type, system } = series;
    let file = state.series.get(key);
    if (!file) {
      const name = `${SERIES_DIR}/${keyToFileName(key, '.jsonl')}`;
      file = { entry: { key, type, ...(system !== undefined ? { system } : {}), file: name, points: 0 } };
      state.series.set(key, file);
      state.record.series.push(file.entry);
    } else if (file.entry.type !== type) {
      throw new Error(`bundle: series ${quoted(key)} of run ${state.record.id} is a ${file.entry.type} series, not a ${type} series`);
    }
    if (!file.stream) {
      if (state.open.length >= MAX_OPEN_FILES) {
        const oldest = state.series.get(state.open.shift()!)!;
        await closeStream(oldest);
      }
      const stream = createWriteStream(safeJoin(state.dir, file.entry.file), { flags: 'a' });
      const target = file;
      stream.on('error', (err) => (target.error = err));
      file.stream = stream;
      state.open.push(key);
    }
    return file;
  }

  private async noteSource(uri: string | undefined): Promise<void> {
    if (!uri) return;
    const file = join(this.root, ROOT_FILE);
    const root = await readJsonFile(file, rootSchema);
    if (root.sources.includes(uri)) return;
    await writeJsonAtomic(file, { ...root, sources: [...root.sources, uri] });
  }

  private async readExperimentFile(id: string): Promise<ExperimentFile | undefined> {
    const file = join(this.experimentDir(id), EXPERIMENT_FILE);
    if (!(await exists(file))) return undefined;
    return readJsonFile(file, experimentSchema);
  }

  private experimentDir(id: string): string {
    return join(this.root, EXPERIMENTS_DIR, idToFolderName(id));
  }

  private runDir(experimentId: string, runId: string): string {
    return join(this.experimentDir(experimentId), RUNS_DIR, idToFolderName(runId));
  }
}

async function closeStream(file: SeriesLines): Promise<void> {
  const stream = file.stream;
  if (!stream) return;
  file.stream = undefined;
  if (file.error) throw file.error;
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.end(resolve);
  });
}

/**
 * Pipes `body` into `root`/`path` (a checked relative path), never buffered; a retried file
 * starts again with a truncated file. Returns the bytes written.
 */
async function pipeToFile(root: string, path: string, where: string, body: Readable): Promise<number> {
  const target = safeJoin(root, path, where);
  await mkdir(dirname(target), { recursive: true });
  const out = createWriteStream(target);
  await pipeline(body, out);
  return out.bytesWritten;
}

/** A missing or empty folder may become a bundle; anything else that is not one is refused. */
export async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}
