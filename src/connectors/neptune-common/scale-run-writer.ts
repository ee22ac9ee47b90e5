/**
 * One run written as neptune-scale 0.30 writes it: what the contract's calls become in Neptune
 * 3.x operations, whatever carries them — an offline database (neptune3/) or the ingest API
 * (neptune-scale/). The run's layout is neptune-common/target.ts (the seeds' rules for Neptune
 * runs, neptune-mlflow's layout for the others); this class only encodes it:
 *
 * - CreateRun: family = run id, experiment, creation time, fork point (parent project = this
 *   project, the parent's Neptune run id, step), inherit_configs as the client sets it;
 * - attributes: assigns and `sys/tags`/`sys/group_tags` additions at the run's creation time;
 *   what Neptune has no place for is kept in trackshift's own `run_info/` attributes, read back
 *   by neptune-common/run.ts: dataset inputs (`run_info/inputs`), the experiment's tags
 *   (`run_info/experiment_tags`, on each of its runs), a source state (`run_info/source_state`);
 * - float series: points of one step and timestamp share a snapshot (as one `log_metrics` call
 *   does); string, histogram and file series: a snapshot per point, at the point's step and time;
 * - files (artifacts → file attributes at their path; file series' points → appended file_refs):
 *   the bytes handed to the sink under the client's remote path (`generate_destination`) for an
 *   artifact, `<run component>/<its SeriesFile.path>` for a file series' point, which the
 *   readers give back, so the client's own paths survive a copy unchanged.
 *
 * The sink stores what comes out: operations in order, and files' bytes before the operations
 * that name them (as the client saves upload requests first).
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, DatasetInput, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint, TypedValue } from '../../model/index.js';
import type { RunBatch } from '../types.js';
import { quoted } from '../../util/paths.js';
import { fileDestination, mimeTypeOf, MAX_FILE_DESTINATION_LENGTH, runComponent } from './scale-names.js';
import { stepOf, timestampOf, type CreateRun, type Value } from './scale-proto.js';
import { appendSnapshot, attributeSnapshots, histogramOf, type Pending } from './scale-values.js';
import { EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute, INPUTS_ATTRIBUTE, inputsAttribute, neptuneTarget, type NeptuneTarget } from './target.js';

/** parameters.py: run ids up to 730 characters */
const MAX_RUN_ID_LENGTH = 730;
/** the longest string value Neptune's server takes (NeptuneStringValueExceedsSizeLimit) */
const MAX_STRING_BYTES = 64 * 1024;

/** A file whose bytes the sink stores for the operations that name it by `destination`. */
export interface ScaleFile {
  destination: string;
  mimeType: string;
  /** the file's name, for a sink that keeps a local copy */
  name: string;
  /** its exact length, when the source knows it */
  size?: number;
}

export interface ScaleRunSink {
  /** the run's operations after CreateRun, in order */
  save(operations: Pending[]): void | Promise<void>;
  /** stores a file's bytes; resolves to its size */
  putFile(file: ScaleFile, body: Readable): Promise<number>;
}

export type CreateRunMessage = Partial<CreateRun> & { inheritConfigs: boolean };

const lastSegment = (path: string) => path.split('/').pop() ?? path;

/** a step as (whole, micro) bigints, compared as Neptune compares steps */
const stepBefore = (a: number, b: number) => {
  const x = stepOf(a);
  const y = stepOf(b);
  return x.whole < y.whole || (x.whole === y.whole && x.micro <= y.micro);
};

export class ScaleRunWriter {
  readonly runId: string;
  readonly target: NeptuneTarget;
  /** the time of attribute snapshots: the run's creation (absent: unknown) */
  readonly createdAt: number | undefined;
  /** the time an operation without its own is stamped with (an offline database's `timestamp` column) */
  readonly rowTime: number;
  readonly warnings: string[] = [];
  /** file series' files stored ahead of their points, by SeriesFile.path */
  private readonly seriesFiles = new Map<string, { destination: string; size: number; mimeType: string }>();
  private sink?: ScaleRunSink;
  /** points left out because the destination holds them already, per series */
  readonly skipped = new Map<string, number>();

  /** per series path, the last step the destination holds already (see `resume`) */
  private held: ReadonlyMap<string, number> = new Map();

