/**
 * Neptune 3.x as a destination: one neptune-scale offline database per run, in the log directory
 * (`neptune3:DIR?project=WS/PROJ`), as the pinned client (0.30, metadata v5) writes it in offline
 * mode, so that its `neptune sync <db>` uploads it. What a run becomes is neptune-common/target.ts
 * (the seeds' rules for Neptune runs, neptune-mlflow's layout for the others); this file only
 * encodes it:
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
 *   the bytes copied into the run's folder and recorded in file_upload_requests (temporary, as the
 *   client's copies of bytes are). Artifacts get the client's remote path (`generate_destination`);
 *   a file series' point gets `<run component>/<its SeriesFile.path>`, which the reader gives back,
 *   so the client's own paths survive a copy unchanged;
 * - points Neptune refuses (non-finite values, steps outside [0, 10^12) or finer than its
 *   micro-steps, steps not increasing, timestamps going back) are declared in `holds.pointRules`: the engine leaves them out of the
 *   native series and keeps the exact series in the `.trackshift/` encoding, which the neptune3
 *   source undoes (index.ts wraps it in decodingSource).
 *
 * A run is written in a `.trackshift-partial-…` folder that readers skip, and renamed to the
 * client's `<project>_<run id>_<ns>` at finishRun: a killed copy never looks complete, and
 * findRun (copies indexed once at open by their `run_data/tags/trackshift.source.id`) finds it
 * for the engine to discard and redo. The last operation's time is the source's end time.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, DatasetInput, Experiment, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { SERIES_TYPES, SOURCE_TAG_PREFIX, SOURCE_TAGS, type TypedValue } from '../../model/index.js';
import { joinSegment, quoted, removeInside } from '../../util/paths.js';
import { EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute, INPUTS_ATTRIBUTE, inputsAttribute, neptuneTarget, type NeptuneTarget } from '../neptune-common/target.js';
import type { Destination, DestinationHolds, ExistingRun, RunBatch, RunWriteResult, WriteLimits } from '../types.js';
import { DATABASE_FILE, PARTIAL_FOLDER_PREFIX } from './db.js';
import { indexCopies, type ExistingCopy } from './existing.js';
import { fileDestination, mimeTypeOf, MAX_FILE_DESTINATION_LENGTH, runComponent, runFolderName } from '../neptune-common/scale-names.js';
import { stepOf, timestampOf, type Value } from '../neptune-common/scale-proto.js';
import { OperationsStore } from './store.js';
import { appendSnapshot, attributeSnapshots, histogramOf, type Pending } from '../neptune-common/scale-values.js';

/** parameters.py: run ids up to 730 characters, steps in [0, 10^12) */
const MAX_RUN_ID_LENGTH = 730;
const MAX_STEP = 1_000_000_000_000;
/** the longest string value Neptune's server takes (NeptuneStringValueExceedsSizeLimit) */
const MAX_STRING_BYTES = 64 * 1024;

export const NEPTUNE3_HOLDS: DestinationHolds = {
  seriesTypes: SERIES_TYPES,
  fractionalSteps: true,
  // the client stamps every snapshot; a point without a time gets the run's start (engine)
  pointsWithoutTimestamp: false,
  epochs: false,
  contexts: false,
  // Neptune's system namespaces (`runtime/`, and 2.x's `monitoring/` moved there) say it
  systemSeries: true,
  typedConfig: true,
  summaries: false,
  forks: true,
  groups: true,
  // kept in run_info/source_state for runs from elsewhere (target.ts); a Neptune run's state is the client's own (seed 001)
  sourceStates: true,
  creationTimes: { experiments: false, models: false, versions: false },
  pointRules: { finiteValues: true, increasingSteps: true, nonDecreasingTimestamps: true, minStep: 0, maxStep: MAX_STEP, stepDecimals: 6 },
};

/** Writes are local: batches only need to stay well under one operation's size. */
const LIMITS: WriteLimits = { metrics: 5000, params: 1000, tags: 1000, entries: 5000, bytes: 1024 * 1024 };

