/**
 * Writing runs as the Neptune 2.x client (`neptune` 1.14) writes them in offline mode, so that
 * `neptune sync --project WS/PROJ` (run from the folder above, or with `--path`) uploads them into
 * a Neptune 2.x project:
 *
 *   DIR/offline/run__<uuid>__<pid>__<8 [a-z0-9]>/
 *     metadata.json        mode offline, containerId, containerType run, structureVersion 3, createdAt
 *     data-<N>.log         the operations, JSON lines (log-writer.ts), a new file past 64 MiB
 *     last_put_version     the last version; last_ack_version empty (nothing acknowledged offline)
 *     upload_path/         the bytes of file attributes (UploadFile with tmp_file_name, as the
 *                          client stores files it owns; relative, so the folder can be moved)
 *
 * What a run becomes is neptune-common/target.ts's mapping (seed 000 for Neptune runs, the
 * neptune-mlflow layout for others), written in the client's order: sys/name, sys/description,
 * sys/tags, sys/failed, then the attributes, series (LogFloats of 100 points, LogStrings of 10,
 * LogImages of 1, as the client batches them) and files. What the format cannot carry:
 *
 * - `sys/custom_run_id` is set only by the call that creates a run, which `neptune sync` makes
 *   without one (and sys/custom_run_id is not editable): it is kept as `old_sys/custom_run_id`.
 * - NaN/±Infinity (the client drops them, a server refuses them) and strings past the client's
 *   limits (it cuts them): written as the client would, and kept exactly in the file attribute
 *   `trackshift/exact` (exact.ts), which the reader applies; each run's report says so. Kept
 *   rather than only reported, so that a copy back out of Neptune 2.x loses nothing. The same
 *   file keeps config paths whose segments hold "/" and image series files named otherwise.
 * - file series hold images only (as the client's LogImages: PNG, JPEG, GIF, BMP, WebP, TIFF,
 *   ≤ 32 MB): other files are left out with a warning. Histograms, summaries, forks, source
 *   states, points without timestamps, epochs, contexts: the engine's `.trackshift/` encoding
 *   (holds below; its files become file attributes `.trackshift/…`), which the reader undoes.
 * - artifacts: file attributes at their path without the extension (`a/b.txt` → `a/b`, ext
 *   `txt`, which the reader names `a/b.txt` again), or at their whole path without one when
 *   that path is taken; file-set files of a Neptune run are file attributes under the set's
 *   namespace (`files/set/one.txt`), not a file set: a file set names absolute paths that
 *   `neptune sync` reads, which a folder moved to another machine (or by sync to async/) loses.
 * - a path that is already an attribute or a namespace (MLflow params `a` and `a/b`): left out
 *   with a warning.
 * - dataset inputs and experiment tags: JSON in `run_info/inputs`, `run_info/experiment_tags`.
 * - experiments: an offline folder has no project, so runs of every experiment share it; a run
 *   names its experiment in `run_info/experiment_name` (runs from Neptune only when it is not
 *   "neptune", the name the reader gives runs without one). Deleting an experiment is not kept.
 *
 * Times: `metadata.json`'s createdAt is the run's start time, each operation's `at` the start
 * time and the last one's the end time, so that what the reader takes from them is the source's.
 *
 * Re-runs: a run is written in `DIR/.trackshift-partial/<folder>` and moved into `offline/` by
 * `finishRun`, so `neptune sync` and readers never see half a run; `findRun` knows the copies
 * already there by their provenance tag (`run_data/tags/trackshift.source.id`), read once at open
 * with this connector's reader, and in `DIR/.trackshift-written.jsonl`, which outlives the folders:
 * `neptune sync` uploads a folder once and then moves it to `async/` and deletes it, and a later
 * copy into the same DIR then skips those runs rather than have them uploaded twice (remove the
 * file, or its lines, to write them again). Keep a copy of DIR to read the runs back later.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { appendFile, mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { arch, platform, release } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, DatasetInput, Experiment, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint, TypedValue } from '../../model/index.js';
import { pointsByKey, SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../../model/index.js';
import { encodeEntry, pointToLine } from '../../model/json.js';
import { InvalidInputError } from '../../util/errors.js';
import { keyToFileName, quoted, removeInside } from '../../util/paths.js';
import { EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute, failedOf, INPUTS_ATTRIBUTE, inputsAttribute, isNeptuneRun, neptuneTarget } from '../neptune-common/target.js';
import type { Destination, ExistingRun, RunBatch, RunWriteResult, WriteLimits } from '../types.js';
import { Paths, artifactAttributes } from '../neptune-common/attribute-paths.js';
import { NEPTUNE2_HOLDS } from '../neptune-common/holds.js';
import { EXACT_EXT, EXACT_PATH, imageExactLine, MAX_STRING_LENGTH, MAX_STRING_SERIES_LENGTH } from '../neptune-common/exact.js';
import { parseContainerName } from './folders.js';
import { OperationLog, PyFloat, secondsOf } from './log-writer.js';
import { imageKind } from '../neptune-common/files.js';
import { Neptune2Source } from './read.js';


const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };
/** as the client batches series (neptune/attributes/series/*.py `max_batch_size`) */
const BATCH = { float: 100, string: 10, file: 1 } as const;
/** the client's limit for one logged image (neptune/internal/utils/limits.py) */
const MAX_IMAGE_BYTES = 32 * 1024 * 1024;
const PARTIAL = '.trackshift-partial';
/**
 * One line per run written (experiment, source run id, run id, folder): `neptune sync` deletes
 * the folders it uploads, and a later copy into the same DIR must not write those runs again.
 */
