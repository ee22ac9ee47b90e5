/**
 * Comet offline archives (`<key>.zip`, as comet_ml's OfflineExperiment writes them and
 * `comet upload` sends them): one archive is one experiment run; a folder of archives is a project.
 *
 * Detection: a `.zip` file holding `experiment.json`, or a folder whose `.zip` files hold one.
 * Forced with `comet-offline:PATH`. The mapping onto the model is in ./layout.ts.
 *
 * As a destination, `comet-offline:DIR[?workspace=WS&project=PROJ]` writes one archive per run
 * into DIR (./write.ts): the project is PROJ, else the experiment's name; the workspace WS, else
 * the one the source experiment came from (a Comet source), else none (`comet upload` then takes
 * the uploader's default workspace).
 */
import { join } from 'node:path';
import { UsageError } from '../../util/errors.js';
import { isDir, isFile, listFiles } from '../../util/fs.js';
import { decodingSource } from '../encoding/decode.js';
import type { ConnectorFactory } from '../types.js';
import { Archive } from './archive.js';
import { EXPERIMENT_FILE } from './format.js';

/** `DIR?workspace=WS&project=PROJ` into its parts; only those two settings are known. */
function destinationOf(location: string, dryRun?: boolean) {
  const at = location.indexOf('?');
  if (at < 0) return { dir: location, dryRun };
  const settings = new URLSearchParams(location.slice(at + 1));
  for (const key of settings.keys()) if (key !== 'workspace' && key !== 'project') throw new UsageError(`comet-offline:${location}: unknown setting ${JSON.stringify(key)} (known: workspace, project)`);
  const workspace = settings.get('workspace') || undefined;
  const project = settings.get('project') || undefined;
  return { dir: location.slice(0, at), dryRun, ...(workspace ? { workspace } : {}), ...(project ? { project } : {}) };
}

const isZipName = (name: string): boolean => /\.zip$/i.test(name);

async function isArchive(file: string): Promise<boolean> {
  try {
    return await Archive.using(file, async (archive) => archive.has(EXPERIMENT_FILE));
  } catch {
    return false;
  }
}

/** The `.zip` files at `location`: itself, or those of the folder (sorted). */
async function zipsAt(location: string): Promise<string[]> {
  if (isZipName(location) && (await isFile(location))) return [location];
  if (!(await isDir(location))) return [];
  return (await listFiles(location)).filter(isZipName).map((name) => join(location, name));
}

/** Whether one of them is an archive (a folder of other zips is not this format's). */
async function holdsArchive(location: string): Promise<boolean> {
  for (const file of await zipsAt(location)) if (await isArchive(file)) return true;
  return false;
}

export const cometOfflineConnector: ConnectorFactory = {
  name: 'comet-offline',
  description: 'Comet offline archives: one <key>.zip, or a folder of them (a project); written as comet-offline:DIR?workspace=WS&project=PROJ',
  detect: holdsArchive,
  openSource: async (target) => {
    // every zip of the folder is read: one that is not an archive fails alone, named in the report
    const files = (await holdsArchive(target.location)) ? await zipsAt(target.location) : [];
    if (files.length === 0) throw new UsageError(`${target.location} holds no Comet offline archive (a .zip file holding ${EXPERIMENT_FILE}, or a folder of them)`);
    // what the writer was given beyond what Comet holds (forks, groups…) is in the `.trackshift/` encoding
    const { CometOfflineSource } = await import('./read.js');
    return decodingSource(await CometOfflineSource.open(target.location, files));
  },
  openDestination: async (target) => {
    const destination = destinationOf(target.location, target.dryRun);
    if (await isFile(destination.dir)) throw new UsageError(`comet-offline:${target.location}: ${destination.dir} is a file; archives are written into a folder`);
    const { CometOfflineDestination } = await import('./write.js');
    return new CometOfflineDestination(destination);
  },
};
