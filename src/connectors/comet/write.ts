/**
 * Writing into a Comet instance over its REST API, as `comet upload` and comet_ml's Experiment
 * send an experiment (the calls are in ./api.ts), in the layout the readers read back
 * (comet-common/layout.ts): what the offline writer puts in an archive's messages is sent here
 * as the calls the offline sender would make of them — without its 15,000-point sampling.
 *
 * Keys: an experiment is created with a key chosen here (logger/add/run, as Experiment does):
 * the source run's key when it is a Comet key, else sha1 of its id (keyFor: the SDK's
 * get_experiment_key); a key already used elsewhere on the server (the source itself, on a copy
 * within one instance) moves on to sha1 of `<id>#<n>`. A re-run finds its experiment by the same
 * keys. The log-other `trackshift.run` is written last: an experiment without it is partial, and
 * is archived (discarded) and written again under the next key; one with it is skipped.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { type ArtifactFile, type DatasetInput, type Experiment, type Histogram, type Run, type SeriesFile, type SeriesInfo, type TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';
import type { Destination, DestinationHolds, ExistingRun, RunBatch, RunWriteResult, WriteLimits } from '../types.js';
import { histogramBlobOf, histogramMetadata } from '../comet-common/histogram.js';
import { keyFor } from '../comet-common/keys.js';
import { ASSETS_MANIFEST, FILE_META, PATH_META, RUN_OTHER, SERIES_META, STDERR_KEY, STDOUT_KEY, SYSTEM_PREFIX, TEXT_KEY, UPLOAD, projectTags } from '../comet-common/layout.js';
import { REST_SYSTEM_DETAILS, UPLOAD_FIELD, systemDetailsRecord } from '../comet-common/rest.js';
import { RestRecords, valueRecord, type ValueRecord } from '../comet-common/rest-write.js';
import { floatText } from '../comet-common/values.js';
import { CometApi, EXPERIMENT_ALREADY_EXISTS, METRIC_BATCH, OUTPUT_BATCH, PARAMETER_BATCH, uploadEndpoint, type MetricValue, type OutputLine, type ParameterValue } from './api.js';
import { GIT_PATCH, PROJECT_TAGS, TIME_META } from './read.js';
import { CometHttpError } from './transport.js';

/** keys tried for one source run before giving up (each a discarded attempt or a key taken elsewhere) */
const MAX_ATTEMPTS = 16;
/** the upload types a file series key may start with (`visualization/dot.png`) */
const FILE_UPLOAD_TYPES = new Set(['visualization', 'audio', 'video', 'asset', 'curve', 'image', 'notebook', 'source_code', 'model-element', 'dataframe', 'confusion-matrix']);
const OTHER_MESSAGES = /^comet\/([A-Za-z0-9_-]{1,100})\.json$/;

const manifestSchema = z.array(
  z.looseObject({
    path: z.string(),
    upload_type: z.string(),
    local_timestamp: z.number().int(),
    metadata: z.record(z.string(), z.unknown()).nullish(),
    additional_params: z.record(z.string(), z.unknown()).nullable(),
  }),
);
type ManifestEntry = z.infer<typeof manifestSchema>[number];
const payloadsSchema = z.array(z.record(z.string(), z.unknown()));

export interface CometTarget {
  workspace: string;
  project?: string;
  dryRun?: boolean;
}

interface Open {
  key: string;
  project: string;
  projectId: string | undefined;
  run: Run;
  /** its parameters, others and extras as REST records (comet-common) */
  records: RestRecords;
  tmp: string;
  files: number;
  /** uploads sent so far: each gets an asset id of its own (key, number), so that a retried upload replaces itself */
  uploads: number;
  /** SeriesFile.path → staged file */
  seriesFiles: Map<string, string>;
  seriesPoints: Map<string, number>;
  outputOffset: number;
  /** artifacts staged until comet/assets.json (which says how each was uploaded) is known */
  artifacts: Array<{ path: string; file: string; size: number }>;
  manifest: ManifestEntry[];
  warnings: string[];
}

