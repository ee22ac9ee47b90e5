/**
 * What the three writers of an mlflow-export-import directory (./write.ts: runs and experiments,
 * ./registry.ts: registered models, ./logged-models.ts: MLflow 3 logged models) share: the
 * `system` block every file of the tools starts with, and the names of the folders they use.
 */

const FILE_VERSION = '2';
/** inside a run folder: what is being written; a run folder without run.json is partial */
export const PARTIAL = '.trackshift-partial';
export const LOGGED_MODELS = 'logged_models';

/** The `system` block the tools write at the top of every file (`script` is the tool's script that writes it). */
export function system(script: string) {
  const now = Date.now();
  return {
    package_version: 'trackshift',
    script,
    export_file_version: FILE_VERSION,
    export_time: Math.floor(now / 1000),
    _export_time: new Date(now).toISOString().replace('T', ' ').slice(0, 19),
  };
}
