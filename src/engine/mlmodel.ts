/**
 * MLflow's `MLmodel` file names the run (`run_id`) and, in MLflow 3, the logged model
 * (`model_id`) it belongs to. A copy that gets new ids rewrites those lines, and only those,
 * so that the copied model names the copied run; every other byte stays as it was.
 */
import type { Readable } from 'node:stream';

/** MLmodel files are a few kB; a larger one is not a model description and is copied as is. */
export const MLMODEL_MAX_BYTES = 1_000_000;

export const isMlmodelFile = (path: string) => path === 'MLmodel' || path.endsWith('/MLmodel');

const ID_LINE = /^(\s*(?:run_id|model_id|source_run_id):\s*)(["']?)([^\s"']+)\2(\s*)$/gm;

/** The text with every `run_id:` / `model_id:` value found in `ids` replaced by its new id. */
export function rewriteMlmodel(text: string, ids: ReadonlyMap<string, string>): string {
  return text.replace(ID_LINE, (line, head: string, quote: string, id: string, tail: string) => {
    const replacement = ids.get(id);
    return replacement === undefined ? line : `${head}${quote}${replacement}${quote}${tail}`;
  });
}

/** Reads a small file whole; undefined (and the stream destroyed) when it is larger than `max`. */
export async function readSmall(body: Readable, max = MLMODEL_MAX_BYTES): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
