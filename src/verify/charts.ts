/**
 * Thinned histories of a float series on both sides, for the HTML report's charts of the
 * metrics that differ: a few hundred points each, read in bounded memory.
 */
import type { Run } from '../model/index.js';
import type { Source } from '../connectors/types.js';
import type { MetricChart } from './report.js';

/**
 * At most about `max` points of a history, evenly spread, in bounded memory: every point is
 * kept until the buffer is full, then every other one, and the stride doubles.
 */
export async function thinHistory(source: Source, run: Run, key: string, max = 300): Promise<{ points: Array<[number, number]>; nonFinite: number }> {
  let stride = 1;
  let index = 0;
  let nonFinite = 0;
  let kept: Array<[number, number]> = [];
  for await (const page of source.readMetric(run, key)) {
    for (const p of page) {
      // MLflow servers store ±Infinity as ±MAX_VALUE: neither can be drawn
      if (!Number.isFinite(p.value) || Math.abs(p.value) === Number.MAX_VALUE) nonFinite++;
      else if (index % stride === 0) {
        kept.push([p.step, p.value]);
        if (kept.length >= 2 * max) {
          kept = kept.filter((_, i) => i % 2 === 0);
          stride *= 2;
        }
      }
      index++;
    }
  }
  return { points: kept.sort((a, b) => a[0] - b[0]), nonFinite };
}

export async function chartOf(key: string, src: { source: Source; run: Run }, dst: { source: Source; run: Run }): Promise<MetricChart> {
  const [a, b] = await Promise.all([thinHistory(src.source, src.run, key), thinHistory(dst.source, dst.run, key)]);
  return { key, source: a.points, destination: b.points, nonFinite: { source: a.nonFinite, destination: b.nonFinite } };
}