const LEDGER = '.trackshift-written.jsonl';
const ledgerLine = z.object({ experiment: z.string(), source: z.string(), id: z.string(), folder: z.string().regex(/^run__[A-Za-z0-9_-]+$/) });

function jsonOrUndefined(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined; // a line cut short by a kill: that run is looked for in the folders
  }
}
const OFFLINE = 'offline';
/** what the reader calls the experiment of runs that name none */
const DEFAULT_EXPERIMENT = 'neptune';
export const CLIENT_VERSION = '1.14.0.post2';

const randomKey = () => Array.from({ length: 8 }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[randomInt(36)]).join('');
const pythonIso = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');

interface OpenRun {
  id: string;
  folder: string;
  dir: string;
  experiment: string;
  sourceId?: string;
  log: OperationLog;
  /** epoch seconds of the run's start (each operation's `at`), null when unknown */
  at: number | null;
  paths: Paths;
  /** string attributes assigned, to write a param given twice once */
  strings: Map<string, string>;
  /** float series: points given so far (NaN included), for the index of an exact line */
  counts: Map<string, number>;
  exact: string[];
  artifacts: Array<{ path: string; tmp: string }>;
  inputs: DatasetInput[];
  /** file series points' bytes, until their page is written */
  seriesFiles: Map<string, string>;
  warnings: string[];
  skipped: Map<string, number>;
}

interface Known {
  id: string;
  dir: string;
  complete: boolean;
  lifecycle: Experiment['lifecycle'];
}

export class Neptune2Destination implements Destination {
  readonly kind = 'neptune2';
  readonly limits = LIMITS;
  readonly holds = NEPTUNE2_HOLDS;
  readonly uri: string;
  private readonly runs = new Map<string, OpenRun>();
  /** copies already in the folder: `experiment \0 source run id` → the copy */
  private readonly known = new Map<string, Known>();
  private readonly experiments = new Set<string>();
  private readonly experimentTags = new Map<string, Record<string, string>>();
  private nextTmp = 0;

  private constructor(readonly root: string) {
    this.uri = resolve(root);
  }

