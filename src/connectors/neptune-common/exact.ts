/**
 * What a Neptune 2.x run cannot hold as the client writes it, kept exactly beside it: the file
 * attribute `trackshift/exact` (extension `jsonl`), one JSON object a line:
 *
 *   {"attribute": {"path": [...], "value": {"type": …, "value": …}}}   an attribute's exact value
 *   {"series": key, "type": "float"|"string", "index": n, "insert": true|false, "point": {s, t, v}}
 *
 * - NaN and ±Infinity: the client drops them (with a warning) and a server refuses them, so a
 *   float attribute holding one is not assigned and a float series' point holding one is not
 *   logged; the line restores it (`insert`: at position `index` of the series' points).
 * - Strings past the client's limits (attributes 16,384 characters, string series values 1,000)
 *   are written cut, as the client cuts them; the line gives back the whole value (`insert`:
 *   false, the point at `index` is replaced).
 * - An image series' point whose file the reader would name otherwise (the reader names them
 *   `<key>/<index>.<ext>`, with the size and type of their bytes): the point with its file's
 *   path, name, size and type as given (replaced; the bytes are those logged).
 *
 * trackshift's 2.x readers (the offline folders', the API's) apply these lines and hide the file;
 * anything else sees a JSON-lines file attribute. Points use the model's JSON form (model/json.ts).
 */
import { z } from 'zod';
import type { ConfigEntry, MetricPoint, SeriesFile, TypedPoint } from '../../model/index.js';
import { configEntrySchema, decodeEntry, lineToPoint, pointToLine } from '../../model/json.js';
import { imageFile } from './files.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';

export const EXACT_PATH = 'trackshift/exact';
export const EXACT_EXT = 'jsonl';

/** The client's limits (neptune/attributes/atoms/string.py, types/series/string_series.py). */
export const MAX_STRING_LENGTH = 16_384;
export const MAX_STRING_SERIES_LENGTH = 1_000;

const exactLineSchema = z.union([
  z.object({ attribute: configEntrySchema }),
  z.object({
    series: z.string().min(1),
    type: z.enum(['float', 'string', 'file']),
    index: z.number().int().nonnegative(),
    insert: z.boolean(),
    point: z.looseObject({ s: z.number() }),
  }),
]);

/** A point kept exactly: inserted at `index` of its series, or replacing the point there. */
export interface ExactPoint {
  index: number;
  insert: boolean;
  point: MetricPoint | TypedPoint;
}

/** The lines of a `trackshift/exact` file (`where` names it in errors): attributes, and points by series in index order. */
export function parseExact(text: string, where: string): { attributes: ConfigEntry[]; series: Map<string, { type: 'float' | 'string' | 'file'; points: ExactPoint[] }> } {
  const attributes: ConfigEntry[] = [];
  const series = new Map<string, { type: 'float' | 'string' | 'file'; points: ExactPoint[] }>();
  for (const [n, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      const parsed = exactLineSchema.parse(JSON.parse(line));
      if ('attribute' in parsed) {
        attributes.push(decodeEntry(parsed.attribute));
        continue;
      }
      const text = JSON.stringify(parsed.point);
      const point = parsed.type === 'float' ? lineToPoint('float', text, parsed.series) : lineToPoint(parsed.type, text);
      const held = series.get(parsed.series) ?? { type: parsed.type, points: [] };
      held.points.push({ index: parsed.index, insert: parsed.insert, point });
      series.set(parsed.series, held);
    } catch (err) {
      throw new InvalidInputError(`${where}:${n + 1}`, `is not a line trackshift writes: ${errorMessage(err)}`);
    }
  }
  for (const { points } of series.values()) points.sort((a, b) => a.index - b.index);
  return { attributes, series };
}

/** A series' pages with the points kept exactly put back in their places (`onReplace` sees each point replaced). */
export async function* withExactPoints<P extends MetricPoint | TypedPoint>(exact: ExactPoint[] | undefined, pages: AsyncIterable<P[]>, onReplace?: (read: P, exact: P) => void): AsyncGenerator<P[]> {
  if (!exact) return yield* pages;
  let next = 0;
  let index = 0;
  for await (const page of pages) {
    const out: P[] = [];
    for (const point of page) {
      while (exact[next]?.insert && exact[next]!.index === index) {
        out.push(exact[next++]!.point as P);
        index++;
      }
      if (exact[next] && !exact[next]!.insert && exact[next]!.index === index) {
        const replaced = exact[next++]!.point as P;
        onReplace?.(point, replaced);
        out.push(replaced);
      } else out.push(point);
      index++;
    }
    if (out.length > 0) yield out;
  }
  const rest = exact.slice(next).map((e) => e.point as P);
  if (rest.length > 0) yield rest;
}

/**
 * The exact line for the `index`-th point of image series `key` when the readers would name it
 * otherwise (`<key>/<index>.<ext>`, with the size and type of its bytes); undefined when they
 * name it as given.
 */
export function imageExactLine(key: string, index: number, bytes: Buffer, point: TypedPoint): object | undefined {
  const file = point.value as SeriesFile;
  const asRead = imageFile(key, index, bytes, file.name);
  if (asRead.path === file.path && asRead.mimeType === file.mimeType && (file.size === undefined || file.size === asRead.size)) return undefined;
  return { series: key, type: 'file', index, insert: false, point: JSON.parse(pointToLine('file', point)) as object };
}
