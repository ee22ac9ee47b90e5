/**
 * The other way round from run.ts: what a Neptune writer (2.x offline folder, 3.x offline
 * database) writes for one model run. Both writers take a `NeptuneTarget` and only encode it.
 *
 * Runs read from Neptune carry their attributes as config, `sys/…` included. Their `sys`
 * attributes follow the seeds' rules (../shared/seeds/000…, 001…):
 * - 3.x (seed 001): the run id is `sys/custom_run_id`, else `sys/id`; `sys/name` names the
 *   experiment; `sys/creation_time` and `sys/family` go into the run's creation; `state`,
 *   `description`, `tags`, `group_tags` stay in `sys`; every other `sys` attribute moves to
 *   `legacy_sys/`, with `running_time` and `monitoring_time` as float seconds and `size` as an
 *   int of bytes; `monitoring/…` (attributes and series) moves to `runtime/…`;
 * - 2.x (seed 000): `sys/name`, `description`, `custom_run_id`, `tags` (and `group_tags`,
 *   `failed`, which 2.x lets a client set) stay in `sys`; `state` is the client's own; every
 *   other `sys` attribute moves to `old_sys/`.
 *
 * Runs from elsewhere (MLflow, bundles, other trackers) are laid out as Neptune's own MLflow
 * exporter (neptune-mlflow) lays them out, and run.ts reads that layout back:
 * `run_data/params/<key>`, `run_data/tags/<key>` (tags with a value; a tag without one is a
 * Neptune tag), `run_info/{run_name, status, start_time, end_time, user_id, lifecycle_stage,
 * parent_run_id, experiment_name}`, and trackshift's own `run_info/source_state` (a W&B exit
 * code, …), `run_info/inputs` (the dataset inputs, as JSON) and `run_info/experiment_tags` (the
 * experiment's tags, as a JSON object: a Neptune experiment is only a name on its runs) and
 * `run_info/system_series` (a JSON list of system series outside Neptune's system namespaces). The provenance tags of a copy go
 * to `run_data/tags/` too.
 */
import type { DatasetInput, Run, TypedValue } from '../../model/index.js';
import { isSystemPath } from './run.js';

export type NeptuneGeneration = 2 | 3;

export interface NeptuneTarget {
  /** 3.x: the run id (`CreateRun.run_id`); 2.x: `sys/custom_run_id` (≤ 36 characters, else absent) */
  runId?: string;
  /** 3.x: the experiment name (`CreateRun.experiment_id`); 2.x: `sys/name`, the run's name */
  name?: string;
  /** 3.x: `CreateRun.creation_time` (ms); 2.x cannot set it (kept in `old_sys/` or `run_info/`) */
  creationTime?: number;
  /** 3.x: `CreateRun.family` */
  family?: string;
  /** every attribute to assign, by Neptune path; `sys/tags` and `sys/group_tags` are string sets to add */
  attributes: Map<string, TypedValue>;
  /** where a series of the model run goes (the seed-001 move of `monitoring/` to `runtime/`) */
  seriesPath(key: string): string;
}

/** The longest custom run id the 2.x client accepts (neptune 1.x `init_run`). */
export const MAX_CUSTOM_RUN_ID_2X = 36;

const LEGACY_NAMESPACE: Record<NeptuneGeneration, string> = { 2: 'old_sys', 3: 'legacy_sys' };
/** `sys` attributes a writer keeps in `sys` (besides those that become the run's id, name, creation) */
const KEPT_IN_SYS: Record<NeptuneGeneration, ReadonlySet<string>> = {
  2: new Set(['name', 'description', 'custom_run_id', 'tags', 'group_tags', 'failed']),
  3: new Set(['description', 'tags', 'group_tags']),
};

/** Seed 001: 3.x holds running and monitoring time as float seconds and the size as an int of bytes. */
function legacyValue(name: string, value: TypedValue): TypedValue {
  if ((name === 'running_time' || name === 'monitoring_time') && (value.type === 'int' || value.type === 'float')) return { type: 'float', value: value.value };
  if (name === 'size' && (value.type === 'int' || value.type === 'float')) return { type: 'int', value: Math.round(value.value) };
  return value;
}

const str = (v: TypedValue | undefined): string | undefined => (v?.type === 'string' ? v.value : undefined);
const time = (v: TypedValue | undefined): number | undefined => (v?.type === 'datetime' ? v.value : undefined);

/** `monitoring/…` → `runtime/…` for 3.x (seed 001, for runs from Neptune); other paths as they are. */
const movePath = (path: string, generation: NeptuneGeneration): string =>
  generation === 3 && path.startsWith('monitoring/') ? `runtime/${path.slice('monitoring/'.length)}` : path;

/** True for runs read from a Neptune format: their attributes include `sys/…`. */
export const isNeptuneRun = (run: Run): boolean => (run.config ?? []).some((entry) => entry.path[0] === 'sys');

