/**
 * A Comet instance read over its REST API as comet_ml's API reads it: projects of a workspace
 * (with notes), their experiments page by page, and per experiment its metadata, tags,
 * parameters, others, every point of every metric (`experiment/metrics/get-metric`: the whole
 * history, not the 15,000-value chart), output, assets (streamed), HTML, git, graph and system
 * details. Mapped onto the model by comet-common's rules, as an offline archive is:
 *
 * - parameters → typed config (`|`-flattened names), others → summary (`Name` the run's name,
 *   `trackshift.run` what a run from elsewhere kept), metrics → float series (`sys.*` system);
 * - assets → text / histogram / file series and `assets/<type>/<name>` artifacts with
 *   `comet/assets.json` saying how each was uploaded (type, step, epoch, context, metadata);
 * - output → the string series `stdout` (one point per line: the REST API gives the text whole,
 *   so chunks and stderr are not told apart);
 * - html, system details, installed and OS packages, git metadata, graph, file path →
 *   `comet/<message type>.json`, the payloads as comet_ml's offline messages hold them;
 *   the git patch → `assets/git-patch/git_diff.patch`.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { z } from 'zod';
import { MLFLOW_TAGS, type ArtifactFile, type ConfigEntry, type Experiment, type MetricPoint, type PointBase, type Run, type SeriesFile, type SeriesInfo, type SeriesType, type TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { keyToFileName, quoted, relativePathProblem } from '../../util/paths.js';
import type { RunQuery, Source } from '../types.js';
import { parseExtras, type RunExtras } from '../comet-common/extras.js';
import { histogramOf, keptHistogram } from '../comet-common/histogram.js';
import { ASSETS_MANIFEST, FILE_META, MANUAL_SOURCE, NAME_OTHER, PATH_META, RUN_OTHER, SERIES_META, SERIES_UPLOADS, STDOUT_KEY, SYSTEM_PREFIX, TEXT_KEY, UPLOAD, otherMessagesPath, paramPath, projectTags } from '../comet-common/layout.js';
import { inferredValue, metricNumber, retyped } from '../comet-common/values.js';
import { experimentMetadata, type CometApi, type ExperimentMetadata, type ProjectRecord } from './api.js';
import { isNotFound } from './transport.js';

/** experiments per page of `experiments` (comet_ml's get_project_experiments page/size) */
const EXPERIMENTS_PAGE = 100;
const POINTS_PAGE = 1000;
/** the experiment (project) tag that holds the project's notes */
export const NOTES_TAG = 'comet.notes';
/**
 * The asset metadata field that keeps an upload's own time: Comet stamps an asset with its
 * arrival (createdAt), so a copy says when the source's asset was logged; read back, and removed.
 */
export const TIME_META = 'trackshift_timestamp';
const GIT_PATCH = 'assets/git-patch/git_diff.patch';

const summaryValues = z.looseObject({ values: z.array(z.looseObject({ name: z.string(), valueCurrent: z.string().nullish() })).nullish() });
const tagsAnswer = z.looseObject({ tags: z.array(z.string()).nullish() });
const experimentsAnswer = z.looseObject({ experiments: z.array(experimentMetadata).nullish() });
const notesAnswer = z.looseObject({ notes: z.string().nullish() });
const metricAnswer = z.looseObject({
  metrics: z
    .array(
      z.looseObject({
        metricName: z.string().nullish(),
        metricValue: z.union([z.string(), z.number()]),
        timestamp: z.number().nullish(),
        step: z.number().nullish(),
        epoch: z.number().nullish(),
        runContext: z.string().nullish(),
      }),
    )
    .nullish(),
});
const assetRecord = z.looseObject({
  assetId: z.string(),
  fileName: z.string(),
  fileSize: z.number().nullish(),
  type: z.string().nullish(),
  step: z.number().nullish(),
  epoch: z.number().nullish(),
  runContext: z.string().nullish(),
  metadata: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
  createdAt: z.number().nullish(),
  remote: z.boolean().nullish(),
});
type AssetRecord = z.infer<typeof assetRecord>;
const assetsAnswer = z.looseObject({ assets: z.array(assetRecord).nullish() });
const outputAnswer = z.looseObject({ output: z.string().nullish() });
const htmlAnswer = z.looseObject({ html: z.string().nullish() });
const graphAnswer = z.looseObject({ graph: z.string().nullish() });
const gitAnswer = z.looseObject({ user: z.unknown(), root: z.unknown(), branch: z.unknown(), parent: z.unknown(), origin: z.unknown() });
const systemAnswer = z.record(z.string(), z.unknown());

