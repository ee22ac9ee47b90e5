/**
 * What every part of the SQL-store writer (./write.ts: experiments and runs, the registry and
 * logged-model writers of ./registry.ts and ./logged-models.ts) asks of a database, so that the
 * writer is one mapping of MLflow's schema whatever holds it: SQLite (sqlite.ts), PostgreSQL
 * (postgres.ts), MySQL and MariaDB (mysql.ts).
 *
 * Statements are written once, in SQLite's SQL: `?` placeholders, `INSERT OR IGNORE` and
 * `INSERT OR REPLACE` (a driver turns them into its own upsert), identifiers that need it in
 * double quotes; string literals in them never hold a `?`.
 */

export type WriteParam = string | number | bigint | null;
export type WriteRow = Record<string, unknown>;

/** One connection's worth of statements (a transaction's, a run's, or the database's). */
export interface SqlWriter {
  get(sql: string, params?: readonly WriteParam[]): Promise<WriteRow | undefined>;
  all(sql: string, params?: readonly WriteParam[]): Promise<WriteRow[]>;
  run(sql: string, params?: readonly WriteParam[]): Promise<void>;
  /** One multi-row INSERT per chunk of `rows`. */
  insertRows(head: string, width: number, rows: WriteParam[][], perInsert: number): Promise<void>;
  /**
   * `rows` into `table` by the engine's bulk load, where the driver has one (PostgreSQL's
   * `COPY … FROM STDIN` on a session): the same rows as `insertRows` would write, each value
   * stored as that would store it. A writer without it uses `insertRows`.
   */
  copyRows?(table: string, columns: readonly string[], rows: readonly WriteParam[][]): Promise<void>;
  /** `work` in one transaction (on one connection): committed when it returns, rolled back when it throws */
  transaction<T>(work: (tx: SqlWriter) => Promise<T>): Promise<T>;
}

/** A connection kept for one run in flight: its staging table lives on it. */
export interface WriteSession extends SqlWriter {
  release(): Promise<void>;
}

export interface WriteDb extends SqlWriter {
  readonly dialect: 'sqlite' | 'postgres' | 'mysql';
  /** bound parameters one statement takes at most */
  readonly maxParams: number;
  /** the column names of a table, empty when there is no such table */
  columns(table: string): Promise<Set<string>>;
  session(): Promise<WriteSession>;
  /** a temporary table of a session: created, and named as statements name it */
  stagingTable(name: string): { create: string; name: string };
  close(): Promise<void>;
}

/** Multi-row INSERTs over any `run`: `perInsert` rows each, fewer where the driver's parameter bound asks. */
export async function insertRowsWith(
  run: (sql: string, params: readonly WriteParam[]) => Promise<void>,
  head: string,
  width: number,
  rows: WriteParam[][],
  perInsert: number,
): Promise<void> {
  const tuple = `(${new Array(width).fill('?').join(', ')})`;
  for (let i = 0; i < rows.length; i += perInsert) {
    const chunk = rows.slice(i, i + perInsert);
    await run(`${head} VALUES ${new Array(chunk.length).fill(tuple).join(', ')}`, chunk.flat());
  }
}

/** An id column's value as the writer keeps it (SQLite gives BigInts, PostgreSQL numbers or strings). */
export const toBigInt = (value: unknown): bigint => (typeof value === 'bigint' ? value : BigInt(String(value)));
