/**
 * Writing Comet offline archives: one `<key>.zip` per run, in the layout the reader reads back
 * (layout.ts) and that comet_ml's own offline sender (`comet upload`) accepts: its JSON schemas
 * pass for experiment.json and every message.
 *
 * The key is the source run's id when it is a valid Comet key, else sha1 of it (as the SDK's
 * get_experiment_key derives keys), and `resume_strategy` is `create`: uploading an archive again
 * meets the experiment of that key and is refused by Comet, so a re-upload never duplicates.
 * A run is staged in `.trackshift-staging/<key>/` and zipped to a temporary name that is renamed
 * last: an archive exists only when complete, and a re-run skips it.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { ArtifactFile, DatasetInput, Experiment, Run, SeriesFile, SeriesInfo, TypedPoint, TypedValue } from '../../model/index.js';
import { isDir, isFile } from '../../util/fs.js';
import { joinSegment, quoted, removeInside } from '../../util/paths.js';
import type { Destination, DestinationHolds, ExistingRun, RunBatch, WriteLimits } from '../types.js';
import type { RunExtras } from '../comet-common/extras.js';
import { keyFor } from '../comet-common/keys.js';
import { MANUAL_SOURCE, NAME_OTHER, PATH_META, RUN_OTHER, STDERR_KEY, STDOUT_KEY, UPLOAD, WORKSPACE_TAG, paramOf, paramPath, projectTags } from '../comet-common/layout.js';
import { COMET_HOLDS, inManifestOrder, seriesUpload } from '../comet-common/writing.js';
import { EXPERIMENT_FILE, MESSAGES_FILE, MESSAGE_TYPES } from './format.js';
import { messageLine, metricValue, scalarOf } from './messages.js';
import { manifestOf, otherMessagesOf, type ManifestEntry } from './replay.js';

export { keyFor };

const STAGING = '.trackshift-staging';

interface Staged {
  key: string;
  dir: string;
  project: string;
  workspace: string | null;
  run: Run;
  lines: WriteStream;
  nextId: number;
  /** the files staged beside messages.json, by their name in the archive */
  blobs: string[];
  extras: RunExtras;
  /** SeriesFile.path → blob */
  seriesFiles: Map<string, string>;
  /** points written so far, by series key */
  seriesPoints: Map<string, number>;
  /** artifacts not yet uploaded (they wait for comet/assets.json, which says how) */
  artifacts: Array<{ path: string; blob: string }>;
  manifest: ManifestEntry[];
}

export interface CometOfflineTarget {
  dir: string;
  workspace?: string;
  project?: string;
  dryRun?: boolean;
}

export class CometOfflineDestination implements Destination {
  readonly kind = 'comet-offline';
  readonly uri: string;
  readonly limits: WriteLimits = { metrics: 5000, params: 1000, tags: 1000, entries: 5000, bytes: 16_000_000 };
  readonly holds: DestinationHolds = COMET_HOLDS;
  private readonly dir: string;
  /** by project: its workspace and the tags of the experiment written into it */
  private readonly projects = new Map<string, { workspace: string | null; tags: Record<string, string> }>();
  private readonly staged = new Map<string, Staged>();

  constructor(private readonly target: CometOfflineTarget) {
    this.dir = resolve(target.dir);
    const query = [target.workspace ? `workspace=${target.workspace}` : '', target.project ? `project=${target.project}` : ''].filter(Boolean).join('&');
    this.uri = `comet-offline:${this.dir}${query ? `?${query}` : ''}`;
  }

  private archivePath(key: string): string {
    return joinSegment(this.dir, `${key}.zip`);
  }

  private stagingDir(key: string): string {
    return joinSegment(join(this.dir, STAGING), key);
  }

  async findExperiment(name: string) {
    return (await isDir(this.dir)) ? { id: this.target.project ?? name, lifecycle: 'active' as const } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const project = this.target.project ?? name;
    this.projects.set(project, { workspace: this.target.workspace ?? exp.tags[WORKSPACE_TAG] ?? null, tags: { ...exp.tags } });
    if (!this.target.dryRun) await mkdir(this.dir, { recursive: true });
    return project;
  }

