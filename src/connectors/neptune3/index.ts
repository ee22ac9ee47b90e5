/**
 * Neptune 3.x (neptune-scale) offline runs: `run_operations.sqlite3` databases, one per run, as
 * the client writes them in offline mode (`<logdir>/<project>_<run id>_<ns>/`).
 *
 * Source: the path is such a database, a run folder holding one, a log folder (`.neptune`) of
 * run folders, or the folder that holds `.neptune` (detected from a bare path).
 * Destination: `neptune3:DIR?project=WORKSPACE/PROJECT` — DIR is the log directory (as
 * NEPTUNE_LOG_DIRECTORY; created if missing), the project also from NEPTUNE_PROJECT, as the
 * client reads it. The same URI reads the copies back (`verify`). See write.ts.
 */
import { UsageError } from '../../util/errors.js';
import { decodingSource } from '../encoding/decode.js';
import type { ConnectorFactory, ConnectorTarget } from '../types.js';
import { DATABASE_FILE, findDatabases } from './db.js';

/** `DIR?project=WS/PROJ` → the folder and the project given (the query is trackshift's, never a file name's). */
function parseLocation(location: string): { dir: string; project?: string } {
  const at = location.lastIndexOf('?');
  if (at < 0) return { dir: location };
  const query = new URLSearchParams(location.slice(at + 1));
  const unknown = [...query.keys()].filter((k) => k !== 'project');
  if (unknown.length > 0) throw new UsageError(`neptune3:${location}: unknown option "${unknown[0]}" (accepted: ?project=WORKSPACE/PROJECT)`);
  const project = query.get('project');
  return { dir: location.slice(0, at), ...(project ? { project } : {}) };
}

/** The client's project names: `workspace/project`. */
const PROJECT = /^[^/\s]+\/[^/\s]+$/;

export const neptune3Connector: ConnectorFactory = {
  name: 'neptune3',
  description: `Neptune 3.x (neptune-scale) offline runs: a ${DATABASE_FILE}, a run folder or a .neptune folder; written as neptune3:DIR?project=WS/PROJ`,
  /** a `.neptune` folder may hold Neptune 2.x offline runs too (`offline/`), which another connector reads */
  sharesFolders: true,
  detect: async (location: string) => (await findDatabases(location, { first: true })).length > 0,
  openSource: async (target: ConnectorTarget) => {
    const { dir } = parseLocation(target.location);
    const files = await findDatabases(dir);
    if (files.length === 0) throw new UsageError(`${dir} holds no neptune-scale offline run (no ${DATABASE_FILE} in it, in its folders or in its .neptune folder)`);
    // runs written by trackshift keep what Neptune cannot hold in the .trackshift/ encoding
    const { Neptune3Source } = await import('./read.js');
    return decodingSource(await Neptune3Source.open(target.location, files));
  },
  openDestination: async (target: ConnectorTarget) => {
    const { dir, project = target.env.NEPTUNE_PROJECT } = parseLocation(target.location);
    if (!dir) throw new UsageError('neptune3: give the log directory to write into: neptune3:DIR?project=WORKSPACE/PROJECT');
    if (!project) throw new UsageError(`neptune3:${target.location}: no Neptune project; add ?project=WORKSPACE/PROJECT or set NEPTUNE_PROJECT`);
    if (!PROJECT.test(project)) throw new UsageError(`neptune3: project "${project}" is not WORKSPACE/PROJECT`);
    const { Neptune3Destination } = await import('./write.js');
    return Neptune3Destination.open(`neptune3:${target.location}`, dir, project, Boolean(target.dryRun));
  },
};
