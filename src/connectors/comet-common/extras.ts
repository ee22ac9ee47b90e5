/**
 * The log-other `trackshift.run` (layout.ts RUN_OTHER): what a run from elsewhere has that Comet
 * cannot say, written by every Comet destination and read back by every Comet source.
 */
import { z } from 'zod';
import { InvalidInputError } from '../../util/errors.js';

/** the types a value written as a string stands for (values.ts retyped) */
export const VALUE_TYPES = ['datetime', 'float', 'int', 'bool', 'string', 'stringSet'] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

/**
 * Its string params (names of the parameters that are MLflow params), tags with values, dataset
 * inputs, user, status, lifecycle, parent, and its experiment's tags.
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
  /**
   * parameters and others written as strings that stand for another type: a datetime (ISO), a
   * float (NaN, ±Infinity); where every value is a string (REST, cometx folders) also the types
   * the text alone does not tell (a string "12", a list)
   */
  paramTypes: z.record(z.string(), z.enum(VALUE_TYPES)).optional(),
  otherTypes: z.record(z.string(), z.enum(VALUE_TYPES)).optional(),
  /** the source's own run state (a failed archive's customer_error_message), where nothing else holds it */
  sourceState: z.string().optional(),
  /** the run had no end time (its stop time is its start) */
  noEndTime: z.literal(true).optional(),
  /** the experiment's tags, when they are not what the project says (`comet.workspace`) */
  experimentTags: z.record(z.string(), z.string()).optional(),
});
export type RunExtras = z.infer<typeof runExtrasSchema>;

/** The other's text as extras; `where` names it in the error. */
export function parseExtras(text: string, where: string): RunExtras {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidInputError(where, 'is not JSON');
  }
  const parsed = runExtrasSchema.safeParse(json);
  if (!parsed.success) throw new InvalidInputError(where, `${parsed.error.issues[0]?.message} at ${parsed.error.issues[0]?.path.join('.')}`);
  return parsed.data;
}
