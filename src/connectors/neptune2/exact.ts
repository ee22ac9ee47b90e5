/**
 * What a Neptune 2.x run cannot hold as the client writes it, kept exactly beside it: the file
 * attribute `trackshift/exact` (extension `jsonl`), one JSON object a line:
 *
 *   {"attribute": {"path": [...], "value": {"type": …, "value": …}}}   an attribute's exact value
 *   {"series": key, "type": "float"|"string", "index": n, "insert": true|false, "point": {s, t, v}}
 *
 * - NaN and ±Infinity: the client drops them (with a warning) and a server refuses them, so a
 *   float attribute holding one is not assigned and a float series' point holding one is not
 *   logged; the line restores it (`insert`: at position `index` of the series' points).
 * - Strings past the client's limits (attributes 16,384 characters, string series values 1,000)
 *   are written cut, as the client cuts them; the line gives back the whole value (`insert`:
 *   false, the point at `index` is replaced).
 * - An image series' point whose file the reader would name otherwise (the reader names them
 *   `<key>/<index>.<ext>`, with the size and type of their bytes): the point with its file's
 *   path, name, size and type as given (replaced; the bytes are those logged).
 *
 * The trackshift reader (read.ts) applies these lines and hides the file; anything else sees a
 * JSON-lines file attribute. Points use the model's JSON form (model/json.ts).
 */
import { z } from 'zod';
import { configEntrySchema } from '../../model/json.js';

export const EXACT_PATH = 'trackshift/exact';
export const EXACT_EXT = 'jsonl';

/** The client's limits (neptune/attributes/atoms/string.py, types/series/string_series.py). */
export const MAX_STRING_LENGTH = 16_384;
export const MAX_STRING_SERIES_LENGTH = 1_000;

export const exactLineSchema = z.union([
  z.object({ attribute: configEntrySchema }),
  z.object({
    series: z.string().min(1),
    type: z.enum(['float', 'string', 'file']),
    index: z.number().int().nonnegative(),
    insert: z.boolean(),
    point: z.looseObject({ s: z.number() }),
  }),
]);
export type ExactLine = z.infer<typeof exactLineSchema>;

/** `run_info/inputs` (MLflow dataset inputs, as JSON) and `run_info/experiment_tags` (the experiment's tags, as JSON). */
export const INPUTS_PATH = 'run_info/inputs';
export const EXPERIMENT_TAGS_PATH = 'run_info/experiment_tags';

const stringMap = z.record(z.string(), z.string());
export const inputsSchema = z.array(
  z.object({
    dataset: z.object({ name: z.string(), digest: z.string(), sourceType: z.string(), source: z.string(), schema: z.string().optional(), profile: z.string().optional() }),
    tags: stringMap,
  }),
);
export const experimentTagsSchema = stringMap;
