/**
 * An MLflow database on MySQL or MariaDB, read with `mysql2`: a small pool, so that runs read in
 * parallel do not wait for one another. The URI is SQLAlchemy's, as MLflow takes it
 * (`mysql://user:password@host:port/db`, `mysql+pymysql://…`, `?unix_socket=PATH`).
 */
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { UsageError, errorMessage } from '../../util/errors.js';
import { connectionError, displayDbUri, queryError, splitDbUri, toRow, type Row, type SqlDatabase, type SqlParam } from './db.js';

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
