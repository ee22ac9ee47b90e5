/** A model version's `source` as every MLflow store writes it (REST, SQL, file store, exports). */
import type { ModelSource } from '../../model/index.js';

/** Where a version's files are: `runs:/ID/PATH`, `…/ID/artifacts/PATH` of its run, or `models:/m-…`. */
export function parseVersionSource(source: string, runId: string | undefined, modelId: string | undefined): ModelSource {
  const runs = /^runs:\/([^/]+)\/?(.*)$/.exec(source);
  if (runs) return { type: 'run', runId: runs[1]!, path: runs[2]!.replace(/\/+$/, '') };
  if (modelId && source === `models:/${modelId}`) return { type: 'logged-model', modelId };
  const loggedModel = /^models:\/(m-[0-9a-f]+)$/.exec(source);
  if (loggedModel) return { type: 'logged-model', modelId: loggedModel[1]! };
  if (runId) {
    const marker = `/${runId}/artifacts`;
    const at = source.indexOf(marker);
    if (at >= 0 && (source.length === at + marker.length || source[at + marker.length] === '/')) {
      return { type: 'run', runId, path: source.slice(at + marker.length + 1).replace(/\/+$/, '') };
    }
  }
  return { type: 'uri', uri: source };
}
