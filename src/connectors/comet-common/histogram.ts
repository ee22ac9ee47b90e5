/**
 * Comet's histogram3d blobs (comet_ml/data_structure.py Histogram.to_json) and the model's
 * histograms: the same blob whether it sits in an offline archive or in a downloaded asset.
 */
import { z } from 'zod';
import type { Histogram } from '../../model/index.js';
import { decodeNumber, encodeNumber, histogramSchema } from '../../model/json.js';
import { InvalidInputError } from '../../util/errors.js';
import { DEFAULT_BUCKETS, HISTOGRAM_META, bucketEdges } from './layout.js';

export const histogramBlob = z.object({
  version: z.number().optional(),
  index_values: z.array(z.tuple([z.number().int().nonnegative(), z.number()])),
  offset: z.number().default(0),
  start: z.number().positive(),
  stop: z.number(),
  step: z.number().gt(1),
});
export type HistogramBlob = z.infer<typeof histogramBlob>;

/** A histogram3d blob as bin edges and counts: the buckets from the first to the last that holds a count. */
export function histogramOf(blob: unknown, where: string): Histogram {
  const parsed = histogramBlob.safeParse(blob);
  if (!parsed.success) throw new InvalidInputError(where, `is not a histogram3d (${parsed.error.issues[0]?.message})`);
  const { start, stop, step, offset, index_values } = parsed.data;
  const edges = bucketEdges(start, stop, step, offset);
  if (index_values.length === 0) return { edges: [0, 1], kind: 'counts', values: [0] };
  const indexes = index_values.map(([i]) => i);
  const lo = Math.min(...indexes);
  const hi = Math.min(Math.max(...indexes), edges.length - 2);
  const values = new Array<number>(hi - lo + 1).fill(0);
  for (const [i, count] of index_values) if (i <= hi) values[i - lo]! += count;
  return { edges: edges.slice(lo, hi + 2), kind: 'counts', values };
}

/** A histogram written from elsewhere whose edges are not Comet's: the exact one, kept in the upload's metadata. */
export function keptHistogram(metadata: Record<string, unknown> | null | undefined, where: string): Histogram | undefined {
  const kept = metadata?.[HISTOGRAM_META];
  if (kept === undefined) return undefined;
  const parsed = histogramSchema.safeParse(kept);
  if (!parsed.success) throw new InvalidInputError(where, `metadata ${HISTOGRAM_META} is not a histogram (${parsed.error.issues[0]?.message})`);
  const h = parsed.data;
  return { edges: h.edges.map(decodeNumber), kind: h.kind, values: h.values.map(decodeNumber) };
}

/** A histogram as Comet's histogram3d blob: exact when its edges are Comet's default buckets and it holds counts. */
export function histogramBlobOf(h: Histogram): { blob: Record<string, unknown>; exact: boolean } {
  const { start, stop, step, offset } = DEFAULT_BUCKETS;
  const edges = bucketEdges(start, stop, step, offset);
  const first = edges.indexOf(h.edges[0]!);
  const exact = h.kind === 'counts' && first >= 0 && h.edges.every((e, i) => edges[first + i] === e) && h.values.every((v) => Number.isInteger(v) && v >= 0);
  const counts = new Map<number, number>();
  h.values.forEach((value, i) => {
    if (!Number.isFinite(value) || value === 0) return;
    // the bucket of the bin's middle (its left edge when a side is infinite)
    const left = h.edges[i]!;
    const right = h.edges[i + 1]!;
    const middle = exact ? undefined : Number.isFinite(left + right) ? (left + right) / 2 : Number.isFinite(left) ? left : right;
    const index = exact ? first + i : Math.max(0, edges.findIndex((e, j) => e <= middle! && middle! < edges[j + 1]!));
    counts.set(index, (counts.get(index) ?? 0) + value);
  });
  const index_values = [...counts].sort(([a], [b]) => a - b).map(([i, c]) => [i, c]);
  return { blob: { version: 2, index_values, values: null, offset, start, stop, step }, exact };
}

/** A histogram as the metadata HISTOGRAM_META keeps it. */
export const histogramJson = (h: Histogram) => ({ edges: h.edges.map(encodeNumber), kind: h.kind, values: h.values.map(encodeNumber) });

/** The metadata of a histogram upload: the exact histogram when the blob cannot hold it. */
export const histogramMetadata = (h: Histogram, exact: boolean): Record<string, unknown> => (exact ? {} : { [HISTOGRAM_META]: histogramJson(h) });
