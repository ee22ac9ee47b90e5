/**
 * The neutral records every connector reads and writes. They are plain data: connectors map
 * their system's objects to these and back; the engine moves them without knowing the system.
 *
 * Times are milliseconds since the epoch. Ids are the source system's own; a destination
 * creates new ones and records the source id under SOURCE_TAG_PREFIX.
 */

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
  endTime?: number;
  user?: string;
  lifecycle: Lifecycle;
  /** source id of the parent run, for nested runs */
  parentId?: string;
  params: Record<string, string>;
  tags: Tags;
  inputs: DatasetInput[];
  /** keys of every metric the run has a history for */
  metricKeys: string[];
}

export interface MetricPoint {
  key: string;
  /** NaN and ±Infinity are legitimate values */
  value: number;
  timestamp: number;
  /** an integer in MLflow; other trackers allow fractions */
  step: number;
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
