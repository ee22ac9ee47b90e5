/**
 * MLflow's `MLmodel` file names the run (`run_id`) and, in MLflow 3, the logged model
 * (`model_id`) it belongs to. A copy that gets new ids rewrites those lines, and only those,
 * so that the copied model names the copied run; every other byte stays as it was.
 */
import type { Readable } from 'node:stream';
import { readSmall as readAtMost } from '../../util/streams.js';
import type { IdsInFiles } from '../types.js';

/** MLmodel files are a few kB; a larger one is not a model description and is copied as is. */
export const MLMODEL_MAX_BYTES = 1_000_000;

export const isMlmodelFile = (path: string) => path === 'MLmodel' || path.endsWith('/MLmodel');

const ID_LINE = /^(\s*(?:run_id|model_id|model_uuid|source_run_id):\s*)(["']?)([^\s"']+)\2(\s*)$/gm;
/** MLflow 3 writes the logged model's artifact location here, which holds its id */
const LOCATION_LINE = /^(\s*artifact_path:\s*)(\S.*)$/gm;

/**
 * The text with every `run_id:` / `model_id:` / `model_uuid:` value found in `ids` replaced by
 * its new id, and those ids replaced inside `artifact_path:` (a location in MLflow 3).
 */
export function rewriteMlmodel(text: string, ids: ReadonlyMap<string, string>): string {
  const withIds = text.replace(ID_LINE, (line, head: string, quote: string, id: string, tail: string) => {
    const replacement = ids.get(id);
    return replacement === undefined ? line : `${head}${quote}${replacement}${quote}${tail}`;
  });
  return withIds.replace(LOCATION_LINE, (line, head: string, value: string) => {
    let changed = value;
    for (const [from, to] of ids) if (from.length >= 8) changed = changed.split(from).join(to);
    return `${head}${changed}`;
  });
}

/** An MLmodel file read whole; undefined (and the stream destroyed) when it is too large to be one. */
export const readSmall = (body: Readable, max = MLMODEL_MAX_BYTES): Promise<Buffer | undefined> => readAtMost(body, max);

/** What MLflow-family destinations declare (`Destination.idsInFiles`): their MLmodel files name the copied run and logged model. */
export const MLMODEL_IDS: IdsInFiles = { maxBytes: MLMODEL_MAX_BYTES, holdsIds: isMlmodelFile, rewriteIds: rewriteMlmodel };
