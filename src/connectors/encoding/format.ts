/**
 * The `.trackshift/` encoding, version 1 (docs/encoding.md): what a destination cannot hold
 * natively is kept beside the run, in reserved artifacts, so that the same family's readers
 * (./decode.ts) give back exactly what the source held. The engine writes it
 * (engine/encoding.ts); every JSON form comes from model/json.ts.
 */
import { z } from 'zod';
import type { ConfigEntry, ForkPoint, SeriesInfo } from '../../model/index.js';
import { configEntrySchema, decodeEntry, encodeEntry, forkSchema, seriesInfoSchema } from '../../model/json.js';

/** The reserved folder of a run's artifacts (`.trackshift/long-values/` of the MLflow writer lives there too). */
export const ENCODING_FOLDER = '.trackshift';
export const MANIFEST_PATH = `${ENCODING_FOLDER}/run.json`;
const SERIES_FOLDER = `${ENCODING_FOLDER}/series`;
const FILES_FOLDER = `${ENCODING_FOLDER}/files`;

/** Set on a run that has a manifest, so that readers know without looking at its artifacts. */
export const ENCODED_TAG = 'trackshift.encoded';
export const ENCODING_FORMAT = 'trackshift-encoded-run';
export const ENCODING_VERSION = 1;

/** A sidecar's name in the manifest (relative to `.trackshift/`): by the series' index, so no path ever comes from a key. */
export const sidecarName = (index: number) => `series/${index}.jsonl`;
/** The artifact path of a manifest's sidecar name. */
export const sidecarArtifact = (name: string) => `${ENCODING_FOLDER}/${name}`;
/** Where the file of a file series' point is kept (`SeriesFile.path` is checked by seriesFilePath first). */
export const seriesFileArtifact = (path: string) => `${FILES_FOLDER}/${path}`;

/** The artifacts the encoding owns: readers hide them, and a source's own artifact there cannot be kept beside a manifest. */
export const isReservedArtifact = (path: string): boolean => path === MANIFEST_PATH || path.startsWith(`${SERIES_FOLDER}/`) || path.startsWith(`${FILES_FOLDER}/`);

/** One series of the run, as the source had it, and where its points are. */
export const manifestSeriesSchema = seriesInfoSchema.extend({
  /** the key its points were written under natively (absent: none were) */
  native: z.string().min(1).optional(),
  /** its exact points, one JSON line each (model/json.ts pointToLine); readers use these instead of the native ones */
  file: z.string().regex(/^series\/\d+\.jsonl$/, 'must be series/<n>.jsonl').optional(),
});
export type ManifestSeries = z.infer<typeof manifestSeriesSchema>;

export const manifestSchema = z.object({
  format: z.literal(ENCODING_FORMAT),
  version: z.literal(ENCODING_VERSION, { error: `only version ${ENCODING_VERSION} is known: written by a newer trackshift?` }),
  series: z.array(manifestSeriesSchema).refine((all) => new Set(all.map((s) => s.key)).size === all.length, 'series keys must be unique'),
  config: z.array(configEntrySchema).optional(),
  summary: z.array(configEntrySchema).optional(),
  fork: forkSchema.optional(),
  group: z.string().optional(),
  sourceState: z.string().optional(),
  /** params written only so that typed config can be seen in the destination's UI: readers leave them out */
  viewParams: z.array(z.string()).optional(),
});
export type ManifestJson = z.infer<typeof manifestSchema>;

/** The manifest in model terms. */
export interface Manifest {
  series: ManifestSeries[];
  config?: ConfigEntry[];
  summary?: ConfigEntry[];
  fork?: ForkPoint;
  group?: string;
  sourceState?: string;
  viewParams?: string[];
}

export function manifestToJson(m: Manifest): string {
  const json: ManifestJson = {
    format: ENCODING_FORMAT,
    version: ENCODING_VERSION,
    series: m.series,
    ...(m.config ? { config: m.config.map(encodeEntry) } : {}),
    ...(m.summary ? { summary: m.summary.map(encodeEntry) } : {}),
    ...(m.fork ? { fork: m.fork } : {}),
    ...(m.group !== undefined ? { group: m.group } : {}),
    ...(m.sourceState !== undefined ? { sourceState: m.sourceState } : {}),
    ...(m.viewParams?.length ? { viewParams: m.viewParams } : {}),
  };
  return JSON.stringify(json, null, 1);
}

/** Parses a manifest's text; throws a SyntaxError or ZodError. */
export function manifestFromJson(text: string): Manifest {
  const json = manifestSchema.parse(JSON.parse(text));
  return {
    series: json.series,
    ...(json.config ? { config: json.config.map(decodeEntry) } : {}),
    ...(json.summary ? { summary: json.summary.map(decodeEntry) } : {}),
    ...(json.fork ? { fork: json.fork } : {}),
    ...(json.group !== undefined ? { group: json.group } : {}),
    ...(json.sourceState !== undefined ? { sourceState: json.sourceState } : {}),
    ...(json.viewParams ? { viewParams: json.viewParams } : {}),
  };
}

/** The series as the run lists it. */
export const seriesInfoOf = (s: ManifestSeries): SeriesInfo => ({ key: s.key, type: s.type, ...(s.system !== undefined ? { system: s.system } : {}) });
