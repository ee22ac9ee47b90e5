/**
 * One neptune-scale offline database being written, as the pinned client (0.30) writes it:
 * its connection settings (WAL, synchronous FULL), its CREATE statements word for word
 * (sync/operations_repository.py `init_db`), the metadata row (version v5, project, run id),
 * CreateRun first, then bare UpdateRunSnapshot messages of at most 2 MiB each, and the
 * file_upload_requests rows of the files the operations name (saved before the operations that
 * name them, as the client does).
 */
import Database from 'better-sqlite3';
import { SUPPORTED_VERSION } from './db.js';
import { encodeCreateRun, OPERATION_CREATE, OPERATION_UPDATE, type CreateRun } from '../neptune-common/scale-proto.js';
import { encodeSnapshot } from '../neptune-common/scale-snapshot.js';
import { MAX_OPERATION_BYTES, type Pending } from '../neptune-common/scale-values.js';


const SCHEMA = [
  `
                CREATE TABLE IF NOT EXISTS run_operations (
                    sequence_id INTEGER PRIMARY KEY AUTOINCREMENT,
                    timestamp INTEGER NOT NULL,
                    operation_type INTEGER NOT NULL,
                    operation BLOB NOT NULL,
                    operation_size_bytes INTEGER NOT NULL
                )
                `,
  `
                CREATE INDEX IF NOT EXISTS idx_run_operations_sequence_size
                    ON run_operations (sequence_id, operation_size_bytes);
                `,
  `
                CREATE TABLE IF NOT EXISTS metadata (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    version TEXT NOT NULL,
                    project TEXT NOT NULL,
                    run_id TEXT NOT NULL
                )`,
  `
                CREATE TABLE IF NOT EXISTS run_operation_submission (
                    sequence_id INTEGER PRIMARY KEY,
                    timestamp INTEGER NOT NULL,
                    request_id TEXT NOT NULL
                )
                `,
  `
                CREATE TABLE IF NOT EXISTS file_upload_requests (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    source_path TEXT NOT NULL,
                    destination TEXT NOT NULL,
                    mime_type TEXT NOT NULL,
                    size_bytes INTEGER NOT NULL,
                    is_temporary INTEGER NOT NULL
                )
                `,
  `
                CREATE TABLE IF NOT EXISTS operation_errors (
                    error_id INTEGER PRIMARY KEY AUTOINCREMENT,
                    timestamp INTEGER NOT NULL,
                    error_type TEXT NOT NULL,
                    error_details TEXT NOT NULL,
                    error_body TEXT NOT NULL,
                    sequence_id INTEGER
                )
                `,
];

export interface UploadRow {
  sourcePath: string;
  destination: string;
  mimeType: string;
  size: number;
}


export class OperationsStore {
  private readonly db: Database.Database;
  private readonly insertOperation: Database.Statement;
  private readonly insertUpload: Database.Statement;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    for (const statement of SCHEMA) this.db.exec(statement);
    this.insertOperation = this.db.prepare('INSERT INTO run_operations (timestamp, operation_type, operation, operation_size_bytes) VALUES (?, ?, ?, ?)');
    this.insertUpload = this.db.prepare('INSERT INTO file_upload_requests (source_path, destination, mime_type, size_bytes, is_temporary) VALUES (?, ?, ?, ?, ?)');
  }

  /** The metadata row, CreateRun and the first operations, in one transaction: a database is never without its metadata. */
  create(project: string, runId: string, run: Partial<CreateRun> & { inheritConfigs?: boolean }, time: number, first: Pending[]): void {
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO metadata (version, project, run_id) VALUES (?, ?, ?)').run(SUPPORTED_VERSION, project, runId);
      this.insert(time, OPERATION_CREATE, encodeCreateRun(run));
      for (const op of first) this.insert(op.time, OPERATION_UPDATE, encodeSnapshot(op.update));
    })();
  }

  /** Uploads, then the operations that name them, in one transaction. */
  save(operations: Pending[], uploads: UploadRow[] = []): void {
    if (operations.length === 0 && uploads.length === 0) return;
    this.db.transaction(() => {
      for (const u of uploads) this.insertUpload.run(u.sourcePath, u.destination, u.mimeType, u.size, 1);
      for (const op of operations) this.insert(op.time, OPERATION_UPDATE, encodeSnapshot(op.update));
    })();
  }

  private insert(time: number, type: number, bytes: Uint8Array): void {
    if (bytes.length > MAX_OPERATION_BYTES) throw new Error(`a Neptune operation of ${bytes.length} bytes is over the client's limit of ${MAX_OPERATION_BYTES}`);
    this.insertOperation.run(Math.round(time), type, Buffer.from(bytes), bytes.length);
  }

  /** The run's last operation time is what readers take as its end: the source's end time, not the copy's. */
  stampLast(time: number): void {
    this.db.prepare('UPDATE run_operations SET timestamp = ? WHERE sequence_id = (SELECT MAX(sequence_id) FROM run_operations)').run(Math.round(time));
  }

  /** Checkpointed and closed, as the client leaves a database: no -wal file beside it. */
  close(): void {
    if (!this.db.open) return;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
