/** An MLflow SQLite file, opened read-only with better-sqlite3, or for the writer. */
import Database from 'better-sqlite3';
import { UsageError, errorMessage } from '../../util/errors.js';
import { toRow, type Row, type SqlDatabase, type SqlParam } from './db.js';
import { insertRowsWith, type SqlWriter, type WriteDb, type WriteRow } from './statements.js';

export function openSqlite(file: string): SqlDatabase {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new UsageError(`cannot open the MLflow database ${file}: ${errorMessage(err)}`);
  }
  // integers as BigInts, so that a file store's 18-digit experiment ids (kept by `mlflow migrate-filestore`) stay exact
  db.defaultSafeIntegers(true);
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

/**
 * An MLflow SQLite file opened for writing: it must exist and hold MLflow's tables (they are never
 * created here). WAL lets a server on the same file read while trackshift writes; writes wait
 * for a writing server instead of failing at once. A dry run opens it read-only and changes nothing.
 */
export function openSqliteForWriting(file: string, shown: string, dryRun: boolean): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: dryRun, fileMustExist: true });
  } catch (err) {
    throw new UsageError(
      `cannot open the MLflow database ${file}: ${errorMessage(err)}; a new one is made with \`mlflow db upgrade ${shown}\` (or by starting \`mlflow server --backend-store-uri ${shown}\` once)`,
    );
  }
  // ids exact beyond 2^53 (a file store's 18-digit experiment ids, kept by `mlflow migrate-filestore`)
  db.defaultSafeIntegers(true);
  try {
    db.pragma('busy_timeout = 30000');
    if (!dryRun) {
      try {
        db.pragma('journal_mode = WAL');
      } catch {
        // another connection holds the file in a way that forbids the switch: its own journal mode serves as well
      }
      db.pragma('synchronous = NORMAL');
      // the points of runs in flight wait in temporary tables: on disk, so memory stays flat
      db.pragma('temp_store = FILE');
      // a page cache of 4 MB (default 2 MB). It also bounds each sorter of a run's commit (ORDER BY,
      // the window of latest_metrics): with 16 MB a 10-million-point copy peaked 20 MB higher and
      // was no faster, also into a database that already held 10 million points
      db.pragma('cache_size = -4096');
    }
  } catch (err) {
    db.close();
    throw new UsageError(`cannot write the MLflow database ${file}: ${errorMessage(err)}`);
  }
  return db;
}

/**
 * The writer's view of a SQLite file opened for writing: one connection, so statements and
 * transactions take turns (a transaction holds it until its commit); every run in flight shares
 * it, its staging table a temporary table of this connection.
 */
export function sqliteWriteDb(db: Database.Database): WriteDb {
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string) => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      statements.set(sql, stmt);
    }
    return stmt;
  };
  const direct: SqlWriter = {
    get: async (sql, params = []) => prepare(sql).get(...params) as WriteRow | undefined,
    all: async (sql, params = []) => prepare(sql).all(...params) as WriteRow[],
    run: async (sql, params = []) => {
      prepare(sql).run(...params);
    },
    insertRows: (head, width, rows, perInsert) => insertRowsWith(direct.run, head, width, rows, perInsert),
    transaction: (work) => work(direct), // already inside one
  };
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = turn.then(work, work);
    turn = next.catch(() => {});
    return next;
  };
  const shared: SqlWriter = {
    get: (sql, params) => exclusive(() => direct.get(sql, params)),
    all: (sql, params) => exclusive(() => direct.all(sql, params)),
    run: (sql, params) => exclusive(() => direct.run(sql, params)),
    insertRows: (head, width, rows, perInsert) => exclusive(() => direct.insertRows(head, width, rows, perInsert)),
    transaction: (work) =>
      exclusive(async () => {
        // IMMEDIATE: the write lock taken at the start, so a server writing too makes this wait (busy_timeout), not fail midway
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(direct);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      }),
  };
  return {
    ...shared,
    dialect: 'sqlite',
    maxParams: 32_766,
    columns: async (table) => new Set((prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: unknown }>).map((r) => String(r.name))),
    session: async () => ({ ...shared, release: async () => {} }),
    stagingTable: (name) => ({
      // on disk (temp_store = FILE), invisible to every other connection
      create: `CREATE TEMP TABLE ${name} (seq INTEGER PRIMARY KEY, "key" TEXT NOT NULL, "value" REAL NOT NULL, "timestamp" INTEGER NOT NULL, step INTEGER NOT NULL, is_nan INTEGER NOT NULL)`,
      name: `temp.${name}`,
    }),
    close: async () => {
      statements.clear();
      if (db.open) db.close();
    },
  };
}