type Probe = { free: string } | { key: string; complete: boolean; archived: boolean };

export class CometRestDestination implements Destination {
  readonly kind = 'comet';
  readonly uri: string;
  /** the instance: one workspace on two servers is two stores (a copy between them is no copy onto itself) */
  readonly trackingStore: string;
  /** comet_ml's batch sizes: 1000 metrics, 1000 parameters per call */
  readonly limits: WriteLimits = { metrics: METRIC_BATCH, params: PARAMETER_BATCH, tags: 1000, entries: METRIC_BATCH, bytes: 8_000_000 };
  readonly holds: DestinationHolds = {
    seriesTypes: ['float', 'string', 'file', 'histogram'],
    fractionalSteps: true,
    pointsWithoutTimestamp: false,
    epochs: true,
    contexts: true,
    systemSeries: { prefix: SYSTEM_PREFIX },
    typedConfig: true,
    summaries: true,
    forks: false,
    groups: false,
    sourceStates: false,
    creationTimes: { experiments: false, models: false, versions: false },
  };
  /** by project name: its id and the tags of the experiment written into it */
  private readonly projects = new Map<string, { id: string | undefined; tags: Record<string, string> }>();
  private readonly open = new Map<string, Open>();

  constructor(
    private readonly api: CometApi,
    private readonly target: CometTarget,
  ) {
    this.uri = `comet://${target.workspace}${target.project ? `/${target.project}` : ''}`;
    this.trackingStore = `comet ${api.root}`;
  }

  private projectName(name: string): string {
    return this.target.project ?? name;
  }

  async findExperiment(name: string) {
    const project = this.projectName(name);
    const found = (await this.api.projects(this.target.workspace)).find((p) => p.projectName === project);
    return found ? { id: project, lifecycle: 'active' as const } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const project = this.projectName(name);
    let record = (await this.api.projects(this.target.workspace)).find((p) => p.projectName === project);
    if (!record && !this.target.dryRun) {
      await this.api.createProject(this.target.workspace, project, exp.tags[PROJECT_TAGS.description], exp.tags[PROJECT_TAGS.public] === 'true');
      record = (await this.api.projects(this.target.workspace)).find((p) => p.projectName === project);
      const notes = exp.tags[PROJECT_TAGS.notes];
      if (notes && record) await this.api.setProjectNotes(record.projectId, notes);
    }
    this.projects.set(project, { id: record?.projectId, tags: { ...exp.tags } });
    return project;
  }

  async finishExperiment(): Promise<void> {}

  /** The experiment tags the project gives by itself: its workspace, description, visibility and notes (as read.ts reads them). */
  private projectSays(project: string): Record<string, string> {
    const tags = this.projects.get(project)?.tags ?? {};
    const says: Record<string, string> = projectTags(this.target.workspace);
    for (const key of [PROJECT_TAGS.description, PROJECT_TAGS.notes]) if (tags[key]) says[key] = tags[key];
    if (tags[PROJECT_TAGS.public] === 'true') says[PROJECT_TAGS.public] = 'true';
    return says;
  }

  /** The keys a source run's experiment may have, in the order they are tried. */
  private candidates(sourceRunId: string): string[] {
    return Array.from({ length: MAX_ATTEMPTS }, (_, n) => (n === 0 ? keyFor(sourceRunId) : keyFor(`${sourceRunId}#${n}`)));
  }

