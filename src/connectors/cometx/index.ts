/**
 * cometx download folders (`cometx download WS/PROJ` saves `ROOT/WS/PROJ/EXP/…`; also its
 * `--from wandb` variant): read from ROOT, ROOT/WS, ROOT/WS/PROJ or one experiment folder, and
 * written so that `cometx copy` reads them. One experiment folder is one run; its project the
 * experiment. The mapping onto the model is comet-common's, the same as for offline archives.
 *
 * Detection: a folder that is, or holds at most three levels down, an experiment folder (one of
 * its record files: metrics.jsonl, parameters.json, others.jsonl, assets/assets_metadata.jsonl,
 * system_details.json, metrics_summary.jsonl, or a metadata.json cometx wrote). Forced with
 * `cometx:PATH`.
 *
 * As a destination, `cometx:DIR[?workspace=WS&project=PROJ]` writes `DIR/WS/PROJ/KEY/` per run
 * (./write.ts): the project is PROJ, else the experiment's name; the workspace WS, else the one
 * the source experiment came from (a Comet source), else `default`.
 */
import { UsageError } from '../../util/errors.js';
import { isFile } from '../../util/fs.js';
import { decodingSource } from '../encoding/decode.js';
import type { ConnectorFactory } from '../types.js';
import { experimentDepth } from './scan.js';

/** `DIR?workspace=WS&project=PROJ` into its parts; only those two settings are known. */
function destinationOf(location: string, dryRun?: boolean) {
  const at = location.indexOf('?');
  if (at < 0) return { dir: location, dryRun };
  const settings = new URLSearchParams(location.slice(at + 1));
  for (const key of settings.keys()) if (key !== 'workspace' && key !== 'project') throw new UsageError(`cometx:${location}: unknown setting ${JSON.stringify(key)} (known: workspace, project)`);
  const workspace = settings.get('workspace') || undefined;
  const project = settings.get('project') || undefined;
  for (const [what, name] of [['workspace', workspace], ['project', project]] as const) {
    if (name !== undefined && (name.includes('/') || name.includes('\\') || name === '.' || name === '..')) throw new UsageError(`cometx:${location}: the ${what} ${JSON.stringify(name)} is no folder name (no "/", "\\", "." or "..")`);
  }
  return { dir: location.slice(0, at), dryRun, ...(workspace ? { workspace } : {}), ...(project ? { project } : {}) };
}

export const cometxConnector: ConnectorFactory = {
  name: 'cometx',
  description: 'cometx download folders: ROOT, ROOT/WS, ROOT/WS/PROJ or one experiment folder (also --from wandb); written as cometx:DIR?workspace=WS&project=PROJ',
  detect: async (location) => (await experimentDepth(location)) !== undefined,
  openSource: async (target) => {
    if ((await experimentDepth(target.location)) === undefined) throw new UsageError(`${target.location} holds no cometx download (a folder WS/PROJ/EXP with metadata.json, metrics.jsonl, parameters.json, others.jsonl or assets/assets_metadata.jsonl)`);
    // what the writer was given beyond what Comet holds (forks, groups…) is in the `.trackshift/` encoding
    const { CometxSource } = await import('./read.js');
    return decodingSource(await CometxSource.open(target.location));
  },
  openDestination: async (target) => {
    const destination = destinationOf(target.location, target.dryRun);
    if (await isFile(destination.dir)) throw new UsageError(`cometx:${target.location}: ${destination.dir} is a file; cometx folders are written into a folder`);
    const { CometxDestination } = await import('./write.js');
    return new CometxDestination(destination);
  },
};
