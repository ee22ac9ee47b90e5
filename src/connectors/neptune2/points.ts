/**
 * A series' points, read again from the log between the first and last line the replay found
 * for it, in pages: memory holds one page, whatever the series' length.
 *
 * Steps: a point logged without one gets the previous point's step + 1 (the first 0), which is
 * how a Neptune 2.x server numbers them (the client sends null; its own mock numbers 0, 1, 2 …).
 * Timestamps: the client sends `int(ts * 1000)` ms, and so does this.
 */
import { InvalidInputError } from '../../util/errors.js';
import { LOG_TYPES, type Fields, type Operation } from './format.js';
import { readRecords, type LogFile, type Position } from './lines.js';
import type { SeriesState } from './oplog.js';

export const PAGE_SIZE = 10_000;

export interface RawPoint {
  step: number;
  timestamp: number;
  /** a float, a string, or (file series) the image's base64 data with its name */
  value: number | string | { data: string; name?: string };
  /** the line holding it, and its index among the line's values (to read a file point's bytes again) */
  at: Position;
  item: number;
}

/** The points of series `key` as the replay located them, page by page. */
export async function* seriesPages(files: LogFile[], key: string, series: SeriesState): AsyncGenerator<RawPoint[]> {
  if (!series.start || !series.end) return;
  let page: RawPoint[] = [];
  let previous: number | undefined;
  for await (const { record, position } of readRecords(files, series.start, series.end)) {
    const op = record.obj;
    if (LOG_TYPES[op.type as keyof typeof LOG_TYPES] !== series.type || op.path.join('/') !== key) continue;
    const values = (op as Operation<'LogFloats'>).values as Array<{ value: unknown; step?: number | null; ts: number }>;
    for (const [item, point] of values.entries()) {
      const step = point.step ?? (previous === undefined ? 0 : previous + 1);
      previous = step;
      page.push({ step, timestamp: Math.trunc(point.ts * 1000), value: pointValue(point.value), at: position, item });
      if (page.length >= PAGE_SIZE) {
        yield page;
        page = [];
      }
    }
  }
  if (page.length > 0) yield page;
}

function pointValue(value: unknown): RawPoint['value'] {
  if (typeof value === 'number' || typeof value === 'string') return value;
  // an image: `{data, name, description}`, or the bare base64 of older clients
  if (value === null) return { data: '' };
  const image = value as { data?: string | null; name?: string | null };
  return { data: image.data ?? '', ...(image.name ? { name: image.name } : {}) };
}

/** The bytes a line holds in base64: an `UploadFileContent`'s file, or the `item`-th image of a `LogImages`. */
export async function bytesAt(files: LogFile[], at: Position, item?: number): Promise<Buffer> {
  for await (const { record } of readRecords(files, at, at)) {
    const op = record.obj as unknown as Partial<Fields<'UploadFileContent'> & Fields<'LogImages'>>;
    const data = item === undefined ? op.file_content : pointValue(op.values?.[item]?.value ?? null);
    if (typeof data === 'string') return Buffer.from(data, 'base64');
    if (typeof data === 'object') return Buffer.from(data.data, 'base64');
  }
  throw new InvalidInputError(files[at.file]!.path, `no file bytes at byte ${at.offset}`);
}
