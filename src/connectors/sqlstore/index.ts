/**
 * MLflow's SQL store read directly: `sqlite:///path/mlflow.db` (`?artifacts=DIR` names the
 * server's artifacts destination). postgresql:// and mysql:// URIs are recognised and refused
 * with a message: their drivers are not part of trackshift yet.
 */
import type { ConnectorFactory } from '../types.js';
import { UsageError } from '../../util/errors.js';
import { parseSqliteUri, SqlStoreSource } from './read.js';

export const sqlStoreConnector: ConnectorFactory = {
  name: 'sqlstore',
  description: 'an MLflow SQL database read directly: sqlite:///path/mlflow.db[?artifacts=DIR] (read)',
  detect: async (location) => /^(sqlite|postgresql(\+\w+)?|mysql(\+\w+)?):\/\//i.test(location),
  openSource: async (target) => {
    const sqlite = parseSqliteUri(target.location);
    if (!sqlite) {
      throw new UsageError(`${target.location.replace(/\/\/[^@/]*@/, '//***@')}: trackshift reads MLflow's SQL store from SQLite files (sqlite:///path/mlflow.db); for PostgreSQL or MySQL, read through an MLflow server on that database (trackshift copy http://…)`);
    }
    return new SqlStoreSource(sqlite.file, target.location.replace(/\?.*$/, ''), sqlite.artifactsRoot);
  },
};
