/**
 * The transfer: moves a plan from a source to a destination. Runs go in parallel (`workers`);
 * each run's series stream page by page into what the destination holds (series-copy.ts,
 * encoding.ts), files go under their own limit (file-copy.ts). Every finished run is
 * journaled; a re-run skips what is done and redoes what was cut off.
 */
import type { Readable } from 'node:stream';
import pLimit, { type LimitFunction } from 'p-limit';
import type { ArtifactFile, Experiment, ForkPoint, LoggedModel, ModelVersion, Run } from '../model/index.js';
import { SOURCE_TAGS } from '../model/index.js';
import type { Destination, Source } from '../connectors/types.js';
import { UsageError, errorMessage } from '../util/errors.js';
import type { RetryContext } from '../util/retry.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import { PointBudget } from './point-budget.js';
import { RunEncoder, type EncodedRun } from './encoding.js';
import { keyValueBatches } from './batching.js';
import type { EventListener, TransferEvent } from './events.js';
import { FileCopier } from './file-copy.js';
import type { Journal } from './journal.js';
import { METRIC_READERS, SeriesCopy, type SeriesCopyContext } from './series-copy.js';
import type { ExperimentPlan, ModelPlan, Plan } from './plan.js';
import { copyLoggedModel, isCopyOf, ModelTransfer, type ModelOutcome, type ModelTransferContext } from './models.js';

export interface TransferOptions {
  workers: number;
  artifactWorkers: number;
  dryRun: boolean;
  journal: Journal;
  onEvent?: EventListener;
  /** `--lineage-tags`: record the source model, version, run and URI on each new version */
  lineageTags?: boolean;
  /** `--delete-model`: replace destination models (once per job, not again on a re-run) */
  deleteModel?: boolean;
  /** `--archive-existing-versions` */
  archiveExisting?: boolean;
  /** new versions take the next free numbers instead of the source's (copy-model-version) */
  renumberVersions?: boolean;
  /** aborted (Ctrl-C): no new work starts; work in flight gets `stopGraceMs` to finish, then is abandoned */
  signal?: AbortSignal;
  stopGraceMs?: number;
  /** how a whole artifact file is tried again when its transfer fails, and where that is counted */
  retry?: RetryContext;
  /** metric points held in memory at once, across all runs (POINTS_IN_FLIGHT by default) */
  pointsInFlight?: number;
}

export interface FailedObject {
  type: 'experiment' | 'run' | 'logged-model' | 'model' | 'version';
  sourceId: string;
  name?: string;
  reason: string;
}

export interface TransferResult {
  planned: { experiments: number; runs: number; models: number; versions: number };
  copied: { runs: number; metricPoints: number; artifacts: number; artifactBytes: number; loggedModels: number; versions: number };
  skipped: { runs: number; loggedModels: number; versions: number };
  failed: FailedObject[];
  warnings: Array<{ object: string; message: string }>;
  /** what the destination did or found beyond the runs (a project created, or there already) */
  notes?: Array<{ object: string; message: string }>;
  /** runs whose copy keeps what the destination cannot hold natively in the `.trackshift/` encoding, and how */
  encoded: EncodedRun[];
  /** each model handled, with how its version numbers map */
  models: Array<Omit<ModelOutcome, 'failed' | 'copied' | 'skipped'>>;
  /** runs copied or found already there, with where each end opens them, when either end has a web app */
  runUrls?: Array<{ source: string; destination: string; sourceUrl?: string; destinationUrl?: string }>;
  /** dry run: what would be done to each run and model version */
  dryRun?: Array<{ experiment: string; run: string; name?: string; action: 'copy' | 'skip' | 'redo' }>;
  dryRunModels?: Array<{ model: string; destinationModel: string; version: string; action: 'copy' | 'skip' }>;
  /** set when the transfer was stopped (`signal`), with the runs never started and those cut off (discarded) */
  interrupted?: true;
  runsNotStarted?: number;
  runsAbandoned?: number;
}

