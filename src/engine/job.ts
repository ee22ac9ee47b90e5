/**
 * One whole job as the verbs run it: open both ends, plan, transfer with a journal in the
 * state folder, write the id map and the report. The library entry point for copy, export and
 * import.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ConnectorFactory, Destination, Source } from '../connectors/types.js';
import { openDestination, openSource } from '../connectors/resolve.js';
import type { EventListener } from './events.js';
import { Journal, type IdMap } from './journal.js';
import { planTransfer, type Selection } from './plan.js';
import { TrackshiftError, UsageError, errorMessage } from '../util/errors.js';
import { redactUri } from '../util/redact.js';
import { refuseSelfCopy } from './self-copy.js';
import { transfer, type TransferResult } from './transfer.js';
import { jobRetries, type RetryPolicy, type RetrySummary } from '../util/retry.js';

export interface JobOptions {
  command: 'copy' | 'export' | 'import' | 'copy-model-version';
  source: string;
  destination: string;
  selection: Selection;
  workers: number;
  artifactWorkers: number;
  dryRun: boolean;
  /** where the journal lives; by default one folder per (source, destination) pair */
  stateDir?: string;
  idMapFile?: string;
  reportFile?: string;
  env?: NodeJS.ProcessEnv;
  deleteModel?: boolean;
  lineageTags?: boolean;
  archiveExisting?: boolean;
  onEvent?: EventListener;
  /** what a missing or empty destination folder becomes (export: a new bundle) */
  newFolderFormat?: ConnectorFactory;
  /** how calls to either end are retried (`--retries`, `--retry-window`); the default rides out a restart */
  retry?: RetryPolicy;
  /** checks on the opened ends before anything is planned (import: the source must be a bundle) */
  checkEnds?: (source: Source, destination: Destination) => void | Promise<void>;
  /** aborted (Ctrl-C): the transfer stops taking work, and the report says `interrupted` */
  signal?: AbortSignal;
}

/** What every report starts with. */
interface JobHeader {
  command: string;
  source: string;
  destination: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

export interface Report extends TransferResult, JobHeader {
  stateDir: string;
  idMapFile: string;
  idMap: IdMap;
  /** calls retried, per side and kind; calls that failed even so */
  retries: RetrySummary;
}

/** What `--report` holds when the job stopped on an error after it started (exit 2). */
export interface ErrorReport extends JobHeader {
  error: string;
  exitCode: number;
}

export function defaultStateDir(source: Source, destination: Destination, env: NodeJS.ProcessEnv): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  const key = createHash('sha256').update(`${source.kind} ${source.uri}\n${destination.kind} ${destination.uri}`).digest('hex').slice(0, 16);
  return join(base, 'trackshift', key);
}

/** As typed, less any user:password@ (database URIs too) and secret query parameters. */
const withoutCredentials = (location: string) => redactUri(location).replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1');

export async function runJob(options: JobOptions): Promise<Report> {
  const started = Date.now();
  try {
    return await runOpenedJob(options, started);
  } catch (err) {
    if (options.reportFile) {
      const report: ErrorReport = {
        command: options.command,
        source: withoutCredentials(options.source),
        destination: withoutCredentials(options.destination),
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date().toISOString(),
        durationMs: Date.now() - started,
        error: errorMessage(err),
        exitCode: err instanceof TrackshiftError ? err.exitCode : 1,
      };
      writeFileSync(options.reportFile, JSON.stringify(report, null, 2) + '\n');
    }
    throw err;
  }
}

async function runOpenedJob(options: JobOptions, started: number): Promise<Report> {
  const env = options.env ?? process.env;
  const retry = jobRetries(options.retry, options.onEvent);
  const source = await openSource(options.source, env, 'src', retry);
  let destination: Destination | undefined;
  let interrupted = false;
  try {
    // plan first: a selection mistake is reported before anything (a new bundle folder) is made
    const plan = await planTransfer(source, options.selection);
    destination = await openDestination(options.destination, env, options.newFolderFormat, options.dryRun, retry, options.workers);
    await options.checkEnds?.(source, destination);
    refuseSelfCopy(source, destination, plan, options.command);
    const notes: Array<{ object: string; message: string }> = [];
    if (plan.runCount === 0 && plan.versionCount === 0) {
      // not an error: a scheduled copy of what is new (--start-after) often finds nothing
      const warning = { object: source.uri, message: `the selection matches no run and no model version: nothing to copy (\`trackshift ls ${source.uri} --runs\` lists what it holds)` };
      notes.push(warning);
      options.onEvent?.({ type: 'warning', ...warning });
    }
    const loggedModels = plan.experiments.reduce((n, e) => n + e.loggedModels.length, 0);
    if (loggedModels > 0 && !destination.loggedModels) {
      const warning = { object: destination.uri, message: `${destination.kind} destinations hold no MLflow 3 logged models: ${loggedModels} logged model(s) not copied` };
      notes.push(warning);
      options.onEvent?.({ type: 'warning', ...warning });
      for (const experiment of plan.experiments) experiment.loggedModels = [];
    }
    if (plan.models.length > 0 && !destination.registry) {
      if (options.selection.models.length > 0 || options.selection.scope === 'models') {
        throw new UsageError(`${destination.uri} (${destination.kind}) cannot hold registered models; leave out --model / --models-only, or choose another destination`);
      }
      // everything was asked for: the runs go, the models are said to stay behind
      const warning = { object: destination.uri, message: `${destination.kind} destinations hold no registered models: ${plan.models.length} model(s) not copied` };
      notes.push(warning);
      options.onEvent?.({ type: 'warning', ...warning });
      plan.models = [];
      plan.versionCount = 0;
    }
    // a model name the destination cannot take stops the command before anything is written
    for (const model of plan.models) destination.registry?.checkModelName?.(model.destinationName);
    const stateDir = resolve(options.stateDir ?? defaultStateDir(source, destination, env));
    const journal = new Journal(stateDir);
    const result = await transfer(source, destination, plan, {
      workers: options.workers,
      artifactWorkers: options.artifactWorkers,
      dryRun: options.dryRun,
      journal,
      onEvent: options.onEvent,
      deleteModel: options.deleteModel,
      lineageTags: options.lineageTags,
      archiveExisting: options.archiveExisting,
      retry,
      // one version copied into a model takes the model's next number, as MLflow's copy_model_version does
      renumberVersions: options.command === 'copy-model-version',
      signal: options.signal,
    });
    interrupted = result.interrupted !== undefined;
    result.warnings.unshift(...notes);
    const idMapFile = resolve(options.idMapFile ?? join(stateDir, 'id-map.json'));
    if (!options.dryRun) {
      mkdirSync(stateDir, { recursive: true });
      journal.writeIdMap(idMapFile);
    }
    const report: Report = {
      command: options.command,
      source: source.uri,
      destination: destination.uri,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      stateDir,
      idMapFile,
      ...result,
      retries: retry.stats!.summary(),
      idMap: journal.idMap(),
    };
    if (options.reportFile) writeFileSync(options.reportFile, JSON.stringify(report, null, 2) + '\n');
    return report;
  } finally {
    const close = async () => {
      await destination?.close?.();
      await source.close?.();
    };
    // after an interruption, requests given up may still be open: closing would wait for them
    if (interrupted) void close().catch(() => undefined);
    else await close();
  }
}
