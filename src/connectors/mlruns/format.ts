/**
 * What MLflow's file store writes (checked against mlflow 3.17's FileStore and the files it
 * produces; see docs/bundle-format.md § "Reading an mlruns folder"):
 *
 *   <root>/<exp_id>/meta.yaml             experiment_id, name, artifact_location, lifecycle_stage,
 *                                         creation_time, last_update_time (+ workspace, trace fields)
 *   <root>/<exp_id>/tags/<key>            experiment tags, one file per tag, `/` in keys = sub-folders
 *   <root>/<exp_id>/datasets/<id>/meta.yaml   name, digest, source_type, source, schema, profile
 *   <root>/<exp_id>/<run_id>/meta.yaml    run_id, run_name, experiment_id, status (1..5), start_time,
 *                                         end_time, user_id, lifecycle_stage, artifact_uri, deleted_time
 *   <root>/<exp_id>/<run_id>/metrics/<key>    lines `timestamp value step` (2, 3 or 5 fields)
 *   <root>/<exp_id>/<run_id>/params/<key>, tags/<key>   the raw value, no newline added
 *   <root>/<exp_id>/<run_id>/inputs/<id>/meta.yaml     source_type DATASET|MODEL, source_id, tags
 *   <root>/<exp_id>/<run_id>/artifacts/…  when artifact_uri is the default local one
 *   <root>/.trash/<exp_id>/…              deleted experiments (their runs say deleted too)
 *   <root>/<exp_id>/<run_id>/outputs/<model_id>/meta.yaml   logged models the run produced
 *   <root>/models/…, <root>/<exp_id>/models/…   the registry and logged models (./registry.ts)
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import type { RunStatus } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';

export const META = 'meta.yaml';
export const TRASH = '.trash';
/** folders at the root that are not experiments */
export const ROOT_RESERVED = new Set([TRASH, 'models']);
/** folders inside an experiment that are not runs (FileStore.RESERVED_EXPERIMENT_FOLDERS) */
export const EXPERIMENT_RESERVED = new Set(['tags', 'datasets', 'traces', 'models']);

/** status integers of mlflow's RunStatus enum */
export const STATUS: Record<number, RunStatus> = { 1: 'RUNNING', 2: 'SCHEDULED', 3: 'FINISHED', 4: 'FAILED', 5: 'KILLED' };

// ids are quoted strings in current versions; older ones may have written bare integers
const id = z.union([z.string().min(1), z.number().int().nonnegative()]).transform(String);
const time = z.number().int().nullish().transform((t) => t ?? undefined);
const lifecycle = z.enum(['active', 'deleted']);

const optionalText = z.string().nullish().transform((t) => t ?? undefined);

/** LoggedModelStatus enum values */
export const LOGGED_MODEL_STATUS: Record<number, string> = { 0: 'LOGGED_MODEL_STATUS_UNSPECIFIED', 1: 'LOGGED_MODEL_PENDING', 2: 'LOGGED_MODEL_READY', 3: 'LOGGED_MODEL_UPLOAD_FAILED' };

/** a logged model's meta.yaml (MLflow 3) */
export const loggedModelMetaSchema = z.object({
  model_id: z.string().min(1),
  experiment_id: z.union([z.string(), z.number()]).transform(String),
  name: z.string().nullish().transform((s) => s ?? ''),
  source_run_id: optionalText,
  model_type: optionalText,
  status: z.union([z.number().int(), z.string()]).nullish(),
  status_message: optionalText,
  creation_timestamp: time,
  last_updated_timestamp: time,
});

export const experimentMetaSchema = z.object({
  experiment_id: id,
  name: z.string(),
  artifact_location: z.string().nullish(),
  lifecycle_stage: lifecycle,
  creation_time: time,
  last_update_time: time,
});

export const runMetaSchema = z.object({
  // run_uuid is the name older versions used
  run_id: id.optional(),
  run_uuid: id.optional(),
  run_name: z.string().nullish(),
  experiment_id: id,
  status: z.union([z.number().int(), z.string()]).transform((s, ctx) => {
    const status = typeof s === 'number' ? STATUS[s] : (Object.values(STATUS).find((v) => v === s) as RunStatus | undefined);
    if (!status) {
      ctx.addIssue({ code: 'custom', message: `unknown run status ${JSON.stringify(s)} (expected 1-5)` });
      return z.NEVER;
    }
    return status;
  }),
  start_time: time,
  end_time: time,
  user_id: z.string().nullish(),
  lifecycle_stage: lifecycle,
  artifact_uri: z.string().nullish(),
});
export type RunMeta = z.infer<typeof runMetaSchema>;

export const inputMetaSchema = z.object({
  source_type: z.string(),
  source_id: z.string(),
  destination_type: z.string().optional(),
  tags: z.record(z.string(), z.string()).nullish(),
});

export const outputMetaSchema = z.object({
  destination_type: z.string(),
  destination_id: z.string(),
  step: z.number().int().nullish(),
});

/** Reads and validates a meta.yaml; every failure names the file. */
export async function readMeta<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(file, `cannot read: ${errorMessage(err)}`);
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new InvalidInputError(file, `not valid YAML: ${errorMessage(err)}`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new InvalidInputError(file, `unexpected content: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Python's repr of a float, as the file store writes it (`nan`, `inf`, `-inf`, `1e+300`, `-0.0`);
 * undefined when the text is not a number.
 */
export function parsePythonFloat(text: string): number | undefined {
  switch (text.toLowerCase()) {
    case 'nan':
    case '-nan':
      return NaN;
    case 'inf':
    case '+inf':
    case 'infinity':
      return Infinity;
    case '-inf':
    case '-infinity':
      return -Infinity;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return undefined;
  return Number(text);
}

/** One metric line: `timestamp value [step [dataset_name dataset_digest]]`. */
export function parseMetricLine(line: string): { timestamp: number; value: number; step: number } | string {
  const parts = line.trim().split(' ');
  if (parts.length !== 2 && parts.length !== 3 && parts.length !== 5) return `expected 2, 3 or 5 fields, found ${parts.length}`;
  const timestamp = Number(parts[0]);
  if (!/^-?\d+$/.test(parts[0]!) || !Number.isSafeInteger(timestamp)) return `bad timestamp ${JSON.stringify(parts[0])}`;
  const value = parsePythonFloat(parts[1]!);
  if (value === undefined) return `bad value ${JSON.stringify(parts[1])}`;
  let step = 0; // lines written before steps existed have none; MLflow reads them as step 0
  if (parts.length >= 3) {
    step = Number(parts[2]);
    if (!/^-?\d+$/.test(parts[2]!) || !Number.isSafeInteger(step)) return `bad step ${JSON.stringify(parts[2])}`;
  }
  return { timestamp, value, step };
}