  /** The first of the run's keys that is ours and not discarded, or the first free one. */
  private async probe(project: string, sourceRunId: string): Promise<Probe> {
    for (const key of this.candidates(sourceRunId)) {
      const meta = await this.api.metadata(key);
      if (!meta) return { free: key };
      // taken by an experiment of another project (the source itself, copied within one instance)
      if (meta.workspaceName !== this.target.workspace || meta.projectName !== project) continue;
      const complete = (await this.api.others(key)).some((o) => o.name === RUN_OTHER);
      const archived = meta.archived === true;
      // an archived experiment without the marker is an attempt discarded earlier
      if (archived && !complete) continue;
      return { key, complete, archived };
    }
    throw new InvalidInputError(`${this.uri}`, `the ${MAX_ATTEMPTS} experiment keys of source run ${quoted(sourceRunId)} are all taken or discarded; archive or delete them in Comet and copy again`);
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const found = await this.probe(experimentId, sourceRunId);
    if ('free' in found) return undefined;
    return { id: found.key, complete: found.complete, lifecycle: found.archived ? 'deleted' : 'active' };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const project = experimentId;
    const found = await this.probe(project, run.id);
    if (!('free' in found)) throw new InvalidInputError(this.uri, `the experiment ${found.key} of source run ${quoted(run.id)} is already there`);
    const key = found.free;
    const { workspace } = this.target;
    // a lost answer may hide an experiment made: it is then found by its key
    const made = await this.api.http.retrying(
      async () => {
        try {
          return await this.api.addRun(key, workspace, project);
        } catch (err) {
          if (err instanceof CometHttpError && err.sdkErrorCode === EXPERIMENT_ALREADY_EXISTS) throw new InvalidInputError(this.uri, `experiment key ${key} was taken while it was being created; copy again`);
          throw err;
        }
      },
      async () => {
        const meta = await this.api.metadata(key);
        return meta && meta.projectName === project ? { runId: '', project_id: meta.projectId ?? null } : undefined;
      },
    );
    const projectId = made.project_id ?? this.projects.get(project)?.id;
    const open: Open = {
      key,
      project,
      projectId: projectId ?? undefined,
      run,
      records: new RestRecords(run),
      tmp: await mkdtemp(join(tmpdir(), 'trackshift-comet-')),
      files: 0,
      uploads: 0,
      seriesFiles: new Map(),
      seriesPoints: new Map(),
      outputOffset: 0,
      artifacts: [],
      manifest: [],
      warnings: [],
    };
    this.open.set(key, open);
    const { records } = open;
    await this.sendParameters(key, records.parameters);
    // the name (the other `Name`) and the summary; the extras are written last, by finishRun
    for (const other of records.others) await this.sendOther(key, other);
    return key;
  }

  private async sendParameters(key: string, records: ValueRecord[]): Promise<void> {
    const values: ParameterValue[] = records.map((r) => ({ parameterName: r.name, parameterValue: r.valueCurrent, step: null, source: 'manual', context: null, timestamp: r.timestampCurrent ?? 0 }));
    for (let i = 0; i < values.length; i += PARAMETER_BATCH) await this.api.parameters(key, values.slice(i, i + PARAMETER_BATCH));
  }

  private sendOther(key: string, record: ValueRecord): Promise<unknown> {
    return this.api.logOther(key, record.name, record.valueCurrent, record.timestampCurrent);
  }

  private opened(runId: string): Open {
    const open = this.open.get(runId);
    if (!open) throw new Error(`comet: no experiment ${quoted(runId)} being written in ${this.uri}`);
    return open;
  }