/** how long work in flight may go on after a stop (Ctrl-C) before it is abandoned */
const STOP_GRACE_MS = 5_000;
/** how long discarding one abandoned run may take: a stop must not hang on a slow destination */
const DISCARD_TIMEOUT_MS = 3_000;
/** history pages smaller than this say little about the source's speed (fixed costs dominate) */
const READ_TIMED_POINTS = 500;
/**
 * metric points held in memory at once across the transfer (~110 bytes each): five pages of the
 * usual 10,000 points; a reader that would wait hands its points on first. 200,000 cost a
 * 10-million-point copy 11 MB more peak RSS and no speed
 */
const POINTS_IN_FLIGHT = 50_000;

interface RunOutcome {
  points: number;
  artifacts: number;
  bytes: number;
}

/**
 * Tags the copy carries: the source's own and where it came from. How a destination names the
 * parent (MLflow: a tag) is its own business: it is given the parent's destination id.
 */
function destinationTags(run: Run, sourceUri: string): Record<string, string> {
  const tags: Record<string, string> = { ...run.tags };
  delete tags[SOURCE_TAGS.complete];
  tags[SOURCE_TAGS.id] = run.id;
  tags[SOURCE_TAGS.uri] = sourceUri;
  return tags;
}

export class Transfer {
  private readonly result: TransferResult;
  private readonly files: FileCopier;
  private readonly seriesContext: SeriesCopyContext;
  /**
   * metric batches written at once, across all runs: at most as many as runs in flight, fewer
   * when the destination only queues them (a saturated server gets slower with more at once).
   * Reading goes wider (METRIC_READERS keys a run), so a batch is ready when a place frees.
   */
  private readonly metricWrites: AdaptiveLimit;
  /**
   * history pages read at once, across all runs: up to METRIC_READERS a run, fewer when the
   * source only queues them (a one-worker MLflow server gains nothing past two at once)
   */
  private readonly metricReads: AdaptiveLimit;
  /** source run id → destination run id, resolved as soon as the run is created */
  private readonly created = new Map<string, Promise<string | undefined>>();
  /** source run id → whether the run ended complete in the destination */
  private readonly finished = new Map<string, Promise<boolean>>();
  /** runs being copied: source run id → destination run id once created */
  private readonly inFlight = new Map<string, string | undefined>();
  /** resolves `stopGraceMs` after a stop was asked for */
  private readonly graceOver: Promise<boolean>;
  /** the grace time is over: runs still in flight must neither finish nor be journaled */
  private abandoned = false;

  constructor(
    private readonly source: Source,
    private readonly destination: Destination,
    private readonly plan: Plan,
    private readonly options: TransferOptions,
  ) {
    this.result = {
      planned: { experiments: plan.experiments.length, runs: plan.runCount, models: plan.models.length, versions: plan.versionCount },
      copied: { runs: 0, metricPoints: 0, artifacts: 0, artifactBytes: 0, loggedModels: 0, versions: 0 },
      skipped: { runs: 0, loggedModels: 0, versions: 0 },
      // what the source could not read fails alone, before anything is copied
      failed: [...(plan.unreadable ?? [])],
      warnings: [],
      encoded: [],
      models: [],
    };
    this.files = new FileCopier(destination, options.artifactWorkers, options.retry, (count) => this.emit({ type: 'bytes', count }));
    const batchMax = Math.min(destination.limits.metrics, destination.limits.entries);
    this.metricWrites = new AdaptiveLimit(options.workers, Math.ceil(batchMax / 2));
    this.metricReads = new AdaptiveLimit(options.workers * METRIC_READERS, READ_TIMED_POINTS);
    this.seriesContext = {
      source,
      destination,
      metricWrites: this.metricWrites,
      metricReads: this.metricReads,
      points: new PointBudget(options.pointsInFlight ?? POINTS_IN_FLIGHT),
      files: this.files,
      emit: (event) => this.emit(event),
    };
    this.graceOver = new Promise((resolve) => {
      const { signal } = options;
      const start = () => setTimeout(() => resolve(false), options.stopGraceMs ?? STOP_GRACE_MS).unref();
      if (signal?.aborted) start();
      else signal?.addEventListener('abort', start, { once: true });
    });
  }

  private get stopped(): boolean {
    return this.options.signal?.aborted === true;
  }

