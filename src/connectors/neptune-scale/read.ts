/**
 * A Neptune 3.x project read through the query API (`neptune-scale://WORKSPACE/PROJECT`), as
 * neptune-query 1.8 reads it (query.ts): the runs from the search (`--filter` is NQL, passed
 * through), every attribute of each with its value, series page by page, files through signed
 * URLs. Each run becomes the `NeptuneRun` the offline 3.x reader builds from a database and is
 * mapped onto the model the same way (neptune-common/run.ts): its id is the client's run id
 * (`sys/custom_run_id`), its experiment `sys/name`, a fork its parent and fork step; file
 * attributes are artifacts at their paths, file series' files keep the client's paths.
 *
 * The API gives series newest first. They are given to the engine oldest first, in bounded
 * memory: the pages are walked down once, keeping where each starts and the points of the
 * lowest pages, and the pages not kept are asked for again on the way up (`oldestFirst`).
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, Histogram, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint, TypedValue } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';
import { experimentNameOf, experimentTagsOf, neptuneSeries, toModelRun, type NeptuneRun } from '../neptune-common/run.js';
import { safeFilePath, seriesFileName, seriesFilePath, seriesFileRef } from '../neptune-common/scale-paths.js';
import type { RunQuery, Source } from '../types.js';
import type { FoundRun, ProtoFileRef, ProtoHistogram, QueriedAttribute, ScaleQuery, SeriesPoint } from './query.js';

export interface ScaleReadOptions {
  /** float points asked for in one call (perSeriesPointsLimit) */
  floatPage?: number;
  /** about how many bytes of a series' points are kept in memory while it is turned oldest first; the rest is asked for again */
  heldBytes?: number;
}

const FLOAT_PAGE = 10_000;
const HELD_BYTES = 32 * 1024 * 1024;
/** runs whose attributes are asked for in one call */
const RUNS_PER_CALL = 100;

/** About what a point weighs in memory, in bytes: what oldestFirst keeps is bounded by it. */
const POINT_BYTES = 100;
const floatWeight = (): number => POINT_BYTES;
function seriesWeight(p: SeriesPoint): number {
  const v = p.object?.value;
  if (v?.case === 'stringValue') return POINT_BYTES + 2 * v.value.length;
  if (v?.case === 'histogram') return POINT_BYTES + 8 * (v.value.edges.length + v.value.values.length);
  if (v?.case === 'fileRef') return POINT_BYTES + 2 * (v.value.path.length + v.value.mimeType.length);
  return POINT_BYTES;
}

const SERIES_TYPE: Record<string, SeriesInfo['type']> = { floatSeries: 'float', stringSeries: 'string', histogramSeries: 'histogram', fileRefSeries: 'file' };

interface ScaleRun {
  run: Run;
  sysId: string;
  experiment: string;
  experimentTags: Record<string, string>;
  /** artifact path → the file attribute's file */
  artifacts: Map<string, ProtoFileRef>;
  /** a file series' SeriesFile.path → its file_ref path, learnt as its points are read */
  seriesFiles: Map<string, string>;
  /** set once every file series was read: `seriesFiles` names every file a point names */
  seriesFilesKnown?: boolean;
}

/** A page of a series as the API gives it: newest first, with where the next (lower) page starts. */
interface DescendingPage<P, C> {
  points: P[];
  next?: C;
}

/**
 * The pages `fetch` gives newest first (`fetch(undefined)` the newest, `fetch(page.next)` the one
 * below), given oldest first. A first pass walks them down, keeping each page's cursor and the
 * points of the lowest pages up to `held` (in the units of `weigh`: bytes, about); the others are
 * asked for again on the way up, and must come back as they were (a series written to meanwhile
 * is an error, not a mixed copy). Memory: the kept pages, the page in hand, a cursor a page.
 */