  constructor(
    private readonly run: Run,
    experimentName: string,
    experimentTags: Record<string, string> | undefined,
  ) {
    this.target = neptuneTarget(run, experimentName, 3);
    if (experimentTags && Object.keys(experimentTags).length > 0) this.target.attributes.set(EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute(experimentTags));
    this.runId = this.target.runId ?? run.id;
    if (this.runId.length === 0 || this.runId.length > MAX_RUN_ID_LENGTH) throw new Error(`run id ${quoted(this.runId)} does not fit Neptune 3.x (1 to ${MAX_RUN_ID_LENGTH} characters)`);
    this.createdAt = this.target.creationTime;
    this.rowTime = this.createdAt ?? run.endTime ?? Date.now();
  }

  /**
   * CreateRun's fields, as the client's `_create_run` sets them; the fork's parent is in
   * `project`. `inheritConfigs`: the client's default (true) makes the server copy the parent's
   * configs into a fork; a copy that assigns the fork's own configs itself says false.
   */
  createRun(project: string, inheritConfigs = true): CreateRunMessage {
    const fork = this.run.fork;
    return {
      family: this.runId,
      ...(this.target.name !== undefined ? { experimentId: this.target.name } : {}),
      ...(this.createdAt !== undefined ? { creationTime: timestampOf(this.createdAt) } : {}),
      ...(fork ? { forkPoint: { parentProject: project, parentRunId: fork.runId, ...(fork.step !== undefined ? { step: stepOf(fork.step) } : {}) } } : {}),
      inheritConfigs,
    };
  }

  /** The run's attributes as created, the first operations after CreateRun. */
  firstOperations(): Pending[] {
    return this.assignments([...this.target.attributes]);
  }

  /** Snapshots assigning `attributes` at the run's creation time. */
  assignments(attributes: Array<[string, TypedValue]>): Pending[] {
    return attributes.length > 0 ? attributeSnapshots(attributes, this.createdAt, this.rowTime) : [];
  }

  /**
   * A run resumed where a cut-off copy left it (on a server, whose series only grow): per series
   * path, the last step it holds; points at or before it are left out (and counted in `skipped`).
   */
  resume(held: ReadonlyMap<string, number>): void {
    this.held = held;
  }

  attach(sink: ScaleRunSink): void {
    this.sink = sink;
  }

  private get out(): ScaleRunSink {
    if (!this.sink) throw new Error(`neptune 3.x: run ${quoted(this.runId)} has nowhere to write`);
    return this.sink;
  }

  /** Whether a series' point is held by the destination already (a resumed run), counted when it is. */
  private isHeld(key: string, step: number): boolean {
    const last = this.held.get(key);
    if (last === undefined || !stepBefore(step, last)) return false;
    this.skipped.set(key, (this.skipped.get(key) ?? 0) + 1);
    return true;
  }

  async writeBatch(batch: { params: Array<{ key: string; value: string }>; tags: Array<{ key: string; value: string }>; metrics: MetricPoint[] }): Promise<void> {
    const attributes: Array<[string, TypedValue]> = [];
    // params and tags as the mapping lays them out (target.ts); those the run was created with are there already
    for (const { key, value } of batch.params) {
      const path = `run_data/params/${key}`;
      const created = this.target.attributes.get(path);
      if (created?.type !== 'string' || created.value !== value) attributes.push([path, { type: 'string', value }]);
    }
    for (const { key, value } of batch.tags) attributes.push(value === '' ? ['sys/tags', { type: 'stringSet', value: [key] }] : [`run_data/tags/${key}`, { type: 'string', value }]);
    const operations = this.assignments(attributes);
    operations.push(...this.metricSnapshots(batch.metrics));
    await this.out.save(operations);
  }

  /** Points of one step and time share a snapshot, one point per series in each, in each series' order. */
  private metricSnapshots(points: MetricPoint[]): Pending[] {
    const snapshots: Pending[] = [];
    // step → time → the snapshot of that moment (numbers as keys: no string built per point)
    const byMoment = new Map<number, Map<number, number>>();
    const lastOf = new Map<string, number>();
    for (const point of points) {
      const key = this.target.seriesPath(point.key);
      if (this.isHeld(key, point.step)) continue;
      const time = point.timestamp ?? this.rowTime;
      let atStep = byMoment.get(point.step);
      if (!atStep) byMoment.set(point.step, (atStep = new Map()));
      let index = atStep.get(time);
      const append = index === undefined ? undefined : snapshots[index]!.update.append!;
      if (index === undefined || append![key] !== undefined || index < (lastOf.get(key) ?? -1)) {
        snapshots.push(appendSnapshot(point.step, time, {}));
        index = snapshots.length - 1;
        atStep.set(time, index);
      }
      snapshots[index]!.update.append![key] = { value: { case: 'float64', value: point.value } };
      lastOf.set(key, index);
    }
    return snapshots;
  }

