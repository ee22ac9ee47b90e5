/**
 * Neptune 3.x as a destination: one neptune-scale offline database per run, in the log directory
 * (`neptune3:DIR?project=WS/PROJ`), as the pinned client (0.30, metadata v5) writes it in offline
 * mode, so that its `neptune sync <db>` uploads it. What a run's operations are is
 * neptune-common/scale-run-writer.ts (shared with the neptune-scale:// server writer); this file
 * is their sink:
 *
 * - operations go into the database's run_operations (CreateRun first, with the run's attributes
 *   in the same transaction);
 * - files' bytes are copied into the run's folder and recorded in file_upload_requests
 *   (temporary, as the client's copies of bytes are), before the operations that name them;
 * - points Neptune refuses are declared in `NEPTUNE3_HOLDS.pointRules` (neptune-common/holds.ts):
 *   the engine leaves them out of the native series and keeps the exact series in the
 *   `.trackshift/` encoding, which the neptune3 source undoes (index.ts wraps it in decodingSource).
 *
 * A run is written in a `.trackshift-partial-…` folder that readers skip, and renamed to the
 * client's `<project>_<run id>_<ns>` at finishRun: a killed copy never looks complete, and
 * findRun (copies indexed once at open by their `run_data/tags/trackshift.source.id`) finds it
 * for the engine to discard and redo. The last operation's time is the source's end time.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Experiment, Run } from '../../model/index.js';
import { SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../../model/index.js';
import { joinSegment, quoted, removeInside } from '../../util/paths.js';
import { NEPTUNE3_HOLDS } from '../neptune-common/holds.js';
import { runFolderName } from '../neptune-common/scale-names.js';
import { ScaleRunWriter, ScaleWritingDestination, type ScaleFile, type ScaleRunSink } from '../neptune-common/scale-run-writer.js';
import type { Pending } from '../neptune-common/scale-values.js';
import type { Destination, ExistingRun, RunWriteResult, WriteLimits } from '../types.js';
import { DATABASE_FILE, PARTIAL_FOLDER_PREFIX } from './db.js';
import { indexCopies, type ExistingCopy } from './existing.js';
import { OperationsStore } from './store.js';

export { NEPTUNE3_HOLDS };

/** Writes are local: batches only need to stay well under one operation's size. */
const LIMITS: WriteLimits = { metrics: 5000, params: 1000, tags: 1000, entries: 5000, bytes: 1024 * 1024 };

interface RunInWriting {
  writer: ScaleRunWriter;
  sourceId: string;
  partial: string;
  final: string;
  store: OperationsStore;
}

const extensionOf = (name: string) => /\.[A-Za-z0-9]{1,16}$/.exec(name)?.[0] ?? '';

/** The database and folder of a run being written: operations stored, files copied in and recorded for upload. */
class LocalSink implements ScaleRunSink {
  constructor(private readonly run: Omit<RunInWriting, 'writer' | 'sourceId'>) {}

  save(operations: Pending[]): void {
    this.run.store.save(operations);
  }

  /** Copies bytes into the run's folder under a new name, as the client keeps files logged from bytes, and records their upload. */
  async putFile(file: ScaleFile, body: Readable): Promise<number> {
    const local = `${randomUUID()}${extensionOf(file.name)}`;
    const path = join(this.run.partial, local);
    await pipeline(body, createWriteStream(path));
    const size = (await stat(path)).size;
    this.run.store.save([], [{ sourcePath: join(this.run.final, local), destination: file.destination, mimeType: file.mimeType, size }]);
    return size;
  }
}

export class Neptune3Destination extends ScaleWritingDestination implements Destination {
  readonly kind = 'neptune3';
  readonly limits = LIMITS;
  readonly holds = NEPTUNE3_HOLDS;
  private readonly runs = new Map<string, RunInWriting>();
  /** experiment name → its tags: a 3.x experiment is a name on its runs, which carry them (target.ts) */
  private readonly experimentTags = new Map<string, Record<string, string>>();
  /** ns of the last run folder named: strictly increasing, so two runs never share a name */
  private lastNs = 0n;

