/**
 * The connector contract: everything the engine knows about a system.
 *
 * A connector is a Source (read), a Destination (write), or both. The required core is small;
 * the optional members are capabilities the engine uses when they are there. The memory
 * connector (./memory) implements all of it in three short files and is the reference.
 *
 * Ids given to a Source are the source's own; ids given to a Destination are the ones the
 * destination returned (`ensureExperiment`, `createRun`).
 */
import type { Readable } from 'node:stream';
import type { RetryContext, Side } from '../util/retry.js';
import type { ArtifactFile, DatasetInput, Experiment, LoggedModel, MetricPoint, ModelSource, ModelStage, ModelVersion, RegisteredModel, Run, SeriesFile, SeriesInfo, SeriesType, Tags, TypedPoint } from '../model/index.js';
import { SERIES_TYPES } from '../model/index.js';

export interface RunQuery {
  /** deleted runs are skipped unless this is set */
  includeDeleted: boolean;
  /** the source's own filter syntax, passed through (only when `capabilities.filter`) */
  filter?: string;
}

export interface Source {
  /** the location, safe to print: never holds a secret */
  readonly uri: string;
  readonly kind: string;
  /**
   * The tracking store behind it, when `kind` says more than that (`databricks-uc` tracks runs in
   * the same workspace as `databricks`): a copy from a store onto itself is refused.
   */
  readonly trackingStore?: string;
  /** every experiment, deleted ones included (their lifecycle says so) */
  listExperiments(): AsyncIterable<Experiment>;
  listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run>;
  /** one float series' (metric's) whole history, in pages, in the order the source holds it */
  readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]>;
  /**
   * A string, file or histogram series of `run.series`, in pages, in the order the source holds
   * it. Sources whose runs list only float series need not have it.
   */
  readSeries?(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]>;
  /** the bytes of one point of a file series (`SeriesFile.path`) */
  readSeriesFile?(run: Run, path: string): Promise<Readable>;
  /** every file of a run's artifacts, recursively (folders are implied by paths) */
  listArtifacts(run: Run): AsyncIterable<ArtifactFile>;
  readArtifact(run: Run, path: string): Promise<Readable>;
  /** one run by id, when the source can look it up directly */
  getRun?(runId: string): Promise<Run | undefined>;
  /** where a user opens a run in the system's web app, when it has one (for the report) */
  runUrl?(experimentId: string, runId: string): string | undefined;
  readonly capabilities?: { filter?: boolean };
  /**
   * File sources: the objects met while listing that could not be read (see UnreadableObject).
   * Each is left out of what is listed and recorded here instead, so one bad file fails alone.
   */
  readonly unreadable?: UnreadableObject[];
  /** File sources: what was met while listing and worked around (a run found twice); shown as warnings */
  readonly warnings?: Array<{ object: string; message: string }>;
  /** registered models and their versions, when the source has a registry */
  readonly registry?: RegistryReader;
  /** MLflow 3 logged models, when the source has them */
  readonly loggedModels?: LoggedModelReader;
  close?(): Promise<void>;
}

/**
 * An object a source could not read: a malformed `run.json`, an `experiment.json` of the wrong
 * shape, an unsafe path in a file. The engine reports it as failed (exit 1) and copies the rest.
 * What makes the whole input unusable (no such folder, a bundle's unreadable root file) is
 * thrown instead (exit 2).
 */
export interface UnreadableObject {
  type: 'experiment' | 'run' | 'logged-model' | 'model' | 'version';
  /** the object's id as far as it is known: the name of its folder (its file is named in `reason`) */
  sourceId: string;
  /** what is wrong, naming the file */
  reason: string;
}

export interface RegistryReader {
  /** false for registries without stages (Unity Catalog): every version reads as stage None */
  readonly hasStages?: boolean;
  /** every registered model */
  listModels(): AsyncIterable<RegisteredModel>;
  getModel(name: string): Promise<RegisteredModel | undefined>;
  /** every version of a model, lowest number first */
  listVersions(modelName: string): AsyncIterable<ModelVersion>;
}

