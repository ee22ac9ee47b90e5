/**
 * The trackshift bundle format, version 2 (docs/bundle-format.md is the reference):
 *
 *   trackshift-bundle.json                     { format, version, created, sources }
 *   experiments/<exp>/experiment.json          the experiment record
 *   experiments/<exp>/runs/<run>/run.partial.json   while the run is being written
 *   experiments/<exp>/runs/<run>/run.json      written last, atomically: the run is complete
 *   experiments/<exp>/runs/<run>/series/<file>.jsonl    one file per series (version 1: metrics/)
 *   experiments/<exp>/runs/<run>/series-files/…         the files of file series' points
 *   experiments/<exp>/runs/<run>/artifacts/…   the run's files, as they are
 *
 * This module holds the names and the zod schemas of every JSON file; typed values (points,
 * config entries, forks) are in the model's one JSON codec (model/json.ts).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { RUN_STATUSES, mlflowSeries, type SeriesInfo } from '../../model/index.js';
import { configEntrySchema, forkSchema, seriesInfoSchema, datasetInputSchema } from '../../model/json.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { refuseLink } from '../../util/fs.js';

export const FORMAT_NAME = 'trackshift-bundle';
/**
 * The major version this code writes; it reads every version up to it and refuses a newer one.
 * 2 added typed series, series files, config, summary, fork, group and source state to runs.
 */
export const FORMAT_VERSION = 2;

export const ROOT_FILE = 'trackshift-bundle.json';
export const EXPERIMENTS_DIR = 'experiments';
export const EXPERIMENT_FILE = 'experiment.json';
export const RUNS_DIR = 'runs';
export const RUN_FILE = 'run.json';
export const PARTIAL_RUN_FILE = 'run.partial.json';
/** version 1's folder of float series (metrics); read, never written */
export const METRICS_DIR = 'metrics';
/** version 2: one JSON-lines file per series of any type */
export const SERIES_DIR = 'series';
/** version 2: the files of file series' points, under their `SeriesFile.path` */
export const SERIES_FILES_DIR = 'series-files';
export const ARTIFACTS_DIR = 'artifacts';

// ---- schemas ----

const tags = z.record(z.string(), z.string());
const time = z.number().int();
const lifecycle = z.enum(['active', 'deleted']);
const provenance = z.object({ id: z.string(), uri: z.string().optional() });

export const rootSchema = z.object({
  format: z.literal(FORMAT_NAME),
  // checked before the rest, so that a newer bundle gets a clear message (see checkVersion)
  version: z.number().int().positive(),
  created: z.string(),
  /** every source written into this bundle (redacted URIs) */
  sources: z.array(z.string()).default([]),
});
export type RootFile = z.infer<typeof rootSchema>;

export const experimentSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  tags,
  lifecycle,
  creationTime: time.optional(),
  lastUpdateTime: time.optional(),
  artifactLocation: z.string().optional(),
  source: provenance.optional(),
});
export type ExperimentFile = z.infer<typeof experimentSchema>;

const datasetInput = datasetInputSchema;

/** version 1: a float series (an MLflow metric) */
const metricEntry = z.object({
  key: z.string(),
  /** relative to the run folder: `metrics/<name>.jsonl` */
  file: z.string(),
  points: z.number().int().nonnegative(),
});

/** version 2: a series of any type, where its points are and how many */
const seriesEntry = seriesInfoSchema.extend({
  /** relative to the run folder: `series/<name>.jsonl` */
  file: z.string(),
  points: z.number().int().nonnegative(),
});
export type SeriesEntry = z.infer<typeof seriesEntry>;

