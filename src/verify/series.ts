/**
 * A run's series compared with its copy's: the lists (a series on one side only, a type or a
 * system marking that differs), then every point of every series, streamed (./points.ts), and
 * the bytes of every file series' point.
 *
 * A point is the same point when its step, timestamp, epoch, context and value are. Float
 * values compare as today's metrics did (NaN equals NaN, ±Infinity themselves); histogram bins
 * compare exactly (NaN equals NaN, -0 is not 0, as their JSON form keeps them); a file point by
 * its path, name, size and media type, and, when those match, by the SHA-256 of its bytes.
 *
 * Differences are named `metric:key@step` for float series (as always) and `series:key@step`
 * for the others; `…:key` for a series on one side only, `…:key/type`, `…:key/system`.
 */
import type { LimitFunction } from 'p-limit';
import type { Histogram, MetricPoint, PointBase, Run, SeriesFile, SeriesInfo, SeriesType, TypedPoint } from '../model/index.js';
import { encodeNumber } from '../model/json.js';
import type { Source } from '../connectors/types.js';
import { describeDigest, digest, sameDigest } from './artifacts.js';
import { matchPoints } from './points.js';
import type { DifferenceList } from './report.js';

type Point = MetricPoint | TypedPoint;

export interface SeriesEnd {
  source: Source;
  run: Run;
}

export interface SeriesComparison {
  /** points compared, per type (the source's) */
  points: Record<SeriesType, number>;
  /** file series' files whose bytes were compared, and their bytes (the source's) */
  files: number;
  fileBytes: number;
  /** float series on both sides whose points differ (for charts) */
  differingFloats: string[];
}

/** How a difference in a series is named: float series are metrics, as they always were. */
const nameOf = (series: SeriesInfo) => `${series.type === 'float' ? 'metric' : 'series'}:${series.key}`;

const base = (p: PointBase) => `${p.step}\u0000${p.timestamp}\u0000${p.epoch}\u0000${p.context === undefined ? '' : JSON.stringify(p.context)}\u0000`;
const exactNumbers = (values: number[]) => values.map(encodeNumber);
const fileIdentity = (f: SeriesFile) => JSON.stringify([f.path, f.name ?? null, f.size ?? null, f.mimeType ?? null]);

/** What makes two points of a series of `type` the same point. */
const IDENTITY: Record<SeriesType, (p: Point) => string> = {
  float: (p) => base(p) + String(p.value),
  string: (p) => base(p) + (p.value as string),
  histogram: (p) => {
    const h = p.value as Histogram;
    return base(p) + JSON.stringify([h.kind, exactNumbers(h.edges), exactNumbers(h.values)]);
  },
  file: (p) => base(p) + fileIdentity(p.value as SeriesFile),
};

const LONGEST_VALUE = 200;
const shortened = (text: string) => (text.length <= LONGEST_VALUE ? text : `${text.slice(0, LONGEST_VALUE)}… (${text.length} characters)`);

/** A point's value as the report prints it. */
const VALUE_TEXT: Record<SeriesType, (p: Point) => string> = {
  float: (p) => String(p.value),
  string: (p) => shortened(JSON.stringify(p.value)),
  histogram: (p) => {
    const h = p.value as Histogram;
    return shortened(`${h.kind} [${exactNumbers(h.values).join(', ')}] over edges [${exactNumbers(h.edges).join(', ')}]`);
  },
  file: (p) => {
    const f = p.value as SeriesFile;
    const about = [f.name !== undefined ? `name ${JSON.stringify(f.name)}` : '', f.size !== undefined ? `${f.size} bytes` : '', f.mimeType ?? ''].filter(Boolean);
    return `file ${f.path}${about.length ? ` (${about.join(', ')})` : ''}`;
  },
};

function describe(type: SeriesType, points: Point[]): string | undefined {
  if (points.length === 0) return undefined;
  return points
    .map((p) => {
      const details = [p.timestamp !== undefined ? `timestamp ${p.timestamp}` : 'no timestamp', p.epoch !== undefined ? `epoch ${p.epoch}` : '', p.context !== undefined ? `context ${JSON.stringify(p.context)}` : ''].filter(Boolean);
      return `${VALUE_TEXT[type](p)} (${details.join(', ')})`;
    })
    .join(', ');
}

