/**
 * MLflow's SQL store read directly: `sqlite:///path/mlflow.db`, `postgresql://user:pw@host/db`
 * (`postgresql+psycopg2://…`), `mysql://user:pw@host/db` (`mysql+pymysql://…`, MariaDB too);
 * written directly (./write.ts), into tables `mlflow db upgrade` made.
 * `?artifacts=DIR` names the server's artifacts destination; it is taken off the URI before the
 * driver sees it. The source's `uri` and every message show the URI without its password.
 */
import { dirname, join, resolve } from 'node:path';
import { retrySide, type ConnectorFactory, type ConnectorTarget } from '../types.js';
import { UsageError } from '../../util/errors.js';
import { displayDbUri, retryingDatabase, splitArtifactsParam, type SqlDatabase } from './db.js';
import { SqlStoreSource } from './read.js';
import type { WriteDb } from './statements.js';
import { SqlStoreDestination, checkWritableSchema } from './write.js';
import { decodingSource } from '../encoding/decode.js';

const SCHEMES = /^(sqlite|postgres(?:ql)?(?:\+\w+)?|mysql(?:\+\w+)?|mariadb(?:\+\w+)?):\/\//i;

/** `sqlite:///relative.db`, `sqlite:////absolute.db` (SQLAlchemy's rule): the file. */
export function sqliteFile(uri: string): string | undefined {
  const match = /^sqlite:\/\/\/([^?]*)$/.exec(uri);
  return match ? resolve(match[1]!) : undefined;
}

/**
 * Opens the reader on one of the three kinds of URI (the connector's openSource; `pageSize` is
 * for tests of the metric paging).
 */
export async function openSqlStore(location: string, options: { pageSize?: number; target?: ConnectorTarget } = {}): Promise<SqlStoreSource> {
  const { uri, artifacts } = splitArtifactsParam(location);
  const scheme = SCHEMES.exec(uri)?.[1]?.toLowerCase().replace(/\+.*$/, '');
  const shown = displayDbUri(uri);
  let db: SqlDatabase;
  let baseDir: string;
  if (scheme === 'sqlite') {
    const file = sqliteFile(uri);
    if (!file) throw new UsageError(`${shown}: not a SQLite URI (sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db)`);
    db = (await import('./sqlite.js')).openSqlite(file); // drivers load when used: each costs ~15 MB of memory
    baseDir = dirname(file); // a SQLite file's relative artifact folders are beside it
  } else if (scheme === 'postgres' || scheme === 'postgresql') {
    db = await (await import('./postgres.js')).openPostgres(uri);
    baseDir = process.cwd(); // relative to where the server ran: here, as far as trackshift knows
  } else if (scheme === 'mysql' || scheme === 'mariadb') {
    db = await (await import('./mysql.js')).openMysql(uri);
    baseDir = process.cwd();
  } else {
    throw new UsageError(`${shown}: not an MLflow database URI (sqlite:///…, postgresql://…, mysql://…)`);
  }
  const { target, ...rest } = options;
  if (target) db = retryingDatabase(db, target.retry, retrySide(target));
  return SqlStoreSource.open(db, { uri: shown, artifactsRoot: artifacts ? resolve(artifacts) : join(baseDir, 'mlartifacts'), baseDir, ...rest });
}

/**
 * Opens the writer on SQLite, PostgreSQL, MySQL or MariaDB (one connection per worker on the
 * last three, `workers`).
 */
export async function openSqlStoreDestination(location: string, target?: ConnectorTarget, workers = 4): Promise<SqlStoreDestination> {
  const { uri, artifacts } = splitArtifactsParam(location);
  const scheme = SCHEMES.exec(uri)?.[1]?.toLowerCase().replace(/\+.*$/, '');
  const shown = displayDbUri(uri);
  const dryRun = target?.dryRun === true;
  let db: WriteDb;
  let baseDir: string;
  if (scheme === 'sqlite') {
    const file = sqliteFile(uri);
    if (!file) throw new UsageError(`${shown}: not a SQLite URI (sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db)`);
    const { openSqliteForWriting, sqliteWriteDb } = await import('./sqlite.js');
    db = sqliteWriteDb(openSqliteForWriting(file, shown, dryRun));
    baseDir = dirname(file);
  } else if (scheme === 'postgres' || scheme === 'postgresql') {
    // a connection per run in flight, and one for experiments, models and lookups
    db = await (await import('./postgres.js')).openPostgresForWriting(uri, { connections: workers + 1, dryRun });
    baseDir = process.cwd();
  } else if (scheme === 'mysql' || scheme === 'mariadb') {
    db = await (await import('./mysql.js')).openMysqlForWriting(uri, { connections: workers + 1, dryRun });
    baseDir = process.cwd();
  } else {
    throw new UsageError(`${shown}: not an MLflow database URI (sqlite:///…, postgresql://…, mysql://…)`);
  }
  try {
    const schema = await checkWritableSchema(db, shown);
    return new SqlStoreDestination(db, { uri: shown, artifactsRoot: artifacts ? resolve(artifacts) : join(baseDir, 'mlartifacts'), baseDir }, schema);
  } catch (err) {
    await db.close();
    throw err;
  }
}

export const sqlStoreConnector: ConnectorFactory = {
  name: 'sqlstore',
  description:
    'an MLflow SQL database read directly: sqlite:///path/mlflow.db, postgresql://user:pw@host:port/db, mysql://user:pw@host:port/db, each with [?artifacts=DIR] (read and written)',
  detect: async (location) => SCHEMES.test(location),
  openSource: async (target) => decodingSource(await openSqlStore(target.location, { target })),
  openDestination: (target) => openSqlStoreDestination(target.location, target, target.workers),
};
