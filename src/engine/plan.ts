/**
 * Selection and planning: which experiments and runs of a source to move, under which names,
 * in which order (parents before their children). Reads only; never touches a destination.
 */
import type { Experiment, LoggedModel, ModelStage, ModelVersion, RegisteredModel, Run, RunStatus } from '../model/index.js';
import type { Source, UnreadableObject } from '../connectors/types.js';
import { UsageError } from '../util/errors.js';

export interface Selection {
  /** experiment names or ids; all when empty */
  experiments: string[];
  runIds: string[];
  /** start-time window, ms, inclusive */
  startAfter?: number;
  startBefore?: number;
  statuses: RunStatus[];
  /** only runs holding every one of these tags (with this value, when one is given) */
  tags: Array<{ key: string; value?: string }>;
  /** only runs whose name is one of these (`*` matches any characters); all when empty */
  runNames: string[];
  includeDeleted: boolean;
  /** add the children (and their children) of the selected runs */
  includeNested: boolean;
  /** the source's own filter syntax */
  filter?: string;
  /** rename, when one experiment is selected */
  dstExperiment?: string;
  /** registered model names; all models when empty and models are wanted */
  models: string[];
  /** only these version numbers of the selected models */
  versions: string[];
  /** only versions in these stages */
  stages: ModelStage[];
  /** only the newest version of each stage (as MLflow's get-latest-versions) */
  latestVersions: boolean;
  /** rename, when one model is selected */
  dstModel?: string;
  /** what to move: both (default), registered models only (versions point at the source's files), or runs only */
  scope: 'all' | 'models' | 'runs';
}

export const emptySelection = (): Selection => ({
  experiments: [],
  runIds: [],
  statuses: [],
  tags: [],
  runNames: [],
  includeDeleted: false,
  includeNested: false,
  models: [],
  versions: [],
  stages: [],
  latestVersions: false,
  scope: 'all',
});

export interface ExperimentPlan {
  experiment: Experiment;
  destinationName: string;
  /** parents before children */
  runs: Run[];
  /** MLflow 3 logged models to copy after the runs (those of the selected runs) */
  loggedModels: LoggedModel[];
}

export interface ModelPlan {
  model: RegisteredModel;
  destinationName: string;
  /** lowest number first */
  versions: ModelVersion[];
}

export interface Plan {
  experiments: ExperimentPlan[];
  runCount: number;
  models: ModelPlan[];
  versionCount: number;
  /** objects the source could not read while planning: reported as failed, the rest goes on */
  unreadable?: UnreadableObject[];
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function chooseExperiments(all: Experiment[], selection: Selection, sourceUri: string): Experiment[] {
  if (selection.experiments.length === 0) {
    return all.filter((e) => selection.includeDeleted || e.lifecycle === 'active');
  }
  return selection.experiments.map((wanted) => {
    const found = all.find((e) => e.id === wanted) ?? all.find((e) => e.name === wanted);
    if (!found) {
      const names = all.slice(0, 20).map((e) => `"${e.name}" (${e.id})`);
      throw new UsageError(
        `experiment "${wanted}" is not in ${sourceUri}. It has: ${names.join(', ') || 'no experiments'}` +
          (all.length > 20 ? ` and ${all.length - 20} more` : '') +
          '. Use `trackshift ls` to list them.',
      );
    }
    if (found.lifecycle === 'deleted' && !selection.includeDeleted) {
      throw new UsageError(`experiment "${wanted}" is deleted in ${sourceUri}; add --include-deleted to copy it`);
    }
    return found;
  });
}

function matchesWindow(run: Run, selection: Selection): boolean {
  if (selection.statuses.length > 0 && !selection.statuses.includes(run.status)) return false;
  if (selection.startAfter !== undefined && (run.startTime ?? -Infinity) < selection.startAfter) return false;
  if (selection.startBefore !== undefined && (run.startTime ?? Infinity) > selection.startBefore) return false;
  if (selection.runNames.length > 0 && !selection.runNames.some((pattern) => namePattern(pattern).test(run.name ?? ''))) return false;
  return selection.tags.every((tag) => holdsTag(run, tag));
}

/** `--run-name`: the name itself, where each `*` stands for any characters (none too). */
function namePattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
}

/**
 * `--tag KEY` takes a run holding tag KEY, whatever its value; `--tag KEY=VALUE` one holding KEY
 * with that value, or a label written `KEY=VALUE` (Neptune's tags are labels: tags without a value).
 */
function holdsTag(run: Run, { key, value }: Selection['tags'][number]): boolean {
  if (value === undefined) return key in run.tags;
  return run.tags[key] === value || run.tags[`${key}=${value}`] === '';
}

/** Parents (and the runs forks start from) first, keeping the source's order otherwise. */
export function parentsFirst(runs: Run[]): Run[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const placed = new Set<string>();
  const ordered: Run[] = [];
  const place = (run: Run, path: Set<string>) => {
    if (placed.has(run.id)) return;
    for (const before of [run.parentId, run.fork?.runId]) {
      const parent = before ? byId.get(before) : undefined;
      if (parent && !path.has(parent.id)) place(parent, new Set(path).add(run.id)); // a cycle is cut, not followed
    }
    if (placed.has(run.id)) return;
    placed.add(run.id);
    ordered.push(run);
  };
  for (const run of runs) place(run, new Set([run.id]));
  return ordered;
}