export async function* oldestFirst<P extends { step: number }, C>(fetch: (cursor: C | undefined) => Promise<DescendingPage<P, C>>, held: number, weigh: (p: P) => number, where: () => string): AsyncGenerator<P[]> {
  const pages: Array<{ cursor: C | undefined; count: number; first?: number; last?: number }> = [];
  const kept = new Map<number, { points: P[]; weight: number }>();
  let keptWeight = 0;
  let cursor: C | undefined;
  let below = Infinity;
  for (;;) {
    const page = await fetch(cursor);
    for (const p of page.points) {
      // strictly descending, and below the page above: anything else is a server that ignores the cursor
      if (!(p.step < below)) throw new InvalidInputError(where(), `the server gave step ${p.step} after step ${below === Infinity ? '(none)' : below}: series come newest first, each step once`);
      below = p.step;
    }
    const index = pages.length;
    pages.push({ cursor, count: page.points.length, first: page.points[0]?.step, last: page.points.at(-1)?.step });
    const weight = page.points.reduce((sum, p) => sum + weigh(p), 0);
    kept.set(index, { points: page.points, weight });
    keptWeight += weight;
    // the highest pages are given last: those are dropped first, and asked for again
    for (const [i, dropped] of kept) {
      if (keptWeight <= held || i === index) break;
      kept.delete(i);
      keptWeight -= dropped.weight;
    }
    if (page.next === undefined) break;
    if (page.next === cursor) throw new InvalidInputError(where(), 'the server gave the same page twice');
    cursor = page.next;
  }
  for (let i = pages.length - 1; i >= 0; i--) {
    const page = pages[i]!;
    let points = kept.get(i)?.points;
    if (points) kept.delete(i);
    else {
      points = (await fetch(page.cursor)).points;
      if (points.length !== page.count || points[0]?.step !== page.first || points.at(-1)?.step !== page.last) {
        throw new InvalidInputError(where(), 'the series changed while it was read (is the run still being written?); copy it again when it has finished');
      }
    }
    if (points.length > 0) yield points.reverse();
  }
}

/** The model's histogram for the API's (`type` says counts or densities, in words Neptune versions vary). */
function histogramOf(h: ProtoHistogram, where: string): Histogram {
  const kind = /^count/i.test(h.type) ? 'counts' : /^densit/i.test(h.type) ? 'densities' : undefined;
  if (!kind) throw new InvalidInputError(where, `histogram type ${quoted(h.type)} is neither counts nor densities`);
  if (h.edges.length !== h.values.length + 1) throw new InvalidInputError(where, `a histogram with ${h.edges.length} bin edges and ${h.values.length} values`);
  return { edges: [...h.edges], kind, values: [...h.values] };
}

export class NeptuneScaleSource implements Source {
  readonly kind = 'neptune-scale';
  readonly capabilities = { filter: true };
  readonly uri: string;
  readonly warnings: Array<{ object: string; message: string }> = [];
  private all?: Promise<Map<string, ScaleRun>>;
  private readonly floatPageSize: number;
  private readonly heldBytes: number;

  constructor(
    private readonly query: ScaleQuery,
    options: ScaleReadOptions = {},
  ) {
    this.uri = `neptune-scale://${query.project}`;
    this.floatPageSize = options.floatPage ?? FLOAT_PAGE;
    this.heldBytes = options.heldBytes ?? HELD_BYTES;
  }

  private runs(): Promise<Map<string, ScaleRun>> {
    this.all ??= this.readRuns();
    return this.all;
  }

  /** Every run of the project with every attribute, in creation order. */
  private async readRuns(): Promise<Map<string, ScaleRun>> {
    const found: FoundRun[] = [];
    for await (const run of this.query.searchRuns()) found.push(run);
    // a server may answer an empty search for a project it does not have
    if (found.length === 0 && !(await this.query.api.projectExists(this.query.project))) throw this.query.noProject();
    // a fork names its parent by the client's run id (sys/forking/parent); a sys/id is taken too
    const runIds = new Map(found.map((r) => [r.sysId, r.customRunId ?? r.sysId]));
    const customIds = new Set(runIds.values());
    const parentOf = (named: string) => (customIds.has(named) ? named : (runIds.get(named) ?? named));
    const out = new Map<string, ScaleRun>();
    for (let at = 0; at < found.length; at += RUNS_PER_CALL) {
      const batch = found.slice(at, at + RUNS_PER_CALL).map((r) => r.sysId);
      const attributes = await this.query.attributes(batch);
      for (const sysId of batch) {
        const read = this.toScaleRun(sysId, attributes.get(sysId)!, parentOf);
        const other = out.get(read.run.id);
        if (other) {
          this.warnings.push({ object: `run ${read.run.id}`, message: `two runs have this id (${other.sysId} and ${sysId}): the second is not read` });
          continue;
        }
        out.set(read.run.id, read);
      }
    }
    return out;
  }

