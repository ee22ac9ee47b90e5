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
 * - series keep their paths as keys; `monitoring/…` (2.x) and `runtime/…` (3.x) are system series;
 * - the layout Neptune's MLflow exporter (neptune-mlflow) and trackshift's Neptune writers give a
 *   run from elsewhere (target.ts) is read back: `run_data/params/<key>` → params,
 *   `run_data/tags/<key>` → tags, `run_info/…` → name, status, times, user, lifecycle, parent.
 */
import { z } from 'zod';
import { RUN_STATUSES, type ConfigEntry, type DatasetInput, type Run, type RunStatus, type SeriesInfo, type TypedValue } from '../../model/index.js';
import { datasetInputSchema } from '../../model/json.js';

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
  const written = str(run.attributes.get('run_info/experiment_name'));
  if (written) return written;
  if (run.generation === 3) {
    const experiment = str(run.attributes.get('sys/name'));
    if (experiment) return experiment;
  }
  return run.project ?? 'neptune';
}

/** What a run from elsewhere keeps in `run_info/` and `run_data/` (target.ts), taken out of its attributes. */
interface WrittenRun {
  params: Record<string, string>;
  tags: Record<string, string>;
  info: Map<string, TypedValue>;
}

const PARAMS = 'run_data/params/';
const TAGS = 'run_data/tags/';
const INFO = 'run_info/';

function takeWritten(attributes: Map<string, NeptuneAttribute>): [Map<string, NeptuneAttribute>, WrittenRun] {
  const rest = new Map<string, NeptuneAttribute>();
  const written: WrittenRun = { params: {}, tags: {}, info: new Map() };
  for (const [path, value] of attributes) {
    if (value.type === 'string' && path.startsWith(PARAMS)) written.params[path.slice(PARAMS.length)] = value.value;
    else if (value.type === 'string' && path.startsWith(TAGS)) written.tags[path.slice(TAGS.length)] = value.value;
    else if (path.startsWith(INFO) && !path.slice(INFO.length).includes('/')) written.info.set(path.slice(INFO.length), value);
    else rest.set(path, value);
  }
  return [rest, written];
}

const writtenStatus = (v: NeptuneAttribute | undefined): RunStatus | undefined => RUN_STATUSES.find((s) => s === str(v));

/** Series a writer listed in `run_info/system_series` (target.ts) marked as system series. */
function markSystem(series: SeriesInfo[], listed: NeptuneAttribute | undefined): SeriesInfo[] {
  const text = str(listed);
  if (text === undefined) return series;
  let keys: Set<string>;
  try {
    const parsed = z.array(z.string()).safeParse(JSON.parse(text));
    if (!parsed.success) return series;
    keys = new Set(parsed.data);
  } catch {
    return series;
  }
  return series.map((s) => (keys.has(s.key) ? { ...s, system: true } : s));
}

/** The tags a writer kept for the run's experiment in `run_info/experiment_tags` (target.ts); {} when none parse. */
export function experimentTagsOf(run: NeptuneRun): Record<string, string> {
  const text = str(run.attributes.get('run_info/experiment_tags'));
  if (text === undefined) return {};
  try {
    const parsed = z.record(z.string(), z.string()).safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** The dataset inputs a writer kept in `run_info/inputs` (target.ts); undefined when there are none or they do not parse. */
function inputsOf(v: NeptuneAttribute | undefined): DatasetInput[] | undefined {
  const text = str(v);
  if (text === undefined) return undefined;
  try {
    const parsed = z.array(datasetInputSchema).safeParse(JSON.parse(text));
    return parsed.success ? (parsed.data as DatasetInput[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The model's run for a Neptune run; `experimentId` is the id the source gave its experiment. */
export function toModelRun(run: NeptuneRun, experimentId: string): Run {
  const [attributes, written] = takeWritten(run.attributes);
  const { info } = written;
  const tags: Record<string, string> = { ...written.tags };
  for (const tag of set(attributes.get('sys/tags'))) tags[tag] = '';
  const groupTags = set(attributes.get('sys/group_tags'));
  // a run from elsewhere (run_info/status) has no sys attributes of its own: the writer made them from its id, experiment, start, tags and group
  const fromElsewhere = info.has('status');
  // nor a Neptune state: that of its copy is the server's, not the run's
  const state = str(info.get('source_state')) ?? (fromElsewhere ? undefined : str(attributes.get('sys/state')));
  const configured = fromElsewhere ? [...attributes].filter(([path]) => !path.startsWith('sys/')) : [...attributes];
  const config: ConfigEntry[] = configured.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, value]) => ({ path: path.split('/'), value }));
  const startTime = time(info.get('start_time')) ?? time(attributes.get('sys/creation_time'));
  // a run from elsewhere ended when run_info/end_time says, or has not ended
  const endTime = time(info.get('end_time')) ?? (fromElsewhere ? undefined : (time(attributes.get('sys/modification_time')) ?? run.lastOperationTime));
  const name = str(info.get('run_name')) ?? (run.generation === 2 ? (str(attributes.get('sys/name')) ?? run.id) : run.id);
  // a run from elsewhere had its user or none: the server's owner of the copy is not it
  const user = str(info.get('user_id')) ?? (fromElsewhere ? undefined : str(attributes.get('sys/owner')));
  const deleted = str(info.get('lifecycle_stage')) === 'deleted' || attributes.get('sys/trashed')?.value === true;
  const parentId = str(info.get('parent_run_id'));
  return {
    id: run.id,
    experimentId,
    name,
    status: writtenStatus(info.get('status')) ?? statusOf(attributes),
    ...(startTime !== undefined ? { startTime } : {}),
    ...(endTime !== undefined ? { endTime } : {}),
    ...(user ? { user } : {}),
    lifecycle: deleted ? 'deleted' : 'active',
    ...(parentId ? { parentId } : {}),
    params: written.params,
    tags,
    inputs: inputsOf(info.get('inputs')) ?? [],
    series: markSystem(run.series, info.get('system_series')),
    ...(config.length > 0 ? { config } : {}),
    ...(run.fork ? { fork: run.fork } : {}),
    ...(groupTags.length > 0 ? { group: groupTags.join(',') } : {}),
    ...(state !== undefined ? { sourceState: state } : {}),
  };
}
