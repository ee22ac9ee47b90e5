/**
 * Two histories of one series compared as multisets of points, streamed: both sides are read
 * page by page in step, and a point seen on one side cancels the same point waiting from the
 * other. What is left waiting at the end is the difference. Memory holds only the points not
 * yet matched: when both sides give the history in the same (or a nearby) order, that is about
 * a page, however long the history is.
 *
 * Which points are "the same" is the caller's `identity` (a point's step, timestamp, epoch,
 * context and value, by the series' type); duplicates count (a point logged twice must be
 * there twice).
 */
import type { PointBase } from '../model/index.js';

/** Points waiting for their twin from the other side, by identity, with how many are waiting. */
class Waiting<P> {
  readonly points = new Map<string, { point: P; count: number }>();

  take(key: string): P | undefined {
    const entry = this.points.get(key);
    if (!entry) return undefined;
    if (--entry.count === 0) this.points.delete(key);
    return entry.point;
  }

  put(key: string, point: P): void {
    const entry = this.points.get(key);
    if (entry) entry.count++;
    else this.points.set(key, { point, count: 1 });
  }

  *all(): Iterable<P> {
    for (const { point, count } of this.points.values()) for (let i = 0; i < count; i++) yield point;
  }
}

/** One side's history being read: its next page already on the way, and its unmatched points. */
class Side<P> {
  readonly mine = new Waiting<P>();
  points = 0;
  done = false;
  private page!: Promise<IteratorResult<P[]>>;
  private readonly pages: AsyncIterator<P[]>;

  constructor(pages: AsyncIterable<P[]>) {
    this.pages = pages[Symbol.asyncIterator]();
    this.fetch();
  }

  get next(): Promise<IteratorResult<P[]>> {
    return this.page;
  }

  /**
   * Fetches the next page ahead. When the other side fails first, nobody awaits it: its failure
   * must not become an unhandled rejection (which ends the process) — the comparison already failed.
   */
  fetch(): void {
    const page = this.pages.next();
    page.catch(() => undefined);
    this.page = page;
  }
}

/** What is left of both histories once every point found on both sides is taken away. */
export interface PointMatching<P> {
  sourcePoints: number;
  destinationPoints: number;
  /** points found on one side only (each counts once) */
  unmatched: number;
  /** the unmatched points by step, steps in order: a changed value shows as one step with points on both sides */
  byStep: Array<{ step: number; source: P[]; destination: P[] }>;
}

/**
 * Matches the points of two histories. `onMatch` is called with both points of each pair found
 * (the file series' bytes are compared there); the pairs of a page are awaited before the next
 * page is read, so that what is in flight stays bounded.
 */
export async function matchPoints<P extends PointBase>(
  sourcePages: AsyncIterable<P[]>,
  destinationPages: AsyncIterable<P[]>,
  identity: (p: P) => string,
  onMatch?: (source: P, destination: P) => Promise<void>,
): Promise<PointMatching<P>> {
  const sides: [Side<P>, Side<P>] = [new Side(sourcePages), new Side(destinationPages)];
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
    side.fetch();
    side.points += result.value.length;
    const pairs: Array<Promise<void>> = [];
    for (const p of result.value) {
      const key = identity(p);
      const twin = other.mine.take(key);
      if (twin === undefined) side.mine.put(key, p);
      else if (onMatch) pairs.push(i === 0 ? onMatch(p, twin) : onMatch(twin, p));
    }
    await Promise.all(pairs);
  }

  const byStep = new Map<number, { step: number; source: P[]; destination: P[] }>();
  const at = (step: number) => {
    let e = byStep.get(step);
    if (!e) byStep.set(step, (e = { step, source: [], destination: [] }));
    return e;
  };
  let unmatched = 0;
  for (const p of sides[0].mine.all()) {
    at(p.step).source.push(p);
    unmatched++;
  }
  for (const p of sides[1].mine.all()) {
    at(p.step).destination.push(p);
    unmatched++;
  }
  return {
    sourcePoints: sides[0].points,
    destinationPoints: sides[1].points,
    unmatched,
    byStep: [...byStep.values()].sort((x, y) => x.step - y.step),
  };
}