interface LocalFile {
  /** name in the run's folder */
  name: string;
  size: number;
}

interface RunInWriting {
  runId: string;
  sourceId: string;
  target: NeptuneTarget;
  partial: string;
  final: string;
  store: OperationsStore;
  /** the time of attribute snapshots: the run's creation (absent: unknown) */
  createdAt: number | undefined;
  rowTime: number;
  /** file series' files written ahead of their points, by SeriesFile.path */
  seriesFiles: Map<string, LocalFile & { destination: string; mimeType: string }>;
  warnings: string[];
}

const extensionOf = (name: string) => /\.[A-Za-z0-9]{1,16}$/.exec(name)?.[0] ?? '';
const lastSegment = (path: string) => path.split('/').pop() ?? path;

export class Neptune3Destination implements Destination {
  readonly kind = 'neptune3';
  readonly limits = LIMITS;
  readonly holds = NEPTUNE3_HOLDS;
  private readonly runs = new Map<string, RunInWriting>();
  /** experiment name → its tags: a 3.x experiment is a name on its runs, which carry them (target.ts) */
  private readonly experimentTags = new Map<string, Record<string, string>>();
  /** ns of the last run folder named: strictly increasing, so two runs never share a name */
  private lastNs = 0n;

  private constructor(
    readonly uri: string,
    private readonly dir: string,
    private readonly project: string,
    private readonly copies: Map<string, ExistingCopy>,
    private readonly dryRun: boolean,
  ) {}

  static async open(uri: string, dir: string, project: string, dryRun: boolean): Promise<Neptune3Destination> {
    const root = resolve(dir);
    return new Neptune3Destination(uri, root, project, await indexCopies(root), dryRun);
  }

  async findExperiment(name: string): Promise<{ id: string; lifecycle: Experiment['lifecycle'] } | undefined> {
    // experiments are names on runs: one "exists" once the directory holds copies
    return this.copies.size > 0 ? { id: name, lifecycle: 'active' } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    if (!this.dryRun) await mkdir(this.dir, { recursive: true });
    // its own tags: the copy's provenance is on every run already
    this.experimentTags.set(name, Object.fromEntries(Object.entries(exp.tags).filter(([key]) => !key.startsWith(SOURCE_TAG_PREFIX))));
    return name;
  }

  async finishExperiment(): Promise<void> {
    // a 3.x experiment is a name on its runs: nothing to finish or delete
  }

  async findRun(_experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const copy = this.copies.get(sourceRunId);
    return copy && { id: copy.runId, complete: copy.complete };
  }

  private nextNs(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = now > this.lastNs ? now : this.lastNs + 1n;
    return this.lastNs;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const target = neptuneTarget(run, experimentId, 3);
    const experimentTags = this.experimentTags.get(experimentId);
    if (experimentTags && Object.keys(experimentTags).length > 0) target.attributes.set(EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute(experimentTags));
    const runId = target.runId ?? run.id;
    if (runId.length === 0 || runId.length > MAX_RUN_ID_LENGTH) throw new Error(`run id ${quoted(runId)} does not fit Neptune 3.x (1 to ${MAX_RUN_ID_LENGTH} characters)`);
    if (this.runs.has(runId)) throw new Error(`two runs of this copy have the Neptune run id ${quoted(runId)}; copy them into separate log directories`);

    const partial = joinSegment(this.dir, `${PARTIAL_FOLDER_PREFIX}${randomUUID()}`);
    const final = joinSegment(this.dir, runFolderName(this.project, runId, this.nextNs()));
    await mkdir(partial, { recursive: true });
    const store = new OperationsStore(join(partial, DATABASE_FILE));
    const createdAt = target.creationTime;
    const rowTime = createdAt ?? run.endTime ?? Date.now();
    const fork = run.fork;
    try {
      store.create(
        this.project,
        runId,
        {
          family: runId,
          ...(target.name !== undefined ? { experimentId: target.name } : {}),
          ...(createdAt !== undefined ? { creationTime: timestampOf(createdAt) } : {}),
          ...(fork ? { forkPoint: { parentProject: this.project, parentRunId: fork.runId, ...(fork.step !== undefined ? { step: stepOf(fork.step) } : {}) } } : {}),
          inheritConfigs: true,
        },
        rowTime,
        attributeSnapshots(target.attributes, createdAt, rowTime),
      );
    } catch (err) {
      store.close();
      await removeInside(this.dir, partial);
      throw err;
    }
    const sourceId = run.tags[SOURCE_TAGS.id] ?? run.id;
    this.runs.set(runId, { runId, sourceId, target, partial, final, store, createdAt, rowTime, seriesFiles: new Map(), warnings: [] });
    this.copies.set(sourceId, { runId, folder: partial, complete: false });
    return runId;
  }

