/**
 * An MLflow database on PostgreSQL, read and written with node-postgres (`pg`): a small pool, so that runs
 * read in parallel do not wait for one another. The URI is libpq's, as MLflow takes it
 * (`postgresql://user:password@host:port/db`, `postgresql+psycopg2://…`, `?sslmode=…`).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { TrackshiftError, errorMessage } from '../../util/errors.js';
import { redact } from '../../util/redact.js';
import { errorCode } from '../../util/retry.js';
import { connectionError, displayDbUri, queryError, splitDbUri, toRow, type Row, type SqlDatabase, type SqlParam } from './db.js';
import { insertRowsWith, type SqlWriter, type WriteDb, type WriteParam, type WriteRow } from './statements.js';

const INT8 = 20;
// BIGINT columns (times, steps) come as text, since they may exceed 2^53; MLflow's fit a number
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8 && format !== 'binary') {
      return (value: string) => {
        const n = Number(value);
        return Number.isSafeInteger(n) ? n : value;
      };
    }
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

/** `?` placeholders numbered as PostgreSQL wants them (the reader's literals hold no `?`). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** A number as the text PostgreSQL reads back as the same value: String(x), but -0 keeps its sign (String(-0) is "0"; MLflow's psycopg2 keeps it). */
function boundNumber(value: number | bigint): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

/** Characters COPY's text format reads as the end of a field or row, or as an escape. */
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * One value as a field of COPY's text format, read back as `insertRows` stores it: NULL as `\N`;
 * a number as node-postgres sends a bound one (String(x), the shortest text that reads back as the
 * same double; the writer has mapped NaN and ±Infinity as MLflow stores them before); text with
 * backslash, tab, newline and carriage return escaped.
 */
export function copyField(value: WriteParam): string {
  if (value === null) return '\\N';
  // what node-postgres sends for a bound number or BigInt; 'NaN', 'Infinity' and '-Infinity' read back as such
  if (typeof value === 'number' || typeof value === 'bigint') return boundNumber(value);
  if (typeof value !== 'string') throw new TypeError(`COPY takes text, numbers and NULL, not ${typeof value}`);
  return value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!);
}

/** `rows` as COPY text, a chunk of about 64 KiB at a time. */
export function* copyText(rows: readonly WriteParam[][]): Generator<Buffer> {
  let chunk = '';
  for (const row of rows) {
    chunk += `${row.map(copyField).join('\t')}\n`;
    if (chunk.length >= 65_536) {
      yield Buffer.from(chunk, 'utf8');
      chunk = '';
    }
  }
  if (chunk) yield Buffer.from(chunk, 'utf8');
}

/** A table or column name as the writer names them (pg_temp.staged_points_1, "key"): checked, since COPY takes no parameters. */
const IDENTIFIER = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/** The URI as libpq takes it, as it is shown, and the password in both its forms (kept out of every message). */
function connectionParts(uri: string): { connectionString: string; label: string; secrets: Array<string | undefined> } {
  // SQLAlchemy's driver suffix (postgresql+psycopg2://) means nothing to libpq
  const connectionString = uri.replace(/^(postgres(?:ql)?)\+[a-z0-9_]+:/i, 'postgresql:');
  const userinfo = splitDbUri(connectionString)?.userinfo ?? '';
  const raw = userinfo.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : undefined;
  let password = raw;
  try {
    password = raw && decodeURIComponent(raw);
  } catch {
    // a bare % stays as it is
  }
  return { connectionString, label: displayDbUri(uri), secrets: [password, raw] };
}