  async writeSeries(series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const key = this.target.seriesPath(series.key);
    const operations: Pending[] = [];
    for (const point of points) {
      if (this.isHeld(key, point.step)) continue;
      const time = point.timestamp ?? this.rowTime;
      let value: Value;
      if (series.type === 'string') value = { value: { case: 'string', value: point.value as string } };
      else if (series.type === 'histogram') value = histogramOf(point.value as never, `series ${quoted(series.key)} at step ${point.step}`);
      else if (series.type === 'file') value = this.seriesFileRef(key, point);
      else throw new Error(`neptune 3.x: float series ${quoted(series.key)} come with writeBatch`);
      operations.push(appendSnapshot(point.step, time, { [key]: value }));
    }
    await this.out.save(operations);
  }

  /** The file_ref of a file series' point, whose bytes writeSeriesFile stored before. */
  private seriesFileRef(key: string, point: TypedPoint): Value {
    const file = point.value as SeriesFile;
    const stored = this.seriesFiles.get(file.path);
    if (!stored) throw new Error(`neptune 3.x: the file ${quoted(file.path)} of series ${quoted(key)} was not written before its point`);
    return { value: { case: 'fileRef', value: { path: stored.destination, sizeBytes: BigInt(stored.size), mimeType: stored.mimeType } } };
  }

  /**
   * A file series' file: stored at once (as the client saves upload requests before the
   * operations), at `<run component>/<its path>`, which the readers give back.
   */
  async writeSeriesFile(file: SeriesFile, body: Readable): Promise<void> {
    const name = file.name ?? lastSegment(file.path);
    let destination = `${runComponent(this.runId)}/${file.path}`;
    if (destination.length > MAX_FILE_DESTINATION_LENGTH) {
      destination = fileDestination(this.runId, file.path, name, undefined);
      this.warnings.push(`file ${quoted(file.path)} of a file series: its path is too long for Neptune; stored as ${quoted(destination)}`);
    }
    const mimeType = file.mimeType ?? mimeTypeOf(name);
    const size = await this.out.putFile({ destination, mimeType, name, ...(file.size !== undefined ? { size: file.size } : {}) }, body);
    this.seriesFiles.set(file.path, { destination, size, mimeType });
  }

  /** Neptune has no dataset inputs: kept as one JSON string attribute (target.ts), which readers give back. */
  async writeInputs(inputs: DatasetInput[]): Promise<void> {
    const value = inputsAttribute(inputs);
    if (Buffer.byteLength(value.value as string) > MAX_STRING_BYTES) {
      this.warnings.push(`${inputs.length} dataset input(s) not copied: as JSON they are over the ${MAX_STRING_BYTES} bytes a Neptune string holds`);
      return;
    }
    await this.out.save(this.assignments([[INPUTS_ATTRIBUTE, value]]));
  }

  /** An artifact becomes a file attribute at its path, with the client's remote path for its bytes. */
  async writeArtifact(file: ArtifactFile, body: Readable): Promise<void> {
    const name = lastSegment(file.path);
    const destination = fileDestination(this.runId, file.path, name, undefined);
    const mimeType = mimeTypeOf(name);
    const size = await this.out.putFile({ destination, mimeType, name, ...(file.size !== undefined ? { size: file.size } : {}) }, body);
    const assign = { [file.path]: { value: { case: 'fileRef' as const, value: { path: destination, sizeBytes: BigInt(size), mimeType } } } };
    await this.out.save([{ update: { assign, ...(this.createdAt !== undefined ? { timestamp: timestampOf(this.createdAt) } : {}) }, time: this.rowTime }]);
  }
}

/**
 * What both Neptune 3.x destinations (offline databases, the ingest API) do alike with a run being
 * written: the contract's writes handed to its ScaleRunWriter. Each says which writer a run id
 * has; creating, finishing and finding copies are its own.
 */
export abstract class ScaleWritingDestination {
  /** the writer of a run being written (throws for any other) */
  protected abstract writerOf(runId: string): ScaleRunWriter;

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    await this.writerOf(runId).writeBatch(batch);
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    await this.writerOf(runId).writeSeries(series, points);
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    await this.writerOf(runId).writeSeriesFile(file, body);
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    await this.writerOf(runId).writeInputs(inputs);
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    await this.writerOf(runId).writeArtifact(file, body);
  }
}