  /** A staged file in the run's temporary folder. */
  private async stage(open: Open, body: Readable | string): Promise<{ file: string; size: number }> {
    const file = join(open.tmp, String(open.files++).padStart(8, '0'));
    await pipeline(typeof body === 'string' ? Readable.from([Buffer.from(body, 'utf8')]) : body, createWriteStream(file, { flags: 'wx' }));
    return { file, size: (await stat(file)).size };
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const open = this.opened(runId);
    const at = Math.round(open.run.startTime ?? 0);
    if (batch.params.length > 0) {
      const from = open.records.parameters.length;
      for (const { key, value } of batch.params) open.records.addParam(key, value);
      await this.sendParameters(runId, open.records.parameters.slice(from));
    }
    open.records.addTags(Object.fromEntries(batch.tags.map((t) => [t.key, t.value])));
    const values: MetricValue[] = batch.metrics.map((p) => ({
      metricName: p.key,
      metricValue: Number.isFinite(p.value) && !Object.is(p.value, -0) ? p.value : floatText(p.value),
      step: p.step,
      epoch: p.epoch ?? null,
      context: p.context ?? null,
      timestamp: Math.round(p.timestamp ?? at),
    }));
    for (let i = 0; i < values.length; i += METRIC_BATCH) await this.api.metrics(runId, values.slice(i, i + METRIC_BATCH));
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const open = this.opened(runId);
    if (series.type === 'string' && (series.key === STDOUT_KEY || series.key === STDERR_KEY)) return this.writeOutput(open, series.key === STDERR_KEY, points);
    for (const point of points) {
      const index = open.seriesPoints.get(series.key) ?? 0;
      open.seriesPoints.set(series.key, index + 1);
      const upload = uploadOf(series, point, index);
      let body: { file: string; size: number } | undefined;
      if (series.type === 'file') {
        const file = open.seriesFiles.get((point.value as SeriesFile).path);
        if (file === undefined) throw new Error(`comet: the file of ${quoted(series.key)} at step ${point.step} was not given before its point`);
        body = { file, size: (await stat(file)).size };
      } else {
        body = await this.stage(open, upload.body!);
      }
      // the type named in the parameters too (the client leaves it out for plain assets and images): the server lists it so
      const typed = { type: upload.type };
      const query = { context: point.context ?? null, step: point.step, ...(point.epoch !== undefined ? { epoch: point.epoch } : {}), fileName: upload.fileName, overwrite: false, ...typed, ...upload.extra };
      await this.sendFile(open, upload.type, query, body, upload.metadata, point.timestamp ?? open.run.startTime ?? 0);
    }
  }

  private async writeOutput(open: Open, stderr: boolean, points: TypedPoint[]): Promise<void> {
    let lines: OutputLine[] = [];
    let context: string | null = null;
    const flush = async () => {
      if (lines.length > 0) await this.api.output(open.key, context, lines);
      lines = [];
    };
    for (const point of points) {
      const pointContext = point.context ?? null;
      if (pointContext !== context || lines.length >= OUTPUT_BATCH) {
        await flush();
        context = pointContext;
      }
      lines.push({ stderr, output: point.value as string, localTimestamp: Math.round(point.timestamp ?? open.run.startTime ?? 0), offset: open.outputOffset++ });
    }
    await flush();
  }