interface Upload {
  asset: AssetRecord;
  type: string;
  name: string;
  metadata: Record<string, unknown> | null;
  /** when it was logged: the copy's kept time, else when Comet received it */
  time: number | undefined;
}

interface OpenRun {
  meta: ExperimentMetadata;
  series: Map<string, { type: Exclude<SeriesType, 'float'>; uploads: Upload[] }>;
  /** SeriesFile.path → asset id */
  seriesFiles: Map<string, string>;
  /** artifact path → an asset id, or content made here */
  artifacts: Map<string, { assetId: string; size?: number } | { content: Buffer } | { gitPatch: true }>;
  output: string;
}

export interface CometSourceTarget {
  workspace: string;
  project?: string;
}

const safePath = (path: string): string => (relativePathProblem(path) === undefined ? path : `comet-files/${keyToFileName(path)}`);
const keptFile = z.object({ path: z.string(), name: z.string().optional(), mimeType: z.string().optional() });
/** JSON with sorted keys, as comet_ml writes its messages (so a payload reads as the archive's) */
const sortedKeys = (value: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const byPath = (a: ConfigEntry, b: ConfigEntry): number => {
  const x = a.path.join('\u0000');
  const y = b.path.join('\u0000');
  return x < y ? -1 : x > y ? 1 : 0;
};

function pointBase(step: number | null | undefined, timestamp: number | null | undefined, epoch?: number | null, context?: string | null): PointBase {
  return { step: step ?? 0, ...(timestamp !== null && timestamp !== undefined ? { timestamp } : {}), ...(epoch !== null && epoch !== undefined ? { epoch } : {}), ...(context ? { context } : {}) };
}

export class CometRestSource implements Source {
  readonly kind = 'comet';
  readonly uri: string;
  readonly warnings: Array<{ object: string; message: string }> = [];
  private readonly runs = new Map<string, OpenRun>();

  constructor(
    private readonly api: CometApi,
    private readonly target: CometSourceTarget,
  ) {
    this.uri = `comet://${target.workspace}${target.project ? `/${target.project}` : ''}`;
  }

  private async projects(): Promise<ProjectRecord[]> {
    const all = await this.api.projects(this.target.workspace);
    if (!this.target.project) return all.sort((a, b) => (a.projectName < b.projectName ? -1 : 1));
    const found = all.filter((p) => p.projectName === this.target.project);
    if (found.length === 0) throw new InvalidInputError(this.uri, `workspace ${quoted(this.target.workspace)} has no project ${quoted(this.target.project)} (it has ${all.map((p) => quoted(p.projectName)).join(', ') || 'none'})`);
    return found;
  }

  /** The tags a copy kept of its experiment, with the first of the project's experiments (as the offline reader takes them). */
  private async keptTags(project: string): Promise<Record<string, string> | undefined> {
    const answer = await this.api.get(
      'experiments',
      { workspaceName: this.target.workspace, projectName: project, archived: false, page: 1, size: 1, sortBy: 'startTime', sortOrder: 'asc' },
      experimentsAnswer,
      `project ${this.target.workspace}/${project}`,
    );
    const first = answer.experiments?.[0];
    if (!first) return undefined;
    const other = (await this.api.others(first.experimentKey)).find((o) => o.name === RUN_OTHER);
    return other?.valueCurrent ? parseExtras(other.valueCurrent, `${this.uri} experiment ${first.experimentKey}: the other ${RUN_OTHER}`).experimentTags : undefined;
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const p of await this.projects()) {
      const tags: Record<string, string> = (await this.keptTags(p.projectName)) ?? projectTags(this.target.workspace);
      if (p.projectDescription) tags[MLFLOW_TAGS.note] = p.projectDescription;
      const notes = (await this.api.get('project/notes', { projectId: p.projectId }, notesAnswer, `project ${p.projectName}`)).notes;
      if (notes) tags[NOTES_TAG] = notes;
      yield { id: p.projectName, name: p.projectName, tags, lifecycle: 'active' };
    }
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'a Comet instance cannot be filtered with a search expression here; use the selection options');
    for (const archived of query.includeDeleted ? [false, true] : [false]) {
      const seen = new Set<string>();
      for (let page = 1; ; page++) {
        const answer = await this.api.get(
          'experiments',
          { workspaceName: this.target.workspace, projectName: experimentId, archived, page, size: EXPERIMENTS_PAGE, sortBy: 'startTime', sortOrder: 'asc' },
          experimentsAnswer,
          `project ${this.target.workspace}/${experimentId}`,
        );
        const list = answer.experiments ?? [];
        // a server that does not page answers the whole list every time: seen keys end it
        const fresh = list.filter((m) => !seen.has(m.experimentKey));
        for (const meta of fresh) {
          seen.add(meta.experimentKey);
          yield await this.runOf(meta, experimentId);
        }
        if (list.length < EXPERIMENTS_PAGE || fresh.length === 0) break;
      }
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const meta = await this.api.metadata(runId);
    if (!meta || meta.workspaceName !== this.target.workspace || (this.target.project && meta.projectName !== this.target.project)) return undefined;
    return this.runOf(meta, meta.projectName ?? '');
  }

  private async runOf(meta: ExperimentMetadata, project: string): Promise<Run> {
    const key = meta.experimentKey;
    const what = `experiment ${key}`;
    const q = { experimentKey: key };
    const [others, params, tags, metrics, assets, output] = await Promise.all([
      this.api.get('experiment/log-other', q, summaryValues, what),
      this.api.get('experiment/parameters', q, summaryValues, what),
      this.api.get('experiment/tags', q, tagsAnswer, what),
      this.api.get('experiment/metrics/summary', q, summaryValues, what),
      this.api.get('experiment/asset/list', q, assetsAnswer, what),
      this.api.get('experiment/output', q, outputAnswer, what),
    ]);
    let name: string | undefined;
    let extras: RunExtras = {};
    const summaryOthers: Array<{ name: string; text: string }> = [];
    for (const o of others.values ?? []) {
      const text = o.valueCurrent ?? '';
      if (o.name === NAME_OTHER) name = text;
      else if (o.name === RUN_OTHER) extras = parseExtras(text, `${this.uri} ${what}: the other ${RUN_OTHER}`);
      else summaryOthers.push({ name: o.name, text });
    }
    const mlflowParams = new Set(extras.params ?? []);
    const runParams: Record<string, string> = {};
    const config: ConfigEntry[] = [];
    for (const p of params.values ?? []) {
      const text = p.valueCurrent ?? '';
      if (mlflowParams.has(p.name)) runParams[p.name] = text;
      else config.push({ path: extras.paramPaths?.[p.name] ?? paramPath(p.name, MANUAL_SOURCE), value: retyped(inferredValue(text), extras.paramTypes?.[p.name]) });
    }
    config.sort(byPath);
    const summary = summaryOthers.map((o) => ({ path: extras.otherPaths?.[o.name] ?? [o.name], value: retyped(inferredValue(o.text), extras.otherTypes?.[o.name]) })).sort(byPath);
    const open: OpenRun = { meta, series: new Map(), seriesFiles: new Map(), artifacts: new Map(), output: output.output ?? '' };
    this.placeAssets(open, assets.assets ?? []);
    await this.addMessages(open);
    this.runs.set(key, open);
    const series: SeriesInfo[] = [];
    for (const m of metrics.values ?? []) series.push(m.name.startsWith(SYSTEM_PREFIX) ? { key: m.name, type: 'float', system: true } : { key: m.name, type: 'float' });
    if (open.output !== '' && !open.series.has(STDOUT_KEY)) series.push({ key: STDOUT_KEY, type: 'string' });
    for (const [seriesKey, s] of open.series) series.push({ key: seriesKey, type: s.type });
    const seen = new Set<string>();
    const unique = series.filter((s) => {
      if (!seen.has(s.key)) return seen.add(s.key);
      this.warnings.push({ object: `run ${key}`, message: `two series are named ${quoted(s.key)}: the ${s.type} one is left out` });
      return false;
    });
    const start = meta.startTimeMillis ?? undefined;
    return {
      id: key,
      experimentId: project,
      ...((name ?? meta.experimentName) ? { name: (name ?? meta.experimentName)! } : {}),
      status: extras.status ?? (meta.running ? 'RUNNING' : 'FINISHED'),
      ...(start !== undefined ? { startTime: start } : {}),
      ...(extras.noEndTime || meta.endTimeMillis === null || meta.endTimeMillis === undefined ? {} : { endTime: meta.endTimeMillis }),
      ...(extras.user !== undefined ? { user: extras.user } : {}),
      lifecycle: extras.lifecycle ?? (meta.archived ? 'deleted' : 'active'),
      ...(extras.parentId !== undefined ? { parentId: extras.parentId } : {}),
      params: runParams,
      tags: { ...Object.fromEntries((tags.tags ?? []).map((t) => [t, ''])), ...extras.tags },
      inputs: structuredClone(extras.inputs ?? []),
      series: unique,
      ...(config.length > 0 ? { config } : {}),
      ...(summary.length > 0 ? { summary } : {}),
    };
  }

  /** Assets into series and artifacts by comet-common's rules (as the offline reader places uploads). */
  private placeAssets(open: OpenRun, assets: AssetRecord[]): void {
    // remote assets (links) are what the offline client keeps as remote_file messages
    const remote = assets.filter((a) => a.remote === true);
    if (remote.length > 0) {
      const payloads = remote.map((a) => sortedKeys({ remote_uri: (a as { link?: unknown }).link ?? null, upload_type: a.type ?? UPLOAD.asset, metadata: withoutTime(parseMetadata(a.metadata)).metadata ?? {}, additional_params: { context: a.runContext ?? null, fileName: a.fileName, step: a.step ?? null } }));
      open.artifacts.set(otherMessagesPath('remote_file'), { content: Buffer.from(JSON.stringify(payloads, null, 1)) });
    }
    const uploads: Upload[] = assets
      .filter((a) => a.remote !== true)
      .map((asset) => {
        const parsed = parseMetadata(asset.metadata);
        if (parsed === undefined) this.warnings.push({ object: `run ${open.meta.experimentKey}`, message: `asset ${asset.assetId}: its metadata is not a JSON object; left out` });
        const { metadata, time: kept } = withoutTime(parsed);
        const time = kept ?? asset.createdAt ?? undefined;
        const type = asset.type === 'image' ? UPLOAD.image : (asset.type ?? UPLOAD.asset);
        return { asset, type, name: asset.fileName.split(/[\\/]/).pop() || asset.assetId, metadata: metadata ?? null, time };
      })
      // in the order they were logged (the list's order where times tie)
      .sort((a, b) => (a.time ?? 0) - (b.time ?? 0));
    const groups = new Map<string, Upload[]>();
    for (const upload of uploads) {
      const id = `${upload.type}/${upload.name}`;
      const group = groups.get(id);
      if (group) group.push(upload);
      else groups.set(id, [upload]);
    }
    const manifest: unknown[] = [];
    for (const [id, group] of groups) {
      const type = group[0]!.type;
      for (const upload of group) {
        const named = upload.metadata?.[SERIES_META];
        const seriesType = type === UPLOAD.text ? 'string' : type === UPLOAD.histogram ? 'histogram' : SERIES_UPLOADS.has(type) || group.length > 1 || typeof named === 'string' ? 'file' : undefined;
        if (seriesType) {
          const key = typeof named === 'string' ? named : type === UPLOAD.text ? TEXT_KEY : id;
          let series = open.series.get(key);
          if (!series) open.series.set(key, (series = { type: seriesType, uploads: [] }));
          if (series.type === seriesType) {
            if (seriesType === 'file') open.seriesFiles.set(this.seriesFile(key, series.uploads.length, upload).path, upload.asset.assetId);
            series.uploads.push(upload);
          } else this.warnings.push({ object: `run ${open.meta.experimentKey}`, message: `${quoted(key)} names assets of two kinds: the ${type} asset ${upload.asset.assetId} is left out` });
          continue;
        }
        const size = upload.asset.fileSize ?? undefined;
        const kept = upload.metadata?.[PATH_META];
        if (typeof kept === 'string' && relativePathProblem(kept) === undefined) {
          open.artifacts.set(kept, { assetId: upload.asset.assetId, ...(size !== undefined ? { size } : {}) });
          continue;
        }
        const path = safePath(`assets/${id}`);
        open.artifacts.set(path, { assetId: upload.asset.assetId, ...(size !== undefined ? { size } : {}) });
        const { asset } = upload;
        const additional = { context: asset.runContext ?? null, step: asset.step ?? null, ...(asset.epoch !== null && asset.epoch !== undefined ? { epoch: asset.epoch } : {}), fileName: asset.fileName };
        manifest.push({ path, upload_type: type, local_timestamp: Math.round(upload.time ?? 0), ...(upload.metadata ? { metadata: upload.metadata } : {}), additional_params: additional });
      }
    }
    // a series' points in step order: the client's uploads race, so their times do not say it
    for (const series of open.series.values()) series.uploads.sort((a, b) => (a.asset.step ?? 0) - (b.asset.step ?? 0));
    if (manifest.length > 0) open.artifacts.set(ASSETS_MANIFEST, { content: Buffer.from(JSON.stringify(manifest, null, 1)) });
  }

  /** A file series point's file: as the writer was given it (kept in the asset's metadata), else named by series, index and name. */
  private seriesFile(key: string, index: number, upload: Upload): SeriesFile {
    const kept = keptFile.safeParse(upload.metadata?.[FILE_META]);
    if (kept.success && relativePathProblem(kept.data.path) === undefined) {
      const { path, name, mimeType } = kept.data;
      return { path, ...(name ? { name } : {}), ...(mimeType ? { mimeType } : {}) };
    }
    return { path: safePath(`${key}/${index}/${upload.name}`), name: upload.name };
  }

  /** What the offline messages hold beside metrics, params, others and uploads, as `comet/<type>.json`. */
  private async addMessages(open: OpenRun): Promise<void> {
    const key = open.meta.experimentKey;
    const what = `experiment ${key}`;
    const q = { experimentKey: key };
    const [html, graph, git, system] = await Promise.all([
      this.api.get('experiment/html', q, htmlAnswer, what),
      this.api.get('experiment/graph', q, graphAnswer, what),
      this.api.get('experiment/git/metadata', q, gitAnswer, what),
      this.api.get('experiment/system-details', q, systemAnswer, what),
    ]);
    const put = (type: string, payloads: Array<Record<string, unknown>>) => {
      if (payloads.length > 0) open.artifacts.set(otherMessagesPath(type), { content: Buffer.from(JSON.stringify(payloads.map(sortedKeys), null, 1)) });
    };
    if (html.html) put('html', [{ html: html.html }]);
    if (graph.graph) put('graph', [{ graph: graph.graph }]);
    const gitMetadata = { branch: git.branch ?? null, origin: git.origin ?? null, parent: git.parent ?? null, root: git.root ?? null, user: git.user ?? null };
    if (Object.values(gitMetadata).some((v) => v !== null)) put('git_metadata', [{ git_metadata: gitMetadata }]);
    const filePath = (open.meta as { filePath?: unknown }).filePath;
    if (typeof filePath === 'string' && filePath) put('file_name', [{ file_name: filePath }]);
    const list = (field: string): unknown[] => (Array.isArray(system[field]) ? (system[field] as unknown[]) : []);
    if (list('installedPackages').length > 0) put('installed_packages', [{ installed_packages: list('installedPackages') }]);
    if (list('osPackages').length > 0) put('os_packages', [{ os_packages: list('osPackages') }]);
    if (list('gpuStaticInfoList').length > 0) put('gpu_static_info', [{ gpu_static_info: list('gpuStaticInfoList') }]);
    if (list('logAdditionalSystemInfoList').length > 0) put('system_info', list('logAdditionalSystemInfoList').map((info) => ({ system_info: info })));
    const details = {
      command: system.command ?? null,
      env: system.env ?? null,
      hostname: system.hostname ?? null,
      ip: system.ip ?? null,
      machine: system.machine ?? null,
      os: system.os ?? null,
      os_release: system.osRelease ?? null,
      os_type: system.osType ?? null,
      pid: system.pid ?? null,
      processor: system.processor ?? null,
      python_exe: system.executable ?? null,
      python_version: system.pythonVersion ?? null,
      python_version_verbose: system.pythonVersionVerbose ?? null,
      user: system.user ?? null,
    };
    const said = Object.entries(details).some(([k, v]) => v !== null && !(k === 'command' && Array.isArray(v) && v.length === 0));
    if (said) put('system_details', [details]);
    try {
      const patch = await buffer(await this.api.download('experiment/git/patch', q, what));
      if (patch.length > 0 && !patch.subarray(0, 6).equals(Buffer.from('{"msg"'))) open.artifacts.set(GIT_PATCH, { content: patch });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private open(run: Run): OpenRun {
    const found = this.runs.get(run.id);
    if (!found) throw new InvalidInputError(this.uri, `no experiment ${quoted(run.id)} was listed`);
    return found;
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const answer = await this.api.get('experiment/metrics/get-metric', { experimentKey: run.id, metricName: key }, metricAnswer, `experiment ${run.id}`);
    const points = answer.metrics ?? [];
    for (let i = 0; i < points.length; i += POINTS_PAGE) {
      yield points.slice(i, i + POINTS_PAGE).map((p) => ({ key, ...pointBase(p.step, p.timestamp, p.epoch, p.runContext), value: metricNumber(p.metricValue) }));
    }
  }

  async *readSeries(run: Run, info: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const open = this.open(run);
    if (info.type === 'string' && info.key === STDOUT_KEY && !open.series.has(STDOUT_KEY)) {
      const lines = open.output.match(/[^\n]*\n|[^\n]+$/g) ?? [];
      for (let i = 0; i < lines.length; i += POINTS_PAGE) yield lines.slice(i, i + POINTS_PAGE).map((value, n) => ({ step: i + n, value }));
      return;
    }
    const series = open.series.get(info.key);
    if (!series || series.type !== info.type) return;
    for (let i = 0; i < series.uploads.length; i += POINTS_PAGE) {
      const page: TypedPoint[] = [];
      for (const [n, upload] of series.uploads.slice(i, i + POINTS_PAGE).entries()) {
        const { asset } = upload;
        const base = pointBase(asset.step, upload.time, asset.epoch, asset.runContext);
        const where = `${this.uri} experiment ${run.id} asset ${asset.assetId}`;
        if (series.type === 'string') page.push({ ...base, value: (await this.assetBytes(run.id, asset.assetId)).toString('utf8') });
        else if (series.type === 'histogram') {
          const kept = keptHistogram(upload.metadata, where);
          page.push({ ...base, value: kept ?? histogramOf(parseJson(await this.assetBytes(run.id, asset.assetId), where), where) });
        } else {
          const file = this.seriesFile(info.key, i + n, upload);
          page.push({ ...base, value: asset.fileSize !== null && asset.fileSize !== undefined ? { ...file, size: asset.fileSize } : file });
        }
      }
      yield page;
    }
  }

  private async assetBytes(key: string, assetId: string): Promise<Buffer> {
    return buffer(await this.api.download('experiment/asset/get-asset', { experimentKey: key, assetId }, `asset ${assetId} of experiment ${key}`));
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const assetId = open.seriesFiles.get(path);
    if (!assetId) throw new InvalidInputError(this.uri, `experiment ${quoted(run.id)} has no series file ${quoted(path)}`);
    return this.api.download('experiment/asset/get-asset', { experimentKey: run.id, assetId }, `asset ${assetId} of experiment ${run.id}`);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const open = this.open(run);
    for (const [path, where] of open.artifacts) {
      const size = 'content' in where ? where.content.length : 'size' in where ? where.size : undefined;
      yield { path, ...(size !== undefined ? { size } : {}) };
    }
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const where = open.artifacts.get(path);
    if (!where) throw new InvalidInputError(this.uri, `experiment ${quoted(run.id)} has no artifact ${quoted(path)}`);
    if ('content' in where) return Readable.from([where.content]);
    if ('assetId' in where) return this.api.download('experiment/asset/get-asset', { experimentKey: run.id, assetId: where.assetId }, `asset ${where.assetId} of experiment ${run.id}`);
    return this.api.download('experiment/git/patch', { experimentKey: run.id }, `experiment ${run.id}`);
  }

  close(): Promise<void> {
    return this.api.close();
  }
}

/** An asset's metadata (Comet gives the JSON text the client sent): null when none, undefined when it is not a JSON object. */
function parseMetadata(metadata: AssetRecord['metadata']): Record<string, unknown> | null | undefined {
  if (metadata === null || metadata === undefined || metadata === '') return null;
  if (typeof metadata === 'object') return metadata;
  try {
    const parsed: unknown = JSON.parse(metadata);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Metadata without the time a copy kept in it, and that time. */
function withoutTime(metadata: Record<string, unknown> | null | undefined): { metadata: Record<string, unknown> | null; time?: number } {
  if (!metadata || typeof metadata[TIME_META] !== 'number') return { metadata: metadata ?? null };
  const { [TIME_META]: time, ...rest } = metadata;
  return { metadata: Object.keys(rest).length > 0 ? rest : null, time: time as number };
}

function parseJson(bytes: Buffer, where: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidInputError(where, 'is not JSON');
  }
}