  private toScaleRun(sysId: string, dtos: QueriedAttribute[], parentOf: (named: string) => string): ScaleRun {
    const where = `${this.uri} run ${sysId}`;
    const attributes = new Map<string, TypedValue>();
    const series: SeriesInfo[] = [];
    const files = new Map<string, ProtoFileRef>();
    for (const a of dtos) {
      const seriesType = SERIES_TYPE[a.type];
      if (seriesType) series.push(neptuneSeries(a.name, seriesType));
      else if (a.type === 'fileRef') files.set(a.name, required(a.fileRefProperties, a, where));
      else if (a.type === 'experimentState') continue; // neptune-query leaves it out too: 3.x runs have no state
      else {
        const value = this.attributeOf(a, where);
        if (value) attributes.set(a.name, value);
      }
    }
    const text = (path: string) => {
      const v = attributes.get(path);
      return v?.type === 'string' && v.value ? v.value : undefined;
    };
    const id = text('sys/custom_run_id') ?? sysId;
    const parent = text('sys/forking/parent');
    const forkStep = attributes.get('sys/forking/step');
    const neptune: NeptuneRun = {
      id,
      project: this.query.project,
      generation: 3,
      attributes,
      series,
      ...(parent ? { fork: { runId: parentOf(parent), ...(forkStep?.type === 'float' || forkStep?.type === 'int' ? { step: forkStep.value } : {}) } } : {}),
    };
    const artifacts = new Map<string, ProtoFileRef>();
    for (const [path, ref] of files) artifacts.set(safeFilePath(path), ref);
    const experiment = experimentNameOf(neptune);
    return { run: toModelRun(neptune, experiment), sysId, experiment, experimentTags: experimentTagsOf(neptune), artifacts, seriesFiles: new Map() };
  }