  /** `dryRun`: the folder is only read, not created */
  static async open(root: string, dryRun = false): Promise<Neptune2Destination> {
    const destination = new Neptune2Destination(root);
    if (!dryRun) await mkdir(join(root, OFFLINE), { recursive: true });
    await destination.index();
    return destination;
  }

  /** Reads the runs already in the folder (finished ones in offline/ and async/, partial ones) once, for their provenance. */
  private async index(): Promise<void> {
    const record = async (source: Neptune2Source, complete: boolean) => {
      for await (const exp of source.listExperiments()) {
        this.experiments.add(exp.name);
        for await (const run of source.listRuns(exp.id, { includeDeleted: true })) {
          const origin = run.tags[SOURCE_TAGS.id];
          const dir = source.folderOf(run.id);
          if (origin && dir) this.known.set(`${exp.name}\u0000${origin}`, { id: run.id, dir, complete, lifecycle: run.lifecycle });
        }
      }
    };
    const partial = join(this.root, PARTIAL);
    for (const name of await readdir(partial).catch(() => [] as string[])) {
      const parsed = parseContainerName(name);
      if (!parsed) continue;
      const source = await Neptune2Source.ofFolder(join(partial, name));
      if (source) await record(source, false);
    }
    await record(new Neptune2Source(this.root), true);
    // runs written before whose folders `neptune sync` has since uploaded and deleted
    const ledger = await readFile(join(this.root, LEDGER), 'utf8').catch(() => '');
    for (const line of ledger.split('\n')) {
      const entry = ledgerLine.safeParse(jsonOrUndefined(line));
      if (!entry.success) continue;
      const key = `${entry.data.experiment}\u0000${entry.data.source}`;
      this.experiments.add(entry.data.experiment);
      if (!this.known.get(key)?.complete) this.known.set(key, { id: entry.data.id, dir: join(this.root, OFFLINE, entry.data.folder), complete: true, lifecycle: 'active' });
    }
  }

  async findExperiment(name: string) {
    return this.experiments.has(name) ? { id: name, lifecycle: 'active' as const } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    this.experiments.add(name);
    const tags = Object.fromEntries(Object.entries(exp.tags).filter(([key]) => !key.startsWith(SOURCE_TAG_PREFIX)));
    this.experimentTags.set(name, tags);
    return name;
  }

