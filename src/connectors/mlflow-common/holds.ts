/**
 * What every MLflow-family store holds natively (server, Databricks, `mlruns`, export-import
 * directories): float series with integer steps and timestamps, string params and tags. The
 * engine encodes the rest under `.trackshift/` (docs/encoding.md), and the family's readers
 * restore it.
 */
import type { DestinationHolds } from '../types.js';

export const MLFLOW_HOLDS: DestinationHolds = {
  seriesTypes: ['float'],
  fractionalSteps: false,
  pointsWithoutTimestamp: false,
  epochs: false,
  contexts: false,
  systemSeries: { prefix: 'system/' },
  typedConfig: false,
  summaries: false,
  forks: false,
  groups: false,
  sourceStates: false,
  // a metric exists by its points: one without any is listed in the manifest
  emptySeries: false,
  maxKeyLength: 250,
  maxParamValueLength: 6000,
  maxTagValueLength: 8000,
  creationTimes: { experiments: false, models: false, versions: false },
};