  private constructor(
    readonly uri: string,
    private readonly dir: string,
    private readonly project: string,
    private readonly copies: Map<string, ExistingCopy>,
    private readonly dryRun: boolean,
  ) {
    super();
  }

  static async open(uri: string, dir: string, project: string, dryRun: boolean): Promise<Neptune3Destination> {
    const root = resolve(dir);
    return new Neptune3Destination(uri, root, project, await indexCopies(root), dryRun);
  }

  async findExperiment(name: string): Promise<{ id: string; lifecycle: Experiment['lifecycle'] } | undefined> {
    // experiments are names on runs: one "exists" once the directory holds copies
    return this.copies.size > 0 ? { id: name, lifecycle: 'active' } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    if (!this.dryRun) await mkdir(this.dir, { recursive: true });
    // its own tags: the copy's provenance is on every run already
    this.experimentTags.set(name, Object.fromEntries(Object.entries(exp.tags).filter(([key]) => !key.startsWith(SOURCE_TAG_PREFIX))));
    return name;
  }

  async finishExperiment(): Promise<void> {
    // a 3.x experiment is a name on its runs: nothing to finish or delete
  }

  async findRun(_experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const copy = this.copies.get(sourceRunId);
    return copy && { id: copy.runId, complete: copy.complete };
  }

  private nextNs(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = now > this.lastNs ? now : this.lastNs + 1n;
    return this.lastNs;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const writer = new ScaleRunWriter(run, experimentId, this.experimentTags.get(experimentId));
    const runId = writer.runId;
    if (this.runs.has(runId)) throw new Error(`two runs of this copy have the Neptune run id ${quoted(runId)}; copy them into separate log directories`);

    const partial = joinSegment(this.dir, `${PARTIAL_FOLDER_PREFIX}${randomUUID()}`);
    const final = joinSegment(this.dir, runFolderName(this.project, runId, this.nextNs()));
    await mkdir(partial, { recursive: true });
    const store = new OperationsStore(join(partial, DATABASE_FILE));
    try {
      store.create(this.project, runId, writer.createRun(this.project), writer.rowTime, writer.firstOperations());
    } catch (err) {
      store.close();
      await removeInside(this.dir, partial);
      throw err;
    }
    writer.attach(new LocalSink({ partial, final, store }));
    const sourceId = run.tags[SOURCE_TAGS.id] ?? run.id;
    this.runs.set(runId, { writer, sourceId, partial, final, store });
    this.copies.set(sourceId, { runId, folder: partial, complete: false });
    return runId;
  }

  protected writerOf(runId: string): ScaleRunWriter {
    const run = this.runs.get(runId);
    if (!run) throw new Error(`neptune3: run ${quoted(runId)} is not being written in ${this.dir}`);
    return run.writer;
  }

  async finishRun(runId: string, run: Run): Promise<void | RunWriteResult> {
    const writing = this.runs.get(runId);
    if (!writing) return; // finished before: nothing changes once a copy is complete
    if (run.endTime !== undefined) writing.store.stampLast(run.endTime);
    writing.store.close();
    await rename(writing.partial, writing.final);
    this.runs.delete(runId);
    this.copies.set(writing.sourceId, { runId, folder: writing.final, complete: true });
    return { warnings: writing.writer.warnings };
  }

  async discardRun(runId: string): Promise<void> {
    const writing = this.runs.get(runId);
    if (writing) {
      this.runs.delete(runId);
      writing.store.close();
      await removeInside(this.dir, writing.partial);
      this.copies.delete(writing.sourceId);
      return;
    }
    for (const [sourceId, copy] of this.copies) {
      if (copy.runId !== runId || copy.complete) continue;
      await removeInside(this.dir, copy.folder);
      this.copies.delete(sourceId);
    }
  }

  async close(): Promise<void> {
    // runs still open were cut off: their partial folders are found and redone by the next copy
    for (const run of this.runs.values()) run.store.close();
    this.runs.clear();
  }
}