/** The Neptune run to write for `run`, of experiment `experimentName`, in a `generation` destination. */
export function neptuneTarget(run: Run, experimentName: string, generation: NeptuneGeneration): NeptuneTarget {
  const attributes = new Map<string, TypedValue>();
  const sys = new Map<string, TypedValue>();
  const neptuneRun = isNeptuneRun(run);
  // seed 001 moves a Neptune 2.x run's monitoring/ to 3.x's runtime/; a run from elsewhere keeps its own paths
  const place = (path: string) => (neptuneRun ? movePath(path, generation) : path);
  for (const { path, value } of run.config ?? []) {
    if (path[0] === 'sys' && path.length === 2) sys.set(path[1]!, value);
    else attributes.set(place(path.join('/')), value);
  }
  const target: NeptuneTarget = { attributes, seriesPath: place };

  if (neptuneRun) {
    const customId = str(sys.get('custom_run_id'));
    if (generation === 3) {
      target.runId = customId ?? str(sys.get('id')) ?? run.id;
      target.name = str(sys.get('name')) ?? experimentName;
      const created = time(sys.get('creation_time')) ?? run.startTime;
      if (created !== undefined) target.creationTime = created;
      const family = str(sys.get('family'));
      if (family) target.family = family;
      for (const consumed of ['custom_run_id', 'name', 'creation_time', 'family']) sys.delete(consumed);
    } else {
      if (customId !== undefined && customId.length <= MAX_CUSTOM_RUN_ID_2X) target.runId = customId;
      else sys.delete('custom_run_id'); // too long for 2.x: kept below in old_sys/
      if (customId !== undefined && target.runId === undefined) attributes.set(`${LEGACY_NAMESPACE[2]}/custom_run_id`, { type: 'string', value: customId });
      target.name = str(sys.get('name')) ?? run.name;
    }
    sys.delete('state'); // a Neptune client sets the state of the run it writes
    for (const [name, value] of sys) {
      if (KEPT_IN_SYS[generation].has(name)) attributes.set(`sys/${name}`, value);
      else attributes.set(`${LEGACY_NAMESPACE[generation]}/${name}`, generation === 3 ? legacyValue(name, value) : value);
    }
  } else {
    target.runId = generation === 3 || run.id.length <= MAX_CUSTOM_RUN_ID_2X ? run.id : undefined;
    if (generation === 3) {
      target.name = experimentName;
      if (run.startTime !== undefined) target.creationTime = run.startTime;
    } else {
      if (run.name !== undefined) target.name = run.name;
      attributes.set('run_info/experiment_name', { type: 'string', value: experimentName });
      if (run.startTime !== undefined) attributes.set('run_info/start_time', { type: 'datetime', value: run.startTime });
    }
    if (run.name !== undefined) attributes.set('run_info/run_name', { type: 'string', value: run.name });
    attributes.set('run_info/status', { type: 'string', value: run.status });
    attributes.set('run_info/lifecycle_stage', { type: 'string', value: run.lifecycle });
    if (run.endTime !== undefined) attributes.set('run_info/end_time', { type: 'datetime', value: run.endTime });
    if (run.user !== undefined) attributes.set('run_info/user_id', { type: 'string', value: run.user });
    if (run.parentId !== undefined) attributes.set('run_info/parent_run_id', { type: 'string', value: run.parentId });
    if (run.sourceState !== undefined) attributes.set('run_info/source_state', { type: 'string', value: run.sourceState });
    for (const [key, value] of Object.entries(run.params)) attributes.set(`run_data/params/${key}`, { type: 'string', value });
    // system series Neptune would not know by their namespace (MLflow's system/…)
    const system = run.series.filter((s) => s.system && !isSystemPath(target.seriesPath(s.key))).map((s) => target.seriesPath(s.key));
    if (system.length > 0) attributes.set(SYSTEM_SERIES_ATTRIBUTE, { type: 'string', value: JSON.stringify(system) });
  }

  const neptuneTags: string[] = [];
  for (const [key, value] of Object.entries(run.tags)) {
    if (value === '') neptuneTags.push(key);
    else attributes.set(`run_data/tags/${key}`, { type: 'string', value });
  }
  if (neptuneTags.length > 0) attributes.set('sys/tags', { type: 'stringSet', value: neptuneTags });
  if (run.group !== undefined && !attributes.has('sys/group_tags')) attributes.set('sys/group_tags', { type: 'stringSet', value: run.group.split(',') });
  return target;
}

/** Where a writer keeps a run's dataset inputs (Neptune has none): one JSON string attribute, read back by run.ts. */
export const INPUTS_ATTRIBUTE = 'run_info/inputs';
export const inputsAttribute = (inputs: DatasetInput[]): TypedValue => ({ type: 'string', value: JSON.stringify(inputs) });

/** Where a writer keeps the tags of a run's experiment, which Neptune cannot hold on an experiment (read back by run.ts). */
export const EXPERIMENT_TAGS_ATTRIBUTE = 'run_info/experiment_tags';
export const experimentTagsAttribute = (tags: Record<string, string>): TypedValue => ({ type: 'string', value: JSON.stringify(tags) });

/** The system series of a run from elsewhere that Neptune's namespaces do not mark (read back by run.ts). */
export const SYSTEM_SERIES_ATTRIBUTE = 'run_info/system_series';

/** The run's `sys/failed` as a copy holds it: the source's own value for Neptune runs, else its status. */
export function failedOf(run: Run): boolean {
  const failed = (run.config ?? []).find((e) => e.path.length === 2 && e.path[0] === 'sys' && e.path[1] === 'failed');
  return failed?.value.type === 'bool' ? failed.value.value : run.status === 'FAILED';
}
