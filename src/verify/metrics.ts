/**
 * One metric's histories compared as multisets of (step, timestamp, value) points, streamed:
 * both sides are read page by page in step, and a point seen on one side cancels the same
 * point waiting from the other. What is left waiting at the end is the difference. Memory
 * holds only the points not yet matched: when both sides give the history in the same (or a
 * nearby) order, that is about a page, however long the history is.
 *
 * NaN equals NaN and ±Infinity equal themselves; duplicates count (a point logged twice must
 * be there twice).
 */
import type { MetricPoint, Run } from '../model/index.js';
import type { Source } from '../connectors/types.js';
import type { DifferenceList, MetricChart } from './report.js';

const pointKey = (p: MetricPoint) => `${p.step}\u0000${p.timestamp}\u0000${String(p.value)}`;

/** Points waiting for their twin from the other side, by key, with how many are waiting. */
class Waiting {
  readonly points = new Map<string, { point: MetricPoint; count: number }>();

  take(key: string): boolean {
    const entry = this.points.get(key);
    if (!entry) return false;
    if (--entry.count === 0) this.points.delete(key);
    return true;
  }

  put(key: string, point: MetricPoint): void {
    const entry = this.points.get(key);
    if (entry) entry.count++;
    else this.points.set(key, { point, count: 1 });
  }

  *all(): Iterable<MetricPoint> {
    for (const { point, count } of this.points.values()) for (let i = 0; i < count; i++) yield point;
  }
}

/** One side's history being read: its next page already on the way, and its unmatched points. */
class Side {
  readonly mine = new Waiting();
  points = 0;
  done = false;
  private page!: Promise<IteratorResult<MetricPoint[]>>;

  constructor(readonly pages: AsyncGenerator<MetricPoint[]>) {
    this.next = pages.next();
  }

  get next(): Promise<IteratorResult<MetricPoint[]>> {
    return this.page;
  }

  /**
   * The page fetched ahead. When the other side fails first, nobody awaits it: its failure must
   * not become an unhandled rejection (which ends the process) — the comparison already failed.
   */
  set next(page: Promise<IteratorResult<MetricPoint[]>>) {
    page.catch(() => undefined);
    this.page = page;
  }
}

export interface MetricComparison {
  sourcePoints: number;
  destinationPoints: number;
  /** points found on one side only (each counts once) */
  unmatched: number;
}

async function* pagesOf(source: Source | undefined, run: Run | undefined, key: string): AsyncGenerator<MetricPoint[]> {
  if (source && run) yield* source.readMetric(run, key);
}

const describe = (points: MetricPoint[]) =>
  points.length === 0 ? undefined : points.map((p) => `${String(p.value)} (timestamp ${p.timestamp})`).join(', ');

/**
 * Compares metric `key` of `sourceRun` with that of `destinationRun`; either run may lack the
 * key (pass undefined). Differences go to `out` as `<prefix>metric:key@step`.
 */
export async function compareMetric(
  key: string,
  src: { source: Source; run: Run | undefined },
  dst: { source: Source; run: Run | undefined },
  prefix: string,
  out: DifferenceList,
): Promise<MetricComparison> {
  const sides: [Side, Side] = [new Side(pagesOf(src.source, src.run, key)), new Side(pagesOf(dst.source, dst.run, key))];
  // read from the side that is behind, so neither runs ahead of the other by more than a page
  // (the other side's next page is fetched meanwhile)
  while (!sides[0].done || !sides[1].done) {
    const i = sides[1].done || (!sides[0].done && sides[0].points <= sides[1].points) ? 0 : 1;
    const side = sides[i];
    const other = sides[1 - i]!;
    const result = await side.next;
    if (result.done) {
      side.done = true;
      continue;
    }
    side.next = side.pages.next();
    side.points += result.value.length;
    for (const p of result.value) {
      const k = pointKey(p);
      if (!other.mine.take(k)) side.mine.put(k, p);
    }
  }
  const [waitingSource, waitingDestination] = [sides[0].mine, sides[1].mine];
  const [sourcePoints, destinationPoints] = [sides[0].points, sides[1].points];

  // what is left, step by step: a changed value shows as the source's points against the destination's
  const byStep = new Map<number, { source: MetricPoint[]; destination: MetricPoint[] }>();
  const entry = (step: number) => {
    let e = byStep.get(step);
    if (!e) byStep.set(step, (e = { source: [], destination: [] }));
    return e;
  };
  let unmatched = 0;
  for (const p of waitingSource.all()) {
    entry(p.step).source.push(p);
    unmatched++;
  }
  for (const p of waitingDestination.all()) {
    entry(p.step).destination.push(p);
    unmatched++;
  }
  if (!src.run || !hasFloatSeries(src.run, key)) {
    out.add(`${prefix}metric:${key}`, undefined, `${destinationPoints} point(s)`);
  } else if (!dst.run || !hasFloatSeries(dst.run, key)) {
    out.add(`${prefix}metric:${key}`, `${sourcePoints} point(s)`, undefined);
  } else {
    for (const step of [...byStep.keys()].sort((x, y) => x - y)) {
      const { source, destination } = byStep.get(step)!;
      out.add(`${prefix}metric:${key}@${step}`, describe(source), describe(destination));
    }
  }
  return { sourcePoints, destinationPoints, unmatched };
}


export const floatKeys = (run: Run): string[] => run.series.filter((s) => s.type === 'float').map((s) => s.key);
const hasFloatSeries = (run: Run, key: string): boolean => run.series.some((s) => s.type === 'float' && s.key === key);

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