  private open(runId: string): RunInWriting {
    const run = this.runs.get(runId);
    if (!run) throw new Error(`neptune3: run ${quoted(runId)} is not being written in ${this.dir}`);
    return run;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const run = this.open(runId);
    const attributes: Array<[string, TypedValue]> = [];
    // params and tags as the mapping lays them out (target.ts); those the run was created with are there already
    for (const { key, value } of batch.params) {
      const path = `run_data/params/${key}`;
      const created = run.target.attributes.get(path);
      if (created?.type !== 'string' || created.value !== value) attributes.push([path, { type: 'string', value }]);
    }
    for (const { key, value } of batch.tags) attributes.push(value === '' ? ['sys/tags', { type: 'stringSet', value: [key] }] : [`run_data/tags/${key}`, { type: 'string', value }]);
    const operations = attributes.length > 0 ? attributeSnapshots(attributes, run.createdAt, run.rowTime) : [];
    operations.push(...this.metricSnapshots(run, batch.metrics));
    run.store.save(operations);
  }

  /** Points of one step and time share a snapshot, one point per series in each, in each series' order. */
  private metricSnapshots(run: RunInWriting, points: MetricPoint[]): Pending[] {
    const snapshots: Pending[] = [];
    const byMoment = new Map<string, number>();
    const lastOf = new Map<string, number>();
    for (const point of points) {
      const key = run.target.seriesPath(point.key);
      const time = point.timestamp ?? run.rowTime;
      const moment = `${point.step}\u0000${time}`;
      let index = byMoment.get(moment);
      const append = index === undefined ? undefined : snapshots[index]!.update.append!;
      if (index === undefined || append![key] !== undefined || index < (lastOf.get(key) ?? -1)) {
        snapshots.push(appendSnapshot(point.step, time, {}));
        index = snapshots.length - 1;
        byMoment.set(moment, index);
      }
      snapshots[index]!.update.append![key] = { value: { case: 'float64', value: point.value } };
      lastOf.set(key, index);
    }
    return snapshots;
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const run = this.open(runId);
    const key = run.target.seriesPath(series.key);
    const operations: Pending[] = [];
    for (const point of points) {
      const time = point.timestamp ?? run.rowTime;
      let value: Value;
      if (series.type === 'string') value = { value: { case: 'string', value: point.value as string } };
      else if (series.type === 'histogram') value = histogramOf(point.value as never, `series ${quoted(series.key)} at step ${point.step}`);
      else if (series.type === 'file') value = this.seriesFileRef(run, key, point);
      else throw new Error(`neptune3: float series ${quoted(series.key)} come with writeBatch`);
      operations.push(appendSnapshot(point.step, time, { [key]: value }));
    }
    run.store.save(operations);
  }

  /** The file_ref of a file series' point, whose bytes and upload writeSeriesFile recorded before. */
  private seriesFileRef(run: RunInWriting, key: string, point: TypedPoint): Value {
    const file = point.value as SeriesFile;
    const local = run.seriesFiles.get(file.path);
    if (!local) throw new Error(`neptune3: the file ${quoted(file.path)} of series ${quoted(key)} was not written before its point`);
    return { value: { case: 'fileRef', value: { path: local.destination, sizeBytes: BigInt(local.size), mimeType: local.mimeType } } };
  }

