/** Options shared by the verbs that move data, and their parsing into a Selection. */
import { Command, Option } from 'commander';
import { MODEL_STAGES, RUN_STATUSES, type ModelStage, type RunStatus } from '../model/index.js';
import { emptySelection, type Selection } from '../engine/plan.js';
import { UsageError } from '../util/errors.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../util/retry.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const collectList = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

export function addSelectionOptions(command: Command): Command {
  return command
    .option('-e, --experiment <name-or-id>', 'an experiment to take, by name or id (repeat for more; default: all)', collect)
    .option('--run-id <ids>', 'only these runs (repeat, or comma-separated)', collectList)
    .option('--start-after <time>', 'only runs started at or after this time (ISO date/time or epoch ms)')
    .option('--start-before <time>', 'only runs started at or before this time (ISO date/time or epoch ms)')
    .option('--status <statuses>', `only runs with these statuses, comma-separated (${RUN_STATUSES.join(', ')})`)
    .option('--tag <key[=value]>', 'only runs holding this tag (with this value, when given); repeat: runs holding all of them. Neptune\'s tags are labels: --tag best; a label written key=value also matches --tag key=value', collect)
    .option('--run-name <name>', 'only runs of this name; * matches any characters ("lr=*"); repeat: runs of any of them (Comet and Neptune call it the experiment or run name)', collect)
    .option('--include-deleted', 'also take deleted experiments and runs (they stay deleted)', false)
    .option('--include-nested', 'also take the child runs (at any depth) of the selected runs', false)
    .option('--filter <expr>', 'the source\'s own run filter, passed through (MLflow search syntax, e.g. "metrics.acc > 0.9")')
    .option('--dst-experiment <name>', 'the name to give the one selected experiment in the destination (an existing one receives the runs)')
    .option('-m, --model <name>', 'a registered model to take, with the runs its versions point at (repeat for more; default: all models when no experiment or run is selected)', collect)
    .option('--versions <numbers>', 'only these versions of the selected models, comma-separated (e.g. 1,3)', collectList)
    .option('--stages <stages>', `only versions in these stages, comma-separated (${MODEL_STAGES.join(', ')})`)
    .option('--latest-versions', 'only the newest version in each stage', false)
    .option('--dst-model <name>', 'the name to give the one selected model in the destination')
    .option('--models-only', 'only registered models: versions point at the source\'s files (shallow), no runs are copied', false)
    .option('--runs-only', 'only experiments and runs, no registered models', false);
}

/** Options of the verbs that write (copy, export, import): how models are written. */
export function addModelWriteOptions(command: Command): Command {
  return command
    .option('--delete-model', 'delete each selected model in the destination before copying it (once: a re-run does not delete again)', false)
    .option('--lineage-tags', 'record the source model, version, run id and tracking URI on each new version (tags trackshift.lineage.*)', false)
    .option('--archive-existing-versions', 'a version copied into Staging or Production moves the destination\'s other versions in that stage to Archived (default: they keep their stage)', false);
}

