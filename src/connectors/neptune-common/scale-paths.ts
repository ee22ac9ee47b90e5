/**
 * How both Neptune 3.x readers (the offline databases', the query API's) name a run's files in
 * the model: a file attribute is the artifact at its attribute path, a file series' point is the
 * file at its `file_ref` path without the run's own first component — each only when it is a safe
 * relative path, else a hashed name (util/paths.ts).
 */
import { keyToFileName, relativePathProblem } from '../../util/paths.js';
import { runComponent } from './scale-names.js';

/** A path that is safe as a relative file path: the Neptune one when it is, else a hashed name. */
export const safeFilePath = (path: string): string => (relativePathProblem(path) === undefined ? path : `neptune-files/${keyToFileName(path)}`);

/**
 * A file series' file as the model names it: its file_ref path without the run's own first
 * component (`<run id>-<digest>/`), which the writer puts back, so a copy keeps the client's paths.
 */
export function seriesFilePath(ref: string, runId: string): string {
  const prefix = `${runComponent(runId)}/`;
  return safeFilePath(ref.startsWith(prefix) && ref.length > prefix.length ? ref.slice(prefix.length) : ref);
}

/**
 * Where a file series' file of that model path is stored when no point names it: the inverse of
 * `seriesFilePath`, as trackshift's 3.x writers store every series file (`<run component>/<path>`),
 * also the files of points only the `.trackshift/` encoding holds.
 */
export const seriesFileRef = (path: string, runId: string): string => `${runComponent(runId)}/${path}`;

/** The name a file series' point shows: the last component of its file_ref path. */
export const seriesFileName = (ref: string): string => ref.split('/').pop() || ref;
