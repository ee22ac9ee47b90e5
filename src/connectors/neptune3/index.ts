/**
 * Neptune 3.x (neptune-scale) offline runs: `run_operations.sqlite3` databases, one per run, as
 * the client writes them in offline mode (`<logdir>/<project>_<run id>_<ns>/`). Read only.
 *
 * Detection: the path is such a database, a run folder holding one, a log folder (`.neptune`)
 * of run folders, or the folder that holds `.neptune`.
 */
import { UsageError } from '../../util/errors.js';
import type { ConnectorFactory, ConnectorTarget } from '../types.js';
import { DATABASE_FILE, findDatabases } from './db.js';
import { Neptune3Source } from './read.js';

export { Neptune3Source } from './read.js';

export const neptune3Connector: ConnectorFactory = {
  name: 'neptune3',
  description: `Neptune 3.x (neptune-scale) offline runs: a ${DATABASE_FILE}, a run folder or a .neptune folder (read only)`,
  /** a `.neptune` folder may hold Neptune 2.x offline runs too (`offline/`), which another connector reads */
  sharesFolders: true,
  detect: async (location: string) => (await findDatabases(location, { first: true })).length > 0,
  openSource: async (target: ConnectorTarget) => {
    const files = await findDatabases(target.location);
    if (files.length === 0) throw new UsageError(`${target.location} holds no neptune-scale offline run (no ${DATABASE_FILE} in it, in its folders or in its .neptune folder)`);
    return Neptune3Source.open(target.location, files);
  },
};
