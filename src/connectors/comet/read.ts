/**
 * A Comet instance read over its REST API as comet_ml's API reads it: projects of a workspace
 * (with description and notes), their experiments page by page, and per experiment its metadata,
 * tags, parameters, others, metric names, assets, output, HTML, graph, git metadata and patch and
 * system details — every record validated and mapped onto the model by comet-common (rest.ts
 * restRunOf), as a cometx download folder and an offline archive are. Metric points come from
 * `experiment/metrics/get-metric`: the whole history, not the chart's 15,000 values.
 *
 * What only the REST side has: the output is one text (a stdout point per line; stderr is not told
 * apart), the git patch is the zip the client uploaded (GIT_PATCH), and what trackshift's writer
 * kept in an asset's metadata (its time, an archive upload's payload) is taken back out.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { z } from 'zod';
import { type ArtifactFile, type Experiment, type MetricPoint, type Run, type SeriesInfo, type TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';
import type { RunQuery, Source } from '../types.js';
import { parseExtras } from '../comet-common/extras.js';
import { histogramOf, keptHistogram } from '../comet-common/histogram.js';
import { RUN_OTHER, STDOUT_KEY, projectTags } from '../comet-common/layout.js';
import {
  COMBINED_HISTOGRAM,
  UPLOAD_FIELD,
  assetMetadata,
  assetName,
  assetPointBase,
  combinedHistogramSchema,
  experimentTagsOf,
  metricPointOf,
  parseRecord,
  restAssetSchema,
  restGitMetadataSchema,
  restMetadataSchema,
  restMetricSchema,
  restRunOf,
  restSystemDetailsSchema,
  restValueSchema,
  seriesFileOf,
  type RestAsset,
  type RestRun,
} from '../comet-common/rest.js';
import { experimentMetadata, type CometApi, type ExperimentMetadata, type ProjectRecord } from './api.js';

/** experiments per page of `experiments` (comet_ml's get_project_experiments page/size) */
const EXPERIMENTS_PAGE = 100;
const POINTS_PAGE = 1000;
/**
 * The experiment tags a project's own fields give, the same as a cometx download folder's
 * (cometx/format.ts PROJECT_TAGS; candidates for comet-common).
 */
export const PROJECT_TAGS = { description: 'comet.description', notes: 'comet.notes', public: 'comet.public' } as const;
/**
 * The asset metadata field that keeps an upload's own time: Comet stamps an asset with its
 * arrival (createdAt), so a copy says when the source's asset was logged; read back, and removed.
 */
export const TIME_META = 'trackshift_timestamp';
/** the git patch as the REST API gives it (the zip the client uploaded) */
export const GIT_PATCH = 'comet/git_patch.zip';

const valuesAnswer = z.looseObject({ values: z.array(z.unknown()).nullish() });
const tagsAnswer = z.looseObject({ tags: z.array(z.string()).nullish() });
const experimentsAnswer = z.looseObject({ experiments: z.array(experimentMetadata).nullish() });
const notesAnswer = z.looseObject({ notes: z.string().nullish() });
const metricAnswer = z.looseObject({ metrics: z.array(z.unknown()).nullish() });
const assetsAnswer = z.looseObject({ assets: z.array(z.unknown()).nullish() });
const outputAnswer = z.looseObject({ output: z.string().nullish() });
const htmlAnswer = z.looseObject({ html: z.string().nullish() });
const graphAnswer = z.looseObject({ graph: z.string().nullish() });

interface OpenRun {
  rest: RestRun;
  output: string;
}

export interface CometSourceTarget {
  workspace: string;
  project?: string;
}

/**
 * An asset record as trackshift's writers leave it: what the copy kept in the metadata (the
 * upload's own time; the archive upload's payload) taken out into the record, where comet-common
 * reads it (createdAt; UPLOAD_FIELD).
 */
function restoredAsset(asset: RestAsset): RestAsset {
  const metadata = assetMetadata(asset);
  if (!metadata || (!(TIME_META in metadata) && !(UPLOAD_FIELD in metadata))) return asset;
  const { [TIME_META]: time, [UPLOAD_FIELD]: upload, ...rest } = metadata;
  return {
    ...asset,
    ...(typeof time === 'number' ? { createdAt: time } : {}),
    ...(upload && typeof upload === 'object' && !Array.isArray(upload) ? { [UPLOAD_FIELD]: upload as Record<string, unknown> } : {}),
    metadata: Object.keys(rest).length > 0 ? JSON.stringify(rest) : null,
  };
}

