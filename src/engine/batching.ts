/**
 * Splits what a run holds into batches that fit a destination's limits, streaming: metric
 * pages go in, full batches come out, and no more than one batch is held at a time.
 */
import type { MetricPoint } from '../model/index.js';
import type { RunBatch, WriteLimits } from '../connectors/types.js';

/** Rough JSON size of one entry in a batch request, to keep the body under the limit. */
const metricSize = (p: MetricPoint) => p.key.length + 90;
const kvSize = (kv: { key: string; value: string }) => kv.key.length + kv.value.length * 1.1 + 30;

export function emptyBatch(): RunBatch {
  return { params: [], tags: [], metrics: [] };
}

/** Params and tags in batches that fit the limits. */
export function* keyValueBatches(
  params: Array<{ key: string; value: string }>,
  tags: Array<{ key: string; value: string }>,
  limits: WriteLimits,
): Generator<RunBatch> {
  let batch = emptyBatch();
  let bytes = 0;
  const entries = () => batch.params.length + batch.tags.length;
  for (const [list, kind] of [[params, 'params'], [tags, 'tags']] as const) {
    for (const kv of list) {
      const size = kvSize(kv);
      const full = batch[kind].length >= limits[kind] || entries() >= limits.entries || (bytes + size > limits.bytes && entries() > 0);
      if (full) {
        yield batch;
        batch = emptyBatch();
        bytes = 0;
      }
      batch[kind].push(kv);
      bytes += size;
    }
  }
  if (entries() > 0) yield batch;
}

/** Collects metric points and hands out full batches. */
export class MetricBatcher {
  private batch: MetricPoint[] = [];
  private bytes = 0;

  constructor(private readonly limits: WriteLimits) {}

  /** adds points, returning the batches that became full */
  add(points: Iterable<MetricPoint>): MetricPoint[][] {
    const full: MetricPoint[][] = [];
    const max = Math.min(this.limits.metrics, this.limits.entries);
    for (const point of points) {
      const size = metricSize(point);
      if (this.batch.length >= max || (this.bytes + size > this.limits.bytes && this.batch.length > 0)) {
        full.push(this.batch);
        this.batch = [];
        this.bytes = 0;
      }
      this.batch.push(point);
      this.bytes += size;
    }
    return full;
  }

  /** points added and not handed out yet */
  get pending(): number {
    return this.batch.length;
  }

  /** what is left, if anything */
  flush(): MetricPoint[] | undefined {
    if (this.batch.length === 0) return undefined;
    const rest = this.batch;
    this.batch = [];
    this.bytes = 0;
    return rest;
  }
}
