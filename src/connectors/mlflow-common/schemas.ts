/**
 * The shapes of MLflow REST answers (protobuf JSON), validated at the boundary. Protobuf JSON
 * writes 64-bit integers as numbers or strings (Databricks uses strings) and non-finite
 * doubles as "NaN", "Infinity", "-Infinity"; proto2 leaves out fields that were never set.
 */
import { z } from 'zod';
import type { MetricPoint } from '../../model/index.js';

const INTEGER = /^-?\d+$/;
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

export const int64 = z.union([z.number(), z.string().regex(INTEGER)]).transform(Number);

export const double = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).transform((v) => (typeof v === 'number' ? v : NON_FINITE[v]!));

/** Protobuf JSON's way to write a double that JSON cannot hold. */
export function encodeDouble(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

const keyValue = z.object({ key: z.string(), value: z.string().default('') });
export const keyValues = z.array(keyValue).default([]);

export const lifecycle = z.enum(['active', 'deleted']);

export const experiment = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string().optional(),
  lifecycle_stage: lifecycle.default('active'),
  creation_time: int64.optional(),
  last_update_time: int64.optional(),
  tags: keyValues,
});

export const runStatus = z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']);

const metric = z.object({ key: z.string(), value: double.default(0), timestamp: int64.default(0), step: int64.default(0) });

export const run = z.object({
  info: z.object({
    run_id: z.string(),
    experiment_id: z.string(),
    run_name: z.string().optional(),
    user_id: z.string().optional(),
    status: runStatus.default('RUNNING'),
    start_time: int64.nullish(),
    end_time: int64.nullish(),
    artifact_uri: z.string().optional(),
    lifecycle_stage: lifecycle.default('active'),
  }),
  data: z
    .object({
      metrics: z.array(metric).default([]),
      params: keyValues,
      tags: keyValues,
    })
    .default({ metrics: [], params: [], tags: [] }),
  inputs: z
    .object({
      dataset_inputs: z
        .array(
          z.object({
            tags: keyValues,
            dataset: z.object({
              name: z.string(),
              digest: z.string(),
              source_type: z.string(),
              source: z.string(),
              schema: z.string().optional(),
              profile: z.string().optional(),
            }),
          }),
        )
        .default([]),
    })
    .default({ dataset_inputs: [] }),
  outputs: z
    .object({ model_outputs: z.array(z.object({ model_id: z.string(), step: int64.default(0) })).default([]) })
    .default({ model_outputs: [] }),
});
export type MlflowRun = z.infer<typeof run>;

export const searchExperiments = z.object({ experiments: z.array(experiment).default([]), next_page_token: z.string().optional() });
export const getExperiment = z.object({ experiment: experiment });
export const createExperiment = z.object({ experiment_id: z.string() });
export const searchRuns = z.object({ runs: z.array(run).default([]), next_page_token: z.string().optional() });
export const getRun = z.object({ run: run });
/** A get-history page; its points are checked by `toMetricPoints`, which does not copy them twice. */
export const metricHistory = z.object({ metrics: z.array(z.unknown()).default([]), next_page_token: z.string().optional() });

/**
 * The points of a get-history page as `metric` would check them (the same defaults, int64 as
 * number or string, NaN/±Infinity as strings), by hand: a page holds up to 25,000 points and a
 * schema makes two copies of each. Throws a message naming the point and field.
 */
export function toMetricPoints(raw: readonly unknown[], key: string): MetricPoint[] {
  const points = new Array<MetricPoint>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i];
    if (typeof m !== 'object' || m === null) throw new Error(`metrics.${i}: not an object`);
    const { value, timestamp, step } = m as Record<string, unknown>;
    points[i] = { key, value: doubleField(value, i), timestamp: int64Field(timestamp, i, 'timestamp'), step: int64Field(step, i, 'step') };
  }
  return points;
}

function doubleField(v: unknown, i: number): number {
  if (typeof v === 'number') return v;
  if (v === undefined) return 0;
  if (typeof v === 'string' && v in NON_FINITE) return NON_FINITE[v]!;
  throw new Error(`metrics.${i}.value: not a number (${JSON.stringify(v)})`);
}

function int64Field(v: unknown, i: number, field: string): number {
  if (typeof v === 'number') return v;
  if (v === undefined) return 0;
  if (typeof v === 'string' && INTEGER.test(v)) return Number(v);
  throw new Error(`metrics.${i}.${field}: not an integer (${JSON.stringify(v)})`);
}
export const listArtifacts = z.object({
  root_uri: z.string().optional(),
  files: z.array(z.object({ path: z.string(), is_dir: z.boolean().default(false), file_size: int64.optional() })).default([]),
  next_page_token: z.string().optional(),
});
export const empty = z.object({}).passthrough();

// The model registry

export const modelVersion = z.object({
  name: z.string(),
  version: z.union([z.string(), z.number()]).transform(String),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  user_id: z.string().optional(),
  current_stage: z.string().default('None'),
  description: z.string().optional(),
  source: z.string().default(''),
  run_id: z.string().optional(),
  run_link: z.string().optional(),
  status: z.string().default('READY'),
  status_message: z.string().optional(),
  tags: keyValues,
  aliases: z.array(z.string()).default([]),
  model_id: z.string().optional(),
});
export type MlflowModelVersion = z.infer<typeof modelVersion>;

export const registeredModel = z.object({
  name: z.string(),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  description: z.string().optional(),
  tags: keyValues,
  aliases: z.array(z.object({ alias: z.string(), version: z.union([z.string(), z.number()]).transform(String) })).default([]),
});

export const searchRegisteredModels = z.object({ registered_models: z.array(registeredModel).default([]), next_page_token: z.string().optional() });
export const getRegisteredModel = z.object({ registered_model: registeredModel });
export const searchModelVersions = z.object({ model_versions: z.array(modelVersion).default([]), next_page_token: z.string().optional() });
export const getModelVersion = z.object({ model_version: modelVersion });

// MLflow 3 logged models

export const loggedModel = z.object({
  info: z.object({
    model_id: z.string(),
    experiment_id: z.string(),
    name: z.string().default(''),
    artifact_uri: z.string().optional(),
    creation_timestamp_ms: int64.optional(),
    last_updated_timestamp_ms: int64.optional(),
    source_run_id: z.string().optional(),
    status: z.string().default('LOGGED_MODEL_READY'),
    status_message: z.string().optional(),
    model_type: z.string().optional(),
    tags: keyValues,
  }),
  data: z.object({ params: keyValues }).default({ params: [] }),
});
export type MlflowLoggedModel = z.infer<typeof loggedModel>;
export const searchLoggedModels = z.object({ models: z.array(loggedModel).default([]), next_page_token: z.string().optional() });
export const getLoggedModel = z.object({ model: loggedModel });
