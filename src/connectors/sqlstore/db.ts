/**
 * The little the SQL-store reader needs of a database, so that read.ts is one mapping of
 * MLflow's schema whatever holds it: SQLite (sqlite.ts), PostgreSQL (postgres.ts), MySQL and
 * MariaDB (mysql.ts).
 *
 * Queries are written once, in the SQL the three share: `?` placeholders (postgres.ts numbers
 * them `$1…`), identifiers that need it in double quotes (mysql.ts turns them into backticks),
 * so string literals in these queries never hold a `?` or a double quote. Every cell reaches
 * the reader as a string, a number or null (normalised at this boundary: PostgreSQL's BIGINTs
 * arrive as strings, its booleans as booleans, MySQL's binary columns as Buffers).
 */
import { InvalidInputError, TrackshiftError, UsageError, errorMessage } from '../../util/errors.js';
import { redact } from '../../util/redact.js';
import { DEFAULT_RETRY_POLICY, errorCode, withRetry, type RetryContext, type Side } from '../../util/retry.js';

export type Cell = string | number | null;
export type Row = Record<string, Cell>;
export type SqlParam = string | number | null;

export interface SqlDatabase {
  /** where the database is, safe to print (no password) */
  readonly label: string;
  /** every row of one query */
  all(sql: string, params?: readonly SqlParam[]): Promise<Row[]>;
  /** the column names of a table, empty when there is no such table */
  columns(table: string): Promise<Set<string>>;
  close(): Promise<void>;
}

/** One cell as the reader takes it; anything else is a database the reader does not understand. */
export function toCell(value: unknown, label: string, column: string): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Date) return value.getTime();
  throw new InvalidInputError(label, `column ${column} holds a value of an unexpected type (${Object.prototype.toString.call(value)})`);
}

export function toRow(raw: Record<string, unknown>, label: string): Row {
  const row: Row = {};
  for (const [column, value] of Object.entries(raw)) row[column] = toCell(value, label, column);
  return row;
}

/**
 * A URI's parts: `scheme://[userinfo@]host[:port][/path][?query]`. The userinfo ends at the last
 * `@` before the path, as URL parsers take it, so an unencoded `@` in a password stays in it.
 */
export function splitDbUri(uri: string): { scheme: string; userinfo?: string; host: string; path: string; query?: string } | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/i.exec(uri);
  if (!match) return undefined;
  const [, scheme, authority = '', path = '', query] = match;
  const at = authority.lastIndexOf('@');
  return { scheme: scheme!, ...(at >= 0 ? { userinfo: authority.slice(0, at) } : {}), host: authority.slice(at + 1), path, ...(query !== undefined ? { query } : {}) };
}

/** `scheme://user:password@host/db?query` without its password and query (which may hold one). */
export function displayDbUri(uri: string): string {
  const parts = splitDbUri(uri);
  if (!parts) return uri.replace(/[?#].*$/, '');
  const user = parts.userinfo?.split(':')[0];
  return `${parts.scheme}://${user ? `${user}@` : ''}${parts.host}${parts.path}`;
}

const HINTS: Array<[RegExp, string]> = [
  [/^ECONNREFUSED$/, 'nothing listens there: is the database server running, and are the host and port right?'],
  [/^(ENOTFOUND|EAI_AGAIN)$/, 'that host name is not known here'],
  [/^(ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|TIMEOUT)$/, 'the server did not answer: check the host, the port and the network'],
  [/^(28P01|28000|ER_ACCESS_DENIED_ERROR|ER_DBACCESS_DENIED_ERROR|ER_NOT_SUPPORTED_AUTH_MODE)$/, 'the server refused the user name or password of the URI'],
  [/^(3D000|ER_BAD_DB_ERROR)$/, 'there is no database of that name on the server (the path of the URI names it)'],
];

/** A connection failure as a message a user can act on, without any of the given secrets. */
export function connectionError(err: unknown, label: string, secrets: Array<string | undefined>): UsageError {
  const e = err as { message?: string; code?: string; errors?: Array<{ message?: string }> } | undefined;
  // a host name with several addresses fails with an AggregateError whose own message is empty
  let detail = e?.message || e?.errors?.map((x) => x.message).filter(Boolean).join('; ') || e?.code || String(err);
  let code = e?.code ?? '';
  if (!code && /timeout/i.test(detail)) code = 'TIMEOUT';
  const hint = HINTS.find(([pattern]) => pattern.test(code))?.[1];
  detail = redact(detail, secrets);
  return new UsageError(`cannot connect to the MLflow database ${label}: ${detail}${hint ? ` (${hint})` : ''}`);
}

/** A query that failed after the connection was made (the connection lost, a permission missing). */
export function queryError(err: unknown, label: string, secrets: Array<string | undefined>): TrackshiftError {
  const error = new TrackshiftError(`reading the MLflow database ${label} failed: ${redact(errorMessage(err), secrets)}`);
  // the driver's error code (a connection lost, a server restarting) decides whether to retry
  const code = errorCode(err);
  if (code) Object.assign(error, { code });
  return error;
}

/**
 * The database with its queries retried when the connection fails (a restarting server); the
 * driver's pool opens a new connection for the next attempt. Queries only read: safe to repeat.
 */
export function retryingDatabase(db: SqlDatabase, retry: RetryContext | undefined, side: Side): SqlDatabase {
  const policy = retry?.policy ?? DEFAULT_RETRY_POLICY;
  const again = <T>(work: () => Promise<T>) => withRetry(policy, work, { side, stats: retry?.stats });
  return {
    label: db.label,
    all: (sql, params) => again(() => db.all(sql, params)),
    columns: (table) => again(() => db.columns(table)),
    close: () => db.close(),
  };
}

/** Splits `?artifacts=DIR` off a database URI: the drivers are given the rest. */
export function splitArtifactsParam(uri: string): { uri: string; artifacts?: string } {
  const at = uri.indexOf('?');
  if (at < 0) return { uri };
  let artifacts: string | undefined;
  const kept = uri
    .slice(at + 1)
    .split('&')
    .filter((part) => {
      if (!part.startsWith('artifacts=')) return true;
      const raw = part.slice('artifacts='.length).replace(/\+/g, ' ');
      try {
        artifacts = decodeURIComponent(raw);
      } catch {
        artifacts = raw; // a path with a bare %
      }
      return false;
    });
  return { uri: uri.slice(0, at) + (kept.length > 0 && kept.join('') !== '' ? `?${kept.join('&')}` : ''), ...(artifacts ? { artifacts } : {}) };
}