  /** Waits for `work`, or until the grace time after a stop is over; false when it was abandoned. */
  private async settle(work: Promise<unknown>): Promise<boolean> {
    const finished = await Promise.race([work.then(() => true), this.graceOver]);
    if (!finished) this.abandoned = true;
    return finished;
  }

  /** After a stop: discards the runs cut off part way (a re-run copies them again) and says so. */
  private async endInterrupted(): Promise<TransferResult> {
    const cutOff = [...this.inFlight];
    await Promise.all(
      cutOff.map(async ([sourceId, destinationId]) => {
        if (!destinationId) return;
        const timeout = new Promise((resolve) => setTimeout(resolve, DISCARD_TIMEOUT_MS).unref());
        // best effort: a partial run left behind is still redone, as it has no completion mark
        await Promise.race([this.destination.discardRun(destinationId).catch(() => undefined), timeout]);
        this.emit({ type: 'warning', object: `run ${sourceId}`, message: 'cut off by the interruption: its partial copy was discarded, the next run copies it again' });
      }),
    );
    const { copied, skipped, failed } = this.result;
    const ended = copied.runs + skipped.runs + failed.filter((f) => f.type === 'run').length + cutOff.length;
    Object.assign(this.result, { interrupted: true, runsNotStarted: this.plan.runCount - ended, runsAbandoned: cutOff.length });
    return this.result;
  }

  /** the destination's notes not shown yet (it adds them as it meets what they say) */
  private emitDestinationNotes(): void {
    const notes = this.destination.notes ?? [];
    for (const note of notes.slice(this.result.notes?.length ?? 0)) this.emit({ type: 'note', ...note });
  }

  private emit(event: TransferEvent): void {
    if (event.type === 'warning') this.result.warnings.push({ object: event.object, message: event.message });
    if (event.type === 'note') (this.result.notes ??= []).push({ object: event.object, message: event.message });
    this.options.onEvent?.(event);
  }

  async run(): Promise<TransferResult> {
    this.emit({ type: 'planned', experiments: this.plan.experiments.length, runs: this.plan.runCount, versions: this.plan.versionCount });
    for (const warning of this.source.warnings ?? []) this.emit({ type: 'warning', ...warning });
    if (this.options.dryRun) return this.dryRun();
    const limit = pLimit(Math.max(1, this.options.workers));
    // experiments one after another keep deleted-experiment handling simple; runs of each in parallel
    for (const experimentPlan of this.plan.experiments) {
      if (this.stopped) continue;
      const destinationId = await this.prepareExperiment(experimentPlan);
      if (destinationId === undefined) continue;
      if (!(await this.journalHolds(experimentPlan, destinationId))) {
        for (const run of experimentPlan.runs) this.options.journal.runForgotten(run.id);
      }
      if (!(await this.settle(Promise.all(experimentPlan.runs.map((run) => this.scheduleRun(limit, run, destinationId)))))) break;
      if (this.stopped) continue; // its logged models and deletion come with the next run
      const steps = new Map(experimentPlan.runs.flatMap((run) => (run.modelOutputs ?? []).map((o) => [o.modelId, o.step] as const)));
      await Promise.all(experimentPlan.loggedModels.map((model) => limit(() => this.copyLoggedModel(model, destinationId, steps.get(model.id)))));
      await this.finishExperiment(experimentPlan.experiment, destinationId);
    }
    // models after the runs and logged models their versions point at
    const models = new ModelTransfer(this.modelContext());
    if (!this.abandoned) await this.settle(Promise.all(this.plan.models.map((modelPlan) => limit(async () => !this.stopped && this.copyModel(models, modelPlan)))));
    return this.stopped ? this.endInterrupted() : this.result;
  }

  private modelContext(): ModelTransferContext {
    return {
      source: this.source,
      destination: this.destination,
      journal: this.options.journal,
      runCopy: (id) => this.options.journal.doneRuns.get(id),
      failedHere: (type, id) => this.result.failed.find((f) => f.type === type && f.sourceId === id)?.reason,
      loggedModelCopy: (id) => this.options.journal.doneLoggedModels.get(id),
      warn: (object, message) => this.emit({ type: 'warning', object, message }),
      lineageTags: Boolean(this.options.lineageTags),
      deleteExisting: Boolean(this.options.deleteModel),
      keepNumbers: !this.options.renumberVersions,
      copyVersionFiles: (version, write, ids) => this.copyVersionFiles(version, write, ids),
      archiveExisting: Boolean(this.options.archiveExisting),
    };
  }