export interface LoggedModelReader {
  /** the logged models of an experiment */
  listLoggedModels(experimentId: string): AsyncIterable<LoggedModel>;
  listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile>;
  readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable>;
}

/** Most a destination takes in one `writeBatch` call; the engine splits to fit. */
export interface WriteLimits {
  metrics: number;
  params: number;
  tags: number;
  /** params + tags + metrics */
  entries: number;
  /** an approximate request body size limit, bytes */
  bytes: number;
}

export interface RunBatch {
  params: Array<{ key: string; value: string }>;
  tags: Array<{ key: string; value: string }>;
  metrics: MetricPoint[];
}

export interface ExistingRun {
  id: string;
  /** false when a previous attempt stopped part way: the engine discards it and starts over */
  complete: boolean;
  /** when known: a complete copy whose lifecycle differs from the source's is finished again */
  lifecycle?: Experiment['lifecycle'];
}

/** What a destination reports about a run it could not hold exactly (shown in the report). */
export interface RunWriteResult {
  warnings: string[];
}

/**
 * What a destination holds natively, as rclone backends declare precision and hashes. The
 * engine (engine/encoding.ts) maps everything else into the documented reversible encoding
 * (docs/encoding.md) that the same family's readers undo, and says so in the report.
 */
export interface DestinationHolds {
  /** series types written with `writeBatch` (float) or `writeSeries` (the others) */
  seriesTypes: readonly SeriesType[];
  /** steps that are not integers */
  fractionalSteps: boolean;
  /** points without a timestamp */
  pointsWithoutTimestamp: boolean;
  /** Comet's epoch and context on points */
  epochs: boolean;
  contexts: boolean;
  /** system series marked as such; otherwise, where a destination puts them (`system/` in MLflow) */
  systemSeries: boolean | { prefix: string };
  /** `Run.config`, `Run.summary`, `Run.fork`, `Run.group`, `Run.sourceState` */
  typedConfig: boolean;
  /**
   * Config paths are written joined with this (Neptune's `/`): a config whose path segments hold
   * it cannot be given back from what is written, so it is also kept whole in the encoding
   */
  configPathSeparator?: string;
  summaries: boolean;
  forks: boolean;
  groups: boolean;
  sourceStates: boolean;
  /**
   * A series with no point stays listed on its run (told of by createRun). Without it (MLflow
   * knows a metric only by its points) such a series is listed in the encoding's manifest.
   */
  emptySeries?: boolean;
  /** longest key and values it takes, in characters (undefined: no limit) */
  maxKeyLength?: number;
  maxParamValueLength?: number;
  maxTagValueLength?: number;
  /** creation times it can set exactly (the others are kept in tags) */
  creationTimes: { experiments: boolean; models: boolean; versions: boolean };
  /**
   * Points a series refuses (Neptune 3.x's server): non-finite float values, steps outside
   * [minStep, maxStep) or with more decimals than it keeps, a step not above the series'
   * previous one, a timestamp before it.
   * Absent: none. Such points are left out of the native series and kept in the encoding.
   */
  pointRules?: PointRules;
}

export interface PointRules {
  finiteValues?: boolean;
  increasingSteps?: boolean;
  nonDecreasingTimestamps?: boolean;
  minStep?: number;
  /** exclusive */
  maxStep?: number;
  /** decimal places a step keeps (Neptune: micro-steps, 6): a step it would round is refused */
  stepDecimals?: number;
}

/** What a destination that keeps everything it is given holds (memory, the bundle). */
export const HOLDS_EVERYTHING: DestinationHolds = {
  seriesTypes: SERIES_TYPES,
  fractionalSteps: true,
  pointsWithoutTimestamp: true,
  epochs: true,
  contexts: true,
  systemSeries: true,
  typedConfig: true,
  summaries: true,
  forks: true,
  groups: true,
  sourceStates: true,
  emptySeries: true,
  creationTimes: { experiments: true, models: true, versions: true },
};