  async finishExperiment(): Promise<void> {}

  async findRun(_experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const key = keyFor(sourceRunId);
    if (await isFile(this.archivePath(key))) return { id: key, complete: true, lifecycle: 'active' };
    if (await isDir(this.stagingDir(key))) return { id: key, complete: false };
    return undefined;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const key = keyFor(run.id);
    const dir = this.stagingDir(key);
    await removeInside(this.dir, dir);
    await mkdir(dir, { recursive: true });
    const lines = createWriteStream(join(dir, MESSAGES_FILE), { flags: 'wx' });
    await once(lines, 'open');
    const staged: Staged = {
      key,
      dir,
      project: experimentId,
      workspace: this.projects.get(experimentId)?.workspace ?? this.target.workspace ?? null,
      run,
      lines,
      nextId: 1,
      blobs: [],
      extras: {},
      seriesFiles: new Map(),
      seriesPoints: new Map(),
      artifacts: [],
      manifest: [],
    };
    this.staged.set(key, staged);
    const at = run.startTime ?? 0;
    if (run.name !== undefined) await this.emit(staged, MESSAGE_TYPES.logOther, { key: NAME_OTHER, value: run.name });
    const { extras } = staged;
    for (const entry of run.config ?? []) {
      const { name, source } = paramOf(entry.path);
      if (!samePath(paramPath(name, source), entry.path)) (extras.paramPaths ??= {})[name] = entry.path;
      const type = stringFor(entry.value);
      if (type) (extras.paramTypes ??= {})[name] = type;
      if (entry.value.type === 'stringSet') await this.emit(staged, MESSAGE_TYPES.parameter, { local_timestamp: at, params: { paramName: name, paramValue: entry.value.value, source, step: null } });
      else await this.emit(staged, MESSAGE_TYPES.parameter, { local_timestamp: at, param: { paramName: name, paramValue: scalarOf(entry.value), source, step: null } });
    }
    for (const entry of run.summary ?? []) {
      const key = entry.path.join('|');
      if (!samePath([key], entry.path)) (extras.otherPaths ??= {})[key] = entry.path;
      const type = stringFor(entry.value);
      if (type) (extras.otherTypes ??= {})[key] = type;
      await this.emit(staged, MESSAGE_TYPES.logOther, { key, value: scalarOf(entry.value) });
    }
    this.addTags(staged, run.tags);
    if (run.user !== undefined) staged.extras.user = run.user;
    if (run.parentId !== undefined) staged.extras.parentId = run.parentId;
    const project = this.projects.get(experimentId);
    if (project && !sameTags(project.tags, projectTags(staged.workspace))) staged.extras.experimentTags = project.tags;
    return key;
  }

  private addTags(staged: Staged, tags: Record<string, string>): void {
    for (const [key, value] of Object.entries(tags)) (staged.extras.tags ??= {})[key] = value;
  }

  private open(runId: string): Staged {
    const staged = this.staged.get(runId);
    if (!staged) throw new Error(`comet-offline: no run ${quoted(runId)} being written in ${this.dir}`);
    return staged;
  }

  private async emit(staged: Staged, type: string, payload: Record<string, unknown>): Promise<void> {
    if (!staged.lines.write(messageLine(type, payload, staged.nextId++) + '\n')) await once(staged.lines, 'drain');
  }