  /** Copies bytes into the run's folder under a new name, as the client keeps files logged from bytes. */
  private async copyIn(run: RunInWriting, name: string, body: Readable): Promise<LocalFile> {
    const local = `${randomUUID()}${extensionOf(name)}`;
    const path = join(run.partial, local);
    await pipeline(body, createWriteStream(path));
    return { name: local, size: (await stat(path)).size };
  }

  /**
   * A file series' file: copied in and recorded for upload at once (as the client saves upload
   * requests before the operations), at `<run component>/<its path>`, which the reader gives back.
   */
  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    const run = this.open(runId);
    const name = file.name ?? lastSegment(file.path);
    const local = await this.copyIn(run, name, body);
    let destination = `${runComponent(run.runId)}/${file.path}`;
    if (destination.length > MAX_FILE_DESTINATION_LENGTH) {
      destination = fileDestination(run.runId, file.path, name, undefined);
      run.warnings.push(`file ${quoted(file.path)} of a file series: its path is too long for Neptune; stored as ${quoted(destination)}`);
    }
    const mimeType = file.mimeType ?? mimeTypeOf(name);
    run.store.save([], [{ sourcePath: join(run.final, local.name), destination, mimeType, size: local.size }]);
    run.seriesFiles.set(file.path, { ...local, destination, mimeType });
  }

  /** Neptune has no dataset inputs: kept as one JSON string attribute (target.ts), which readers give back. */
  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const run = this.open(runId);
    const value = inputsAttribute(inputs);
    if (Buffer.byteLength(value.value as string) > MAX_STRING_BYTES) {
      run.warnings.push(`${inputs.length} dataset input(s) not copied: as JSON they are over the ${MAX_STRING_BYTES} bytes a Neptune string holds`);
      return;
    }
    run.store.save(attributeSnapshots([[INPUTS_ATTRIBUTE, value]], run.createdAt, run.rowTime));
  }

  /** An artifact becomes a file attribute at its path, with the client's remote path for its bytes. */
  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const run = this.open(runId);
    const name = lastSegment(file.path);
    const local = await this.copyIn(run, name, body);
    const destination = fileDestination(run.runId, file.path, name, undefined);
    const mimeType = mimeTypeOf(name);
    const assign = { [file.path]: { value: { case: 'fileRef' as const, value: { path: destination, sizeBytes: BigInt(local.size), mimeType } } } };
    run.store.save(
      [{ update: { assign, ...(run.createdAt !== undefined ? { timestamp: timestampOf(run.createdAt) } : {}) }, time: run.rowTime }],
      [{ sourcePath: join(run.final, local.name), destination, mimeType, size: local.size }],
    );
  }

  async finishRun(runId: string, run: Run): Promise<void | RunWriteResult> {
    const writing = this.runs.get(runId);
    if (!writing) return; // finished before: nothing changes once a copy is complete
    if (run.endTime !== undefined) writing.store.stampLast(run.endTime);
    writing.store.close();
    await rename(writing.partial, writing.final);
    this.runs.delete(runId);
    this.copies.set(writing.sourceId, { runId, folder: writing.final, complete: true });
    return { warnings: writing.warnings };
  }

  async discardRun(runId: string): Promise<void> {
    const writing = this.runs.get(runId);
    if (writing) {
      this.runs.delete(runId);
      writing.store.close();
      await removeInside(this.dir, writing.partial);
      this.copies.delete(writing.sourceId);
      return;
    }
    for (const [sourceId, copy] of this.copies) {
      if (copy.runId !== runId || copy.complete) continue;
      await removeInside(this.dir, copy.folder);
      this.copies.delete(sourceId);
    }
  }

  async close(): Promise<void> {
    // runs still open were cut off: their partial folders are found and redone by the next copy
    for (const run of this.runs.values()) run.store.close();
    this.runs.clear();
  }
}