/**
 * Files that name other objects by id (MLflow's `MLmodel` names its run and logged model). A
 * copy that gives those objects new ids rewrites these files, and only the ids in them; the
 * engine reads each such file whole, up to `maxBytes` (a larger one is copied as it is).
 */
export interface IdsInFiles {
  readonly maxBytes: number;
  holdsIds(path: string): boolean;
  /** the text with each id of `ids` (source id → destination id) replaced by the new one */
  rewriteIds(text: string, ids: ReadonlyMap<string, string>): string;
}

export interface Destination {
  readonly uri: string;
  readonly kind: string;
  /** as Source.trackingStore */
  readonly trackingStore?: string;
  readonly limits: WriteLimits;
  readonly holds: DestinationHolds;
  /** where a user opens a run written here in the system's web app, when it has one (for the report) */
  runUrl?(experimentId: string, runId: string): string | undefined;
  /**
   * What the destination did or found beyond the runs that the user should know (a project it
   * created, or found there already), added as it happens; shown and reported as notes.
   */
  readonly notes?: Array<{ object: string; message: string }>;
  /** the experiment called `name`, or undefined: no write */
  findExperiment(name: string): Promise<{ id: string; lifecycle: Experiment['lifecycle'] } | undefined>;
  /**
   * Finds or creates the experiment `name` and makes it active, merging `exp`'s tags (with
   * provenance tags added by the engine). Returns its id.
   */
  ensureExperiment(exp: Experiment, name: string): Promise<string>;
  /** called when every run of an experiment is written: makes a deleted source experiment deleted */
  finishExperiment(experimentId: string, exp: Experiment): Promise<void>;
  /** a run previously written from source run `sourceRunId` (by its provenance tag), or undefined */
  findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined>;
  /**
   * Creates a run with its name, user, start time and tags (`run.tags` already carries the
   * provenance tags and, like `run.parentId` and `run.fork`, the destination's parent id), and
   * what it holds of config, summary, group and source state. Status, end time and lifecycle
   * come with `finishRun`.
   */
  createRun(experimentId: string, run: Run): Promise<string>;
  writeBatch(runId: string, batch: RunBatch): Promise<void>;
  /** points of a string, file or histogram series it holds (`holds.seriesTypes`), in source order, page by page */
  writeSeries?(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void>;
  /** the bytes of a file series' point, before the page that holds the point */
  writeSeriesFile?(runId: string, file: SeriesFile, body: Readable): Promise<void>;
  writeInputs(runId: string, inputs: DatasetInput[]): Promise<void>;
  /** `file.size`, when known, is the exact length of `body` */
  writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void>;
  /**
   * Sets status and end time, marks the run complete, deletes it if the source run is deleted
   * (in an order that never leaves a partial run looking complete). Idempotent.
   */
  finishRun(runId: string, run: Run): Promise<void | RunWriteResult>;
  /** removes (or hides) a partly written run so that it no longer counts as a copy */
  discardRun(runId: string): Promise<void>;
  readonly registry?: RegistryWriter;
  readonly loggedModels?: LoggedModelWriter;
  /** files of runs, logged models and versions whose ids the copy rewrites; without it, files are copied as they are */
  readonly idsInFiles?: IdsInFiles;
  close?(): Promise<void>;
}

/** Where a new model version points, in the destination's own terms. */
export interface VersionTarget {
  /** a run or logged model of the destination (deep copy), or a URI outside it (shallow copy) */
  location: ModelSource;
  runId?: string;
  runLink?: string;
  loggedModelId?: string;
}

/** A version already in a destination model (provenance tags tell which source version it is). */
export interface ExistingVersion {
  version: string;
  tags: Tags;
}

export interface RegistryWriter {
  /** false for registries without stages (Unity Catalog): the engine maps stages to aliases */
  readonly hasStages: boolean;
  /** true when a new model's versions can be numbered as in the source (see `createVersion`) */
  readonly keepsVersionNumbers?: boolean;
  /**
   * Throws a UsageError when `name` cannot name a model here (Unity Catalog wants
   * catalog.schema.model); the engine asks before it writes anything.
   */
  checkModelName?(name: string): void;
  findModel(name: string): Promise<{ tags: Tags } | undefined>;
  /** creates the model `name`, or updates its description and merges its tags */
  ensureModel(model: RegisteredModel, name: string): Promise<void>;
  deleteModel(name: string): Promise<void>;
  listExistingVersions(modelName: string): AsyncIterable<ExistingVersion>;
  /**
   * Creates a version with `version`'s description and tags (provenance included) and returns
   * its number: the next free one, or `version.version` where `keepsVersionNumbers`.
   */
  createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string>;
  /** sets description and tags of an existing version (idempotent) */
  updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void>;
  deleteVersion(modelName: string, number: string): Promise<void>;
  /** `archiveOthers`: the other versions in that stage move to Archived (MLflow's archive_existing_versions) */
  setStage(modelName: string, number: string, stage: ModelStage, archiveOthers?: boolean): Promise<void>;
  setAlias(modelName: string, alias: string, number: string): Promise<void>;
  setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void>;
  /**
   * For registries that keep each version's files themselves (Unity Catalog): after
   * createVersion the engine hands over the version's files, then calls finishVersion.
   * Registries without it point new versions at a run or logged model instead.
   */
  writeVersionFile?(modelName: string, number: string, file: ArtifactFile, body: Readable): Promise<void>;
  finishVersion?(modelName: string, number: string): Promise<void>;
}

export interface LoggedModelWriter {
  /** a logged model previously written from source model `sourceModelId` (by its provenance tag) */
  findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined>;
  /** creates it (pending) with its name, type, params and tags (provenance included); returns its id */
  createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string>;
  writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void>;
  /** sets its final status, records it as an output of its run (`output`, destination ids) and marks it complete */
  finishLoggedModel(modelId: string, model: LoggedModel, output?: { runId: string; step: number }): Promise<void>;
  discardLoggedModel(modelId: string): Promise<void>;
}

/** How a connector was named on the command line, and the settings for its side. */
export interface ConnectorTarget {
  /** what the user typed, with any `FORMAT:` prefix removed */
  location: string;
  /** `src` or `dst`: selects side-specific credentials (TRACKSHIFT_SRC_…, TRACKSHIFT_DST_…) */
  side: 'src' | 'dst';
  env: NodeJS.ProcessEnv;
  /** a dry run: the destination is only looked at, and nothing (not even a folder) is created */
  dryRun?: boolean;
  /** how calls to a server or database are retried, and where the retries are counted */
  retry?: RetryContext;
  /** runs written at once (`--workers`): a database destination opens a connection for each */
  workers?: number;
}

/** The end of the job a target is, as the retry counts name it (verify reads its destination as a source). */
export const retrySide = (target: ConnectorTarget): Side => (target.side === 'src' ? 'source' : 'destination');

export interface ConnectorFactory {
  /** the `FORMAT:` prefix that forces this connector, and its name in messages */
  readonly name: string;
  readonly description: string;
  /** true when `location` (a path or URI) is this connector's; checked in the resolver's order (connectors/resolve.ts) */
  detect(location: string): Promise<boolean>;
  /** a folder of files that an export writes, which is what `import` reads (a bundle, an mlflow-export-import directory) */
  readonly importable?: boolean;
  /**
   * Its folders may hold another format's runs beside its own (a `.neptune` folder holds both
   * Neptune clients'): when several such connectors recognise one path, all are read as one source.
   */
  readonly sharesFolders?: boolean;
  openSource?(target: ConnectorTarget): Promise<Source>;
  openDestination?(target: ConnectorTarget): Promise<Destination>;
}

export type Tag = { key: string; value: string };
export const tagList = (tags: Tags): Tag[] => Object.entries(tags).map(([key, value]) => ({ key, value }));