export const runSchema = z
  .object({
    id: z.string().min(1),
    experimentId: z.string().min(1),
    name: z.string().optional(),
    status: z.enum(RUN_STATUSES as [string, ...string[]]).transform((s) => s as (typeof RUN_STATUSES)[number]),
    startTime: time.optional(),
    endTime: time.optional(),
    user: z.string().optional(),
    lifecycle,
    parentId: z.string().optional(),
    params: z.record(z.string(), z.string()),
    tags,
    inputs: z.array(datasetInput),
    /** version 2: every series, in the order the source lists them (an array: JSON objects reorder numeric keys) */
    series: z.array(seriesEntry).optional(),
    /** version 1: the float series, in the order the keys were first written */
    metrics: z.array(metricEntry).optional(),
    config: z.array(configEntrySchema).optional(),
    summary: z.array(configEntrySchema).optional(),
    fork: forkSchema.optional(),
    group: z.string().optional(),
    sourceState: z.string().optional(),
    artifacts: z.object({ files: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
    /** MLflow 3: logged models the run produced (their ids in this bundle) */
    modelOutputs: z.array(z.object({ modelId: z.string(), step: z.number().int() })).optional(),
    source: provenance.optional(),
    /** ISO time at which the run was completed in this bundle */
    completed: z.string().optional(),
  })
  .refine((r) => (r.series === undefined) !== (r.metrics === undefined), 'a run lists its series in "series" (version 2) or "metrics" (version 1), exactly one of them');
export type RunFile = z.infer<typeof runSchema>;

/**
 * A run's series as its run.json lists them: version 2's `series`, or version 1's `metrics`
 * (float series; those under MLflow's `system/` are system series, as MLflow marks them).
 */
export function seriesEntries(record: RunFile): SeriesEntry[] {
  return record.series ?? (record.metrics ?? []).map((m) => ({ ...mlflowSeries(m.key), file: m.file, points: m.points }));
}

/** The folder a run's series files must be in: `series/`, or `metrics/` in a version 1 run.json. */
export const seriesDirOf = (record: RunFile): string => (record.series ? SERIES_DIR : METRICS_DIR);

export const seriesInfo = ({ key, type, system }: SeriesEntry): SeriesInfo => ({ key, type, ...(system !== undefined ? { system } : {}) });

// ---- files ----

function describeZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`)
    .join('; ');
}

/** Parses and validates a JSON file; every failure is an InvalidInputError naming the file. */
export async function readJsonFile<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T>> {
  await refuseLink(file, 'a bundle');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(file, `cannot read: ${errorMessage(err)}`);
  }
  return parseJson(file, text, schema);
}

export function parseJson<T extends z.ZodType>(where: string, text: string, schema: T): z.infer<T> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(where, `not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new InvalidInputError(where, `unexpected content: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/** A line of a series file, parsed by `parse` (the model's codec); a bad line is an error naming `where` (file:line). */
export function parseLine<T>(where: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof z.ZodError) throw new InvalidInputError(where, `unexpected content: ${describeZodError(err)}`);
    if (err instanceof SyntaxError) throw new InvalidInputError(where, `not valid JSON: ${err.message}`);
    throw err;
  }
}

/** The version check comes first, so that a newer bundle is refused for its version, not its fields. */
export function checkVersion(file: string, text: string): void {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(file, `not valid JSON: ${errorMessage(err)}`);
  }
  const version = (data as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > FORMAT_VERSION) {
    throw new InvalidInputError(
      file,
      `this bundle has format version ${version}, newer than the version ${FORMAT_VERSION} this trackshift reads; upgrade trackshift to read it`,
    );
  }
}

// ---- the model registry and logged models (optional parts since version 1) ----

export const MODELS_DIR = 'models';
export const MODEL_FILE = 'model.json';
export const VERSIONS_DIR = 'versions';
export const LOGGED_MODELS_DIR = 'logged-models';
export const LOGGED_MODEL_FILE = 'logged-model.json';
export const PARTIAL_LOGGED_MODEL_FILE = 'logged-model.partial.json';

export const modelSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  tags,
  /** alias → version number */
  aliases: z.record(z.string(), z.string().regex(/^\d+$/)),
  creationTime: time.optional(),
  lastUpdatedTime: time.optional(),
});
export type ModelFile = z.infer<typeof modelSchema>;

const modelSource = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), runId: z.string().min(1), path: z.string() }),
  z.object({ type: z.literal('logged-model'), modelId: z.string().min(1) }),
  z.object({ type: z.literal('uri'), uri: z.string() }),
]);

export const versionSchema = z.object({
  modelName: z.string().min(1),
  version: z.string().regex(/^\d+$/),
  source: z.string(),
  location: modelSource,
  portableSource: z.string().optional(),
  runId: z.string().optional(),
  runLink: z.string().optional(),
  loggedModelId: z.string().optional(),
  status: z.string(),
  stage: z.enum(['None', 'Staging', 'Production', 'Archived']),
  description: z.string().optional(),
  tags,
  user: z.string().optional(),
  creationTime: time.optional(),
  lastUpdatedTime: time.optional(),
});
export type VersionFile = z.infer<typeof versionSchema>;

export const loggedModelSchema = z.object({
  id: z.string().min(1),
  experimentId: z.string().min(1),
  name: z.string(),
  sourceRunId: z.string().optional(),
  modelType: z.string().optional(),
  status: z.string(),
  statusMessage: z.string().optional(),
  params: z.record(z.string(), z.string()),
  tags,
  creationTime: time.optional(),
  lastUpdatedTime: time.optional(),
});
export type LoggedModelFile = z.infer<typeof loggedModelSchema>;

/** The value without its undefined fields, so that JSON files hold only what is known. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
