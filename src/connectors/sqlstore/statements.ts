/**
 * What every part of the SQL-store writer (./write.ts: experiments and runs, the registry and
 * logged-model writers of ./registry.ts and ./logged-models.ts) asks of a SQLite database:
 * prepared statements kept for reuse, and multi-row INSERTs.
 */
import type Database from 'better-sqlite3';

export class Statements {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(
    readonly db: Database.Database,
    /** whether MLflow's tables have the `workspace` column (MLflow ≥ 3.10): rows of others' workspaces are left alone */
    readonly workspaces: boolean,
  ) {}

  prepare(sql: string): Database.Statement {
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    return stmt;
  }

  /** One multi-row INSERT per chunk of `rows`, each chunk one prepared statement (cached by its size). */
  insertRows(head: string, width: number, rows: unknown[][], perInsert: number): void {
    const tuple = `(${new Array(width).fill('?').join(', ')})`;
    for (let i = 0; i < rows.length; i += perInsert) {
      const chunk = rows.slice(i, i + perInsert);
      this.prepare(`${head} VALUES ${new Array(chunk.length).fill(tuple).join(', ')}`).run(...chunk.flat());
    }
  }

  /** ` AND workspace = 'default'` where the table has workspaces: what a server without them sees */
  get inDefaultWorkspace(): string {
    return this.workspaces ? " AND workspace = 'default'" : '';
  }

  clear(): void {
    this.cache.clear();
  }
}