export class CometRestSource implements Source {
  readonly kind = 'comet';
  readonly uri: string;
  /** the instance: one workspace on two servers is two stores (a copy between them is no copy onto itself) */
  readonly trackingStore: string;
  readonly warnings: Array<{ object: string; message: string }> = [];
  private readonly runs = new Map<string, OpenRun>();

  constructor(
    private readonly api: CometApi,
    private readonly target: CometSourceTarget,
  ) {
    this.uri = `comet://${target.workspace}${target.project ? `/${target.project}` : ''}`;
    this.trackingStore = `comet ${api.root}`;
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
    const extras = other?.valueCurrent ? parseExtras(other.valueCurrent, `${this.uri} experiment ${first.experimentKey}: the other ${RUN_OTHER}`) : undefined;
    return extras?.experimentTags ? experimentTagsOf(extras, this.target.workspace) : undefined;
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const p of await this.projects()) {
      // what a copy kept of its experiment's tags, else what the project says (as a cometx folder is read)
      const kept = await this.keptTags(p.projectName);
      const tags: Record<string, string> = kept ?? projectTags(this.target.workspace);
      if (!kept) {
        if (p.projectDescription) tags[PROJECT_TAGS.description] = p.projectDescription;
        if (p.public) tags[PROJECT_TAGS.public] = 'true';
        const notes = (await this.api.get('project/notes', { projectId: p.projectId }, notesAnswer, `project ${p.projectName}`)).notes;
        if (notes) tags[PROJECT_TAGS.notes] = notes;
      }
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
    const where = `${this.uri} ${what}`;
    const q = { experimentKey: key };
    const [metadata, others, params, tags, metrics, assets, output, html, graph, git, system] = await Promise.all([
      this.api.get('experiment/metadata', q, restMetadataSchema, what),
      this.api.get('experiment/log-other', q, valuesAnswer, what),
      this.api.get('experiment/parameters', q, valuesAnswer, what),
      this.api.get('experiment/tags', q, tagsAnswer, what),
      this.api.get('experiment/metrics/summary', q, valuesAnswer, what),
      this.api.get('experiment/asset/list', q, assetsAnswer, what),
      this.api.get('experiment/output', q, outputAnswer, what),
      this.api.get('experiment/html', q, htmlAnswer, what),
      this.api.get('experiment/graph', q, graphAnswer, what),
      this.api.get('experiment/git/metadata', q, restGitMetadataSchema, what),
      this.api.get('experiment/system-details', q, restSystemDetailsSchema, what),
    ]);
    const values = (list: unknown[] | null | undefined, field: string) => (list ?? []).map((v, i) => parseRecord(restValueSchema, v, `${where} ${field}[${i}]`));
    // in the order they were logged (the list's where times tie)
    const records = (assets.assets ?? []).map((a, i) => restoredAsset(parseRecord(restAssetSchema, a, `${where} asset[${i}]`))).sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0));
    const text = output.output ?? '';
    const rest = restRunOf({
      key,
      experimentId: project,
      metadata,
      tags: tags.tags ?? [],
      parameters: values(params.values, 'parameters'),
      others: values(others.values, 'log-other'),
      metricNames: values(metrics.values, 'metrics').map((m) => m.name),
      outputs: text !== '' ? [STDOUT_KEY] : [],
      assets: records,
      // the key it answers for and the names of its sys.* metrics are no details of their own (a copy has another key; its metrics say their names)
      systemDetails: withoutKey(system),
      gitMetadata: git,
      ...(html.html ? { html: html.html } : {}),
      ...(graph.graph ? { graph: graph.graph } : {}),
      where,
    });
    // a series' points in step order: the client's uploads race, so their times do not say it
    for (const series of rest.series.values()) series.assets.sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
    const patch = await buffer(await this.api.download('experiment/git/patch', q, what));
    if (patch.length > 0 && !patch.subarray(0, 6).equals(Buffer.from('{"msg"'))) rest.artifacts.set(GIT_PATCH, { content: patch });
    for (const message of rest.warnings) this.warnings.push({ object: `run ${key}`, message });
    this.runs.set(key, { rest, output: text });
    return rest.run;
  }

  private open(run: Run): OpenRun {
    const found = this.runs.get(run.id);
    if (!found) throw new InvalidInputError(this.uri, `no experiment ${quoted(run.id)} was listed`);
    return found;
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const where = `${this.uri} experiment ${run.id} metric ${quoted(key)}`;
    const answer = await this.api.get('experiment/metrics/get-metric', { experimentKey: run.id, metricName: key }, metricAnswer, `experiment ${run.id}`);
    let page: MetricPoint[] = [];
    for (const [i, record] of (answer.metrics ?? []).entries()) {
      const point = metricPointOf(parseRecord(restMetricSchema, record, `${where} [${i}]`));
      if (point) page.push({ ...point, key });
      if (page.length >= POINTS_PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  async *readSeries(run: Run, info: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const open = this.open(run);
    const series = open.rest.series.get(info.key);
    if (!series && info.type === 'string' && info.key === STDOUT_KEY) {
      // the REST API gives the output as one text: a point per line
      const lines = open.output.match(/[^\n]*\n|[^\n]+$/g) ?? [];
      for (let i = 0; i < lines.length; i += POINTS_PAGE) yield lines.slice(i, i + POINTS_PAGE).map((value, n) => ({ step: i + n, value }));
      return;
    }
    if (!series || series.type !== info.type) return;
    let page: TypedPoint[] = [];
    for (const [i, asset] of series.assets.entries()) {
      const where = `${this.uri} experiment ${run.id} asset ${asset.assetId ?? asset.fileName}`;
      const base = assetPointBase(asset);
      if (series.type === 'string') page.push({ ...base, value: (await this.assetBytes(run.id, asset)).toString('utf8') });
      else if (series.type === 'histogram') {
        const json = parseJson(await this.assetBytes(run.id, asset), where);
        if (asset.type === COMBINED_HISTOGRAM) {
          for (const { step, histogram } of parseRecord(combinedHistogramSchema, json, where).histograms) page.push({ ...base, step: step ?? 0, value: histogramOf(histogram, where) });
        } else page.push({ ...base, value: keptHistogram(assetMetadata(asset), where) ?? histogramOf(json, where) });
      } else {
        const file = seriesFileOf(info.key, i, assetName(asset), assetMetadata(asset));
        page.push({ ...base, value: asset.fileSize !== null && asset.fileSize !== undefined ? { ...file, size: asset.fileSize } : file });
      }
      if (page.length >= POINTS_PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  private assetStream(key: string, asset: RestAsset): Promise<Readable> {
    if (!asset.assetId) throw new InvalidInputError(this.uri, `experiment ${quoted(key)}: the asset ${quoted(asset.fileName)} has no id`);
    return this.api.download('experiment/asset/get-asset', { experimentKey: key, assetId: asset.assetId }, `asset ${asset.assetId} of experiment ${key}`);
  }

  private async assetBytes(key: string, asset: RestAsset): Promise<Buffer> {
    return buffer(await this.assetStream(key, asset));
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    for (const [key, series] of open.rest.series) {
      if (series.type !== 'file') continue;
      const index = series.assets.findIndex((asset, i) => seriesFileOf(key, i, assetName(asset), assetMetadata(asset)).path === path);
      if (index >= 0) return this.assetStream(run.id, series.assets[index]!);
    }
    throw new InvalidInputError(this.uri, `experiment ${quoted(run.id)} has no series file ${quoted(path)}`);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const open = this.open(run);
    for (const [path, where] of open.rest.artifacts) {
      const size = 'content' in where ? where.content.length : (where.asset.fileSize ?? undefined);
      yield { path, ...(size !== undefined ? { size } : {}) };
    }
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const where = open.rest.artifacts.get(path);
    if (!where) throw new InvalidInputError(this.uri, `experiment ${quoted(run.id)} has no artifact ${quoted(path)}`);
    return 'content' in where ? Readable.from([where.content]) : this.assetStream(run.id, where.asset);
  }

  close(): Promise<void> {
    return this.api.close();
  }
}

function withoutKey<T extends Record<string, unknown>>(record: T): T {
  const { experimentKey: _key, systemMetricNames: _names, ...rest } = record;
  return rest as T;
}

function parseJson(bytes: Buffer, where: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidInputError(where, 'is not JSON');
  }
}
