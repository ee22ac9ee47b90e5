/**
 * neptune-scale's offline SQLite databases (`<logdir>/<project>_<run id>_<ns>/run_operations.sqlite3`):
 * where they are, and reading one read-only. The client keeps them in WAL mode and checkpoints on
 * close; a read-only connection still sees what a `-wal` file next to it holds.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { joinSegment } from '../../util/paths.js';

export const DATABASE_FILE = 'run_operations.sqlite3';
/** Folders the neptune3 destination writes a run into until it is complete (write.ts). */
export const PARTIAL_FOLDER_PREFIX = '.trackshift-partial-';
/** the only layout this reader knows: the one neptune-scale 0.30 writes (its DB_VERSION) */
export const SUPPORTED_VERSION = 'v5';

const isFile = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() === true;
const isDir = async (path: string) => (await stat(path).catch(() => undefined))?.isDirectory() === true;

/** Every SQLite database file starts with these 16 bytes. */
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** A file given by its path is taken for a database only when it is one (a `.zip` beside it is not). */
async function isSqliteFile(path: string): Promise<boolean> {
  if (!(await isFile(path))) return false;
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(SQLITE_HEADER.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.equals(SQLITE_HEADER);
  } finally {
    await handle.close();
  }
}

/** Databases of the run folders directly under `dir` (sorted, so the order never depends on the file system); `first`: stop at one. */
async function databasesIn(dir: string, first: boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  // a copy trackshift is still writing (or was cut off) is no run yet
  const runFolders = entries.filter((e) => e.isDirectory() && !e.name.startsWith(PARTIAL_FOLDER_PREFIX));
  for (const e of runFolders.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const file = join(dir, e.name, DATABASE_FILE);
    if (await isFile(file)) found.push(file);
    if (first && found.length > 0) break;
  }
  return found;
}

/**
 * The databases a location holds: the file itself, a run folder, a log folder of run folders
 * (`.neptune`), or the folder holding `.neptune`. Other things there (Neptune 2.x `offline/`
 * folders) are not this reader's and are left alone.
 */
export async function findDatabases(location: string, { first = false } = {}): Promise<string[]> {
  if (await isSqliteFile(location)) return [location];
  if (await isFile(location)) return [];
  if (!(await isDir(location))) return [];
  if (await isFile(join(location, DATABASE_FILE))) return [join(location, DATABASE_FILE)];
  const here = await databasesIn(location, first);
  return here.length > 0 ? here : databasesIn(join(location, '.neptune'), first);
}

const MetadataRow = z.object({ version: z.string(), project: z.string(), run_id: z.string() });
export type Metadata = z.infer<typeof MetadataRow>;

export interface OperationRow {
  sequence_id: number;
  timestamp: number;
  operation_type: number;
  operation: Buffer;
}
const OperationRowSchema = z.object({ sequence_id: z.number(), timestamp: z.number(), operation_type: z.number(), operation: z.instanceof(Buffer) });

export interface FileUpload {
  /** where the bytes are: see `localCopy` */
  sourcePath: string;
  mimeType?: string;
  size?: number;
}
const FileUploadRow = z.object({
  source_path: z.string(),
  destination: z.string(),
  mime_type: z.string().nullable(),
  size_bytes: z.number().nullable(),
  is_temporary: z.union([z.number(), z.boolean()]).nullable(),
});

/**
 * SQLite's read-only connection to a WAL database leaves its -wal and -shm files behind (it may
 * not delete them). When neither was there before — no writer has the run open, nothing to
 * recover — a writable connection that never writes (query_only) is used instead: closing it
 * removes both and leaves the database's bytes as they were. Otherwise, or when the folder is
 * not writable, the read-only connection.
 */
function openLeavingNoTrace(file: string): Database.Database {
  if (!existsSync(`${file}-wal`) && !existsSync(`${file}-shm`)) {
    try {
      const db = new Database(file, { fileMustExist: true });
      db.pragma('query_only = ON');
      return db;
    } catch {
      // a read-only folder or file: the read-only connection below
    }
  }
  return new Database(file, { readonly: true, fileMustExist: true });
}