  /** A version's files as the source holds them: a folder of its run, or its logged model. */
  private async copyVersionFiles(version: ModelVersion, write: (file: ArtifactFile, body: Readable) => Promise<void>, ids: ReadonlyMap<string, string>): Promise<unknown> {
    const { location } = version;
    const runId = location.type === 'run' ? location.runId : version.runId;
    const run = runId && this.source.getRun ? await this.source.getRun(runId) : undefined;
    if (location.type === 'run' && run) {
      const prefix = location.path ? `${location.path}/` : '';
      const source = this.source;
      const files = (async function* () {
        for await (const file of source.listArtifacts(run)) if (file.path.startsWith(prefix)) yield { ...file, path: file.path.slice(prefix.length) };
      })();
      return this.files.copy(files, (path) => source.readArtifact(run, prefix + path), write, ids);
    }
    if (location.type === 'logged-model' && run && this.source.loggedModels) {
      const reader = this.source.loggedModels;
      for await (const model of reader.listLoggedModels(run.experimentId)) {
        if (model.id === location.modelId) return this.files.copy(reader.listLoggedModelArtifacts(model), (path) => reader.readLoggedModelArtifact(model, path), write, ids);
      }
    }
    throw new UsageError(`the files of version ${version.version} of "${version.modelName}" (${version.source}) are not in ${this.source.uri}, so they cannot be copied into ${this.destination.uri}, which keeps each version's files itself`);
  }

  private async copyLoggedModel(model: LoggedModel, experimentId: string, outputStep: number | undefined): Promise<void> {
    try {
      const reader = this.source.loggedModels!;
      const { copied, id } = await copyLoggedModel(this.modelContext(), model, experimentId, (m, destinationId) => {
        const ids = new Map<string, string>();
        if (m.id !== destinationId) ids.set(m.id, destinationId);
        const runCopy = m.sourceRunId ? this.options.journal.doneRuns.get(m.sourceRunId) : undefined;
        if (m.sourceRunId && runCopy && runCopy !== m.sourceRunId) ids.set(m.sourceRunId, runCopy);
        return this.files.copy(
          reader.listLoggedModelArtifacts(m),
          (path) => reader.readLoggedModelArtifact(m, path),
          (file, body) => this.destination.loggedModels!.writeLoggedModelArtifact(destinationId, file, body),
          ids,
        );
      }, outputStep);
      if (copied) this.result.copied.loggedModels++;
      else this.result.skipped.loggedModels++;
      this.emit({ type: 'logged-model', sourceId: model.id, destinationId: id, copied });
    } catch (err) {
      this.result.failed.push({ type: 'logged-model', sourceId: model.id, name: model.name, reason: errorMessage(err) });
      this.emit({ type: 'warning', object: `logged model ${model.id}`, message: `not copied: ${errorMessage(err)}` });
    }
  }

  private async copyModel(models: ModelTransfer, plan: ModelPlan): Promise<void> {
    try {
      const outcome = await models.copyModel(plan);
      const { failed, copied, skipped, ...mapping } = outcome;
      this.result.copied.versions += copied;
      this.result.skipped.versions += skipped;
      this.result.models.push(mapping);
      for (const failure of failed) {
        const type = failure.version ? 'version' : 'model';
        const sourceId = failure.version ? `${plan.model.name}/${failure.version}` : plan.model.name;
        this.result.failed.push({ type, sourceId, name: plan.model.name, reason: failure.reason });
      }
      if (outcome.shallow.length > 0) {
        this.emit({
          type: 'warning',
          object: `model "${plan.model.name}"`,
          message: `version(s) ${outcome.shallow.join(', ')} point at the source's files (shallow copy): their runs or logged models were not copied`,
        });
      }
      this.emit({ type: 'model', name: plan.model.name, destinationName: plan.destinationName, copied, skipped, failed: failed.length });
    } catch (err) {
      this.result.failed.push({ type: 'model', sourceId: plan.model.name, name: plan.model.name, reason: errorMessage(err) });
      this.emit({ type: 'warning', object: `model "${plan.model.name}"`, message: `not copied: ${errorMessage(err)}` });
    }
  }