export async function openPostgres(uri: string): Promise<SqlDatabase> {
  const { connectionString, label, secrets } = connectionParts(uri);
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({ connectionString, max: 4, connectionTimeoutMillis: 15_000, idleTimeoutMillis: 10_000, types, application_name: 'trackshift' });
  } catch (err) {
    throw connectionError(err, label, secrets);
  }
  // an idle connection that the server closes must not take the process down
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw connectionError(err, label, secrets);
  }
  const all = async (sql: string, params: readonly SqlParam[] = []): Promise<Row[]> => {
    try {
      const result = await pool.query(numberPlaceholders(sql), params as SqlParam[]);
      return result.rows.map((r: Record<string, unknown>) => toRow(r, label));
    } catch (err) {
      throw queryError(err, label, secrets);
    }
  };
  return {
    label,
    all,
    // the tables MLflow made are in the first schema of the search path (public by default)
    columns: async (table: string) =>
      new Set((await all('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table])).map((r) => String(r.name))),
    close: async () => {
      await pool.end();
    },
  };
}

/**
 * The writer's view of a PostgreSQL database: a pool of `connections`, a session (a connection
 * kept) for each run in flight with its staging table a temporary table of that connection.
 * SQLite's `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`, `INSERT OR REPLACE` an upsert
 * on the table's primary key (read from the catalog once). A dry run's transactions are read only.
 */
export async function openPostgresForWriting(uri: string, options: { connections: number; dryRun: boolean }): Promise<WriteDb> {
  const { connectionString, label, secrets } = connectionParts(uri);
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString,
      max: Math.max(2, options.connections),
      connectionTimeoutMillis: 15_000,
      idleTimeoutMillis: 10_000,
      types,
      application_name: 'trackshift',
      ...(options.dryRun ? { options: '-c default_transaction_read_only=on' } : {}),
    });
  } catch (err) {
    throw connectionError(err, label, secrets);
  }
  pool.on('error', () => {});
  try {
    (await pool.connect()).release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw connectionError(err, label, secrets);
  }
  const keys = new Map<string, Promise<string[]>>();
  const primaryKey = (table: string) => {
    let key = keys.get(table);
    if (!key) {
      key = pool
        .query<{ name: string }>(
          'SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary',
          [table],
        )
        .then((r) => r.rows.map((row) => row.name));
      keys.set(table, key);
    }
    return key;
  };
  /** SQLite's statement in PostgreSQL's words */
  const translate = async (sql: string): Promise<string> => {
    const match = /^\s*INSERT OR (IGNORE|REPLACE) INTO (\w+) \(([^)]*)\)/.exec(sql);
    let text = sql;
    if (match) {
      const [whole, how, table, list] = match as unknown as [string, string, string, string];
      text = `INSERT INTO ${table} (${list})${sql.slice(whole.length)}`;
      if (how === 'IGNORE') text += ' ON CONFLICT DO NOTHING';
      else {
        const key = await primaryKey(table);
        const unquote = (c: string) => c.trim().replace(/^"|"$/g, '');
        const rest = list.split(',').filter((c) => !key.includes(unquote(c)));
        text += ` ON CONFLICT (${key.map((c) => `"${c}"`).join(', ')}) DO ${rest.length === 0 ? 'NOTHING' : `UPDATE SET ${rest.map((c) => `${c.trim()} = EXCLUDED.${c.trim()}`).join(', ')}`}`;
      }
    }
    return numberPlaceholders(text);
  };
  const query = async (client: pg.Pool | pg.PoolClient, sql: string, params: readonly WriteParam[] = []): Promise<WriteRow[]> => {
    try {
      // BigInt ids as their digits: PostgreSQL reads them into its BIGINT columns exactly; -0 as text, where node-postgres would send "0"
      const result = await client.query(await translate(sql), params.map((p) => (typeof p === 'bigint' || Object.is(p, -0) ? boundNumber(p as number | bigint) : p)));
      return result.rows as WriteRow[];
    } catch (err) {
      throw writeError(err, label, secrets);
    }
  };
  /** `rows` into `table` by `COPY … FROM STDIN` in text format, on the one connection that holds the table */
  const copyRows = async (client: pg.PoolClient, table: string, columns: readonly string[], rows: readonly WriteParam[][]): Promise<void> => {
    for (const name of [table, ...columns]) if (!IDENTIFIER.test(name)) throw new Error(`postgres: COPY into ${JSON.stringify(name)}: not a name the writer makes`);
    if (rows.length === 0) return;
    for (const row of rows) if (row.length !== columns.length) throw new Error(`postgres: COPY into ${table}: a row of ${row.length} values for ${columns.length} columns`);
    try {
      await pipeline(Readable.from(copyText(rows)), client.query(copyFrom(`COPY ${table} (${columns.map((c) => `"${c}"`).join(', ')}) FROM STDIN`)));
    } catch (err) {
      throw writeError(err, label, secrets);
    }
  };
  /** the statements of `client`; COPY only on a connection of its own (a session's, a transaction's) */
  const writer = (client: pg.Pool | pg.PoolClient, transaction: SqlWriter['transaction']): SqlWriter => {
    const self: SqlWriter = {
      get: async (sql, params) => (await query(client, sql, params))[0],
      all: (sql, params) => query(client, sql, params),
      run: async (sql, params) => void (await query(client, sql, params)),
      insertRows: (head, width, rows, perInsert) => insertRowsWith(self.run, head, width, rows, perInsert),
      ...(client instanceof pg.Pool ? {} : { copyRows: (table: string, columns: readonly string[], rows: readonly WriteParam[][]) => copyRows(client, table, columns, rows) }),
      transaction,
    };
    return self;
  };
  /** `work` in one transaction on `client` */
  const inTransaction = async <T>(client: pg.PoolClient, work: (tx: SqlWriter) => Promise<T>): Promise<T> => {
    await query(client, 'BEGIN');
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
  const shared = writer(pool, async (work) => {
    const client = await pool.connect();
    try {
      return await inTransaction(client, work);
    } finally {
      client.release();
    }
  });
  return {
    ...shared,
    dialect: 'postgres',
    maxParams: 65_535,
    columns: async (table) =>
      new Set((await query(pool, 'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table])).map((r) => String(r.name))),
    session: async () => {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw writeError(err, label, secrets);
      }
      let released = false;
      return {
        ...writer(client, (work) => inTransaction(client, work)),
        release: async () => {
          if (released) return;
          released = true;
          client.release(); // a failed transaction was rolled back: the connection is clean
        },
      };
    },
    stagingTable: (name) => ({
      // the connection's own: gone with it, invisible to every other one; not in the WAL
      create: `CREATE TEMP TABLE ${name} (seq BIGSERIAL, "key" TEXT NOT NULL, "value" DOUBLE PRECISION NOT NULL, "timestamp" BIGINT NOT NULL, step BIGINT NOT NULL, is_nan BOOLEAN NOT NULL)`,
      name: `pg_temp.${name}`,
    }),
    close: async () => {
      await pool.end();
    },
  };
}

/** A statement of the writer that failed, without any of the given secrets; its driver code kept for the retry rules. */
function writeError(err: unknown, label: string, secrets: Array<string | undefined>): TrackshiftError {
  const error = new TrackshiftError(`writing the MLflow database ${label} failed: ${redact(errorMessage(err), secrets)}`);
  const code = errorCode(err);
  if (code) Object.assign(error, { code });
  return error;
}
