/**
 * MLflow's file store (an `mlruns` folder), read and written directly on disk.
 *
 * Detection: the path is a store when one of its folders (or one under `.trash`) holds a
 * `meta.yaml` with experiment fields. A path that is not a store itself but holds an `mlruns`
 * folder that is one (a project folder) is read from that `mlruns` folder.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { UsageError } from '../../util/errors.js';
import type { ConnectorFactory } from '../types.js';
import { META, ROOT_RESERVED, TRASH } from './format.js';
import { MlrunsSource } from './read.js';
import { MlrunsDestination } from './write.js';
import { decodingSource } from '../encoding/decode.js';

export { MlrunsSource } from './read.js';

/** how many folders detection looks into before saying no (a huge unrelated folder stays cheap) */
const DETECT_LIMIT = 50;

async function holdsExperimentMeta(dir: string): Promise<boolean> {
  try {
    const data = parse(await readFile(join(dir, META), 'utf8')) as Record<string, unknown> | null;
    return typeof data === 'object' && data !== null && 'experiment_id' in data && 'name' in data && 'lifecycle_stage' in data;
  } catch {
    return false;
  }
}

async function isStore(path: string): Promise<boolean> {
  if (!(await stat(path).catch(() => undefined))?.isDirectory()) return false;
  if (await holdsExperimentMeta(join(path, '0'))) return true; // the Default experiment, almost always there
  const candidates: string[] = [];
  for (const base of [path, join(path, TRASH)]) {
    const entries = await readdir(base, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory() && !(base === path && ROOT_RESERVED.has(e.name))) candidates.push(join(base, e.name));
  }
  for (const dir of candidates.slice(0, DETECT_LIMIT)) if (await holdsExperimentMeta(dir)) return true;
  return false;
}

/** The store folder for a path: the path itself, or its `mlruns` sub-folder. */
export async function storeRoot(location: string): Promise<string | undefined> {
  if (await isStore(location)) return location;
  const inner = join(location, 'mlruns');
  if (await isStore(inner)) return inner;
  return undefined;
}

export const mlrunsConnector: ConnectorFactory = {
  name: 'mlruns',
  description: 'an MLflow file store folder (mlruns); a new one is made with mlruns:PATH',
  detect: async (location) => (await storeRoot(location)) !== undefined,
  openSource: async (target) => {
    const root = await storeRoot(target.location);
    if (!root) throw new UsageError(`${target.location} is not an MLflow file store (no <experiment id>/meta.yaml found)`);
    return decodingSource(new MlrunsSource(root));
  },
  openDestination: async (target) => {
    // an existing store, or a new (missing or empty) folder named with mlruns:PATH
    const root = (await storeRoot(target.location)) ?? resolve(target.location);
    if (!(await storeRoot(target.location)) && (await readdir(root).catch(() => [])).length > 0) {
      throw new UsageError(`${target.location} is neither an MLflow file store nor an empty folder; choose an empty folder for a new store`);
    }
    const destination = new MlrunsDestination(root, root);
    if (!target.dryRun) await destination.initialise();
    return destination;
  },
};