  async finishExperiment(): Promise<void> {
    // an offline folder has no experiments of its own: nothing to delete or restore
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const found = this.known.get(`${experimentId}\u0000${sourceRunId}`);
    return found && { id: found.id, complete: found.complete, lifecycle: found.lifecycle };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const id = randomUUID();
    const folder = `run__${id}__${process.pid}__${randomKey()}`;
    const dir = join(this.root, PARTIAL, folder);
    await mkdir(join(dir, 'upload_path'), { recursive: true });
    const metadata = {
      mode: 'offline',
      containerId: id,
      containerType: 'run',
      structureVersion: 3,
      os: `${platform()}-${release()}-${arch()}`,
      neptuneClientVersion: CLIENT_VERSION,
      writtenBy: 'trackshift',
      // the client's creation time is when the run started; a run that does not know it gets none
      ...(run.startTime !== undefined ? { createdAt: pythonIso(run.startTime) } : {}),
    };
    await writeFile(join(dir, 'metadata.json'), JSON.stringify(metadata, null, 2));
    const open: OpenRun = {
      id,
      folder,
      dir,
      experiment: experimentId,
      log: new OperationLog(dir),
      at: run.startTime !== undefined ? secondsOf(run.startTime) : null,
      paths: new Paths(),
      strings: new Map(),
      counts: new Map(),
      exact: [],
      artifacts: [],
      inputs: [],
      seriesFiles: new Map(),
      warnings: [],
      skipped: new Map(),
      ...(run.tags[SOURCE_TAGS.id] !== undefined ? { sourceId: run.tags[SOURCE_TAGS.id] } : {}),
    };
    this.runs.set(id, open);
    this.known.set(`${experimentId}\u0000${open.sourceId ?? id}`, { id, dir, complete: false, lifecycle: 'active' });

    const target = neptuneTarget(run, experimentId, 2);
    const attributes = new Map(target.attributes);
    const customId = attributes.get('sys/custom_run_id');
    if (customId) {
      attributes.delete('sys/custom_run_id');
      attributes.set('old_sys/custom_run_id', customId);
      open.warnings.push(`its custom run id ${quoted(String(customId.value))} is kept as old_sys/custom_run_id: Neptune sets sys/custom_run_id only when it creates a run, and neptune sync creates offline runs without one`);
    }
    if (isNeptuneRun(run) && experimentId !== DEFAULT_EXPERIMENT) attributes.set('run_info/experiment_name', { type: 'string', value: experimentId });
    const experimentTags = this.experimentTags.get(experimentId) ?? {};
    if (Object.keys(experimentTags).length > 0) attributes.set(EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute(experimentTags));
    // a config path segment holding "/" (W&B and Comet keys may) makes nested namespaces in Neptune: its exact path is kept
    for (const entry of run.config ?? []) if (entry.path.some((segment) => segment.includes('/'))) this.keepExact(open, { attribute: encodeEntry(entry) });
    // the client's order: name, description, tags, failed, then the rest
    if (target.name !== undefined) this.assign(open, 'sys/name', { type: 'string', value: target.name });
    for (const path of ['sys/description', 'sys/tags']) {
      const value = attributes.get(path);
      if (value) this.assign(open, path, value);
      attributes.delete(path);
    }
    attributes.delete('sys/failed');
    this.assign(open, 'sys/failed', { type: 'bool', value: failedOf(run) });
    for (const [path, value] of attributes) this.assign(open, path, value);
    // on disk at once: a copy cut off after this is found by its provenance and redone
    open.log.flush();
    return id;
  }

  private open(runId: string): OpenRun {
    const open = this.runs.get(runId);
    if (!open) throw new Error(`neptune2: run ${runId} is not being written`);
    return open;
  }

  private op(open: OpenRun, type: string, path: string, fields: Record<string, unknown> = {}, at = open.at): void {
    open.log.put({ type, path: path.split('/'), ...fields }, at);
  }

  /** Claims `path` for an attribute of `kind`; false (and a warning) when another attribute is in its way. */
  private claim(open: OpenRun, path: string, kind: string): boolean {
    if (open.paths.claim(path, kind)) return true;
    open.warnings.push(`${kind} ${quoted(path)} is not written: its path is already an attribute or a namespace of the run (Neptune holds one or the other)`);
    return false;
  }

  private keepExact(open: OpenRun, line: object): void {
    open.exact.push(JSON.stringify(line));
  }

  /** One attribute, as the client assigns it. */
  private assign(open: OpenRun, path: string, value: TypedValue): void {
    if (!this.claim(open, path, value.type === 'stringSet' ? 'string set' : value.type)) return;
    switch (value.type) {
      case 'string': {
        if (open.strings.get(path) === value.value) return;
        open.strings.set(path, value.value);
        const cut = value.value.length > MAX_STRING_LENGTH;
        if (cut) this.keepExact(open, { attribute: encodeEntry({ path: path.split('/'), value }) });
        this.op(open, 'AssignString', path, { value: cut ? value.value.slice(0, MAX_STRING_LENGTH) : value.value });
        return;
      }
      case 'int':
        this.op(open, Number.isSafeInteger(value.value) ? 'AssignInt' : 'AssignFloat', path, { value: Number.isSafeInteger(value.value) ? value.value : new PyFloat(value.value) });
        return;
      case 'float':
        if (!Number.isFinite(value.value)) this.keepExact(open, { attribute: encodeEntry({ path: path.split('/'), value }) });
        else this.op(open, 'AssignFloat', path, { value: new PyFloat(value.value) });
        return;
      case 'bool':
        this.op(open, 'AssignBool', path, { value: value.value });
        return;
      case 'datetime':
        this.op(open, 'AssignDatetime', path, { value: Math.trunc(value.value) });
        return;
      case 'stringSet':
        this.op(open, 'AddStrings', path, { values: value.value });
    }
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const open = this.open(runId);
    for (const { key, value } of batch.params) this.assign(open, `run_data/params/${key}`, { type: 'string', value });
    for (const { key, value } of batch.tags) {
      if (value === '') this.op(open, 'AddStrings', 'sys/tags', { values: [key] });
      else this.assign(open, `run_data/tags/${key}`, { type: 'string', value });
    }
    for (const [key, points] of pointsByKey(batch.metrics)) this.logFloats(open, key, points);
  }