  /** A new blob file in the staging folder (named apart from the client's `tmpXXXXXXXX`). */
  private async blob(staged: Staged, body: Readable | Buffer | string): Promise<string> {
    const name = `trackshift-${String(staged.blobs.length).padStart(8, '0')}`;
    staged.blobs.push(name);
    const file = join(staged.dir, name);
    if (typeof body === 'string' || Buffer.isBuffer(body)) await writeFile(file, body, { flag: 'wx' });
    else await pipeline(body, createWriteStream(file, { flags: 'wx' }));
    return name;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const staged = this.open(runId);
    const at = staged.run.startTime ?? 0;
    for (const { key, value } of batch.params) {
      (staged.extras.params ??= []).push(key);
      await this.emit(staged, MESSAGE_TYPES.parameter, { local_timestamp: at, param: { paramName: key, paramValue: value, source: MANUAL_SOURCE, step: null } });
    }
    this.addTags(staged, Object.fromEntries(batch.tags.map((t) => [t.key, t.value])));
    for (const p of batch.metrics) {
      const metric = { metricName: p.key, metricValue: metricValue(p.value), step: p.step, epoch: p.epoch ?? null };
      await this.emit(staged, MESSAGE_TYPES.metric, { local_timestamp: Math.round(p.timestamp ?? at), context: p.context ?? null, metric });
    }
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const staged = this.open(runId);
    for (const point of points) {
      const at = Math.round(point.timestamp ?? staged.run.startTime ?? 0);
      if (series.type === 'string' && (series.key === STDOUT_KEY || series.key === STDERR_KEY)) {
        await this.emit(staged, MESSAGE_TYPES.standardOutput, { output: point.value as string, stderr: series.key === STDERR_KEY, local_timestamp: at, context: point.context ?? null });
        continue;
      }
      const index = staged.seriesPoints.get(series.key) ?? 0;
      staged.seriesPoints.set(series.key, index + 1);
      const upload = seriesUpload(series, point, index);
      const blob = series.type === 'file' ? staged.seriesFiles.get((point.value as SeriesFile).path) : await this.blob(staged, upload.body!);
      if (blob === undefined) throw new Error(`comet-offline: the file of ${quoted(series.key)} at step ${point.step} was not given before its point`);
      // the client names the asset type in the upload's parameters, except for plain assets and images
      const typed = upload.type === UPLOAD.asset || upload.type === UPLOAD.image ? {} : { type: upload.type };
      const additional = { context: point.context ?? null, step: point.step, ...(point.epoch !== undefined ? { epoch: point.epoch } : {}), fileName: upload.fileName, overwrite: false, ...typed, ...upload.extra };
      await this.emit(staged, MESSAGE_TYPES.fileUpload, { file_path: blob, upload_type: upload.type, local_timestamp: at, metadata: upload.metadata, additional_params: additional, clean: true });
    }
  }

  /**
   * An upload named by neither fileName nor figName (a git patch) is named by its blob: the blob
   * takes the name it had, so that the asset reads back under the same path.
   */
  private async keepBlobName(staged: Staged, blob: string, kept: ManifestEntry): Promise<string> {
    const extra = kept.additional_params;
    const name = kept.path.split('/').pop()!;
    if (typeof extra?.fileName === 'string' || typeof extra?.figName === 'string' || !/^tmp[^/\\]*$/.test(name) || staged.blobs.includes(name)) return blob;
    await rename(join(staged.dir, blob), joinSegment(staged.dir, name));
    staged.blobs[staged.blobs.indexOf(blob)] = name;
    return name;
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    const staged = this.open(runId);
    staged.seriesFiles.set(file.path, await this.blob(staged, body));
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const staged = this.open(runId);
    (staged.extras.inputs ??= []).push(...structuredClone(inputs));
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const staged = this.open(runId);
    const manifest = manifestOf(file.path, async () => buffer(body));
    if (manifest) return void staged.manifest.push(...(await manifest));
    const others = otherMessagesOf(file.path, async () => buffer(body));
    if (others) {
      for (const { type, payload } of await others) await this.emit(staged, type, payload);
      return;
    }
    staged.artifacts.push({ path: file.path, blob: await this.blob(staged, body) });
  }

