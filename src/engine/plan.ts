/**
 * Selection and planning: which experiments and runs of a source to move, under which names,
 * in which order (parents before their children). Reads only; never touches a destination.
 */
import type { Experiment, Run, RunStatus } from '../model/index.js';
import type { Source } from '../connectors/types.js';
import { UsageError } from '../util/errors.js';

export interface Selection {
  /** experiment names or ids; all when empty */
  experiments: string[];
  runIds: string[];
  /** start-time window, ms, inclusive */
  startAfter?: number;
  startBefore?: number;
  statuses: RunStatus[];
  includeDeleted: boolean;
  /** add the children (and their children) of the selected runs */
  includeNested: boolean;
  /** the source's own filter syntax */
  filter?: string;
  /** rename, when one experiment is selected */
  dstExperiment?: string;
}

export const emptySelection = (): Selection => ({ experiments: [], runIds: [], statuses: [], includeDeleted: false, includeNested: false });

export interface ExperimentPlan {
  experiment: Experiment;
  destinationName: string;
  /** parents before children */
  runs: Run[];
}

export interface Plan {
  experiments: ExperimentPlan[];
  runCount: number;
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
  return true;
}

/** Parents first, keeping the source's order otherwise. */
export function parentsFirst(runs: Run[]): Run[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const placed = new Set<string>();
  const ordered: Run[] = [];
  const place = (run: Run, path: Set<string>) => {
    if (placed.has(run.id)) return;
    const parent = run.parentId ? byId.get(run.parentId) : undefined;
    if (parent && !path.has(parent.id)) place(parent, new Set(path).add(run.id)); // a cycle is cut, not followed
    if (placed.has(run.id)) return;
    placed.add(run.id);
    ordered.push(run);
  };
  for (const run of runs) place(run, new Set([run.id]));
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

export async function planTransfer(source: Source, selection: Selection): Promise<Plan> {
  if (selection.filter && !source.capabilities?.filter) {
    throw new UsageError(`--filter is not supported by ${source.kind} sources (${source.uri}); select with --experiment, --run-id, --status and the start-time window`);
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
    plans.push({ experiment, destinationName: selection.dstExperiment ?? experiment.name, runs: parentsFirst(runs) });
  }

  const missing = [...runIds].filter((id) => !foundRunIds.has(id));
  if (missing.length > 0) {
    throw new UsageError(`run${missing.length > 1 ? 's' : ''} not found in ${source.uri}: ${missing.join(', ')}${selection.includeDeleted ? '' : ' (deleted runs need --include-deleted)'}`);
  }
  return { experiments: plans, runCount: plans.reduce((n, p) => n + p.runs.length, 0) };
}