  private logFloats(open: OpenRun, key: string, points: MetricPoint[]): void {
    let index = open.counts.get(key) ?? 0;
    const values: Array<Record<string, unknown>> = [];
    for (const point of points) {
      if (Number.isFinite(point.value)) values.push(seriesValue(point, new PyFloat(point.value)));
      else this.keepExact(open, { series: key, type: 'float', index, insert: true, point: JSON.parse(pointToLine('float', point)) as object });
      index++;
    }
    open.counts.set(key, index);
    if (!this.claim(open, key, 'float series')) return;
    for (let i = 0; i < values.length; i += BATCH.float) this.op(open, 'LogFloats', key, { values: values.slice(i, i + BATCH.float) });
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const open = this.open(runId);
    if (!this.claim(open, series.key, `${series.type} series`)) return;
    if (series.type === 'string') {
      let index = open.counts.get(series.key) ?? 0;
      const values = points.map((point) => {
        const text = point.value as string;
        if (text.length > MAX_STRING_SERIES_LENGTH) this.keepExact(open, { series: series.key, type: 'string', index, insert: false, point: JSON.parse(pointToLine('string', point)) as object });
        index++;
        return seriesValue(point, text.slice(0, MAX_STRING_SERIES_LENGTH));
      });
      open.counts.set(series.key, index);
      for (let i = 0; i < values.length; i += BATCH.string) this.op(open, 'LogStrings', series.key, { values: values.slice(i, i + BATCH.string) });
      return;
    }
    if (series.type !== 'file') throw new Error(`neptune2: a ${series.type} series cannot be written natively`);
    for (const point of points) {
      const file = point.value as SeriesFile;
      const staged = open.seriesFiles.get(file.path);
      open.seriesFiles.delete(file.path);
      const bytes = staged === undefined ? undefined : await readFile(staged);
      if (staged) await rm(staged, { force: true });
      const kind = bytes && imageKind(bytes);
      if (!bytes || !kind || bytes.length > MAX_IMAGE_BYTES) {
        open.skipped.set(series.key, (open.skipped.get(series.key) ?? 0) + 1);
        continue;
      }
      const index = open.counts.get(series.key) ?? 0;
      open.counts.set(series.key, index + 1);
      const exact = imageExactLine(series.key, index, bytes, point);
      if (exact) this.keepExact(open, exact);
      this.op(open, 'LogImages', series.key, { values: [seriesValue(point, { data: bytes.toString('base64'), name: file.name ?? null, description: null })] });
    }
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    const open = this.open(runId);
    const staged = join(this.root, PARTIAL, `${open.folder}.series-${this.nextTmp++}`);
    await pipeline(body, createWriteStream(staged));
    open.seriesFiles.set(file.path, staged);
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    this.open(runId).inputs.push(...inputs);
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const open = this.open(runId);
    const tmp = keyToFileName(file.path, `-${this.nextTmp++}`);
    await pipeline(body, createWriteStream(join(open.dir, 'upload_path', tmp)));
    open.artifacts.push({ path: file.path, tmp });
  }

