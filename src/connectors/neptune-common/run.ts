/**
 * What every Neptune format shares (2.x offline/async operation logs, neptune-scale's SQLite,
 * neptune-exporter's parquet): a run read from any of them is first a `NeptuneRun` — its
 * attributes by path with their Neptune type, and its series — and this module maps that onto
 * the model, the same way for every format (../shared/reference/neptune-facts.md §4):
 *
 * - experiment: the 3.x experiment name (`sys/name` in 3.x), else the project;
 * - run name: `sys/name` (2.x), else the run id; the custom run id kept as an attribute;
 * - `sys/creation_time` → start, `sys/modification_time` (else the last operation) → end;
 *   `sys/state` (2.x: running / idle) and `sys/failed` → status, the state itself kept verbatim;
 * - `sys/tags` → a tag per Neptune tag (value ""), `sys/group_tags` → group (joined with ",");
 * - every attribute → a typed config entry at its path (segments split on "/"), `sys/…` too;
 * - series keep their paths as keys; `monitoring/…` (2.x) and `runtime/…` (3.x) are system series.
 */
import type { ConfigEntry, Run, RunStatus, SeriesInfo, TypedValue } from '../../model/index.js';

/** A Neptune attribute that is not a series, with its value in the model's typed form. */
export type NeptuneAttribute = TypedValue;

export interface NeptuneRun {
  /** the run's id as its format names it: `sys/id` (2.x), the run id / custom run id (3.x) */
  id: string;
  /** the project, `workspace/project`, when the format knows it */
  project?: string;
  /** Neptune 2.x or 3.x: decides where the run's name and experiment come from */
  generation: 2 | 3;
  /** attributes that are not series, by their full path (`parameters/lr`, `sys/name` …) */
  attributes: Map<string, NeptuneAttribute>;
  /** every series, listed (key = attribute path) */
  series: SeriesInfo[];
  /** fork parent (3.x), by run id, and step */
  fork?: { runId: string; step?: number };
  /** when the last operation was recorded (ms), for runs without `sys/modification_time` */
  lastOperationTime?: number;
}

/** Prefixes of system telemetry: 2.x hardware monitoring, 3.x runtime capture. */
const SYSTEM_PREFIXES = ['monitoring/', 'runtime/'];
export const isSystemPath = (path: string): boolean => SYSTEM_PREFIXES.some((p) => path.startsWith(p));

/** A series as the model lists it: its path as key, system when Neptune's namespaces say so. */
export function neptuneSeries(path: string, type: SeriesInfo['type']): SeriesInfo {
  return isSystemPath(path) ? { key: path, type, system: true } : { key: path, type };
}

const str = (v: NeptuneAttribute | undefined): string | undefined => (v?.type === 'string' ? v.value : undefined);
const time = (v: NeptuneAttribute | undefined): number | undefined => (v?.type === 'datetime' ? v.value : undefined);
const set = (v: NeptuneAttribute | undefined): string[] => (v?.type === 'stringSet' ? v.value : []);

/** 2.x `sys/state` is "running" or "idle" (Active/Inactive); `sys/failed` says how it ended. */
function statusOf(attributes: Map<string, NeptuneAttribute>): RunStatus {
  const failed = attributes.get('sys/failed');
  if (failed?.type === 'bool' && failed.value) return 'FAILED';
  return str(attributes.get('sys/state')) === 'running' ? 'RUNNING' : 'FINISHED';
}

/** The experiment a run belongs to in the model: the 3.x experiment name, else the project (or "neptune"). */
export function experimentNameOf(run: NeptuneRun): string {
  if (run.generation === 3) {
    const experiment = str(run.attributes.get('sys/name'));
    if (experiment) return experiment;
  }
  return run.project ?? 'neptune';
}

/** The model's run for a Neptune run; `experimentId` is the id the source gave its experiment. */
export function toModelRun(run: NeptuneRun, experimentId: string): Run {
  const { attributes } = run;
  const tags: Record<string, string> = {};
  for (const tag of set(attributes.get('sys/tags'))) tags[tag] = '';
  const groupTags = set(attributes.get('sys/group_tags'));
  const state = str(attributes.get('sys/state'));
  const config: ConfigEntry[] = [...attributes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, value]) => ({ path: path.split('/'), value }));
  const startTime = time(attributes.get('sys/creation_time'));
  const endTime = time(attributes.get('sys/modification_time')) ?? run.lastOperationTime;
  const name = run.generation === 2 ? (str(attributes.get('sys/name')) ?? run.id) : run.id;
  return {
    id: run.id,
    experimentId,
    name,
    status: statusOf(attributes),
    ...(startTime !== undefined ? { startTime } : {}),
    ...(endTime !== undefined ? { endTime } : {}),
    ...(str(attributes.get('sys/owner')) ? { user: str(attributes.get('sys/owner')) } : {}),
    lifecycle: attributes.get('sys/trashed')?.value === true ? 'deleted' : 'active',
    params: {},
    tags,
    inputs: [],
    series: run.series,
    ...(config.length > 0 ? { config } : {}),
    ...(run.fork ? { fork: run.fork } : {}),
    ...(groupTags.length > 0 ? { group: groupTags.join(',') } : {}),
    ...(state !== undefined ? { sourceState: state } : {}),
  };
}