  /** A value attribute in the model's typed form; undefined (with a warning) for a type neptune-query does not know either. */
  private attributeOf(a: QueriedAttribute, where: string): TypedValue | undefined {
    switch (a.type) {
      case 'float':
        return { type: 'float', value: required(a.floatProperties, a, where).value };
      case 'int': {
        const value = required(a.intProperties, a, where).value;
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
          this.warnings.push({ object: where, message: `attribute ${a.name}: int ${value} is beyond what a double holds exactly; kept as ${Number(value)}` });
        }
        return { type: 'int', value: Number(value) };
      }
      case 'bool':
        return { type: 'bool', value: required(a.boolProperties, a, where).value };
      case 'string':
        return { type: 'string', value: required(a.stringProperties, a, where).value };
      case 'datetime':
        return { type: 'datetime', value: Number(required(a.datetimeProperties, a, where).value) };
      case 'stringSet':
        return { type: 'stringSet', value: [...new Set(required(a.stringSetProperties, a, where).value)] };
      default:
        this.warnings.push({ object: where, message: `attribute ${a.name} has type ${quoted(a.type)}, which trackshift does not know; left out` });
        return undefined;
    }
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const seen = new Map<string, Experiment>();
    for (const r of (await this.runs()).values()) {
      const known = seen.get(r.experiment);
      // an experiment's tags, when a writer kept them on its runs (neptune-common/target.ts)
      if (!known || (Object.keys(known.tags).length === 0 && Object.keys(r.experimentTags).length > 0)) seen.set(r.experiment, { id: r.experiment, name: r.experiment, tags: r.experimentTags, lifecycle: 'active' });
    }
    yield* [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    const all = await this.runs();
    let wanted: Set<string> | undefined;
    if (query.filter) {
      wanted = new Set();
      for await (const found of this.query.searchRuns(query.filter)) wanted.add(found.sysId);
    }
    for (const r of all.values()) {
      if (r.experiment !== experimentId || (wanted && !wanted.has(r.sysId))) continue;
      if (r.run.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield r.run;
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    return (await this.runs()).get(runId)?.run;
  }

  runUrl(_experimentId: string, runId: string): string | undefined {
    return this.query.api.runUrl(this.query.project, runId);
  }

  private async located(run: Run): Promise<ScaleRun> {
    const found = (await this.runs()).get(run.id);
    if (!found) throw new InvalidInputError(this.uri, `no run ${quoted(run.id)}`);
    return found;
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const { sysId } = await this.located(run);
    const limit = this.floatPageSize;
    const fetch = async (afterStep: number | undefined): Promise<DescendingPage<MetricPoint, number>> => {
      const points = await this.query.floatPage(sysId, key, limit, afterStep);
      const page = points.filter((p) => !p.isPreview).map((p): MetricPoint => ({ key, step: p.step, timestamp: Number(p.timestampMillis), value: p.value }));
      // a full page may have more below it; the last point's step is where the next starts
      return { points: page, ...(points.length === limit ? { next: points.at(-1)!.step } : {}) };
    };
    yield* oldestFirst(fetch, this.heldBytes, floatWeight, () => `${this.query.api.displayUrl} series ${key} of run ${run.id}`);
  }

  async *readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    if (series.type === 'float') return;
    const located = await this.located(run);
    const where = `${this.query.api.displayUrl} series ${series.key} of run ${run.id}`;
    const fetch = async (token: string | undefined): Promise<DescendingPage<SeriesPoint, string>> => this.query.seriesPage(located.sysId, series.key, token);
    for await (const page of oldestFirst(fetch, this.heldBytes, seriesWeight, () => where)) {
      const out: TypedPoint[] = [];
      for (const p of page) {
        if (p.isPreview) continue;
        const value = this.typedValue(located, series, p, where);
        out.push({ step: p.step, timestamp: Number(p.timestampMillis), value } as TypedPoint);
      }
      if (out.length > 0) yield out;
    }
  }

  private typedValue(located: ScaleRun, series: SeriesInfo, p: SeriesPoint, where: string): TypedPoint['value'] {
    const v = p.object?.value;
    if (series.type === 'string' && v?.case === 'stringValue') return v.value;
    if (series.type === 'histogram' && v?.case === 'histogram') return histogramOf(v.value, where);
    if (series.type === 'file' && v?.case === 'fileRef') {
      const ref = v.value;
      const file: SeriesFile = { path: seriesFilePath(ref.path, located.run.id), name: seriesFileName(ref.path) };
      located.seriesFiles.set(file.path, ref.path);
      return { ...file, ...(ref.sizeBytes > 0n ? { size: Number(ref.sizeBytes) } : {}), ...(ref.mimeType ? { mimeType: ref.mimeType } : {}) };
    }
    throw new InvalidInputError(where, `a point at step ${p.step} holds ${v?.case ?? 'no value'}, not a ${series.type} value`);
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const located = await this.located(run);
    // learnt by reading the file series, which the engine does first; else read them now, once
    if (!located.seriesFiles.has(path) && !located.seriesFilesKnown) {
      for (const series of located.run.series) if (series.type === 'file') for await (const _ of this.readSeries(run, series));
      located.seriesFilesKnown = true;
    }
    // a file no point names (one of a point only the .trackshift/ encoding holds): where trackshift's writers store it
    const ref = located.seriesFiles.get(path) ?? (path === safeFilePath(path) ? seriesFileRef(path, run.id) : undefined);
    if (ref === undefined) throw new InvalidInputError(this.uri, `run ${quoted(run.id)} has no series file ${quoted(path)}`);
    return this.query.download(ref);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    for (const [path, ref] of (await this.located(run)).artifacts) yield { path, ...(ref.sizeBytes > 0n ? { size: Number(ref.sizeBytes) } : {}) };
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const ref = (await this.located(run)).artifacts.get(path);
    if (!ref) throw new InvalidInputError(this.uri, `run ${quoted(run.id)} has no artifact ${quoted(path)}`);
    return this.query.download(ref.path);
  }

  async close(): Promise<void> {
    await this.query.close();
    await this.query.api.close();
  }
}

/** The properties an attribute of its type must have; a server's answer without them is named. */
function required<T>(properties: T | undefined, a: QueriedAttribute, where: string): T {
  if (properties === undefined) throw new InvalidInputError(where, `attribute ${a.name} of type ${a.type} comes without its value`);
  return properties;
}
