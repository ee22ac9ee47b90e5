/**
 * The in-memory connector: the whole contract in three short files (this one, ./registry.ts,
 * ./logged-models.ts), used by the engine's unit tests and as the model for new connectors.
 * `memory:NAME` addresses a store shared in this process.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { ArtifactFile, DatasetInput, Experiment, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { MLMODEL_IDS } from '../mlflow-common/mlmodel.js';
import { withParentTag } from '../mlflow-common/parent-tag.js';
import { MemoryLoggedModels } from './logged-models.js';
import { MemoryRegistry } from './registry.js';
import { HOLDS_EVERYTHING, type ConnectorFactory, type Destination, type DestinationHolds, type ExistingRun, type RunBatch, type RunQuery, type Source, type UnreadableObject, type WriteLimits } from '../types.js';

export interface MemoryRun {
  run: Run;
  metrics: Map<string, MetricPoint[]>;
  /** string, file and histogram series, by key */
  series: Map<string, TypedPoint[]>;
  /** the bytes of file series' points, by `SeriesFile.path` */
  seriesFiles: Map<string, Buffer>;
  artifacts: Map<string, Buffer>;
  /** the series `createRun` was told of: a float series is listed as that says (system or not) once it has points */
  declared: Map<string, SeriesInfo>;
}

export interface MemoryStoreData {
  experiments: Map<string, Experiment>;
  runs: Map<string, MemoryRun>;
}

export interface MemoryOptions {
  limits?: Partial<WriteLimits>;
  /** points per page returned by readMetric */
  pageSize?: number;
  /** called before every write, so tests can make writes fail or stop part way */
  beforeWrite?: (operation: string, runId?: string) => void | Promise<void>;
  /** false: a registry without stages, like Unity Catalog */
  stages?: boolean;
  /** what it holds, when a test wants it to hold less than everything (engine mapping tests) */
  holds?: Partial<DestinationHolds>;
}

const DEFAULT_LIMITS: WriteLimits = { metrics: 1000, params: 100, tags: 100, entries: 1000, bytes: 1_000_000 };

export class MemoryStore implements Source, Destination {
  readonly kind = 'memory';
  readonly limits: WriteLimits;
  readonly holds: DestinationHolds;
  readonly data: MemoryStoreData = { experiments: new Map(), runs: new Map() };
  /** the optional registry capability (./registry.ts) */
  readonly registry: MemoryRegistry;
  /** MLflow 3 logged models, read and written (./logged-models.ts) */
  readonly loggedModels: MemoryLoggedModels;
  /** the engine's tests copy MLflow's data: its MLmodel files name the copied runs, as in MLflow destinations */
  readonly idsInFiles = MLMODEL_IDS;
  private nextId = 1;
  readonly unreadable: UnreadableObject[] = [];
  /**
   * Stands for a malformed file of a file source: an experiment or run (by id) that cannot be
   * read, with why. Listing leaves it out and records it in `unreadable`, as file sources do.
   */
  readonly broken = new Map<string, { type: 'experiment' | 'run'; reason: string }>();

  constructor(
    readonly uri = 'memory:',
    private readonly options: MemoryOptions = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    // everything the model has: the store keeps what it is given
    this.holds = { ...HOLDS_EVERYTHING, ...options.holds };
    this.registry = new MemoryRegistry(options.stages ?? true);
    this.loggedModels = new MemoryLoggedModels(() => this.newId(), (runId) => this.stored(runId).run);
  }

