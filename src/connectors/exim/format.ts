/**
 * The files of mlflow-export-import (and its fork mlflow-migration), in every version their
 * published samples show:
 *
 *   run.json         {system, mlflow: {info, params, metrics: {key: [{value, timestamp, step}]}, tags, inputs}}
 *                    older: {export_info, info, params, metrics, tags}; oldest: {info, params,
 *                    metrics: {key: latest value}, tags} (no history)
 *   experiment.json  {system, info, mlflow: {experiment: {experiment_id, name, tags, …}, runs: [ids]}}
 *                    older: {export_info, experiment: {…}, runs: …}
 *   model.json       {system, info, mlflow: {registered_model: {name, description, tags, aliases,
 *                    versions: [{version, source, run_id, current_stage, tags, aliases, model_id, …}]}}}
 *
 * MLflow 3 logged models, as mlflow/mlflow-export-import writes them since October 2025 (its
 * GitHub master, commit 229832e "Add 3.0 Export and Import Logged Models"; not in a PyPI
 * release — 1.2.0 is from 2023 — and not in the mlflow-migration fork, which writes none):
 *
 *   <exp>/experiment.json            mlflow.logged_models: [model ids]
 *   <exp>/runs/<run_id>/run.json     inputs: {dataset_inputs: […], model_inputs: [{model_id}]},
 *                                    outputs: {model_outputs: [{model_id, step}]}
 *   <exp>/logged_models/logged_models.json   mlflow: {experiments: [{id, name, logged_models: [ids]}]}
 *   <exp>/logged_models/<model_id>/logged_model.json   mlflow: the LoggedModel entity's fields
 *                                    (experiment_id, model_id, name, artifact_location, creation_time,
 *                                    last_updated_timestamp, model_type, source_run_id, status
 *                                    READY|PENDING|FAILED|UNSPECIFIED, status_message, tags {}, params {},
 *                                    metrics [], model_uri) + dataset_inputs of its run
 *   <exp>/logged_models/<model_id>/artifacts/…   the model's files
 *
 * export-model puts logged_model.json in `<model dir>/<model_id>/`, export-run in
 * `<run dir>/<model_id>/`, export-model-version in `<dir>/<run_id>/`.
 *
 * Python's json writes NaN and ±Infinity as bare tokens, which JSON does not allow: they are
 * read as such. Tags and params come as objects or as [{key, value}] lists.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { refuseLink } from '../../util/fs.js';
import { datasetMetaSchema } from '../mlflow-common/datasets.js';

const NON_FINITE = { NaN: '__trackshift_NaN__', Infinity: '__trackshift_Inf__', '-Infinity': '__trackshift_-Inf__' } as const;

/** Python json: bare NaN / Infinity / -Infinity outside strings become marker strings. */
export function parsePythonJson(text: string): unknown {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const token = (['-Infinity', 'Infinity', 'NaN'] as const).find((t) => text.startsWith(t, i));
    if (token) {
      out += JSON.stringify(NON_FINITE[token]);
      i += token.length - 1;
      continue;
    }
    out += c;
  }
  return JSON.parse(out);
}

const number = z.union([
  z.number(),
  z.enum([NON_FINITE.NaN, NON_FINITE.Infinity, NON_FINITE['-Infinity'], 'NaN', 'Infinity', '-Infinity']).transform((v) =>
    v.includes('NaN') ? NaN : v.includes('-Inf') ? -Infinity : Infinity,
  ),
  z.string().regex(/^-?\d+(\.\d+)?(e[-+]?\d+)?$/i).transform(Number),
]);
const int = z.union([z.number().int(), z.string().regex(/^-?\d+$/).transform(Number)]);
const optionalTime = z.union([int, z.null()]).optional().transform((t) => (t ? t : undefined));

/** `{k: v}` or `[{key, value}]`, values stringified (old exports wrote numbers in some tags) */
export const keyValues = z
  .union([
    z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    z.array(z.object({ key: z.string(), value: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional() })),
  ])
  .optional()
  .transform((v): Record<string, string> => {
    if (!v) return {};
    const entries = Array.isArray(v) ? v.map((t) => [t.key, t.value] as const) : Object.entries(v);
    return Object.fromEntries(entries.map(([k, value]) => [k, value === null || value === undefined ? '' : String(value)]));
  });

const point = z.object({ value: number, timestamp: int, step: int.default(0) });

const datasetInputs = z.array(
  z.object({
    // the same fields as a dataset of MLflow's file store
    dataset: datasetMetaSchema,
    tags: keyValues,
  }),
);

