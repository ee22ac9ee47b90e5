/**
 * What every part of the SQL store mapping (./read.ts: experiments and runs, ./registry.ts,
 * ./logged-models.ts) asks of the database: queries over the small interface of ./db.ts, which
 * tables and columns this schema revision has, and the local folders artifact URIs name.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ArtifactFile } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { isDir, walkFiles } from '../../util/fs.js';
import { safeJoin } from '../../util/paths.js';
import { proxyPath } from '../mlflow-common/proxy.js';
import type { Row, SqlDatabase, SqlParam } from './db.js';

export const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
export const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
export const time = (v: unknown) => (v ? Number(v) : undefined);

export interface SqlStoreOptions {
  /** the location, safe to print */
  uri: string;
  /** where `mlflow-artifacts:` URIs point (the server's --artifacts-destination) */
  artifactsRoot: string;
  /** what relative artifact URIs are relative to */
  baseDir: string;
  /** metric points per query (default 10,000) */
  pageSize?: number;
}

/**
 * A local folder for an artifact URI, or an error saying why it cannot be reached. A proxied
 * (`mlflow-artifacts:`) URI must name a folder inside the artifacts root (`?artifacts=`): one
 * that climbs out of it is refused. `file:` and plain paths are the folders the database's own
 * server uses, reached as that server would reach them (`where` names the object, for messages).
 */
export function localArtifactFolder(uri: string, options: Pick<SqlStoreOptions, 'artifactsRoot' | 'baseDir'>, where: string): string {
  if (uri.startsWith('mlflow-artifacts:')) {
    const path = proxyPath(uri);
    return path ? safeJoin(options.artifactsRoot, path, `artifact URI ${uri} of ${where}`) : options.artifactsRoot;
  }
  if (uri.startsWith('file:')) return fileURLToPath(uri.startsWith('file://') ? uri : `file://${uri.slice(5)}`);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(uri)) return resolve(options.baseDir, uri);
  throw new InvalidInputError(where, `artifacts at ${uri} are not on this machine; reach them through the MLflow server (trackshift copy http://…)`);
}

export class SqlTables {
  private readonly columns = new Map<string, Promise<Set<string>>>();

  constructor(
    readonly db: SqlDatabase,
    readonly options: SqlStoreOptions,
  ) {}

  /** whether the table (and the column) exists in this schema revision */
  async has(table: string, column?: string): Promise<boolean> {
    let cols = this.columns.get(table);
    if (!cols) {
      cols = this.db.columns(table);
      this.columns.set(table, cols);
    }
    const names = await cols;
    return column === undefined ? names.size > 0 : names.has(column);
  }

  all(sql: string, ...params: SqlParam[]): Promise<Row[]> {
    return this.db.all(sql, params);
  }

  /** a key/value table's rows as one record */
  async kv(sql: string, ...params: SqlParam[]): Promise<Record<string, string>> {
    return Object.fromEntries((await this.all(sql, ...params)).map((r) => [String(r.key), String(r.value ?? '')]));
  }

  private localFolder(uri: string, what: string): string {
    return localArtifactFolder(uri, this.options, `${what} in ${this.db.label}`);
  }

  async *listLocalArtifacts(uri: () => Promise<string>, what: string): AsyncIterable<ArtifactFile> {
    const dir = this.localFolder(await uri(), what);
    if (await isDir(dir)) yield* walkFiles(dir, 'follow');
  }

  async readLocalArtifact(uri: () => Promise<string>, path: string, what: string): Promise<Readable> {
    const file = safeJoin(this.localFolder(await uri(), what), path, `artifact of ${what}`);
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }
}
