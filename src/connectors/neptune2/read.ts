/**
 * Reading the Neptune 2.x client's offline and async folders. Read only. Each run's operation
 * log is replayed once when runs are listed (./oplog.ts) and its series are read again from
 * the log when asked for (./points.ts); files are read from where the log says they are.
 *
 * Offline folders hold no project, so every run goes into one experiment, named as
 * neptune-common names a run without a project ("neptune"). Async folders hold only what was
 * not yet sent to the server (operations up to `last_ack_version` are skipped, as the client's
 * sync skips them): such a run is partial, and says so in the warnings.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';
import { experimentNameOf, neptuneSeries, toModelRun, type NeptuneRun } from '../neptune-common/run.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { containersIn, type Container } from './folders.js';
import { logFilesOf, type LogFile, type Position } from './lines.js';
import { fileArtifactPath, replay, type FileSource, type RunState } from './oplog.js';
import { bytesAt, imageFile, seriesPages } from './points.js';

interface ReadRun {
  run: Run;
  files: LogFile[];
  state: RunState;
  /** file series points' bytes: SeriesFile.path → the line and value holding them */
  seriesFiles: Map<string, { at: Position; item: number }>;
  /** artifact path → where its bytes are (found when listing, so that missing files are warned about before a copy starts) */
  artifacts: Map<string, FileSource>;
}

/** The one experiment of a folder's runs: offline and async folders never name their project. */
const EXPERIMENT_ID = 'neptune';

export class Neptune2Source implements Source {
  readonly kind = 'neptune2';
  readonly uri: string;
  readonly unreadable: UnreadableObject[] = [];
  readonly warnings: Array<{ object: string; message: string }> = [];
  /** runs read, by run id and by their container's id (the same unless the log has a sys/id) */
  private readonly runs = new Map<string, ReadRun>();
  private readonly byContainer = new Map<string, ReadRun>();
  private readonly experimentName: string;

  /** `root`: a `.neptune` folder; `single`: one run folder given directly */
  constructor(
    root: string,
    private readonly single?: Container,
  ) {
    this.uri = resolve(root);
    this.experimentName = experimentNameOf({ id: '', generation: 2, attributes: new Map(), series: [] });
  }

  private containers(): Promise<Container[]> {
    return this.single ? Promise.resolve([this.single]) : containersIn(this.uri);
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    if ((await this.containers()).length > 0) yield { id: EXPERIMENT_ID, name: this.experimentName, tags: {}, lifecycle: 'active' };
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'Neptune offline folders cannot be filtered with a search expression');
    if (experimentId !== EXPERIMENT_ID) return;
    for (const container of await this.containers()) {
      const where = container.dirs[0]!.dir;
      if (container.type !== 'run') {
        this.warn(`${container.type} ${container.id}`, `${where} holds a Neptune ${container.type}, not a run: skipped`);
        continue;
      }
      const read = this.byContainer.get(container.id) ?? (await readOrRecord(this.unreadable, { type: 'run', file: join(where, 'data-1.log'), sourceId: container.id }, () => this.readRun(container)));
      if (read) yield structuredClone(read.run);
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    for await (const run of this.listRuns(EXPERIMENT_ID, { includeDeleted: true })) if (run.id === runId) return run;
    return undefined;
  }

  private warn(object: string, message: string): void {
    if (!this.warnings.some((w) => w.object === object && w.message === message)) this.warnings.push({ object, message });
  }

