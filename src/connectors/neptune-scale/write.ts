/**
 * Runs written into a Neptune 3.x project through its ingest API, as neptune-scale 0.30's sync
 * process sends them (docs/neptune-server-api.md §3). What a run's operations are is
 * neptune-common/scale-run-writer.ts (shared with the neptune3 offline-database writer); this
 * file is their sink on a server:
 *
 * - CreateRun travels alone, and its processing is awaited before anything else is sent: a
 *   missing project, a fork parent that is not there or a run id taken by another run
 *   (RUN_CONFLICTING) fails the run before any of its data could land in the wrong place;
 * - the other operations go as `update_batch` requests of at most 16 MiB (each operation at most
 *   2 MiB), sent in order, one request of a run at a time; their processing is checked
 *   (`ingest/check`) as the client checks it, and what the server refused is turned into the
 *   run's failure (project and run errors, as the client treats them) or its warnings (refused
 *   points and values, counted by the server's code);
 * - files' bytes go to the signed URLs of the storage bridge (a single PUT, or S3 multipart
 *   parts when the server asks for them) before the operations that name them;
 * - the project is created when missing (as neptune-scale's `create_project`), and found first
 *   by neptune-api's `get_project`, so that a token that may write the project but not create
 *   projects copies into an existing one.
 *
 * A copy is found again by its provenance (`run_data/tags/trackshift.source.id`) through the
 * runs search, and is complete once its last attribute, `run_data/tags/trackshift.complete`, is
 * there: it is sent only after everything else was processed.
 *
 * A copy cut off part way cannot be emptied (the ingest API deletes nothing) and its series only
 * take steps above their last. So it is resumed, not redone: the same run id, no new CreateRun,
 * every attribute assigned again (assignments are idempotent), every file uploaded again (to the
 * same paths), and of each series only the points after the last step the server holds (asked
 * through the query API). Requests the cut-off copy had sent that the server had not processed
 * yet when the last steps were asked may still land: their points sent again are then refused as
 * duplicates, never doubled, and counted in the run's warnings as already held.
 */
import { Readable } from 'node:stream';
import type { Experiment, Run } from '../../model/index.js';
import { SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../../model/index.js';
import { quoted } from '../../util/paths.js';
import { chunks, type SignedUrlClient } from '../../util/signed-url.js';
import { NEPTUNE3_HOLDS } from '../neptune-common/holds.js';
import { enumName, timestampOf, type CreateRun } from '../neptune-common/scale-proto.js';
import { encodeSnapshot } from '../neptune-common/scale-snapshot.js';
import { ScaleRunWriter, ScaleWritingDestination, type ScaleFile, type ScaleRunSink } from '../neptune-common/scale-run-writer.js';
import { MAX_OPERATION_BYTES, type Pending } from '../neptune-common/scale-values.js';
import type { Destination, ExistingRun, RunWriteResult, WriteLimits } from '../types.js';
import { RPC_OK, RPC_UNAVAILABLE, stringAttribute, type NeptuneScaleApi, type ProtoAttribute, type RequestStatus } from './api.js';

/** One request's worth of points per batch at most; the requests are made to fit anyway. */
const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 8 * 1024 * 1024 };
/** parameters.py `MAX_REQUEST_SIZE_BYTES` */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** a run's operations are sent once they reach this (or when the run ends): requests of a useful size, not one per call */
const SEND_AT_BYTES = 1024 * 1024;
/** requests of a run left unchecked before their statuses are asked (the client asks up to 1000 at once) */
const CHECK_AT = 100;
const CHECK_BATCH = 1000;
/** how long the server may take to process what a run sent before the run fails */
const PROCESSING_TIMEOUT_MS = 10 * 60_000;
const POLL_MS = { first: 50, max: 1000 };

/** the attribute types of series, as the query API names them */
const SERIES_TYPES = ['floatSeries', 'stringSeries', 'fileRefSeries', 'histogramSeries'];

const PROVENANCE = `run_data/tags/${SOURCE_TAGS.id}`;
const COMPLETE = `run_data/tags/${SOURCE_TAGS.complete}`;

/**
 * What the server's refusals mean (neptune.ingest.v1.IngestCode): the client's fatal project and
 * run errors end the run; RUN_CONFLICTING, only a warning for the client, ends it too, as the id
 * belongs to a run created otherwise and the copy must not write into it.
 */