/**
 * Experiments one after another, those holding runs that runs of others were forked from first
 * (W&B forks cross projects): the transfer names a fork's parent by its copy, which must exist.
 * Otherwise in the source's order; a cycle is cut.
 */
export function forkParentsFirst(plans: ExperimentPlan[]): ExperimentPlan[] {
  const home = new Map(plans.flatMap((plan) => plan.runs.map((run) => [run.id, plan] as const)));
  const placed = new Set<ExperimentPlan>();
  const ordered: ExperimentPlan[] = [];
  const place = (plan: ExperimentPlan, path: Set<ExperimentPlan>) => {
    if (placed.has(plan)) return;
    for (const run of plan.runs) {
      const parent = run.fork && home.get(run.fork.runId);
      if (parent && parent !== plan && !path.has(parent)) place(parent, new Set(path).add(plan));
    }
    if (placed.has(plan)) return;
    placed.add(plan);
    ordered.push(plan);
  };
  for (const plan of plans) place(plan, new Set([plan]));
  return ordered;
}

function addDescendants(selected: Run[], all: Run[]): Run[] {
  const chosen = new Map(selected.map((r) => [r.id, r]));
  let grew = true;
  while (grew) {
    grew = false;
    for (const run of all) {
      if (!chosen.has(run.id) && run.parentId && chosen.has(run.parentId)) {
        chosen.set(run.id, run);
        grew = true;
      }
    }
  }
  return [...chosen.values()];
}

async function planRuns(source: Source, selection: Selection): Promise<ExperimentPlan[]> {
  if (selection.filter && !source.capabilities?.filter) {
    throw new UsageError(
      `--filter is not supported by ${source.kind} sources (${source.uri}): it passes an expression to a source's own run search, and they have none; ` +
        'select with --experiment, --run-id, --tag, --status, --start-after and --start-before instead',
    );
  }
  const all = await collect(source.listExperiments());
  let experiments = chooseExperiments(all, selection, source.uri);

  // run ids without experiments: find the experiments that hold them
  const runIds = new Set(selection.runIds);
  if (runIds.size > 0 && selection.experiments.length === 0) {
    const holding = new Set<string>();
    for (const id of runIds) {
      const run = source.getRun ? await source.getRun(id) : undefined;
      if (run) holding.add(run.experimentId);
    }
    // without a direct look-up every experiment is searched
    if (source.getRun) experiments = experiments.filter((e) => holding.has(e.id));
  }

  if (selection.dstExperiment && experiments.length !== 1) {
    throw new UsageError(`--dst-experiment renames one experiment, but ${experiments.length} are selected; select one with --experiment`);
  }

  const plans: ExperimentPlan[] = [];
  const foundRunIds = new Set<string>();
  for (const experiment of experiments) {
    const includeDeleted = selection.includeDeleted;
    const listed = await collect(source.listRuns(experiment.id, { includeDeleted, filter: selection.filter }));
    let runs = listed.filter((r) => (runIds.size === 0 || runIds.has(r.id)) && matchesWindow(r, selection));
    if (selection.includeNested) {
      const everything = selection.filter ? await collect(source.listRuns(experiment.id, { includeDeleted })) : listed;
      runs = addDescendants(runs, everything);
    }
    for (const run of runs) foundRunIds.add(run.id);
    if (runIds.size > 0 && runs.length === 0) continue;
    plans.push({ experiment, destinationName: selection.dstExperiment ?? experiment.name, runs: parentsFirst(runs), loggedModels: [] });
  }

  const missing = [...runIds].filter((id) => !foundRunIds.has(id));
  if (missing.length > 0) {
    throw new UsageError(`run${missing.length > 1 ? 's' : ''} not found in ${source.uri}: ${missing.join(', ')}${selection.includeDeleted ? '' : ' (deleted runs need --include-deleted)'}`);
  }
  return forkParentsFirst(plans);
}

/** Versions of one model that the selection asks for. */
export function chooseVersions(all: ModelVersion[], selection: Selection, modelName: string, sourceUri: string): ModelVersion[] {
  let versions = all;
  if (selection.versions.length > 0) {
    const missing = selection.versions.filter((v) => !all.some((version) => version.version === v));
    if (missing.length > 0) {
      throw new UsageError(`model "${modelName}" in ${sourceUri} has no version ${missing.join(', ')}; it has ${all.map((v) => v.version).join(', ') || 'none'}`);
    }
    versions = all.filter((v) => selection.versions.includes(v.version));
  }
  if (selection.stages.length > 0) versions = versions.filter((v) => selection.stages.includes(v.stage));
  if (selection.latestVersions) {
    const newest = new Map<string, ModelVersion>();
    for (const v of versions) {
      const current = newest.get(v.stage);
      if (!current || Number(v.version) > Number(current.version)) newest.set(v.stage, v);
    }
    versions = versions.filter((v) => newest.get(v.stage) === v);
  }
  return versions;
}