  /** The run's artifacts as file attributes (attribute-paths.ts), after every other attribute so that none is in their way. */
  private writeArtifacts(open: OpenRun): void {
    const attributes = artifactAttributes(open.artifacts.map((a) => a.path), open.paths);
    for (const [i, { attribute, ext }] of attributes.entries()) {
      if (!this.claim(open, attribute, 'file')) continue;
      this.op(open, 'UploadFile', attribute, { ext, file_path: null, tmp_file_name: open.artifacts[i]!.tmp, clean_after_upload: false });
    }
  }

  async finishRun(runId: string, run: Run): Promise<RunWriteResult> {
    const open = this.runs.get(runId);
    if (!open) return { warnings: [] }; // finished before: an offline folder is not changed once complete
    const { warnings } = open;
    if (open.inputs.length > 0) this.assign(open, INPUTS_ATTRIBUTE, inputsAttribute(open.inputs));
    this.writeArtifacts(open);
    for (const [key, count] of open.skipped) warnings.push(`${count} point(s) of file series ${quoted(key)} are not written: Neptune 2.x file series hold images (PNG, JPEG, GIF, BMP, WebP, TIFF) of at most 32 MB`);
    if (open.exact.length > 0) {
      const tmp = keyToFileName(EXACT_PATH, `.${EXACT_EXT}`);
      await writeFile(join(open.dir, 'upload_path', tmp), open.exact.join('\n') + '\n');
      if (this.claim(open, EXACT_PATH, 'file')) this.op(open, 'UploadFile', EXACT_PATH, { ext: EXACT_EXT, file_path: null, tmp_file_name: tmp, clean_after_upload: false });
      warnings.push(`${open.exact.length} value(s) Neptune 2.x does not take as they are (NaN, ±Infinity, strings past its length limits) are kept exactly in the file attribute ${EXACT_PATH}, which trackshift reads back`);
    }
    // the last operation says when the run ended (what the reader takes as its end time)
    this.op(open, 'AssignBool', 'sys/failed', { value: failedOf(run) }, run.endTime !== undefined ? secondsOf(run.endTime) : open.at);
    open.log.close();
    for (const staged of open.seriesFiles.values()) await rm(staged, { force: true });
    const target = join(this.root, OFFLINE, open.folder);
    await mkdir(join(this.root, OFFLINE), { recursive: true });
    await rename(open.dir, target);
    await rmdir(join(this.root, PARTIAL)).catch(() => undefined); // only when no other run is being written
    this.runs.delete(runId);
    this.known.set(`${open.experiment}\u0000${open.sourceId ?? runId}`, { id: runId, dir: target, complete: true, lifecycle: run.lifecycle });
    if (open.sourceId !== undefined) await appendFile(join(this.root, LEDGER), JSON.stringify({ experiment: open.experiment, source: open.sourceId, id: runId, folder: open.folder }) + '\n');
    return { warnings };
  }

  async discardRun(runId: string): Promise<void> {
    const open = this.runs.get(runId);
    if (open) {
      open.log.abandon();
      for (const staged of open.seriesFiles.values()) await rm(staged, { force: true });
      this.runs.delete(runId);
      await removeInside(join(this.root, PARTIAL), open.dir);
    }
    for (const [key, known] of this.known) {
      if (known.id !== runId) continue;
      await removeInside(this.root, known.dir);
      this.known.delete(key);
    }
  }

  async close(): Promise<void> {
    for (const runId of [...this.runs.keys()]) await this.discardRun(runId);
  }
}

/** A series point as the client logs it: `{value, step, ts}` with ts in epoch seconds. */
function seriesValue(point: { step: number; timestamp?: number }, value: unknown): Record<string, unknown> {
  if (point.timestamp === undefined) throw new InvalidInputError('neptune2', 'a series point without a timestamp reached the writer (the engine gives every point one)');
  return { value, step: Number.isInteger(point.step) ? point.step : new PyFloat(point.step), ts: new PyFloat(secondsOf(point.timestamp)) };
}
