/**
 * How a Comet experiment maps onto the model, shared by every Comet connector (offline archives,
 * cometx download folders, the REST API) and by each one's reader and writer, so that one
 * experiment gives one model whichever form it is read from, and is written back the same:
 *
 * - parameters → typed config at the path their `|`-flattened name spells; parameters the client
 *   logged itself (`source` auto-logged: curr_step, curr_epoch; cli: run_arg_N) go under a first
 *   segment naming that source (`["auto-logged", "curr_step"]`);
 * - log_other → summary entries (`Name` is the run's name; `trackshift.run` holds what a run from
 *   elsewhere has that Comet cannot say: string params, tags with values, inputs, user, status);
 * - metrics → float series (`sys.*` are system series);
 * - `standard_output` → the string series `stdout` / `stderr`, one point per chunk, step = its index;
 * - text samples → the string series `text`; histogram3d → histogram series `histogram3d/<name>`;
 *   images, audio, video and assets uploaded more than once under one name → file series
 *   `<upload type>/<name>`; a series from elsewhere keeps its key in the upload's metadata
 *   (`trackshift_series`);
 * - other assets → artifacts `assets/<upload type>/<name>`, with what Comet keeps about each
 *   (type, step, epoch, context, metadata, time) in `comet/assets.json`;
 * - every other message type (html, installed_packages, os_packages, system_details, git_metadata,
 *   graph, file_name, …) → `comet/<type>.json`, the list of its payloads as the client wrote them.
 *
 * REST records (rest.ts) land in the same places: the REST asset type `image` is the upload type
 * `visualization`; a `histogram_combined_3d` asset (every step of one 3D histogram) is the series
 * `histogram3d/<name>`; html, graph, git metadata, file name, installed and OS packages and
 * system details become the payloads the client's messages would have had, with what REST's
 * system details hold beyond them in `comet/rest/system_details.json`; remote assets become
 * `comet/remote_file.json`.
 */
import { keyToFileName, relativePathProblem } from '../../util/paths.js';

export const SYSTEM_PREFIX = 'sys.';
/** the experiment (project) tag that names the archive's workspace */
export const WORKSPACE_TAG = 'comet.workspace';
/** An experiment's tags as an archive says them: its workspace. */
export const projectTags = (workspace: string | null | undefined): Record<string, string> => (workspace ? { [WORKSPACE_TAG]: workspace } : {});
export const STDOUT_KEY = 'stdout';
export const STDERR_KEY = 'stderr';
export const TEXT_KEY = 'text';
export const NAME_OTHER = 'Name';
export const RUN_OTHER = 'trackshift.run';
/** the upload metadata field that keeps a series' key when it is not the one its upload type gives */
export const SERIES_META = 'trackshift_series';
export const MANUAL_SOURCE = 'manual';
/** the parameter sources the client logs by itself: kept under a first path segment of that name */
export const CLIENT_SOURCES = ['auto-logged', 'cli'];

export const UPLOAD = { text: 'text-sample', histogram: 'histogram3d', image: 'visualization', asset: 'asset' } as const;
/** upload types that are series even when logged once */
export const SERIES_UPLOADS = new Set(['visualization', 'audio', 'video']);

/** the upload metadata field that keeps an artifact's path when it is not `assets/<type>/<name>` */
export const PATH_META = 'trackshift_path';
/** the upload metadata field that keeps a file series point's SeriesFile (path, name, mime type) from elsewhere */
export const FILE_META = 'trackshift_file';
/** the upload metadata field that keeps a histogram Comet's buckets cannot hold exactly */
export const HISTOGRAM_META = 'trackshift_histogram';
export const ASSETS_MANIFEST = 'comet/assets.json';
export const otherMessagesPath = (type: string): string => `comet/${/^[A-Za-z0-9_-]{1,100}$/.test(type) ? `${type}.json` : keyToFileName(type, '.json')}`;

/** A parameter's path in the config. */
export function paramPath(name: string, source: string | null | undefined): string[] {
  const path = name.split('|');
  return source && CLIENT_SOURCES.includes(source) ? [source, ...path] : path;
}

/** A config path back to the parameter name and source. */
export function paramOf(path: string[]): { name: string; source: string } {
  if (path.length > 1 && CLIENT_SOURCES.includes(path[0]!)) return { name: path.slice(1).join('|'), source: path[0]! };
  return { name: path.join('|'), source: MANUAL_SOURCE };
}

/** The name an upload goes by: its file name (last segment of a path), its figure name, or its blob's name. */
export function uploadName(fileName: string | null | undefined, figName: string | null | undefined, blob: string): string {
  const name = (fileName ?? figName ?? blob).split(/[\\/]/).pop() ?? blob;
  return relativePathProblem(name) === undefined ? name : keyToFileName(name);
}

/**
 * Comet's histogram buckets (comet_ml/data_structure.py Histogram.create_bin_values): edges
 * [-inf, …, offset - start, offset, offset + start, …, inf), start·step^k up to stop. Count i is
 * for [values[i], values[i+1]). Computed as Python does, so the doubles are the same.
 */
const buckets = new Map<string, number[]>();
export function bucketEdges(start: number, stop: number, step: number, offset: number): number[] {
  const id = `${start},${stop},${step},${offset}`;
  let values = buckets.get(id);
  if (!values) {
    const below: number[] = [];
    const above: number[] = [];
    for (let value = start; offset + value <= stop; value *= step) {
      below.push(offset - value);
      above.push(offset + value);
    }
    values = [-Infinity, ...below.reverse(), offset, ...above, Infinity];
    buckets.set(id, values);
  }
  return values;
}

export const DEFAULT_BUCKETS = { start: 1e-12, stop: 1e20, step: 1.1, offset: 0 } as const;
