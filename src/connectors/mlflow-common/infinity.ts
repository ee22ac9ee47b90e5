/**
 * MLflow's SQL store cannot hold ±Infinity: it stores ±Number.MAX_VALUE instead. So that a copy
 * through such a server loses nothing, the writer lists the metric keys that held an infinity in
 * the run tag INFINITE_KEYS_TAG, and the reader turns ±MAX_VALUE back into ±Infinity for exactly
 * those keys. Other MLflow clients see ±1.7976931348623157e308, as they would for any run.
 */
import type { MetricPoint, Run } from '../../model/index.js';

export const INFINITE_KEYS_TAG = 'trackshift.metrics.infinite';

export function infiniteKeys(run: Run): Set<string> {
  const raw = run.tags[INFINITE_KEYS_TAG];
  if (!raw) return new Set();
  try {
    const keys: unknown = JSON.parse(raw);
    return new Set(Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : []);
  } catch {
    return new Set();
  }
}

export function restoreInfinities(run: Run, key: string, points: MetricPoint[]): MetricPoint[] {
  if (!infiniteKeys(run).has(key)) return points;
  for (const point of points) {
    if (point.value === Number.MAX_VALUE) point.value = Infinity;
    else if (point.value === -Number.MAX_VALUE) point.value = -Infinity;
  }
  return points;
}