  async finishRun(runId: string, run: Run): Promise<void> {
    const staged = this.open(runId);
    // in the order they were uploaded (the manifest's), the others after them
    inManifestOrder(staged.artifacts, staged.manifest);
    for (const artifact of staged.artifacts) {
      const { path } = artifact;
      const kept = staged.manifest.find((m) => m.path === path);
      const blob = kept ? await this.keepBlobName(staged, artifact.blob, kept) : artifact.blob;
      const { path: _path, ...payload } = kept ?? { path, upload_type: UPLOAD.asset, local_timestamp: run.startTime ?? 0, metadata: { [PATH_META]: path }, additional_params: { context: null, step: null, fileName: path, overwrite: false } };
      await this.emit(staged, MESSAGE_TYPES.fileUpload, { ...payload, file_path: blob, clean: true });
    }
    const extras: RunExtras = { ...staged.extras };
    const cometTags = Object.entries(extras.tags ?? {}).filter(([, v]) => v === '');
    extras.tags = Object.fromEntries(Object.entries(extras.tags ?? {}).filter(([, v]) => v !== ''));
    if (Object.keys(extras.tags).length === 0) delete extras.tags;
    if (run.status !== 'FINISHED') extras.status = run.status;
    if (run.lifecycle !== 'active') extras.lifecycle = run.lifecycle;
    if (run.endTime === undefined) extras.noEndTime = true;
    if (Object.keys(extras).length > 0) await this.emit(staged, MESSAGE_TYPES.logOther, { key: RUN_OTHER, value: JSON.stringify(extras) });
    staged.lines.end();
    await once(staged.lines, 'close');
    const start = run.startTime ?? run.endTime ?? 0;
    const experiment = {
      offline_id: staged.key,
      project_name: staged.project,
      workspace: staged.workspace,
      start_time: Math.round(start),
      stop_time: Math.round(run.endTime ?? start),
      tags: cometTags.map(([tag]) => tag),
      resume_strategy: 'create',
      customer_error_reported: run.status === 'FAILED',
      customer_error_message: run.status === 'FAILED' ? (run.sourceState ?? 'FAILED') : null,
      user_provided_experiment_key: true,
      comet_start_sourced: false,
    };
    await writeFile(join(staged.dir, EXPERIMENT_FILE), JSON.stringify(experiment), { flag: 'wx' });
    await this.zip(staged);
    this.staged.delete(runId);
  }

  /** The staging folder zipped beside the archive under a temporary name, then renamed: never half an archive. */
  private async zip(staged: Staged): Promise<void> {
    const zip = new yazl.ZipFile();
    zip.addFile(join(staged.dir, EXPERIMENT_FILE), EXPERIMENT_FILE);
    zip.addFile(join(staged.dir, MESSAGES_FILE), MESSAGES_FILE);
    for (const name of staged.blobs) zip.addFile(join(staged.dir, name), name, { compress: false });
    zip.end();
    const tmp = join(this.dir, STAGING, `${staged.key}.zip.tmp`);
    await pipeline(zip.outputStream, createWriteStream(tmp));
    await rename(tmp, this.archivePath(staged.key));
    await removeInside(this.dir, staged.dir);
  }

  async discardRun(runId: string): Promise<void> {
    const staged = this.staged.get(runId);
    if (staged) {
      staged.lines.destroy();
      this.staged.delete(runId);
    }
    await removeInside(this.dir, this.stagingDir(runId));
  }

  async close(): Promise<void> {
    for (const key of [...this.staged.keys()]) await this.discardRun(key);
  }
}

const samePath = (a: string[], b: string[]): boolean => a.length === b.length && a.every((segment, i) => segment === b[i]);

/** The type a value written as a string stands for (scalarOf writes datetimes and NaN / ±Infinity floats as strings). */
const stringFor = (value: TypedValue): 'datetime' | 'float' | undefined => (value.type === 'datetime' ? 'datetime' : value.type === 'float' && !Number.isFinite(value.value) ? 'float' : undefined);

const sameTags = (a: Record<string, string>, b: Record<string, string>): boolean => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