/** Operations read per query: a page, so that a database of millions is never held whole. */
const PAGE = 2000;

export class RunDatabase {
  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
    readonly metadata: Metadata,
  ) {}

  /** Opens `file` read-only and checks its layout version; an InvalidInputError names what is wrong. */
  static open(file: string): RunDatabase {
    let db: Database.Database;
    try {
      db = openLeavingNoTrace(file);
    } catch (err) {
      throw new InvalidInputError(file, `cannot open the neptune-scale database: ${errorMessage(err)}`);
    }
    try {
      const rows = db.prepare('SELECT version, project, run_id FROM metadata').all();
      if (rows.length !== 1) throw new InvalidInputError(file, `expected one row in its metadata table, found ${rows.length}`);
      const parsed = MetadataRow.safeParse(rows[0]);
      if (!parsed.success) throw new InvalidInputError(file, `its metadata row is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
      if (parsed.data.version !== SUPPORTED_VERSION) {
        throw new InvalidInputError(
          file,
          `neptune-scale database version "${parsed.data.version}" is not supported: trackshift reads version "${SUPPORTED_VERSION}" ` +
            `(written by neptune-scale 0.30). Open the run once with a neptune-scale client that writes ${SUPPORTED_VERSION}, or export it with that client, then read it again.`,
        );
      }
      return new RunDatabase(file, db, parsed.data);
    } catch (err) {
      db.close();
      if (err instanceof InvalidInputError) throw err;
      throw new InvalidInputError(file, `not a neptune-scale run database: ${errorMessage(err)}`);
    }
  }

  /**
   * Every operation in sequence order, a page at a time; with `containing`, only those whose
   * blob holds those bytes (a key: a cheap filter in SQLite before decoding).
   */
  *operations(containing?: Buffer): Generator<OperationRow[]> {
    const sql =
      'SELECT sequence_id, timestamp, operation_type, operation FROM run_operations WHERE sequence_id > ?' +
      (containing ? ' AND instr(operation, ?) > 0' : '') +
      ' ORDER BY sequence_id LIMIT ?';
    const statement = this.db.prepare(sql);
    let after = -1;
    for (;;) {
      const rows = (containing ? statement.all(after, containing, PAGE) : statement.all(after, PAGE)).map((r) => this.row(r));
      if (rows.length === 0) return;
      yield rows;
      after = rows[rows.length - 1]!.sequence_id;
      if (rows.length < PAGE) return;
    }
  }

  private row(raw: unknown): OperationRow {
    const parsed = OperationRowSchema.safeParse(raw);
    if (!parsed.success) throw new InvalidInputError(this.file, `malformed row in run_operations: ${parsed.error.issues[0]?.message ?? ''}`);
    return parsed.data;
  }

  /** The local copies of logged files, by the `file_ref` path (destination) they were logged under. */
  fileUploads(): Map<string, FileUpload> {
    const uploads = new Map<string, FileUpload>();
    for (const raw of this.db.prepare('SELECT source_path, destination, mime_type, size_bytes, is_temporary FROM file_upload_requests ORDER BY id').all()) {
      const parsed = FileUploadRow.safeParse(raw);
      if (!parsed.success) throw new InvalidInputError(this.file, `malformed row in file_upload_requests: ${parsed.error.issues[0]?.message ?? ''}`);
      const { source_path, destination, mime_type, size_bytes, is_temporary } = parsed.data;
      const sourcePath = is_temporary ? this.ownCopy(source_path) : source_path;
      uploads.set(destination, { sourcePath, ...(mime_type ? { mimeType: mime_type } : {}), ...(size_bytes !== null ? { size: size_bytes } : {}) });
    }
    return uploads;
  }

  /**
   * Files logged from bytes are written by the client into the run's folder, and recorded by
   * absolute path: read from the folder the database is in now, so a moved or copied log folder
   * (carried across an air gap) keeps its files. A name that is not a plain file name is refused.
   */
  private ownCopy(sourcePath: string): string {
    try {
      return joinSegment(dirname(this.file), basename(sourcePath), this.file);
    } catch {
      return sourcePath;
    }
  }

  close(): void {
    this.db.close();
  }
}
