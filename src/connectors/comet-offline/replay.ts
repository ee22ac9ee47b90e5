/**
 * The artifacts the reader makes from messages (layout.ts), turned back into messages by the
 * writer: `comet/assets.json` says how each asset was uploaded, `comet/<type>.json` holds the
 * payloads of one message type.
 */
import { z } from 'zod';
import { ASSETS_MANIFEST } from '../comet-common/layout.js';
import { artifactJson, otherMessagesType, payloadsSchema } from '../comet-common/writing.js';

const manifestSchema = z.array(
  z.looseObject({
    path: z.string(),
    upload_type: z.string(),
    local_timestamp: z.number().int(),
    additional_params: z.record(z.string(), z.unknown()).nullable(),
  }),
);
export type ManifestEntry = z.infer<typeof manifestSchema>[number];

/** The message types the reader maps otherwise than as `comet/<type>.json`: not replayed. */
const MAPPED = new Set(['metric_msg', 'parameter_msg', 'log_other', 'standard_output', 'file_upload', 'assets']);

/** The asset manifest, when `path` is it. */
export function manifestOf(path: string, read: () => Promise<Buffer>): Promise<ManifestEntry[]> | undefined {
  return path === ASSETS_MANIFEST ? read().then((bytes) => artifactJson(path, bytes, manifestSchema).value) : undefined;
}

/** The messages a `comet/<type>.json` artifact holds, when `path` is one. */
export function otherMessagesOf(path: string, read: () => Promise<Buffer>): Promise<Array<{ type: string; payload: Record<string, unknown> }>> | undefined {
  const type = otherMessagesType(path);
  if (!type || MAPPED.has(type)) return undefined;
  return read().then((bytes) => artifactJson(path, bytes, payloadsSchema).value.map((payload) => ({ type, payload })));
}