export const runSchema = z.object({
  info: z.object({
    run_id: z.string().optional(),
    run_uuid: z.string().optional(),
    experiment_id: z.union([z.string(), z.number()]).transform(String),
    user_id: z.string().nullish(),
    status: z.union([z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']), z.number()]).default('FINISHED'),
    start_time: optionalTime,
    end_time: optionalTime,
    lifecycle_stage: z.enum(['active', 'deleted']).default('active'),
    artifact_uri: z.string().nullish(),
    run_name: z.string().nullish(),
  }),
  params: keyValues,
  /** a history per key; the oldest exports kept only the latest value */
  metrics: z.record(z.string(), z.union([z.array(point), number])).optional().default({}),
  tags: keyValues,
  // a list of dataset inputs; mlflow-export-import since 2025: {dataset_inputs, model_inputs}
  inputs: z
    .union([datasetInputs, z.object({ dataset_inputs: datasetInputs.optional().default([]), model_inputs: z.array(z.object({ model_id: z.string() })).nullish() })])
    .optional()
    .default([])
    .transform((inputs) => (Array.isArray(inputs) ? inputs : inputs.dataset_inputs)),
  outputs: z
    .object({ model_outputs: z.array(z.object({ model_id: z.string(), step: int.nullish().transform((s) => s ?? 0) })).nullish() })
    .nullish(),
});
export type EximRun = z.infer<typeof runSchema>;

/** LoggedModelStatus values (mlflow.entities), as their export writes them; proto names and numbers also read */
const LOGGED_MODEL_STATUS: Record<string, string> = {
  UNSPECIFIED: 'LOGGED_MODEL_STATUS_UNSPECIFIED',
  PENDING: 'LOGGED_MODEL_PENDING',
  READY: 'LOGGED_MODEL_READY',
  FAILED: 'LOGGED_MODEL_UPLOAD_FAILED',
  0: 'LOGGED_MODEL_STATUS_UNSPECIFIED',
  1: 'LOGGED_MODEL_PENDING',
  2: 'LOGGED_MODEL_READY',
  3: 'LOGGED_MODEL_UPLOAD_FAILED',
};

/** logged_model.json: an MLflow 3 LoggedModel entity's fields (their underscores stripped) */
export const loggedModelSchema = z.object({
  model_id: z.string().min(1),
  experiment_id: z.union([z.string(), z.number()]).transform(String),
  name: z.string().nullish().transform((n) => n ?? ''),
  artifact_location: z.string().nullish(),
  // the entity keeps its creation time as _creation_time
  creation_time: optionalTime,
  creation_timestamp: optionalTime,
  last_updated_timestamp: optionalTime,
  model_type: z.string().nullish(),
  source_run_id: z.string().nullish(),
  status: z
    .union([z.string(), z.number()])
    .nullish()
    .transform((s) => (s === null || s === undefined ? 'LOGGED_MODEL_READY' : (LOGGED_MODEL_STATUS[String(s)] ?? String(s)))),
  status_message: z.string().nullish(),
  tags: keyValues,
  params: keyValues,
});
export type EximLoggedModel = z.infer<typeof loggedModelSchema>;

export const experimentSchema = z.object({
  experiment: z.object({
    experiment_id: z.union([z.string(), z.number()]).transform(String),
    name: z.string(),
    artifact_location: z.string().nullish(),
    lifecycle_stage: z.enum(['active', 'deleted']).default('active'),
    tags: keyValues,
    creation_time: optionalTime,
    last_update_time: optionalTime,
  }),
});

const alias = z.object({ alias: z.string(), version: z.union([z.string(), z.number()]).transform(String) });
const version = z.object({
  name: z.string().optional(),
  version: z.union([z.string(), z.number()]).transform(String),
  source: z.string().nullish(),
  run_id: z.string().nullish(),
  run_link: z.string().nullish(),
  current_stage: z.string().nullish(),
  description: z.string().nullish(),
  status: z.string().nullish(),
  user_id: z.string().nullish(),
  creation_timestamp: optionalTime,
  last_updated_timestamp: optionalTime,
  tags: keyValues,
  /** UC exports: [alias names] on the version */
  aliases: z.array(z.union([z.string(), alias])).optional().default([]),
  model_id: z.string().nullish(),
  _experiment_name: z.string().nullish(),
});
export type EximVersion = z.infer<typeof version>;

export const modelSchema = z.object({
  registered_model: z.object({
    name: z.string(),
    description: z.string().nullish(),
    creation_timestamp: optionalTime,
    last_updated_timestamp: optionalTime,
    tags: keyValues,
    aliases: z.array(alias).optional().default([]),
    versions: z.array(version).optional().default([]),
  }),
});

/** version.json of export-model-version: one version, beside its model.json and run/ */
export const versionSchema = z.object({ model_version: version });
export type EximModel = z.infer<typeof modelSchema>['registered_model'];

/** The part of an export file that holds the MLflow objects: under "mlflow" since 2023, the top level before. */
export function unwrap(data: unknown): unknown {
  if (data && typeof data === 'object' && 'mlflow' in data && typeof (data as { mlflow: unknown }).mlflow === 'object') return (data as { mlflow: unknown }).mlflow;
  return data;
}

/** Reads an export file and validates its MLflow part; every failure names the file. */
export async function readExportFile<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T>> {
  await refuseLink(file, 'an export');
  let data: unknown;
  try {
    data = parsePythonJson(await readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(file, `not a readable JSON export file: ${errorMessage(err)}`);
  }
  const parsed = schema.safeParse(unwrap(data));
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new InvalidInputError(file, `unexpected content for an mlflow-export-import file: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Run statuses as numbers, as some old exports wrote them */
export const STATUS_NUMBERS: Record<number, 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED'> = {
  1: 'RUNNING',
  2: 'SCHEDULED',
  3: 'FINISHED',
  4: 'FAILED',
  5: 'KILLED',
};