  /**
   * One upload, streamed from its staged file and retried from it (a body cannot be replayed),
   * with the upload's parameters as the client sends them (the source's asset and run ids replaced
   * by this copy's) and its time in the metadata (Comet stamps an upload with its arrival).
   */
  private async sendFile(open: Open, uploadType: string, params: Record<string, unknown>, body: { file: string; size: number } | { link: string }, metadata: Record<string, unknown> | null | undefined, time: number): Promise<void> {
    // an asset id chosen here, as the client chooses one: an upload sent again (its answer lost) replaces itself
    const assetId = createHash('sha1').update(`${open.key}:${open.uploads++}`).digest('hex').slice(0, 32);
    const query: Record<string, string | number | boolean | null | undefined> = { experimentId: open.key, projectId: open.projectId, type: uploadType, assetId };
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || key === 'assetId' || key === 'runId') continue;
      query[key] = typeof value === 'object' ? JSON.stringify(value) : (value as string | number | boolean);
    }
    const meta = { ...metadata, [TIME_META]: Math.round(time) };
    const endpoint = uploadEndpoint(uploadType);
    if ('link' in body) await this.api.http.retrying(() => this.api.uploadLink(endpoint, query, body.link, meta));
    else await this.api.http.retrying(() => this.api.upload(endpoint, query, createReadStream(body.file), body.size, meta));
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    const open = this.opened(runId);
    open.seriesFiles.set(file.path, (await this.stage(open, body)).file);
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const open = this.opened(runId);
    (open.records.extras.inputs ??= []).push(...structuredClone(inputs));
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const open = this.opened(runId);
    if (file.path === ASSETS_MANIFEST) {
      open.manifest.push(...parsed(file.path, await buffer(body), manifestSchema));
      return;
    }
    if (file.path === REST_SYSTEM_DETAILS) {
      await this.api.systemDetails(open.key, parsed(file.path, await buffer(body), z.record(z.string(), z.unknown())));
      return;
    }
    if (file.path === GIT_PATCH) {
      const staged = await this.stage(open, body);
      await this.sendFile(open, 'git-patch', {}, staged, null, open.run.startTime ?? 0);
      return;
    }
    const type = OTHER_MESSAGES.exec(file.path)?.[1];
    if (type && type !== 'assets') {
      for (const payload of parsed(file.path, await buffer(body), payloadsSchema)) await this.replay(open, type, payload);
      return;
    }
    const staged = await this.stage(open, body);
    open.artifacts.push({ path: file.path, ...staged });
  }

  /** What a `comet/<type>.json` payload is, sent as comet_ml's offline sender sends that message. */
  private async replay(open: Open, type: string, payload: Record<string, unknown>): Promise<void> {
    const { key } = open;
    const at = typeof payload.local_timestamp === 'number' ? payload.local_timestamp : Math.round(open.run.startTime ?? 0);
    const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value ?? null));
    switch (type) {
      case 'html':
      case 'htmlOverride':
        await this.api.html(key, text(payload.html ?? payload.htmlOverride), type === 'htmlOverride', at);
        return;
      case 'installed_packages':
        await this.api.systemDetails(key, { installedPackages: payload.installed_packages ?? [] });
        return;
      case 'os_packages':
        await this.api.systemDetails(key, { osPackages: payload.os_packages ?? [] });
        return;
      case 'gpu_static_info':
        await this.api.systemDetails(key, { gpuStaticInfoList: payload.gpu_static_info ?? [] });
        return;
      case 'system_info':
        await this.api.systemDetails(key, { logAdditionalSystemInfoList: [payload.system_info] });
        return;
      case 'system_details':
        await this.api.systemDetails(key, systemDetailsRecord(payload));
        return;
      case 'git_metadata':
        await this.api.gitMetadata(key, (payload.git_metadata ?? {}) as Record<string, unknown>);
        return;
      case 'graph':
        await this.api.graph(key, text(payload.graph));
        return;
      case 'file_name':
        await this.api.filePath(key, text(payload.file_name));
        return;
      case 'log_dependency':
        await this.api.dependency(key, text(payload.name), text(payload.version), at);
        return;
      case 'remote_file': {
        const params = (payload.additional_params ?? {}) as Record<string, unknown>;
        const metadata = { ...((payload.metadata ?? {}) as Record<string, unknown>), [UPLOAD_FIELD]: payload };
        await this.sendFile(open, text(payload.upload_type ?? UPLOAD.asset), params, { link: text(payload.remote_uri) }, metadata, at);
        return;
      }
      default:
        open.warnings.push(`comet/${type}.json: Comet's REST API has no call for ${type} messages; left out`);
    }
  }

  async finishRun(runId: string, run: Run): Promise<RunWriteResult> {
    const open = this.opened(runId);
    const { key } = open;
    // in the order they were uploaded (the manifest's), the others after them
    const rank = (path: string) => {
      const i = open.manifest.findIndex((m) => m.path === path);
      return i < 0 ? open.manifest.length : i;
    };
    open.artifacts.sort((a, b) => rank(a.path) - rank(b.path));
    for (const artifact of open.artifacts) {
      const kept = open.manifest.find((m) => m.path === artifact.path);
      if (kept) {
        const { path: _path, ...upload } = kept;
        await this.sendFile(open, kept.upload_type, kept.additional_params ?? {}, artifact, { ...kept.metadata, [UPLOAD_FIELD]: upload }, kept.local_timestamp);
      }
      else await this.sendFile(open, UPLOAD.asset, { context: null, step: null, fileName: artifact.path, overwrite: false }, artifact, { [PATH_META]: artifact.path }, run.startTime ?? 0);
    }
    // the experiment's tags are kept with the run when the project does not say them by itself
    const { tags: cometTags, others } = open.records.finish(run, this.projects.get(open.project)?.tags, this.projectSays(open.project));
    const marker = others.find((o) => o.name === RUN_OTHER) ?? valueRecord(RUN_OTHER, '{}', null);
    if (cometTags.length > 0) await this.api.addTags(key, cometTags);
    const start = Math.round(run.startTime ?? run.endTime ?? 0);
    await this.api.setTimes(key, start, Math.round(run.endTime ?? start));
    // a deleted source run is an archived experiment; archived before the marker, so a copy cut here is redone
    if (run.lifecycle === 'deleted') await this.api.archive(key);
    await this.sendOther(key, marker);
    await this.close1(open);
    return { warnings: open.warnings };
  }

  private async close1(open: Open): Promise<void> {
    this.open.delete(open.key);
    await rm(open.tmp, { recursive: true, force: true });
  }

  async discardRun(runId: string): Promise<void> {
    const open = this.open.get(runId);
    if (open) await this.close1(open);
    if (await this.api.metadata(runId)) await this.api.archive(runId);
  }

  async close(): Promise<void> {
    for (const open of [...this.open.values()]) await this.close1(open);
    await this.api.close();
  }
}

