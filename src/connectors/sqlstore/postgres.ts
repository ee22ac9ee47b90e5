/**
 * An MLflow database on PostgreSQL, read with node-postgres (`pg`): a small pool, so that runs
 * read in parallel do not wait for one another. The URI is libpq's, as MLflow takes it
 * (`postgresql://user:password@host:port/db`, `postgresql+psycopg2://…`, `?sslmode=…`).
 */
import pg from 'pg';
import { connectionError, displayDbUri, queryError, splitDbUri, toRow, type Row, type SqlDatabase, type SqlParam } from './db.js';

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

export async function openPostgres(uri: string): Promise<SqlDatabase> {
  // SQLAlchemy's driver suffix (postgresql+psycopg2://) means nothing to libpq
  const connectionString = uri.replace(/^(postgres(?:ql)?)\+[a-z0-9_]+:/i, 'postgresql:');
  const label = displayDbUri(uri);
  const userinfo = splitDbUri(connectionString)?.userinfo ?? '';
  const raw = userinfo.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : undefined;
  let password = raw;
  try {
    password = raw && decodeURIComponent(raw);
  } catch {
    // a bare % stays as it is
  }
  const secrets = [password, raw];
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