  private async readRun(container: Container): Promise<ReadRun> {
    const files: LogFile[] = [];
    for (const { dir } of container.dirs) {
      const acked = Number((await readFile(join(dir, 'last_ack_version'), 'utf8').catch(() => '0')).trim()) || 0;
      for (const path of await logFilesOf(dir)) files.push({ path, acked, dir });
    }
    const state = await replay(files, container.id);
    const sysId = state.attributes.get('sys/id');
    const id = sysId?.type === 'string' ? sysId.value : container.id;
    const object = `run ${id}`;
    for (const message of state.warnings) this.warn(object, message);
    const async = container.dirs.filter((d) => d.mode === 'async');
    if (async.length > 0) this.warn(object, `${async.map((d) => d.dir).join(', ')}: an async folder holds only the operations its process had not yet sent to the server; what was sent (or logged by other processes) is not in it`);
    const series: SeriesInfo[] = [...state.series].filter(([, s]) => s.points > 0).map(([key, s]) => neptuneSeries(key, s.type));
    const neptuneRun: NeptuneRun = { id, generation: 2, attributes: state.attributes, series, ...(state.lastAt !== undefined ? { lastOperationTime: state.lastAt } : {}) };
    const run = toModelRun(neptuneRun, EXPERIMENT_ID);
    // the log has no sys/creation_time (the server sets it): the folder's creation, else the first operation
    const startTime = container.dirs[0]!.createdAt ?? state.firstAt;
    if (run.startTime === undefined && startTime !== undefined) run.startTime = startTime;
    const read: ReadRun = { run, files, state, seriesFiles: new Map(), artifacts: await this.artifacts(object, state) };
    this.runs.set(id, read);
    this.byContainer.set(container.id, read);
    return read;
  }

  private async located(run: Run): Promise<ReadRun> {
    if (!this.runs.has(run.id)) await this.getRun(run.id);
    const read = this.runs.get(run.id);
    if (!read) throw new InvalidInputError(this.uri, `no run ${run.id}`);
    return read;
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const { files, state } = await this.located(run);
    const series = state.series.get(key);
    if (series?.type !== 'float') return;
    for await (const page of seriesPages(files, key, series)) yield page.map((p) => ({ key, step: p.step, timestamp: p.timestamp, value: p.value as number }));
  }

  async *readSeries(run: Run, info: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const read = await this.located(run);
    const series = read.state.series.get(info.key);
    if (!series || series.type === 'float' || series.type !== info.type) return;
    let index = 0;
    for await (const page of seriesPages(read.files, info.key, series)) {
      yield page.map((p): TypedPoint => {
        if (typeof p.value === 'string') return { step: p.step, timestamp: p.timestamp, value: p.value };
        const image = p.value as { data: string; name?: string };
        const file = imageFile(info.key, index++, Buffer.from(image.data, 'base64'), image.name);
        read.seriesFiles.set(file.path, { at: p.at, item: p.item });
        return { step: p.step, timestamp: p.timestamp, value: file };
      });
    }
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const read = await this.located(run);
    if (!read.seriesFiles.has(path)) for (const series of read.run.series) if (series.type === 'file') for await (const _ of this.readSeries(run, series));
    const where = read.seriesFiles.get(path);
    if (!where) throw new InvalidInputError(this.uri, `run ${run.id} has no series file ${quoted(path)}`);
    return Readable.from([await bytesAt(read.files, where.at, where.item)]);
  }

  /** Every artifact of a run with where its bytes are; files that no longer exist are warned about and left out. */
  private async artifacts(object: string, state: RunState): Promise<Map<string, FileSource>> {
    const out = new Map<string, FileSource>();
    const add = async (path: string, source: FileSource) => {
      if (out.has(path)) return this.warn(object, `two files would be artifact ${quoted(path)}: the first is kept`);
      if (source.kind === 'path' && !(await stat(source.file).catch(() => undefined))?.isFile()) {
        return this.warn(object, `artifact ${quoted(path)}: ${source.file} no longer exists (Neptune records files by path and reads them only at sync): not copied`);
      }
      out.set(path, source);
    };
    for (const [key, file] of state.files) await add(fileArtifactPath(key, file.ext), file.source);
    for (const [key, set] of state.fileSets) for (const [name, file] of set) await add(`${key}/${name}`, { kind: 'path', file });
    return out;
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const read = await this.located(run);
    for (const [path, source] of read.artifacts) {
      if (source.kind === 'path') yield { path, size: (await stat(source.file)).size };
      else yield { path };
    }
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const read = await this.located(run);
    const source = read.artifacts.get(path);
    if (!source) throw new InvalidInputError(this.uri, `run ${run.id} has no artifact ${quoted(path)}`);
    if (source.kind === 'content') return Readable.from([await bytesAt(read.files, source.at)]);
    return createReadStream(source.file);
  }
}
