/**
 * What a Comet offline archive (`<key>.zip`) holds, as the pinned comet_ml (3.58.8) writes and its
 * offline sender reads it (comet_ml/offline.py, messages.py, schemas/*.schema.json): validated at
 * the boundary with zod. The archive is flat: `experiment.json`, `messages.json` (JSON lines
 * `{"type": T, "payload": {…}}`) and the files `file_upload` messages name (`tmpXXXXXXXX`).
 */
import { z } from 'zod';

export const EXPERIMENT_FILE = 'experiment.json';
export const MESSAGES_FILE = 'messages.json';

/** A Comet experiment key: what the server accepts (alphanumeric, 32 to 50 characters). */
export const EXPERIMENT_KEY = /^[A-Za-z0-9]{32,50}$/;

/** `experiment.json` (schemas/offline-experiment.schema.json; `mode` is the pre-3.19 form of resume_strategy). */
export const experimentSchema = z.looseObject({
  offline_id: z.string().nullish(),
  project_name: z.string().nullable(),
  workspace: z.string().nullable(),
  start_time: z.number().int(),
  stop_time: z.number().int(),
  tags: z.array(z.string()),
  resume_strategy: z.enum(['create', 'get', 'get_or_create']).optional(),
  mode: z.enum(['create', 'append']).optional(),
  customer_error_reported: z.boolean().optional(),
  customer_error_message: z.string().nullish(),
});
export type ExperimentFile = z.infer<typeof experimentSchema>;

/** One line of messages.json. */
export const envelopeSchema = z.object({ type: z.string(), payload: z.looseObject({ message_id: z.number().int().optional() }) });

/** A metric value: a number, or the strings the client writes for NaN and ±Infinity (or a number as text). */
const metricValue = z.union([z.number(), z.string()]);

export const metricPayload = z.looseObject({
  local_timestamp: z.number().int(),
  context: z.string().nullish(),
  metric: z.object({ metricName: z.string(), metricValue, step: z.number().nullish(), epoch: z.number().nullish() }),
});

const scalar = z.union([z.number(), z.string(), z.boolean(), z.null()]);
export const parameterPayload = z.looseObject({
  local_timestamp: z.number().int(),
  context: z.string().nullish(),
  param: z.object({ paramName: z.string(), paramValue: scalar, step: z.number().nullish(), source: z.string().nullish() }).nullish(),
  params: z.object({ paramName: z.string(), paramValue: z.array(scalar), step: z.number().nullish(), source: z.string().nullish() }).nullish(),
});

export const logOtherPayload = z.looseObject({ key: z.unknown(), value: z.unknown() });

export const standardOutputPayload = z.looseObject({
  output: z.string().nullable(),
  stderr: z.boolean().nullable(),
  local_timestamp: z.number().int(),
  context: z.string().nullish(),
});

export const fileUploadPayload = z.looseObject({
  file_path: z.string(),
  upload_type: z.string(),
  local_timestamp: z.number().int(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  additional_params: z
    .looseObject({
      context: z.string().nullish(),
      step: z.number().nullish(),
      epoch: z.number().nullish(),
      fileName: z.string().nullish(),
      figName: z.string().nullish(),
      extension: z.string().nullish(),
    })
    .nullable(),
});
export type FileUpload = z.infer<typeof fileUploadPayload>;

/** histogram3d blobs (comet_ml/data_structure.py Histogram.to_json) */
export const histogramBlob = z.object({
  version: z.number().optional(),
  index_values: z.array(z.tuple([z.number().int().nonnegative(), z.number()])),
  offset: z.number().default(0),
  start: z.number().positive(),
  stop: z.number(),
  step: z.number().gt(1),
});
export type HistogramBlob = z.infer<typeof histogramBlob>;

export const MESSAGE_TYPES = {
  metric: 'metric_msg',
  parameter: 'parameter_msg',
  logOther: 'log_other',
  standardOutput: 'standard_output',
  fileUpload: 'file_upload',
} as const;

/**
 * The log_other `trackshift.run` (layout.ts RUN_OTHER): what a run from elsewhere has that Comet
 * cannot say: its string params (names of the parameters that are MLflow params), tags with
 * values, dataset inputs, user, status, lifecycle, parent, and its experiment's tags.
 */
export const runExtrasSchema = z.object({
  params: z.array(z.string()).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  inputs: z
    .array(
      z.object({
        dataset: z.object({ name: z.string(), digest: z.string(), sourceType: z.string(), source: z.string(), schema: z.string().optional(), profile: z.string().optional() }),
        tags: z.record(z.string(), z.string()),
      }),
    )
    .optional(),
  user: z.string().optional(),
  status: z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']).optional(),
  lifecycle: z.enum(['active', 'deleted']).optional(),
  parentId: z.string().optional(),
  /** parameters (by name) and others (by key) whose path is not the name split on `|` */
  paramPaths: z.record(z.string(), z.array(z.string()).min(1)).optional(),
  otherPaths: z.record(z.string(), z.array(z.string()).min(1)).optional(),
  /** parameters and others written as strings that stand for a datetime (ISO) or a float (NaN, ±Infinity) */
  paramTypes: z.record(z.string(), z.enum(['datetime', 'float'])).optional(),
  otherTypes: z.record(z.string(), z.enum(['datetime', 'float'])).optional(),
  /** the run had no end time (stop_time is its start) */
  noEndTime: z.literal(true).optional(),
  /** the experiment's tags, when they are not what the archive says (`comet.workspace`) */
  experimentTags: z.record(z.string(), z.string()).optional(),
});
export type RunExtras = z.infer<typeof runExtrasSchema>;