function parsed<T>(path: string, bytes: Buffer, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidInputError(`artifact ${path}`, 'is not JSON');
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new InvalidInputError(`artifact ${path}`, `${result.error.issues[0]?.message} at ${result.error.issues[0]?.path.join('.')}`);
  return result.data;
}

/** How a point of a string, histogram or file series is uploaded (layout.ts), and its body. */
function uploadOf(series: SeriesInfo, point: TypedPoint, index: number): { type: string; fileName: string; metadata: Record<string, unknown>; extra?: Record<string, unknown>; body?: string } {
  const named = (isDefault: boolean): Record<string, unknown> => (isDefault ? {} : { [SERIES_META]: series.key });
  if (series.type === 'string') return { type: UPLOAD.text, fileName: 'auto-generated-in-the-backend', metadata: named(series.key === TEXT_KEY), body: point.value as string };
  if (series.type === 'histogram') {
    const prefix = `${UPLOAD.histogram}/`;
    const fileName = series.key.startsWith(prefix) ? series.key.slice(prefix.length) : series.key;
    const { blob, exact } = histogramBlobOf(point.value as Histogram);
    return { type: UPLOAD.histogram, fileName, metadata: { ...named(series.key === prefix + fileName), ...histogramMetadata(point.value as Histogram, exact) }, body: JSON.stringify(blob) };
  }
  const file = point.value as SeriesFile;
  const slash = series.key.indexOf('/');
  const type = slash > 0 && FILE_UPLOAD_TYPES.has(series.key.slice(0, slash)) ? series.key.slice(0, slash) : UPLOAD.asset;
  const fileName = file.name ?? file.path.split('/').pop()!;
  const extra = type === UPLOAD.image ? { figName: fileName } : undefined;
  // the reader names a Comet file by series, index and name: a file named otherwise keeps its own
  const derived = file.name !== undefined && file.mimeType === undefined && file.path === `${series.key}/${index}/${file.name}`;
  const kept = derived ? {} : { [FILE_META]: { path: file.path, ...(file.name !== undefined ? { name: file.name } : {}), ...(file.mimeType !== undefined ? { mimeType: file.mimeType } : {}) } };
  return { type, fileName, metadata: { ...named(series.key === `${type}/${fileName}`), ...kept }, ...(extra ? { extra } : {}) };
}