/** One series' pages: float series through `readMetric`, the others through `readSeries`. */
function pagesOf(end: SeriesEnd, series: SeriesInfo): AsyncIterable<Point[]> {
  if (series.type === 'float') return end.source.readMetric(end.run, series.key);
  if (!end.source.readSeries) throw new Error(`${end.source.uri} lists the ${series.type} series "${series.key}" but cannot read it`);
  return end.source.readSeries(end.run, series);
}

async function countPoints(pages: AsyncIterable<Point[]>): Promise<number> {
  let count = 0;
  for await (const page of pages) count += page.length;
  return count;
}

export interface SeriesOptions {
  /** false: only the lists are compared (a run left out of `--sample`) */
  points: boolean;
  /** file series' files read at once (shared with artifacts) */
  fileLimit: LimitFunction;
}

export async function compareSeries(src: SeriesEnd, dst: SeriesEnd, options: SeriesOptions, prefix: string, out: DifferenceList): Promise<SeriesComparison> {
  const result: SeriesComparison = { points: { float: 0, string: 0, file: 0, histogram: 0 }, files: 0, fileBytes: 0, differingFloats: [] };
  const here = new Map(src.run.series.map((s) => [s.key, s]));
  const there = new Map(dst.run.series.map((s) => [s.key, s]));
  for (const key of [...new Set([...here.keys(), ...there.keys()])].sort()) {
    const x = here.get(key);
    const y = there.get(key);
    if (x && y && x.type !== y.type) {
      out.add(`${prefix}series:${key}/type`, x.type, y.type);
      continue;
    }
    const series = (x ?? y)!;
    const name = `${prefix}${nameOf(series)}`;
    if (x && y && Boolean(x.system) !== Boolean(y.system)) out.add(`${name}/system`, String(Boolean(x.system)), String(Boolean(y.system)));
    if (!x || !y) {
      // the one side's points are counted, never held: nothing on the other side can match them
      const count = options.points ? await countPoints(pagesOf(x ? src : dst, series)) : undefined;
      if (x && count !== undefined) result.points[series.type] += count;
      const text = count === undefined ? `${series.type} series` : `${count} point(s)`;
      out.add(name, x ? text : undefined, y ? text : undefined);
      continue;
    }
    if (!options.points) continue;
    const compared = await compareSeriesPoints(series, src, dst, options.fileLimit, name, out, result);
    result.points[series.type] += compared.sourcePoints;
    if (series.type === 'float' && compared.unmatched > 0) result.differingFloats.push(key);
  }
  return result;
}

async function compareSeriesPoints(series: SeriesInfo, src: SeriesEnd, dst: SeriesEnd, fileLimit: LimitFunction, name: string, out: DifferenceList, result: SeriesComparison) {
  const { type } = series;
  const sameBytes =
    type === 'file'
      ? (a: Point, b: Point) =>
          fileLimit(async () => {
            const at = (a.value as SeriesFile).path;
            const [x, y] = await Promise.all([readFile(src, series, at), readFile(dst, series, at)]);
            result.files++;
            result.fileBytes += x.size;
            if (!sameDigest(x, y)) out.add(`${name}@${a.step}`, `${at}: ${describeDigest(x)}`, `${(b.value as SeriesFile).path}: ${describeDigest(y)}`);
          })
      : undefined;
  const matching = await matchPoints(pagesOf(src, series), pagesOf(dst, series), IDENTITY[type], sameBytes);
  for (const { step, source, destination } of matching.byStep) out.add(`${name}@${step}`, describe(type, source), describe(type, destination));
  return matching;
}

async function readFile(end: SeriesEnd, series: SeriesInfo, path: string) {
  if (!end.source.readSeriesFile) throw new Error(`${end.source.uri} lists the file series "${series.key}" but cannot read its files`);
  return digest(await end.source.readSeriesFile(end.run, path));
}