  private async prepareExperiment({ experiment, destinationName, runs }: ExperimentPlan): Promise<string | undefined> {
    const tags = { ...experiment.tags, [SOURCE_TAGS.id]: experiment.id, [SOURCE_TAGS.uri]: this.source.uri };
    try {
      const id = await this.destination.ensureExperiment({ ...experiment, tags }, destinationName);
      this.emitDestinationNotes();
      this.options.journal.experimentMapped(experiment.id, id, destinationName);
      this.emit({ type: 'experiment', sourceId: experiment.id, name: destinationName, destinationId: id });
      return id;
    } catch (err) {
      const reason = `cannot create experiment "${destinationName}" in ${this.destination.uri}: ${errorMessage(err)}`;
      this.result.failed.push({ type: 'experiment', sourceId: experiment.id, name: experiment.name, reason });
      for (const run of runs) {
        this.result.failed.push({ type: 'run', sourceId: run.id, name: run.name, reason: `its experiment failed: ${errorMessage(err)}` });
        this.emit({ type: 'run-failed', sourceId: run.id, reason });
      }
      return undefined;
    }
  }

  private async finishExperiment(experiment: Experiment, destinationId: string): Promise<void> {
    try {
      await this.destination.finishExperiment(destinationId, experiment);
    } catch (err) {
      this.result.failed.push({ type: 'experiment', sourceId: experiment.id, name: experiment.name, reason: errorMessage(err) });
    }
  }

  private scheduleRun(limit: LimitFunction, run: Run, experimentId: string): Promise<void> {
    let resolveId!: (id: string | undefined) => void;
    let resolveFinished!: (ok: boolean) => void;
    this.created.set(run.id, new Promise((resolve) => (resolveId = resolve)));
    this.finished.set(run.id, new Promise((resolve) => (resolveFinished = resolve)));
    return limit(async () => {
      if (this.stopped) {
        resolveId(undefined);
        resolveFinished(false);
        return;
      }
      this.inFlight.set(run.id, undefined);
      try {
        const outcome = await this.copyRun(run, experimentId, resolveId);
        resolveFinished(true);
        if (outcome) {
          this.result.copied.runs++;
          this.result.copied.metricPoints += outcome.points;
          this.result.copied.artifacts += outcome.artifacts;
          this.result.copied.artifactBytes += outcome.bytes;
        }
      } catch (err) {
        resolveId(undefined);
        resolveFinished(false);
        if (this.abandoned) return; // counted and discarded by endInterrupted
        const reason = errorMessage(err);
        this.result.failed.push({ type: 'run', sourceId: run.id, name: run.name, reason });
        this.emit({ type: 'run-failed', sourceId: run.id, reason });
      } finally {
        if (!this.abandoned) this.inFlight.delete(run.id);
      }
    });
  }

  /** The destination id of a source run: copied in this pass, or in an earlier one. */
  private async destinationIdOf(sourceRunId: string, experimentId: string): Promise<string | undefined> {
    const pending = this.created.get(sourceRunId);
    return (await pending) ?? this.options.journal.doneRuns.get(sourceRunId) ?? (await this.destination.findRun(experimentId, sourceRunId))?.id;
  }

  /** The destination id of a run's parent: copied in this pass, or in an earlier one. */
  private async parentDestinationId(run: Run, experimentId: string): Promise<string | undefined> {
    if (!run.parentId) return undefined;
    const id = await this.destinationIdOf(run.parentId, experimentId);
    if (!id) {
      this.emit({
        type: 'warning',
        object: `run ${run.id}`,
        message: `its parent run ${run.parentId} is not copied, so the copy is not nested; select the parent too (or use --include-nested on the parent)`,
      });
    }
    return id;
  }

