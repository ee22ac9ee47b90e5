/**
 * The files of a `cometx download` folder (cometx/framework/comet/download_manager.py; the
 * `--from wandb` variant: cometx/framework/wandb.py), as `cometx copy` reads them back
 * (cometx/cli/copy.py):
 *
 *   ROOT/WS/PROJ/project_metadata.json  project_notes.md
 *   ROOT/WS/PROJ/EXP/metadata.json  metrics.jsonl  parameters.json  others.jsonl  system_details.json
 *       assets/assets_metadata.jsonl  assets/<type>/<file>  assets/html/experiment.html
 *       run/output.txt  requirements.txt  graph_definition.txt  git_metadata.json  git_diff.patch  script.py  code/…
 *   (wandb)  EXP/metrics_summary.jsonl  EXP/metrics/metric_NNNNN.jsonl
 *
 * Every record is a saved REST response (../comet-common/rest.ts validates and maps them).
 */
import { InvalidInputError } from '../../util/errors.js';

export const FILES = {
  metadata: 'metadata.json',
  metrics: 'metrics.jsonl',
  metricsSummary: 'metrics_summary.jsonl',
  metricsDir: 'metrics',
  parameters: 'parameters.json',
  others: 'others.jsonl',
  systemDetails: 'system_details.json',
  assetsDir: 'assets',
  assetsMetadata: 'assets/assets_metadata.jsonl',
  html: 'assets/html/experiment.html',
  output: 'run/output.txt',
  /** trackshift's: the output as it was logged (stream, chunk, time), which output.txt cannot say; cometx ignores it */
  outputChunks: 'run/trackshift-output.jsonl',
  requirements: 'run/requirements.txt',
  graph: 'run/graph_definition.txt',
  gitMetadata: 'run/git_metadata.json',
  projectMetadata: 'project_metadata.json',
  projectNotes: 'project_notes.md',
} as const;

/** the files whose presence makes a folder an experiment folder */
export const EXPERIMENT_MARKERS = [FILES.metrics, FILES.metricsSummary, FILES.parameters, FILES.others, FILES.assetsMetadata, FILES.systemDetails];
/** folders beside projects that are no project (cometx downloads them too) */
export const NOT_PROJECTS = new Set(['panels', 'artifacts', 'model-registry', 'reports']);

/** The file of the wandb variant's metric number `count` (`metrics/metric_00003.jsonl`). */
export const splitMetricFile = (count: number): string => `${FILES.metricsDir}/metric_${String(count).padStart(5, '0')}.jsonl`;

/**
 * An asset's file name on disk as cometx makes it (download_manager.py sanitize_filename): a
 * leading `/` dropped, `/../` made `/`, `:` made `-`. That alone does not keep a name inside its
 * folder (`../x` passes): the caller still checks the whole path (util/paths.ts).
 */
export function sanitizedName(name: string): string {
  return ('/' + name).split('/../').join('/').replaceAll(':', '-').replace(/^\/+/, '');
}

/** The asset's file relative to the experiment folder: `assets/<type or "asset">/<sanitized disk name>`. */
export const assetFile = (type: string | null | undefined, diskName: string): string => `${FILES.assetsDir}/${type || 'asset'}/${sanitizedName(diskName)}`;

/**
 * JSON as Python's json module writes it: also the bare `NaN`, `Infinity` and `-Infinity` it
 * writes for floats that are not finite (cometx's wandb export writes metric values so), read as
 * the strings Comet's REST API gives for them.
 */
export function parsePythonJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    try {
      return JSON.parse(text.replace(/([:[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '$1"$2"'));
    } catch {
      throw new InvalidInputError(where, 'is not JSON');
    }
  }
}
