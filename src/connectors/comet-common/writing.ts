/**
 * What the three Comet destinations (offline archives, cometx folders, the REST API) write the
 * same way: what a Comet experiment holds, how a series point becomes an upload (layout.ts), and
 * how the artifacts the readers make (`comet/assets.json`, `comet/<type>.json`) are taken back.
 */
import { z } from 'zod';
import type { Histogram, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import type { DestinationHolds } from '../types.js';
import { histogramBlobOf, histogramMetadata } from './histogram.js';
import { FILE_META, SERIES_META, SYSTEM_PREFIX, TEXT_KEY, UPLOAD } from './layout.js';

/** What a Comet experiment holds, as the archive and REST destinations write it (cometx's folders hold a little more). */
export const COMET_HOLDS: DestinationHolds = {
  seriesTypes: ['float', 'string', 'file', 'histogram'],
  fractionalSteps: true,
  // local_timestamp is required on every message (the REST calls take the same)
  pointsWithoutTimestamp: false,
  epochs: true,
  contexts: true,
  systemSeries: { prefix: SYSTEM_PREFIX },
  typedConfig: true,
  summaries: true,
  forks: false,
  groups: false,
  sourceStates: false,
  creationTimes: { experiments: false, models: false, versions: false },
};

/** the upload types a file series key may start with (`visualization/dot.png`) */
const FILE_UPLOAD_TYPES = new Set(['visualization', 'audio', 'video', 'asset', 'curve', 'image', 'notebook', 'source_code', 'model-element', 'dataframe', 'confusion-matrix']);

/** How a point of a series is uploaded: its upload type, file name, metadata, further upload parameters and body (none for a file). */
export interface SeriesUpload {
  type: string;
  fileName: string;
  metadata: Record<string, unknown>;
  extra?: Record<string, unknown>;
  body?: string;
}

/** The metadata that keeps a series' key, when it is not the one its upload gives by itself. */
export const seriesKeyMeta = (seriesKey: string, isDefault: boolean): Record<string, unknown> => (isDefault ? {} : { [SERIES_META]: seriesKey });

/** The upload type of a file series: the type its key starts with, else a plain asset. */
export function fileUploadType(seriesKey: string): string {
  const slash = seriesKey.indexOf('/');
  return slash > 0 && FILE_UPLOAD_TYPES.has(seriesKey.slice(0, slash)) ? seriesKey.slice(0, slash) : UPLOAD.asset;
}

/** A histogram point as a histogram3d upload (its blob as Comet's buckets hold it, and what they cannot hold in the metadata). */
export function histogramUpload(seriesKey: string, histogram: Histogram): SeriesUpload {
  const prefix = `${UPLOAD.histogram}/`;
  const fileName = seriesKey.startsWith(prefix) ? seriesKey.slice(prefix.length) : seriesKey;
  const { blob, exact } = histogramBlobOf(histogram);
  return { type: UPLOAD.histogram, fileName, metadata: { ...seriesKeyMeta(seriesKey, seriesKey === prefix + fileName), ...histogramMetadata(histogram, exact) }, body: JSON.stringify(blob) };
}

/** How a point of a string, histogram or file series is uploaded by the client (an archive's file_upload message, a REST upload). */
export function seriesUpload(series: SeriesInfo, point: TypedPoint, index: number): SeriesUpload {
  if (series.type === 'string') return { type: UPLOAD.text, fileName: 'auto-generated-in-the-backend', metadata: seriesKeyMeta(series.key, series.key === TEXT_KEY), body: point.value as string };
  if (series.type === 'histogram') return histogramUpload(series.key, point.value as Histogram);
  const file = point.value as SeriesFile;
  const type = fileUploadType(series.key);
  const fileName = file.name ?? file.path.split('/').pop()!;
  const extra = type === UPLOAD.image ? { figName: fileName } : undefined;
  // the reader names a Comet file by series, index and name: a file named otherwise keeps its own
  const derived = file.name !== undefined && file.mimeType === undefined && file.path === `${series.key}/${index}/${file.name}`;
  const kept = derived ? {} : { [FILE_META]: { path: file.path, ...(file.name !== undefined ? { name: file.name } : {}), ...(file.mimeType !== undefined ? { mimeType: file.mimeType } : {}) } };
  return { type, fileName, metadata: { ...seriesKeyMeta(series.key, series.key === `${type}/${fileName}`), ...kept }, ...(extra ? { extra } : {}) };
}

/** The message type a `comet/<type>.json` artifact holds the payloads of, when `path` is one. */
export const otherMessagesType = (path: string): string | undefined => /^comet\/([A-Za-z0-9_-]{1,100})\.json$/.exec(path)?.[1];
/** `comet/<type>.json`: the list of a message type's payloads */
export const payloadsSchema = z.array(z.record(z.string(), z.unknown()));

/** An artifact's JSON checked against `schema`: what the schema gives, and the JSON as written (its fields in their order). */
export function artifactJson<T>(path: string, bytes: Buffer, schema: z.ZodType<T>): { value: T; json: unknown } {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidInputError(`artifact ${path}`, 'is not JSON');
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new InvalidInputError(`artifact ${path}`, `${result.error.issues[0]?.message} at ${result.error.issues[0]?.path.join('.')}`);
  return { value: result.data, json };
}

/** Sorts artifacts in the order their uploads were made (the manifest's, comet/assets.json), those it does not list after them. */
export function inManifestOrder(artifacts: Array<{ path: string }>, manifest: ReadonlyArray<{ path: string }>): void {
  const rank = (path: string) => {
    const i = manifest.findIndex((m) => m.path === path);
    return i < 0 ? manifest.length : i;
  };
  artifacts.sort((a, b) => rank(a.path) - rank(b.path));
}
