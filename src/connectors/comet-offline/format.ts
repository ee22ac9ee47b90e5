/**
 * What a Comet offline archive (`<key>.zip`) holds, as the pinned comet_ml (3.58.8) writes and its
 * offline sender reads it (comet_ml/offline.py, messages.py, schemas/*.schema.json): validated at
 * the boundary with zod. The archive is flat: `experiment.json`, `messages.json` (JSON lines
 * `{"type": T, "payload": {…}}`) and the files `file_upload` messages name (`tmpXXXXXXXX`).
 */
import { z } from 'zod';

export const EXPERIMENT_FILE = 'experiment.json';
export const MESSAGES_FILE = 'messages.json';

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

export const MESSAGE_TYPES = {
  metric: 'metric_msg',
  parameter: 'parameter_msg',
  logOther: 'log_other',
  standardOutput: 'standard_output',
  fileUpload: 'file_upload',
} as const;