export function parseCount(flag: string, max = 256) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${flag} takes a whole number from 1 to ${max}, not "${value}"`);
    return n;
  };
}

/** `--retries`, `--retry-window`: how calls to a server or database are retried (every verb that reads or writes one). */
export function addRetryOptions(command: Command): Command {
  return command
    .option('--retries <n>', `retries of a failed call (HTTP 408, 429, 5xx, dropped or refused connections), within the retry window (default ${DEFAULT_RETRY_POLICY.retries})`, parseWhole('--retries', 1000))
    .option('--retry-window <seconds>', `stop retrying a call this long after its first attempt; long enough to ride out a server restart (default ${DEFAULT_RETRY_POLICY.windowMs / 1000})`, parseWhole('--retry-window', 86_400));
}

export interface RetryFlags {
  retries?: number;
  retryWindow?: number;
}

export function retryPolicyFrom(flags: RetryFlags): RetryPolicy {
  return {
    ...DEFAULT_RETRY_POLICY,
    ...(flags.retries !== undefined ? { retries: flags.retries } : {}),
    ...(flags.retryWindow !== undefined ? { windowMs: flags.retryWindow * 1000 } : {}),
  };
}

function parseWhole(flag: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > max) throw new UsageError(`${flag} takes a whole number from 0 to ${max}, not "${value}"`);
    return n;
  };
}

export function addTransferOptions(command: Command): Command {
  addRetryOptions(command);
  return command
    .option('-w, --workers <n>', 'runs copied at once', parseCount('--workers'), 4)
    .option('--artifact-workers <n>', 'artifact files transferred at once, across all runs', parseCount('--artifact-workers'), 4)
    .option('-n, --dry-run', 'print the plan (what would be copied, skipped or redone) and write nothing', false)
    .option('--state-dir <dir>', 'where the resume journal and id map are kept (default: one folder per source/destination pair under ~/.local/state/trackshift)')
    .option('--id-map <file>', 'also write the source id → destination id map (JSON) to this file')
    .option('--report <file>', 'write a JSON report: planned, copied, skipped, failed with reasons, warnings, encoded (per run: what the destination cannot hold natively and how it is kept under .trackshift/); also written when Ctrl-C stops the command (interrupted: true) or an error ends it after it started (error)')
    .addOption(new Option('--json', 'print the report as JSON on stdout instead of the summary').default(false));
}

export function parseTime(value: string, flag: string): number {
  const trimmed = value.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) : Date.parse(trimmed);
  if (!Number.isFinite(ms)) throw new UsageError(`${flag}: "${value}" is not a date/time (use e.g. 2024-05-01, 2024-05-01T12:00:00Z or epoch milliseconds)`);
  return ms;
}

export interface SelectionFlags {
  experiment?: string[];
  runId?: string[];
  startAfter?: string;
  startBefore?: string;
  status?: string;
  tag?: string[];
  runName?: string[];
  includeDeleted?: boolean;
  includeNested?: boolean;
  filter?: string;
  dstExperiment?: string;
  model?: string[];
  versions?: string[];
  stages?: string;
  latestVersions?: boolean;
  dstModel?: string;
  modelsOnly?: boolean;
  runsOnly?: boolean;
}

export function selectionFrom(flags: SelectionFlags): Selection {
  const selection = emptySelection();
  selection.experiments = flags.experiment ?? [];
  selection.runIds = flags.runId ?? [];
  if (flags.startAfter) selection.startAfter = parseTime(flags.startAfter, '--start-after');
  if (flags.startBefore) selection.startBefore = parseTime(flags.startBefore, '--start-before');
  if (flags.status) {
    selection.statuses = flags.status.split(',').map((s) => {
      const status = s.trim().toUpperCase();
      if (!RUN_STATUSES.includes(status as RunStatus)) throw new UsageError(`--status: "${s}" is not a run status; use ${RUN_STATUSES.join(', ')}`);
      return status as RunStatus;
    });
  }
  selection.tags = (flags.tag ?? []).map((t) => {
    const at = t.indexOf('=');
    const key = at < 0 ? t : t.slice(0, at);
    if (!key) throw new UsageError(`--tag: "${t}" names no tag; use --tag KEY or --tag KEY=VALUE`);
    return at < 0 ? { key } : { key, value: t.slice(at + 1) };
  });
  selection.runNames = flags.runName ?? [];
  if (selection.runNames.some((name) => name === '')) throw new UsageError('--run-name: give a name, or a pattern such as "sweep-*"');
  selection.includeDeleted = Boolean(flags.includeDeleted);
  selection.includeNested = Boolean(flags.includeNested);
  selection.filter = flags.filter;
  selection.dstExperiment = flags.dstExperiment;
  selection.models = flags.model ?? [];
  selection.versions = flags.versions ?? [];
  if (selection.versions.some((v) => !/^\d+$/.test(v))) throw new UsageError(`--versions takes version numbers, e.g. 1,3 (not "${selection.versions.join(',')}")`);
  if (flags.stages) {
    selection.stages = flags.stages.split(',').map((s) => {
      const stage = MODEL_STAGES.find((known) => known.toLowerCase() === s.trim().toLowerCase());
      if (!stage) throw new UsageError(`--stages: "${s}" is not a stage; use ${MODEL_STAGES.join(', ')}`);
      return stage as ModelStage;
    });
  }
  if (selection.versions.length > 0 && selection.stages.length > 0) throw new UsageError('--versions and --stages exclude each other; give one');
  selection.latestVersions = Boolean(flags.latestVersions);
  selection.dstModel = flags.dstModel;
  if (flags.modelsOnly && flags.runsOnly) throw new UsageError('--models-only and --runs-only exclude each other');
  selection.scope = flags.modelsOnly ? 'models' : flags.runsOnly ? 'runs' : 'all';
  return selection;
}