  /** A run's fork with the destination's id of the run it was forked from (the source's, with a warning, when that is not copied). */
  private async forkInDestination(run: Run, experimentId: string): Promise<ForkPoint | undefined> {
    if (!run.fork) return undefined;
    const id = run.fork.runId === run.id ? undefined : await this.destinationIdOf(run.fork.runId, experimentId);
    if (!id) {
      this.emit({
        type: 'warning',
        object: `run ${run.id}`,
        message: `the run it was forked from, ${run.fork.runId}, is not copied, so the copy's fork names the source's run id ${run.fork.runId}; select that run too`,
      });
    }
    return { ...run.fork, runId: id ?? run.fork.runId };
  }

  /**
   * Whether the journal's done runs of this experiment are still in the destination, judged by
   * one of them: a destination emptied or replaced at the same address would otherwise get
   * nothing copied ("already there"). Runs removed one by one are for `verify` to find.
   */
  private async journalHolds({ experiment, runs }: ExperimentPlan, destinationId: string | undefined): Promise<boolean> {
    const sample = runs.find((run) => this.options.journal.doneRuns.has(run.id));
    if (!sample) return true;
    if (destinationId !== undefined && (await this.destination.findRun(destinationId, sample.id))) return true;
    this.emit({
      type: 'warning',
      object: `experiment "${experiment.name}"`,
      message: `the destination no longer holds run ${sample.id}, which the journal of an earlier run says was copied: every run is looked up there again`,
    });
    return false;
  }

  /** Copies one run; undefined when it was already there. */
  private async copyRun(run: Run, experimentId: string, resolveId: (id: string | undefined) => void): Promise<RunOutcome | undefined> {
    const { journal } = this.options;
    const done = journal.doneRuns.get(run.id);
    if (done) {
      resolveId(done);
      this.skip(run, done, 'copied by an earlier run of this command (journal)', experimentId);
      return undefined;
    }
    const existing = await this.destination.findRun(experimentId, run.id);
    if (existing?.complete) {
      // complete, but stopped before its deletion: finish it again
      if (existing.lifecycle && existing.lifecycle !== run.lifecycle) await this.destination.finishRun(existing.id, run);
      resolveId(existing.id);
      journal.runDone(run.id, existing.id);
      this.skip(run, existing.id, 'already in the destination', experimentId);
      return undefined;
    }
    if (existing) await this.destination.discardRun(existing.id); // cut off part way before: start over

    this.emit({ type: 'run-started', sourceId: run.id, name: run.name });
    const parentId = await this.parentDestinationId(run, experimentId);
    const tags = destinationTags(run, this.source.uri);
    // what the destination cannot hold natively goes into the .trackshift/ encoding (engine/encoding.ts)
    const encoder = new RunEncoder(run, this.destination.holds, await this.forkInDestination(run, experimentId));
    const id = await this.destination.createRun(experimentId, encoder.createdRun({ ...run, tags, parentId }));
    if (!this.abandoned) this.inFlight.set(run.id, id);
    journal.runStarted(run.id, id);
    resolveId(id);

    for (const batch of keyValueBatches(encoder.params(), [], this.destination.limits)) {
      await this.destination.writeBatch(id, batch);
    }
    const series = new SeriesCopy(this.seriesContext, run, id, encoder);
    const points = await series.copyAll();
    if (run.inputs.length > 0) await this.destination.writeInputs(id, run.inputs);
    const { artifacts, bytes } = await this.copyArtifacts(run, id, encoder);
    // a child is complete only once its parent is: if the parent failed, it will get a new id
    // when redone, and this run must be redone with it (a fork likewise)
    if (run.parentId && (await this.finished.get(run.parentId)) === false) {
      throw new Error(`its parent run ${run.parentId} failed, so it is left to be redone with its parent on the next run`);
    }
    if (run.fork && run.fork.runId !== run.id && (await this.finished.get(run.fork.runId)) === false) {
      throw new Error(`the run it was forked from, ${run.fork.runId}, failed, so it is left to be redone with that run on the next run`);
    }
    const encoded = await encoder.finish(series.io);
    if (encoded) {
      await this.destination.writeBatch(id, { params: [], tags: encoded.tags, metrics: [] });
      this.result.encoded.push({ sourceId: run.id, destinationId: id, how: encoded.how });
    }
    if (this.abandoned) throw new Error('abandoned after the interruption');
    const written = await this.destination.finishRun(id, run);
    for (const message of written?.warnings ?? []) this.emit({ type: 'warning', object: `run ${run.id}`, message });
    // finished after it was given up (and discarded): not a copy a re-run may skip
    if (this.abandoned) throw new Error('abandoned after the interruption');
    journal.runDone(run.id, id);
    this.inFlight.delete(run.id); // with the journal entry: a done run is never discarded as cut off
    this.emit({ type: 'run-copied', sourceId: run.id, destinationId: id, points, artifacts, bytes, ...this.urls(run, experimentId, id) });
    return { points, artifacts, bytes };
  }

