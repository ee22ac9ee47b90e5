/** An MLflow SQLite file, opened read-only with better-sqlite3. */
import Database from 'better-sqlite3';
import { UsageError, errorMessage } from '../../util/errors.js';
import { toRow, type Row, type SqlDatabase, type SqlParam } from './db.js';

export function openSqlite(file: string): SqlDatabase {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new UsageError(`cannot open the MLflow database ${file}: ${errorMessage(err)}`);
  }
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string) => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      statements.set(sql, stmt);
    }
    return stmt;
  };
  return {
    label: file,
    all: async (sql: string, params: readonly SqlParam[] = []): Promise<Row[]> =>
      (prepare(sql).all(...params) as Array<Record<string, unknown>>).map((r) => toRow(r, file)),
    columns: async (table: string) => new Set((prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: unknown }>).map((r) => String(r.name))),
    close: async () => {
      db.close();
    },
  };
}
