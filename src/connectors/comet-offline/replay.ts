/**
 * The artifacts the reader makes from messages (layout.ts), turned back into messages by the
 * writer: `comet/assets.json` says how each asset was uploaded, `comet/<type>.json` holds the
 * payloads of one message type.
 */
import { z } from 'zod';
import { InvalidInputError } from '../../util/errors.js';
import { ASSETS_MANIFEST } from '../comet-common/layout.js';

const manifestSchema = z.array(
  z.looseObject({
    path: z.string(),
    upload_type: z.string(),
    local_timestamp: z.number().int(),
    additional_params: z.record(z.string(), z.unknown()).nullable(),
  }),
);
export type ManifestEntry = z.infer<typeof manifestSchema>[number];

const payloadsSchema = z.array(z.record(z.string(), z.unknown()));

/** The message types the reader keeps as `comet/<type>.json` (those it maps otherwise are not replayed). */
const OTHER_MESSAGES = /^comet\/([A-Za-z0-9_-]{1,100})\.json$/;
const MAPPED = new Set(['metric_msg', 'parameter_msg', 'log_other', 'standard_output', 'file_upload', 'assets']);

async function parsed<T>(path: string, read: () => Promise<Buffer>, schema: z.ZodType<T>): Promise<T> {
  let json: unknown;
  try {
    json = JSON.parse((await read()).toString('utf8'));
  } catch {
    throw new InvalidInputError(`artifact ${path}`, 'is not JSON');
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new InvalidInputError(`artifact ${path}`, `${result.error.issues[0]?.message} at ${result.error.issues[0]?.path.join('.')}`);
  return result.data;
}

/** The asset manifest, when `path` is it. */
export function manifestOf(path: string, read: () => Promise<Buffer>): Promise<ManifestEntry[]> | undefined {
  return path === ASSETS_MANIFEST ? parsed(path, read, manifestSchema) : undefined;
}

/** The messages a `comet/<type>.json` artifact holds, when `path` is one. */
export function otherMessagesOf(path: string, read: () => Promise<Buffer>): Promise<Array<{ type: string; payload: Record<string, unknown> }>> | undefined {
  const type = OTHER_MESSAGES.exec(path)?.[1];
  if (!type || MAPPED.has(type)) return undefined;
  return parsed(path, read, payloadsSchema).then((payloads) => payloads.map((payload) => ({ type, payload })));
}