  private skip(run: Run, destinationId: string, reason: string, experimentId?: string): void {
    this.inFlight.delete(run.id);
    this.result.skipped.runs++;
    this.emit({ type: 'run-skipped', sourceId: run.id, destinationId, reason, ...(experimentId !== undefined ? this.urls(run, experimentId, destinationId) : {}) });
  }

  /** Where both ends open the run, when they have a web app; kept in the report too. */
  private urls(run: Run, experimentId: string, destinationId: string): { sourceUrl?: string; destinationUrl?: string } {
    const sourceUrl = this.source.runUrl?.(run.experimentId, run.id);
    const destinationUrl = this.destination.runUrl?.(experimentId, destinationId);
    if (sourceUrl === undefined && destinationUrl === undefined) return {};
    const urls = { ...(sourceUrl !== undefined ? { sourceUrl } : {}), ...(destinationUrl !== undefined ? { destinationUrl } : {}) };
    (this.result.runUrls ??= []).push({ source: run.id, destination: destinationId, ...urls });
    return urls;
  }

  private copyArtifacts(run: Run, runId: string, encoder: RunEncoder): Promise<{ artifacts: number; bytes: number }> {
    const ids = new Map(run.id !== runId ? [[run.id, runId]] : []);
    return this.files.copy(
      encoder.watchArtifacts(this.source.listArtifacts(run)),
      (path) => this.source.readArtifact(run, path),
      (file, body) => this.destination.writeArtifact(runId, file, body),
      ids,
    );
  }

  private async dryRun(): Promise<TransferResult> {
    const actions: NonNullable<TransferResult['dryRun']> = [];
    for (const experimentPlan of this.plan.experiments) {
      const { experiment, destinationName, runs } = experimentPlan;
      const existing = await this.destination.findExperiment(destinationName);
      const journal = (await this.journalHolds(experimentPlan, existing?.id)) ? this.options.journal.doneRuns : new Map();
      for (const run of runs) {
        const found = existing ? await this.destination.findRun(existing.id, run.id) : undefined;
        const action = journal.has(run.id) || found?.complete ? 'skip' : found ? 'redo' : 'copy';
        actions.push({ experiment: experiment.name, run: run.id, name: run.name, action });
      }
    }
    this.result.dryRun = actions;
    const models: NonNullable<TransferResult['dryRunModels']> = [];
    for (const { model, destinationName, versions } of this.plan.models) {
      const complete: Array<Record<string, string>> = [];
      if (this.destination.registry && (await this.destination.registry.findModel(destinationName))) {
        for await (const v of this.destination.registry.listExistingVersions(destinationName)) {
          if (v.tags[SOURCE_TAGS.complete] === 'true') complete.push(v.tags);
        }
      }
      for (const version of versions) {
        const key = `${model.name}/${version.version}`;
        const there = complete.some((tags) => isCopyOf(tags, key, version.creationTime, this.source.uri));
        const action = this.options.journal.doneVersions.has(key) || there ? 'skip' : 'copy';
        models.push({ model: model.name, destinationModel: destinationName, version: version.version, action });
      }
    }
    this.result.dryRunModels = models;
    return this.result;
  }
}

export async function transfer(source: Source, destination: Destination, plan: Plan, options: TransferOptions): Promise<TransferResult> {
  return new Transfer(source, destination, plan, options).run();
}