async function planModels(source: Source, selection: Selection): Promise<ModelPlan[]> {
  const registry = source.registry;
  if (!registry) {
    if (selection.models.length > 0) throw new UsageError(`${source.uri} (${source.kind}) has no model registry to take --model from`);
    return [];
  }
  let models: RegisteredModel[];
  if (selection.models.length === 0) models = await collect(registry.listModels());
  else {
    models = [];
    for (const name of selection.models) {
      const model = await registry.getModel(name);
      if (!model) throw new UsageError(`registered model "${name}" is not in ${source.uri}. Use \`trackshift ls ${source.uri}\` to list the models.`);
      models.push(model);
    }
  }
  if (selection.dstModel && models.length !== 1) {
    throw new UsageError(`--dst-model renames one model, but ${models.length} are selected; select one with --model`);
  }
  const plans: ModelPlan[] = [];
  for (const model of models) {
    const versions = chooseVersions(await collect(registry.listVersions(model.name)), selection, model.name, source.uri);
    plans.push({ model, destinationName: selection.dstModel ?? model.name, versions });
  }
  return plans;
}

/** The run a version's files belong to (deep copies bring it along), when there is one. */
export function versionRunId(version: ModelVersion): string | undefined {
  return version.location.type === 'run' ? version.location.runId : version.runId;
}

/**
 * Adds the runs that selected versions point to (with their ancestors, so that nesting
 * survives) and the logged models of every planned run.
 */
async function addModelRuns(source: Source, selection: Selection, experiments: ExperimentPlan[], models: ModelPlan[]): Promise<ExperimentPlan[]> {
  const planned = new Set(experiments.flatMap((p) => p.runs.map((r) => r.id)));
  const added = new Map<string, Run[]>();
  const wanted = [...new Set(models.flatMap((m) => m.versions.map(versionRunId)).filter((id): id is string => Boolean(id)))];
  const fetched = new Map<string, Run | undefined>();
  const fetch = async (id: string) => {
    if (!fetched.has(id)) fetched.set(id, source.getRun ? await source.getRun(id) : undefined);
    return fetched.get(id);
  };
  for (let id of wanted) {
    // the run and its ancestors
    for (let depth = 0; id && !planned.has(id) && depth < 100; depth++) {
      const run = await fetch(id);
      if (!run) break; // not in this source: the version is copied shallow (the engine warns)
      planned.add(run.id);
      added.set(run.experimentId, [...(added.get(run.experimentId) ?? []), run]);
      id = run.parentId ?? '';
    }
  }
  if (added.size > 0) {
    const all = await collect(source.listExperiments());
    for (const [experimentId, runs] of added) {
      const existing = experiments.find((p) => p.experiment.id === experimentId);
      if (existing) existing.runs = parentsFirst([...existing.runs, ...runs]);
      else {
        const experiment = all.find((e) => e.id === experimentId);
        if (!experiment) continue;
        experiments.push({ experiment, destinationName: experiment.name, runs: parentsFirst(runs), loggedModels: [] });
      }
    }
    // a deep copy-model-version names the experiment that receives the version's run
    if (selection.dstExperiment && selection.experiments.length === 0) {
      if (experiments.length !== 1) throw new UsageError(`--dst-experiment names one experiment, but the selected versions' runs are in ${experiments.length}`);
      experiments[0]!.destinationName = selection.dstExperiment;
    }
  }
  if (source.loggedModels) {
    for (const plan of experiments) {
      const runIds = new Set(plan.runs.map((r) => r.id));
      for await (const model of source.loggedModels.listLoggedModels(plan.experiment.id)) {
        if (model.sourceRunId && runIds.has(model.sourceRunId)) plan.loggedModels.push(model);
      }
    }
  }
  return experiments;
}

export async function planTransfer(source: Source, selection: Selection): Promise<Plan> {
  if (selection.versions.length > 0 && selection.stages.length > 0) throw new UsageError('--versions and --stages exclude each other; give one');
  const runsSelected = selection.experiments.length > 0 || selection.runIds.length > 0;
  const modelsSelected = selection.models.length > 0;
  // nothing selected: everything; only models selected: the models and the runs they need
  const wantRuns = selection.scope !== 'models' && (runsSelected || !modelsSelected);
  const wantModels = selection.scope !== 'runs' && (modelsSelected || !runsSelected || selection.scope === 'models');
  const models = wantModels ? await planModels(source, selection) : [];
  let experiments = wantRuns ? await planRuns(source, selection) : [];
  if (selection.scope !== 'models') experiments = await addModelRuns(source, selection, experiments, models);
  return {
    experiments,
    runCount: experiments.reduce((n, p) => n + p.runs.length, 0),
    models,
    versionCount: models.reduce((n, m) => n + m.versions.length, 0),
    unreadable: [...(source.unreadable ?? [])],
  };
}
