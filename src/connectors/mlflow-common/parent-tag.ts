/**
 * MLflow names a run's parent in the tag `mlflow.parentRunId`. The engine gives a destination
 * the copied parent's id as `run.parentId`; the tag a copy carries follows it: the copied
 * parent's id, or no tag when the source's parent was not copied (the copy is not nested).
 */
import { MLFLOW_TAGS, type Tags } from '../../model/index.js';

/** `tags` with `mlflow.parentRunId` naming `parentId` (a destination id), or without it when there is none. */
export function withParentTag(tags: Tags, parentId: string | undefined): Tags {
  const out = { ...tags };
  if (parentId) out[MLFLOW_TAGS.parentRunId] = parentId;
  // an empty tag names no parent: kept as the source had it
  else if (out[MLFLOW_TAGS.parentRunId]) delete out[MLFLOW_TAGS.parentRunId];
  return out;
}
