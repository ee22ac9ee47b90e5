/**
 * An MLflow database on MySQL or MariaDB, read and written with `mysql2`: a small pool, so that runs read in
 * parallel do not wait for one another. The URI is SQLAlchemy's, as MLflow takes it
 * (`mysql://user:password@host:port/db`, `mysql+pymysql://…`, `?unix_socket=PATH`).
 */
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { TrackshiftError, UsageError, errorMessage } from '../../util/errors.js';
import { redact } from '../../util/redact.js';
import { errorCode } from '../../util/retry.js';
import { connectionError, displayDbUri, queryError, splitDbUri, toRow, type Row, type SqlDatabase, type SqlParam } from './db.js';
import { insertRowsWith, type SqlWriter, type WriteDb, type WriteParam, type WriteRow } from './statements.js';

/** The reader's double-quoted identifiers as MySQL quotes them (its literals hold no double quote). */
export function backtickIdentifiers(sql: string): string {
  return sql.replace(/"/g, '`');
}

const decode = (text: string) => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/** The URI's parts as mysql2 takes them; query parameters other than these are refused by name. */
export function mysqlOptions(uri: string, label: string): { options: mysql.PoolOptions; password?: string } {
  const parts = splitDbUri(uri);
  if (!parts || !/^(mysql|mariadb)(\+\w+)?$/i.test(parts.scheme)) throw new UsageError(`${label}: not a MySQL URI (mysql://user:password@host:port/database)`);
  const { userinfo, host: hostport, query } = parts;
  const database = parts.path.replace(/^\//, '');
  const colon = userinfo?.indexOf(':') ?? -1;
  const user = userinfo === undefined ? undefined : decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = userinfo !== undefined && colon >= 0 ? decode(userinfo.slice(colon + 1)) : undefined;
  const hostMatch = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(hostport);
  if (!hostMatch) throw new UsageError(`${label}: cannot read the host and port "${hostport}"`);
  const options: mysql.PoolOptions = {
    host: decode(hostMatch[1]!.replace(/^\[|\]$/g, '')) || 'localhost',
    port: hostMatch[2] ? Number(hostMatch[2]) : 3306,
    ...(user ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(database ? { database: decode(database) } : {}),
    charset: 'utf8mb4',
  };
  const ssl: Record<string, string | boolean> = {};
  for (const part of (query ?? '').split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = decode(eq < 0 ? '' : part.slice(eq + 1));
    const file = (what: string) => {
      try {
        return readFileSync(value, 'utf8');
      } catch (err) {
        throw new UsageError(`${label}: cannot read the ${what} ${value} (${key}): ${errorMessage(err)}`);
      }
    };
    if (key === 'charset') continue; // always utf8mb4, as MLflow's tables are
    else if (key === 'unix_socket') options.socketPath = value;
    else if (key === 'ssl_ca') ssl.ca = file('CA certificate');
    else if (key === 'ssl_cert') ssl.cert = file('client certificate');
    else if (key === 'ssl_key') ssl.key = file('client key');
    else if (key === 'ssl_check_hostname' || key === 'ssl_verify_cert') ssl.rejectUnauthorized = !/^(0|false|no)$/i.test(value);
    else if (key === 'ssl') ssl.rejectUnauthorized = ssl.rejectUnauthorized ?? true;
    else throw new UsageError(`${label}: the query parameter "${key}" is not understood (trackshift takes unix_socket, charset, ssl, ssl_ca, ssl_cert, ssl_key, ssl_verify_cert, artifacts)`);
  }
  if (Object.keys(ssl).length > 0) options.ssl = ssl;
  return { options, ...(password !== undefined ? { password } : {}) };
}

export async function openMysql(uri: string): Promise<SqlDatabase> {
  const label = displayDbUri(uri);
  const { options, password } = mysqlOptions(uri, label);
  // as decoded, and as written in the URI
  const written = splitDbUri(uri)?.userinfo?.split(':').slice(1).join(':');
  const secrets = [password, written];
  const pool = mysql.createPool({ ...options, connectionLimit: 4, connectTimeout: 15_000, dateStrings: false, supportBigNumbers: true, bigNumberStrings: false });
  // an idle connection that the server closes must not take the process down
  pool.pool.on('error', () => {});
  try {
    const connection = await pool.getConnection();
    connection.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw connectionError(err, label, secrets);
  }
  const all = async (sql: string, params: readonly SqlParam[] = []): Promise<Row[]> => {
    try {
      const [rows] = await pool.query(backtickIdentifiers(sql), params as SqlParam[]);
      return (rows as Array<Record<string, unknown>>).map((r) => toRow(r, label));
    } catch (err) {
      throw queryError(err, label, secrets);
    }
  };
  return {
    label,
    all,
    columns: async (table: string) =>
      new Set((await all('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?', [table])).map((r) => String(r.name))),
    close: async () => {
      await pool.end();
    },
  };
}

/**
 * The writer's view of a MySQL or MariaDB database: a pool of `connections`, a session (a
 * connection kept) for each run in flight with its staging table a temporary table of that
 * connection. SQLite's `INSERT OR IGNORE` becomes `ON DUPLICATE KEY UPDATE` of nothing (not
 * `INSERT IGNORE`, which would also turn a value too long into a cut one), `INSERT OR REPLACE`
 * an upsert on the table's primary key; `RETURNING experiment_id` the insert id. Each connection
 * takes NO_AUTO_VALUE_ON_ZERO, as MLflow's own does, so that experiment 0 can be written.
 */
export async function openMysqlForWriting(uri: string, options: { connections: number; dryRun: boolean }): Promise<WriteDb> {
  const label = displayDbUri(uri);
  const { options: connection, password } = mysqlOptions(uri, label);
  const written = splitDbUri(uri)?.userinfo?.split(':').slice(1).join(':');
  const secrets = [password, written];
  const pool = mysql.createPool({ ...connection, connectionLimit: Math.max(2, options.connections), connectTimeout: 15_000, supportBigNumbers: true, bigNumberStrings: false });
  pool.pool.on('error', () => {});
  pool.pool.on('connection', (c) => {
    c.query("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')");
    // a statement of its own: SET TRANSACTION is not a variable of a SET list (MariaDB refuses it there)
    if (options.dryRun) c.query('SET SESSION TRANSACTION READ ONLY');
  });
  try {
    (await pool.getConnection()).release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw connectionError(err, label, secrets);
  }
  const keys = new Map<string, Promise<string[]>>();
  const primaryKey = (table: string) => {
    let key = keys.get(table);
    if (!key) {
      key = pool
        .query("SELECT column_name AS name FROM information_schema.key_column_usage WHERE table_schema = DATABASE() AND table_name = ? AND constraint_name = 'PRIMARY' ORDER BY ordinal_position", [table])
        .then(([rows]) => (rows as Array<{ name: string }>).map((r) => String(r.name)));
      keys.set(table, key);
    }
    return key;
  };
  const translate = async (sql: string): Promise<string> => {
    const match = /^\s*INSERT OR (IGNORE|REPLACE) INTO (\w+) \(([^)]*)\)/.exec(sql);
    let text = sql;
    if (match) {
      const [whole, how, table, list] = match as unknown as [string, string, string, string];
      const columns = list.split(',').map((c) => c.trim());
      text = `INSERT INTO ${table} (${list})${sql.slice(whole.length)}`;
      // named with their table: an INSERT … SELECT reads a table with the same column names
      if (how === 'IGNORE') text += ` ON DUPLICATE KEY UPDATE ${table}.${columns[0]} = ${table}.${columns[0]}`;
      else {
        const key = await primaryKey(table);
        const rest = columns.filter((c) => !key.includes(c.replace(/^"|"$/g, '')));
        const set = rest.length > 0 ? rest : [columns[0]!];
        text += ` ON DUPLICATE KEY UPDATE ${set.map((c) => `${table}.${c} = VALUES(${c})`).join(', ')}`;
      }
    }
    return backtickIdentifiers(text);
  };
  type Queryable = Pick<mysql.PoolConnection, 'query'>;
  const query = async (client: Queryable, sql: string, params: readonly WriteParam[] = []): Promise<WriteRow[]> => {
    const returning = / RETURNING (\w+)$/.exec(sql);
    try {
      const [result] = await client.query(await translate(returning ? sql.slice(0, returning.index) : sql), params.map((p) => (typeof p === 'bigint' ? p.toString() : p)));
      if (returning) return [{ [returning[1]!]: (result as mysql.ResultSetHeader).insertId }];
      return Array.isArray(result) ? (result as WriteRow[]) : [];
    } catch (err) {
      const error = new TrackshiftError(`writing the MLflow database ${label} failed: ${redact(errorMessage(err), secrets)}`);
      const code = errorCode(err);
      if (code) Object.assign(error, { code });
      throw error;
    }
  };
  const writer = (client: Queryable, transaction: SqlWriter['transaction']): SqlWriter => {
    const self: SqlWriter = {
      get: async (sql, params) => (await query(client, sql, params))[0],
      all: (sql, params) => query(client, sql, params),
      run: async (sql, params) => void (await query(client, sql, params)),
      insertRows: (head, width, rows, perInsert) => insertRowsWith(self.run, head, width, rows, perInsert),
      transaction,
    };
    return self;
  };
  const inTransaction = async <T>(client: mysql.PoolConnection, work: (tx: SqlWriter) => Promise<T>): Promise<T> => {
    await query(client, 'START TRANSACTION');
    try {
      const tx = writer(client, (inner) => inner(tx));
      const result = await work(tx);
      await query(client, 'COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  };
  const connect = async () => {
    try {
      return await pool.getConnection();
    } catch (err) {
      throw connectionError(err, label, secrets);
    }
  };
  const shared = writer(pool, async (work) => {
    const client = await connect();
    try {
      return await inTransaction(client, work);
    } finally {
      client.release();
    }
  });
  return {
    ...shared,
    dialect: 'mysql',
    maxParams: 65_535,
    columns: async (table) =>
      new Set((await query(pool, 'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?', [table])).map((r) => String(r.name))),
    session: async () => {
      const client = await connect();
      let released = false;
      return {
        ...writer(client, (work) => inTransaction(client, work)),
        release: async () => {
          if (released) return;
          released = true;
          client.release();
        },
      };
    },
    stagingTable: (name) => ({
      // the connection's own, invisible to every other one; keys as long as MLflow's metric keys
      create: `CREATE TEMPORARY TABLE ${name} (seq BIGINT AUTO_INCREMENT PRIMARY KEY, "key" VARCHAR(250) NOT NULL, "value" DOUBLE NOT NULL, "timestamp" BIGINT NOT NULL, step BIGINT NOT NULL, is_nan BOOLEAN NOT NULL) CHARACTER SET utf8mb4`,
      name,
    }),
    close: async () => {
      await pool.end();
    },
  };
}