const FATAL: Record<string, string> = {
  PROJECT_NOT_FOUND: 'the server has no such project (or the token may not write it)',
  PROJECT_INVALID_NAME: 'the server does not take the project name',
  RUN_NOT_FOUND: 'the server does not know the run its data was sent to',
  RUN_FORK_PARENT_NOT_FOUND: 'the run it is forked from is not in the project; copy that run too',
  RUN_INVALID_CREATION_PARAMETERS: "the server refused the run's creation (its experiment name, creation time or fork point)",
  RUN_CONFLICTING: 'the project already has a run with this id, created otherwise: it is not a copy of this run; copy into another project, or remove that run in Neptune',
};
/** points a resumed copy sends again when the server already held them */
const ALREADY_HELD = new Set(['SERIES_POINT_DUPLICATE', 'SERIES_STEP_NON_INCREASING']);

interface Copy {
  /** the Neptune run id (`sys/custom_run_id`): the destination's id of the run */
  runId: string;
  /** `sys/id`, which the query API addresses a run by */
  sysId?: string;
  complete: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads a body whose size the source did not say (its length is in the signed URL request and the file_ref). */
async function bytesOf(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** One run's requests to the ingest API: operations buffered and sent in order, their processing checked, files uploaded. */
class IngestRun implements ScaleRunSink {
  private buffer: Uint8Array[] = [];
  private bufferBytes = 0;
  private readonly maxRequest: number;
  /** the sends of this run, one after the other; a failed one fails every later call */
  private sending: Promise<void> = Promise.resolve();
  private unchecked: string[] = [];
  private fatal?: Error;
  /** refused operations' entries, by IngestCode name */
  readonly refusals = new Map<string, number>();
  /** whether the server said the run already existed, created the same way (RUN_DUPLICATE) */
  duplicate = false;

  constructor(
    private readonly api: NeptuneScaleApi,
    private readonly signed: SignedUrlClient,
    private readonly project: string,
    readonly runId: string,
  ) {
    this.maxRequest = MAX_REQUEST_BYTES - Buffer.byteLength(runId) - Buffer.byteLength(project) - 200;
  }

  /** CreateRun, alone, and its processing awaited: what the server says of it decides whether anything else is sent. */
  async create(run: Partial<CreateRun> & { inheritConfigs: boolean }): Promise<void> {
    this.unchecked.push(...(await this.api.ingest({ project: this.project, runId: this.runId, operation: { case: 'create', value: run } })));
    await this.processed();
  }

  async save(operations: Pending[]): Promise<void> {
    if (this.fatal) throw this.fatal;
    for (const op of operations) {
      const bytes = encodeSnapshot(op.update);
      if (bytes.length > MAX_OPERATION_BYTES) throw new Error(`a Neptune operation of ${bytes.length} bytes is over the client's limit of ${MAX_OPERATION_BYTES}`);
      // a field key and length frame each snapshot: 8 bytes covers them
      if (this.bufferBytes + bytes.length + 8 > this.maxRequest) this.send();
      this.buffer.push(bytes);
      this.bufferBytes += bytes.length + 8;
    }
    if (this.bufferBytes >= SEND_AT_BYTES) this.send();
    // a run waits for its own requests: memory stays bounded, and a failure reaches the engine
    await this.sending;
  }

  /** Queues what is buffered as one request, after the run's earlier ones. */
  private send(): void {
    if (this.buffer.length === 0) return;
    const snapshots = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    this.sending = this.sending.then(async () => {
      this.unchecked.push(...(await this.api.ingestUpdates(this.project, this.runId, snapshots)));
      if (this.unchecked.length >= CHECK_AT) await this.check();
    });
    // its failure reaches the run through the next call that awaits it, not as an unhandled rejection
    this.sending.catch(() => undefined);
  }

  /** Everything buffered sent (not waiting for its processing). */
  async sendNow(): Promise<void> {
    this.send();
    await this.sending;
  }

  /** Everything buffered sent, and processed by the server. */
  async flush(): Promise<void> {
    this.send();
    await this.sending;
    await this.processed();
  }

  /** Checks the unchecked requests once, oldest first; those not processed yet stay. True when none is left. */
  private async check(): Promise<boolean> {
    while (this.unchecked.length > 0) {
      const ids = this.unchecked.slice(0, CHECK_BATCH);
      const statuses = await this.api.checkRequests(this.project, ids);
      const done = statuses.findIndex((s) => s.codeByCount.some((c) => c.code === RPC_UNAVAILABLE));
      const processed = done < 0 ? statuses : statuses.slice(0, done);
      for (const status of processed) this.take(status);
      this.unchecked = this.unchecked.slice(processed.length);
      if (this.fatal) throw this.fatal;
      if (done >= 0) return false;
    }
    return true;
  }

  /** Waits until the server processed every request sent (as `wait_for_processing`). */
  private async processed(): Promise<void> {
    const deadline = Date.now() + PROCESSING_TIMEOUT_MS;
    for (let wait = POLL_MS.first; !(await this.check()); wait = Math.min(POLL_MS.max, wait * 2)) {
      if (Date.now() > deadline) throw new Error(`the Neptune server at ${this.api.displayUrl} has not processed ${this.unchecked.length} request(s) of the run within ${PROCESSING_TIMEOUT_MS / 60_000} minutes; run the copy again later (the run is resumed)`);
      await sleep(wait);
    }
  }

  private take(status: RequestStatus): void {
    for (const { code, count, detail } of status.codeByCount) {
      if (code === RPC_OK) continue;
      const name = enumName('neptune.ingest.v1.IngestCode', detail);
      if (name === 'RUN_DUPLICATE') {
        this.duplicate = true;
        continue;
      }
      const fatal = FATAL[name];
      if (fatal) this.fatal ??= new Error(`Neptune refused run ${quoted(this.runId)} in ${this.project} (${name}): ${fatal}`);
      else this.refusals.set(name, (this.refusals.get(name) ?? 0) + Number(count));
    }
  }

  /**
   * A file's bytes into the project's storage, as the client uploads them: a signed URL for its
   * path, then one PUT (or S3 multipart parts), which must answer an ETag.
   */
  async putFile(file: ScaleFile, body: Readable): Promise<number> {
    const data = file.size === undefined ? await bytesOf(body) : undefined;
    const size = file.size ?? data!.length;
    const signed = (await this.api.signedUrls(this.project, [{ path: file.destination, size }], 'write')).get(file.destination)!;
    // azure and gcp need their own upload protocols (the client's azure SDK, GCS resumable uploads)
    if (signed.provider !== 'aws') throw new Error(`the Neptune server gave ${signed.provider} storage for ${quoted(file.destination)}; trackshift uploads to S3-style ("aws") storage only`);
    const headers = { 'content-type': file.mimeType };
    const noEtag = () => new Error(`the storage answered the upload of ${quoted(file.destination)} without an ETag, so it counts as failed (as neptune-scale counts it)`);
    if (!signed.multipart) {
      const etag = data ? await this.signed.putPiece(signed.url, headers, data) : await this.signed.putStream(signed.url, headers, body, size);
      if (!etag) throw noEtag();
      return size;
    }
    const { upload_id: uploadId, part_size: partSize, part_urls: urls } = signed.multipart;
    if (urls.length * partSize < size) throw new Error(`the Neptune server gave ${urls.length} part URL(s) of ${partSize} bytes for ${quoted(file.destination)}, which is ${size} bytes`);
    const etags: string[] = [];
    for await (const piece of chunks(data ? Readable.from([data]) : body, partSize)) {
      const etag = await this.signed.putPiece(urls[etags.length]!, {}, piece);
      if (!etag) throw noEtag();
      etags.push(etag);
    }
    await this.api.completeMultipartUpload(this.project, file.destination, uploadId, etags);
    return size;
  }
}

interface RunInWriting {
  writer: ScaleRunWriter;
  ingest: IngestRun;
  sourceId: string;
  resumed: boolean;
}

export class NeptuneScaleDestination extends ScaleWritingDestination implements Destination {
  readonly kind = 'neptune-scale';
  readonly limits = LIMITS;
  readonly holds = NEPTUNE3_HOLDS;
  readonly uri: string;
  private readonly runs = new Map<string, RunInWriting>();
  /** experiment name → its tags: a 3.x experiment is a name on its runs, which carry them (target.ts) */
  private readonly experimentTags = new Map<string, Record<string, string>>();
  private projectReady?: Promise<void>;
  readonly notes: Array<{ object: string; message: string }> = [];
  private copies?: Promise<Map<string, Copy>>;
  /** copies cut off before, by source run id: resumed when their source run is written again */
  private readonly cutOff = new Map<string, Copy>();

  constructor(
    private readonly api: NeptuneScaleApi,
    private readonly signed: SignedUrlClient,
    private readonly project: string,
    private readonly dryRun: boolean,
  ) {
    super();
    this.uri = `neptune-scale://${project}`;
  }

  /** The project, created when missing (never in a dry run). */
  private ensureProject(): Promise<void> {
    this.projectReady ??= (async () => {
      const existed = `the project existed: the runs are added to it`;
      if (await this.api.projectExists(this.project)) {
        this.notes.push({ object: this.uri, message: existed });
        return;
      }
      if (this.dryRun) return;
      const [workspace = '', name = ''] = this.project.split('/');
      // 'existed' here: made meanwhile by another copy, or by our own creation whose answer was lost
      const how = await this.api.createProject(workspace, name);
      this.notes.push({ object: this.uri, message: how === 'created' ? 'the project did not exist: created it (private)' : existed });
    })();
    this.projectReady.catch(() => (this.projectReady = undefined));
    return this.projectReady;
  }

  /** The copies already in the project, by source run id, read once (runs written since are added as they are). */
  private index(): Promise<Map<string, Copy>> {
    this.copies ??= (async () => {
      const out = new Map<string, Copy>();
      if (!(await this.api.projectExists(this.project))) return out;
      for (const entry of await this.api.searchRuns(this.project, ['sys/id', 'sys/custom_run_id', PROVENANCE, COMPLETE])) {
        const sourceId = stringAttribute(entry.attributes, PROVENANCE);
        const runId = stringAttribute(entry.attributes, 'sys/custom_run_id');
        if (!sourceId || !runId) continue;
        const sysId = stringAttribute(entry.attributes, 'sys/id');
        const copy: Copy = { runId, ...(sysId ? { sysId } : {}), complete: stringAttribute(entry.attributes, COMPLETE) === 'true' };
        if (!out.get(sourceId)?.complete) out.set(sourceId, copy);
      }
      return out;
    })();
    this.copies.catch(() => (this.copies = undefined));
    return this.copies;
  }

  runUrl(_experimentId: string, runId: string): string | undefined {
    return this.api.runUrl(this.project, runId);
  }

  async findExperiment(name: string): Promise<{ id: string; lifecycle: Experiment['lifecycle'] } | undefined> {
    // a 3.x experiment is a name on runs: it "exists" with the project
    return (await this.api.projectExists(this.project)) ? { id: name, lifecycle: 'active' } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    await this.ensureProject();
    // its own tags: the copy's provenance is on every run already
    this.experimentTags.set(name, Object.fromEntries(Object.entries(exp.tags).filter(([key]) => !key.startsWith(SOURCE_TAG_PREFIX))));
    return name;
  }

  async finishExperiment(): Promise<void> {
    // a 3.x experiment is a name on its runs: nothing to finish or delete
  }

  async findRun(_experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const copy = (await this.index()).get(sourceRunId);
    return copy && { id: copy.runId, complete: copy.complete, lifecycle: 'active' };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    await this.ensureProject();
    const writer = new ScaleRunWriter(run, experimentId, this.experimentTags.get(experimentId));
    const runId = writer.runId;
    if (this.runs.has(runId)) throw new Error(`two runs of this copy have the Neptune run id ${quoted(runId)}; copy them into separate projects`);
    const sourceId = run.tags[SOURCE_TAGS.id] ?? run.id;
    const cutOff = this.cutOff.get(sourceId);
    this.cutOff.delete(sourceId);
    const ingest = new IngestRun(this.api, this.signed, this.project, runId);
    const resumed = cutOff?.runId === runId;
    this.runs.set(runId, { writer, ingest, sourceId, resumed });
    try {
      if (resumed) writer.resume(await this.lastSteps(sourceId, cutOff));
      else {
        if (cutOff) writer.warnings.push(`an earlier, cut-off copy of this run (Neptune run ${quoted(cutOff.runId)}) stays in the project, incomplete: Neptune 3.x runs cannot be deleted through the API`);
        // a fork gets its own configs, as the source run has them, not its parent's as well
        await ingest.create(writer.createRun(this.project, false));
      }
      // the run's attributes, its provenance among them, at once: a copy cut off from here on is found and resumed
      await ingest.save(writer.firstOperations());
      await ingest.sendNow();
    } catch (err) {
      this.runs.delete(runId);
      throw err;
    }
    writer.attach(ingest);
    (await this.index()).set(sourceId, { runId, ...(cutOff?.sysId ? { sysId: cutOff.sysId } : {}), complete: false });
    return runId;
  }

  /** Per series of a cut-off copy, the last step the server holds (the query API's attribute values). */
  private async lastSteps(sourceId: string, copy: Copy): Promise<Map<string, number>> {
    let sysId = copy.sysId;
    if (!sysId) {
      // a copy created and cut off in this very process was never searched for: its sys/id is looked up now
      this.copies = undefined;
      sysId = (await this.index()).get(sourceId)?.sysId;
    }
    const held = new Map<string, number>();
    if (!sysId) return held;
    for (const entry of await this.api.queryAttributes(this.project, [`${this.project}/${sysId}`], SERIES_TYPES)) {
      for (const attribute of entry.attributes) {
        const last = lastStepOf(attribute);
        if (last !== undefined) held.set(attribute.name, last);
      }
    }
    return held;
  }

  protected writerOf(runId: string): ScaleRunWriter {
    const run = this.runs.get(runId);
    if (!run) throw new Error(`neptune-scale: run ${quoted(runId)} is not being written`);
    return run.writer;
  }

  async finishRun(runId: string, run: Run): Promise<void | RunWriteResult> {
    const writing = this.runs.get(runId);
    if (!writing) return; // finished before: nothing changes once a copy is complete
    const { writer, ingest } = writing;
    // everything processed first: the completion mark never lands before the rest
    await ingest.flush();
    // last: the mark of a complete copy, at the source's end time (what readers take for the run's end)
    const [complete] = writer.assignments([[COMPLETE, { type: 'string', value: 'true' }]]);
    if (run.endTime !== undefined) complete!.update.timestamp = timestampOf(run.endTime);
    await ingest.save([complete!]);
    await ingest.flush();
    this.runs.delete(runId);
    const copies = await this.index();
    copies.set(writing.sourceId, { ...copies.get(writing.sourceId), runId, complete: true });
    return { warnings: this.warningsOf(writing) };
  }

  private warningsOf({ writer, ingest, resumed }: RunInWriting): string[] {
    const warnings = [...writer.warnings];
    if (ingest.duplicate && !resumed) warnings.push(`the project already had the run ${quoted(ingest.runId)}, created the same way (RUN_DUPLICATE: an earlier copy cut off before its first attributes, or the client): it was written into`);
    const skipped = [...writer.skipped.values()].reduce((n, c) => n + c, 0);
    const again = [...ALREADY_HELD].reduce((n, code) => n + (resumed ? (ingest.refusals.get(code) ?? 0) : 0), 0);
    if (resumed) warnings.push(`resumed the copy cut off before (Neptune 3.x runs cannot be emptied): ${skipped} point(s) it held already were not sent again${again > 0 ? `, ${again} more were refused by the server as held already` : ''}; attributes and files were written again`);
    const refused = [...ingest.refusals].filter(([code]) => !(resumed && ALREADY_HELD.has(code)));
    if (refused.length > 0) warnings.push(`the Neptune server refused ${refused.map(([code, n]) => `${n} × ${code}`).join(', ')} of this run's values; they are not in the copy`);
    return warnings;
  }

  /**
   * A run cut off part way (an earlier copy, or one in flight when the copy was stopped): nothing
   * can be deleted, so it is kept to be resumed when its source run is written again.
   */
  async discardRun(runId: string): Promise<void> {
    this.runs.delete(runId);
    const copies = await this.index().catch(() => new Map<string, Copy>());
    for (const [sourceId, copy] of copies) {
      if (copy.runId !== runId || copy.complete) continue;
      copies.delete(sourceId);
      this.cutOff.set(sourceId, copy);
    }
  }

  async close(): Promise<void> {
    // runs still open were cut off: found by their provenance and resumed by the next copy
    this.runs.clear();
    await Promise.all([this.api.close(), this.signed.close()]);
  }
}

/** The last step of a series attribute, as the query API gives it. */
function lastStepOf(attribute: ProtoAttribute): number | undefined {
  for (const properties of [attribute.floatSeriesProperties, attribute.stringSeriesProperties, attribute.fileRefSeriesProperties, attribute.histogramSeriesProperties]) {
    if (typeof properties?.lastStep === 'number') return properties.lastStep;
  }
  return undefined;
}
