/**
 * What trackers other than MLflow hold beyond float metrics: typed series (float, string, file,
 * histogram) whose points have any finite step, an optional timestamp, epoch and context; typed
 * configuration kept as paths; run relations (fork, group) and summaries.
 *
 * Float series stay `MetricPoint`s (index.ts) read with `Source.readMetric`, so every MLflow path
 * is unchanged; the other types are read with `Source.readSeries`.
 */

export type SeriesType = 'float' | 'string' | 'file' | 'histogram';
export const SERIES_TYPES: readonly SeriesType[] = ['float', 'string', 'file', 'histogram'];

/** One series of a run, as the run lists it. A key is unique within a run across all types. */
export interface SeriesInfo {
  key: string;
  type: SeriesType;
  /** system telemetry (Neptune `monitoring/…`, `runtime/…`, Comet `sys.*`, W&B stats, MLflow `system/…`) */
  system?: boolean;
}

/** MLflow's own marking of system metrics: their keys start with this. */
export const MLFLOW_SYSTEM_PREFIX = 'system/';

/** A float series as MLflow holds it: its key, marked system when MLflow says so by the prefix. */
export const mlflowSeries = (key: string): SeriesInfo => (key.startsWith(MLFLOW_SYSTEM_PREFIX) ? { key, type: 'float', system: true } : { key, type: 'float' });

/** What every point has besides its value. */
export interface PointBase {
  /** any finite double (Neptune allows fractions; MLflow and W&B hold integers) */
  step: number;
  /** ms since the epoch, when the source has one */
  timestamp?: number;
  /** Comet's epoch */
  epoch?: number;
  /** Comet's `runContext` */
  context?: string;
}

/** Bin edges (one more than the values) with counts or densities. */
export interface Histogram {
  edges: number[];
  kind: 'counts' | 'densities';
  values: number[];
}

/**
 * One file of a file series. `path` names it among the run's series files (relative, `/`
 * separators, never `..`, unique within the run): `Source.readSeriesFile` opens it and
 * `Destination.writeSeriesFile` stores it under the same path.
 */
export interface SeriesFile {
  path: string;
  /** the file's own name, with its extension, as the source holds it */
  name?: string;
  size?: number;
  mimeType?: string;
}

export interface StringPoint extends PointBase {
  value: string;
}
export interface FilePoint extends PointBase {
  value: SeriesFile;
}
export interface HistogramPoint extends PointBase {
  value: Histogram;
}
/** A point of a string, file or histogram series (the series' type says which). */
export type TypedPoint = StringPoint | FilePoint | HistogramPoint;

/** A typed value: of a configuration entry (a param that keeps its type) or a summary entry. */
export type TypedValue =
  | { type: 'string'; value: string }
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'bool'; value: boolean }
  /** ms since the epoch */
  | { type: 'datetime'; value: number }
  | { type: 'stringSet'; value: string[] };

/**
 * A configuration or summary entry at a path: nested configuration (W&B config, Comet's
 * `a|b` params, Neptune namespaces) keeps its structure as path segments, so it can be rebuilt.
 */
export interface ConfigEntry {
  path: string[];
  value: TypedValue;
}

/** A run started from another run's state at a step (Neptune 3.x fork point, W&B `fork_from`). */
export interface ForkPoint {
  /** the parent run's id (the source's, or the destination's when given to a destination) */
  runId: string;
  step?: number;
}