  // ---- Source ----

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const e of this.data.experiments.values()) if (this.readable('experiment', e.id)) yield structuredClone(e);
  }

  private readable(type: 'experiment' | 'run', id: string): boolean {
    const broken = this.broken.get(id);
    if (broken?.type !== type) return true;
    if (!this.unreadable.some((u) => u.sourceId === id)) this.unreadable.push({ type, sourceId: id, reason: broken.reason });
    return false;
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    for (const { run } of this.data.runs.values()) {
      if (run.experimentId !== experimentId) continue;
      if (run.lifecycle === 'deleted' && !query.includeDeleted) continue;
      if (this.readable('run', run.id)) yield structuredClone(run);
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const stored = this.data.runs.get(runId);
    return stored && structuredClone(stored.run);
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const points = this.stored(run.id).metrics.get(key) ?? [];
    const size = this.options.pageSize ?? 1000;
    for (let i = 0; i < points.length; i += size) yield points.slice(i, i + size);
  }

  async *readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const points = this.stored(run.id).series.get(series.key) ?? [];
    const size = this.options.pageSize ?? 1000;
    for (let i = 0; i < points.length; i += size) yield structuredClone(points.slice(i, i + size));
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const bytes = this.stored(run.id).seriesFiles.get(path);
    if (!bytes) throw new Error(`memory: no series file ${path} in run ${run.id}`);
    return Readable.from([bytes]);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    for (const [path, bytes] of this.stored(run.id).artifacts) yield { path, size: bytes.length };
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const bytes = this.stored(run.id).artifacts.get(path);
    if (!bytes) throw new Error(`memory: no artifact ${path} in run ${run.id}`);
    return Readable.from([bytes]);
  }

  // ---- Destination ----

  async findExperiment(name: string) {
    const exp = [...this.data.experiments.values()].find((e) => e.name === name);
    return exp && { id: exp.id, lifecycle: exp.lifecycle };
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    await this.options.beforeWrite?.('ensureExperiment');
    const found = [...this.data.experiments.values()].find((e) => e.name === name);
    if (found) {
      Object.assign(found.tags, exp.tags);
      found.lifecycle = 'active';
      return found.id;
    }
    const id = this.newId();
    this.data.experiments.set(id, { ...structuredClone(exp), id, name, lifecycle: 'active' });
    return id;
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    const found = this.data.experiments.get(experimentId);
    if (found) found.lifecycle = exp.lifecycle;
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    for (const { run } of this.data.runs.values()) {
      if (run.experimentId === experimentId && run.tags[SOURCE_TAGS.id] === sourceRunId) {
        return { id: run.id, complete: run.tags[SOURCE_TAGS.complete] === 'true', lifecycle: run.lifecycle };
      }
    }
    return undefined;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    await this.options.beforeWrite?.('createRun');
    const id = this.newId();
    const created: Run = {
      ...structuredClone(run),
      id,
      experimentId,
      // the engine's tests copy MLflow's data: its parent tag follows the copy's parent, as in MLflow destinations
      tags: withParentTag(run.tags, run.parentId),
      status: 'RUNNING',
      endTime: undefined,
      lifecycle: 'active',
      params: {},
      inputs: [],
      series: [],
      // the source's model ids: the copies' arrive with finishLoggedModel
      modelOutputs: undefined,
    };
    this.data.runs.set(id, { run: created, metrics: new Map(), series: new Map(), seriesFiles: new Map(), artifacts: new Map(), declared: new Map(run.series.map((s) => [s.key, s])) });
    return id;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    await this.options.beforeWrite?.('writeBatch', runId);
    const stored = this.stored(runId);
    const { limits } = this;
    const entries = batch.params.length + batch.tags.length + batch.metrics.length;
    if (batch.metrics.length > limits.metrics || batch.params.length > limits.params || batch.tags.length > limits.tags || entries > limits.entries) {
      throw new Error(`memory: batch over the limits (${JSON.stringify(limits)})`);
    }
    for (const { key, value } of batch.params) {
      const old = stored.run.params[key];
      if (old !== undefined && old !== value) throw new Error(`memory: param ${key} cannot change value`);
      stored.run.params[key] = value;
    }
    for (const { key, value } of batch.tags) stored.run.tags[key] = value;
    for (const point of batch.metrics) {
      let series = stored.metrics.get(point.key);
      if (!series) {
        series = [];
        stored.metrics.set(point.key, series);
        stored.run.series.push({ ...(stored.declared.get(point.key) ?? { key: point.key, type: 'float' }) });
      }
      series.push({ ...point });
    }
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    await this.options.beforeWrite?.('writeSeries', runId);
    const stored = this.stored(runId);
    if (series.type === 'float' || !this.holds.seriesTypes.includes(series.type)) throw new Error(`memory: writeSeries of a ${series.type} series`);
    let held = stored.series.get(series.key);
    if (!held) {
      held = [];
      stored.series.set(series.key, held);
      stored.run.series.push({ ...series });
    }
    held.push(...structuredClone(points));
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    await this.options.beforeWrite?.('writeSeriesFile', runId);
    this.stored(runId).seriesFiles.set(file.path, await buffer(body));
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    await this.options.beforeWrite?.('writeInputs', runId);
    this.stored(runId).run.inputs.push(...structuredClone(inputs));
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    await this.options.beforeWrite?.('writeArtifact', runId);
    this.stored(runId).artifacts.set(file.path, await buffer(body));
  }

  async finishRun(runId: string, run: Run): Promise<void> {
    await this.options.beforeWrite?.('finishRun', runId);
    const whole = this.stored(runId);
    const stored = whole.run;
    if (this.holds.emptySeries) {
      // a series told of that got no point stays listed, in the order createRun was told
      const listed = new Set(stored.series.map((s) => s.key));
      stored.series.push(...[...whole.declared.values()].filter((s) => !listed.has(s.key)).map((s) => ({ ...s })));
    }
    stored.tags[SOURCE_TAGS.complete] = 'true';
    stored.status = run.status;
    stored.endTime = run.endTime;
    stored.lifecycle = run.lifecycle;
  }

  async discardRun(runId: string): Promise<void> {
    this.data.runs.delete(runId);
  }

  private stored(runId: string): MemoryRun {
    const stored = this.data.runs.get(runId);
    if (!stored) throw new Error(`memory: no run ${runId}`);
    return stored;
  }

  private newId(): string {
    return `m${this.nextId++}`;
  }
}

/** A run as a source holds it (tests fill stores with these): what is not given is empty. */
export const memoryRun = (parts: Partial<MemoryRun> & { run: Run }): MemoryRun => ({
  metrics: new Map(),
  series: new Map(),
  seriesFiles: new Map(),
  artifacts: new Map(),
  declared: new Map(),
  ...parts,
});

/** Stores addressed as `memory:NAME`, shared within one process (tests, library use). */
const stores = new Map<string, MemoryStore>();

export function memoryStore(name: string, options?: MemoryOptions): MemoryStore {
  let store = stores.get(name);
  if (!store) {
    store = new MemoryStore(`memory:${name}`, options);
    stores.set(name, store);
  }
  return store;
}

export const memoryConnector: ConnectorFactory = {
  name: 'memory',
  description: 'an in-process store, for tests and library use (memory:NAME)',
  detect: async () => false, // only ever chosen with the memory: prefix
  openSource: async (target) => memoryStore(target.location),
  openDestination: async (target) => memoryStore(target.location),
};
