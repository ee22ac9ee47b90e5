/**
 * The neutral records every connector reads and writes. They are plain data: connectors map
 * their system's objects to these and back; the engine moves them without knowing the system.
 *
 * Times are milliseconds since the epoch. Ids are the source system's own; a destination
 * creates new ones and records the source id under SOURCE_TAG_PREFIX.
 */

import type { ConfigEntry, ForkPoint, PointBase, SeriesInfo } from './series.js';

export * from './series.js';

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];

export type Lifecycle = 'active' | 'deleted';

/** Tags written by trackshift on every object it creates; `verify` ignores exactly this prefix. */
export const SOURCE_TAG_PREFIX = 'trackshift.';
export const SOURCE_TAGS = {
  /** the source object's id */
  id: 'trackshift.source.id',
  /** the source system, as a redacted URI */
  uri: 'trackshift.source.uri',
  /** set last, when every part of a run has been written: a run without it is partial */
  complete: 'trackshift.complete',
} as const;

export type Tags = Record<string, string>;

export interface Experiment {
  id: string;
  name: string;
  tags: Tags;
  lifecycle: Lifecycle;
  creationTime?: number;
  lastUpdateTime?: number;
  /** where the source stores its artifacts; informative, never copied */
  artifactLocation?: string;
}

export interface Dataset {
  name: string;
  digest: string;
  sourceType: string;
  source: string;
  schema?: string;
  profile?: string;
}

export interface DatasetInput {
  dataset: Dataset;
  tags: Tags;
}

/**
 * A run without its metric histories and artifacts, which are read separately and streamed.
 * Run name, user, description and parent also live in MLflow's system tags (`mlflow.runName`,
 * `mlflow.user`, `mlflow.note.content`, `mlflow.parentRunId`); they are kept in `tags` as the
 * source has them, and the typed fields below are what destinations act on.
 */
export interface Run {
  id: string;
  experimentId: string;
  name?: string;
  status: RunStatus;
  startTime?: number;
  /** absent when the source has none (a run still going, TensorBoard): never made up as "now" */
  endTime?: number;
  user?: string;
  lifecycle: Lifecycle;
  /** source id of the parent run, for nested runs */
  parentId?: string;
  /** MLflow's params: strings. Typed configuration goes in `config`. */
  params: Record<string, string>;
  tags: Tags;
  inputs: DatasetInput[];
  /** every series the run has points for (float series are MLflow's metrics), keys unique */
  series: SeriesInfo[];
  /** configuration that keeps its types and nesting (W&B config, Comet params, Neptune attributes) */
  config?: ConfigEntry[];
  /** summary values (W&B summary, Comet's current/min/max), by path */
  summary?: ConfigEntry[];
  /** the run it was forked from, and at which step */
  fork?: ForkPoint;
  /** a group of runs it belongs to (W&B group, Neptune group tags) */
  group?: string;
  /**
   * The source's own run state where `status` cannot say it all (Neptune 2.x `idle`, a W&B exit
   * code), kept verbatim so that nothing is lost in the mapping to `status`.
   */
  sourceState?: string;
  /** MLflow 3: the logged models this run produced (source ids), at which step */
  modelOutputs?: Array<{ modelId: string; step: number }>;
}

/**
 * A point of a float series (an MLflow metric). `timestamp` is always there from MLflow-family
 * sources; the engine gives destinations that need one a point that has one (see
 * engine/encoding.ts), so their writers may rely on it.
 */
export interface MetricPoint extends PointBase {
  key: string;
  /** NaN, ±Infinity and -0 are legitimate values */
  value: number;
}

/** Points of several metrics as they come in a batch, grouped by key, each in its order. */
export function pointsByKey(points: readonly MetricPoint[]): Map<string, MetricPoint[]> {
  const byKey = new Map<string, MetricPoint[]>();
  for (const point of points) {
    const held = byKey.get(point.key);
    if (held) held.push(point);
    else byKey.set(point.key, [point]);
  }
  return byKey;
}

export interface ArtifactFile {
  /** relative path with `/` separators, never absolute, never containing `..` */
  path: string;
  /** bytes, when the source knows it */
  size?: number;
}

export const MLFLOW_TAGS = {
  runName: 'mlflow.runName',
  user: 'mlflow.user',
  note: 'mlflow.note.content',
  parentRunId: 'mlflow.parentRunId',
} as const;

/** The registry stages of MLflow's workspace registry; Unity Catalog has none (aliases only). */
export const MODEL_STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type ModelStage = (typeof MODEL_STAGES)[number];

export interface RegisteredModel {
  name: string;
  description?: string;
  tags: Tags;
  /** alias → version number, as the source numbers its versions */
  aliases: Record<string, string>;
  creationTime?: number;
  lastUpdatedTime?: number;
}

/**
 * Where a model version's files are, in terms a destination can rewrite: inside a run's
 * artifacts, a logged model (MLflow 3), or somewhere outside (kept as a URI).
 */
export type ModelSource =
  | { type: 'run'; runId: string; path: string }
  | { type: 'logged-model'; modelId: string }
  | { type: 'uri'; uri: string };

export interface ModelVersion {
  modelName: string;
  /** a decimal number, as MLflow sends it */
  version: string;
  /** the source string exactly as the source system holds it */
  source: string;
  /** `source` parsed: what a deep copy rewrites */
  location: ModelSource;
  /** a URI that reaches the same files from anywhere (what a shallow copy points at), when known */
  portableSource?: string;
  runId?: string;
  runLink?: string;
  /** MLflow 3: the logged model this version was registered from */
  loggedModelId?: string;
  status: string;
  stage: ModelStage;
  description?: string;
  tags: Tags;
  user?: string;
  creationTime?: number;
  lastUpdatedTime?: number;
}

/** MLflow 3's logged model: a model with its own id, artifacts, params and tags, made by a run or on its own. */
export interface LoggedModel {
  id: string;
  experimentId: string;
  name: string;
  sourceRunId?: string;
  modelType?: string;
  /** LOGGED_MODEL_READY, LOGGED_MODEL_PENDING, LOGGED_MODEL_UPLOAD_FAILED … */
  status: string;
  statusMessage?: string;
  params: Record<string, string>;
  tags: Tags;
  creationTime?: number;
  lastUpdatedTime?: number;
}
