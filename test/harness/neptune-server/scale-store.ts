/**
 * The Neptune 3.x runs of the test server: what neptune-scale's operations (`CreateRun`,
 * `UpdateRunSnapshot`) make of a run, applied as Neptune 3.x applies them — including its
 * refusals, as ingest codes (`neptune.ingest.v1.IngestCode`) that the check endpoint reports per
 * request. Projects are the ones of the shared NeptuneStore (a project made through either API is
 * one project); 3.x runs live here, apart from the 2.x containers. Attribute types are named as the
 * 3.x query API names them (`float`, `floatSeries`, `fileRef`, …).
 */
import { randomUUID } from 'node:crypto';
import { stepValue, timestampMs, type CreateRun, type UpdateRunSnapshot, type Value, type ValueCase } from '../../../src/connectors/neptune-common/scale-proto.js';
import type { NeptuneStore, Project } from './store.js';

export interface ScaleFileRef {
  path: string;
  sizeBytes: number;
  mimeType: string;
}
export interface ScaleHistogram {
  /** COUNTING when counts were logged (what Neptune answers, as neptune-query's own end-to-end tests expect); DENSITY for densities is this server's guess */
  type: 'COUNTING' | 'DENSITY';
  edges: number[];
  values: number[];
}
export type PointValue = number | string | ScaleHistogram | ScaleFileRef;
export interface ScalePoint<V extends PointValue = PointValue> {
  /** the step as logged (whole + micro/1e6) */
  step: number;
  timestampMillis: number;
  value: V;
  /** set on a preview point (an uncommitted value) */
  completionRatio?: number;
}
export type SeriesType = 'floatSeries' | 'stringSeries' | 'histogramSeries' | 'fileRefSeries';
export interface ScaleSeries<T extends SeriesType = SeriesType> {
  type: T;
  points: ScalePoint[];
  /** preview points after the last committed one; a committed point at or past their step drops them */
  previews: ScalePoint[];
}
export type ScaleAttribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  /** epoch milliseconds */
  | { type: 'datetime'; value: number }
  | { type: 'stringSet'; values: string[] }
  | { type: 'fileRef'; value: ScaleFileRef }
  | ScaleSeries;

export interface ScaleRun {
  /** the client's run id (sys/custom_run_id) */
  runId: string;
  /** KEY-N (sys/id) */
  sysId: string;
  uuid: string;
  project: Project;
  experiment?: string;
  family: string;
  /** epoch ms: CreateRun's creation_time, else when it arrived */
  created: number;
  /** when the run was created or last changed (epoch ms) */
  modified: number;
  fork?: { parent: ScaleRun; step: number };
  attributes: Map<string, ScaleAttribute>;
}

/** One ingest request as the check endpoint reports it: the codes that happened, by name, with counts. */
export interface IngestRecord {
  requestId: string;
  project: string;
  runId: string;
  /** IngestCode name → how often (empty: all applied) */
  codes: Map<string, number>;
  /** how many operations the request held */
  operations: number;
  /** how many times it was checked so far */
  checks: number;
}

/** IngestCode (neptune.ingest.v1.IngestCode): names and numbers of the clients' descriptors */
export const INGEST_CODE = {
  OK: 0,
  PROJECT_NOT_FOUND: 8,
  RUN_NOT_FOUND: 10,
  RUN_DUPLICATE: 11,
  RUN_CONFLICTING: 12,
  RUN_FORK_PARENT_NOT_FOUND: 13,
  RUN_INVALID_CREATION_PARAMETERS: 14,
  FIELD_PATH_EMPTY: 17,
  FIELD_PATH_NON_WRITABLE: 19,
  FIELD_TYPE_UNSUPPORTED: 20,
  FIELD_TYPE_CONFLICTING: 21,
  SERIES_STEP_NON_INCREASING: 25,
  SERIES_STEP_NOT_AFTER_FORK_POINT: 26,
  SERIES_TIMESTAMP_DECREASING: 27,
  SERIES_STEP_INVALID: 41,
  SERIES_PREVIEW_STEP_NOT_AFTER_LAST_COMMITTED_STEP: 42,
  FLOAT_VALUE_NAN_INF_UNSUPPORTED: 32,
  HISTOGRAM_BIN_EDGES_NOT_INCREASING: 52,
  HISTOGRAM_VALUES_LENGTH_DOESNT_MATCH_BINS: 53,
} as const;
export type IngestCodeName = keyof typeof INGEST_CODE;

/** the sys/* paths a client may write; the other sys/* are the server's */
const WRITABLE_SYS = new Set(['sys/name', 'sys/description', 'sys/tags', 'sys/group_tags', 'sys/failed', 'sys/archived']);

const SERIES_OF: Partial<Record<NonNullable<ValueCase['case']>, SeriesType>> = { float64: 'floatSeries', string: 'stringSeries', histogram: 'histogramSeries', fileRef: 'fileRefSeries' };

export interface ScaleStoreOptions {
  /**
   * Refuse NaN/±Inf floats with FLOAT_VALUE_NAN_INF_UNSUPPORTED, as Neptune backends before NaN
   * support did. Off by default: today's Neptune stores them (neptune-scale 0.30 silences that
   * code for that reason, `sync_process.py:_should_error_be_reported`).
   */
  refuseNanInf?: boolean;
}

export class ScaleStore {
  /** `ws/proj` → run id → run */
  private readonly byProject = new Map<string, Map<string, ScaleRun>>();
  /** request id → what happened to it */
  readonly requests = new Map<string, IngestRecord>();

  constructor(
    readonly projects: NeptuneStore,
    readonly options: ScaleStoreOptions = {},
  ) {}

  /** the 3.x runs of a project (`ws/proj`), in creation order */
  runs(project: string): ScaleRun[] {
    return [...(this.byProject.get(project)?.values() ?? [])];
  }

  run(project: string, runId: string): ScaleRun | undefined {
    return this.byProject.get(project)?.get(runId);
  }

  /** a run by `ws/proj/SYS-ID` (the query API's run identifier) */
  runBySysId(identifier: string): ScaleRun | undefined {
    const at = identifier.lastIndexOf('/');
    const sysId = identifier.slice(at + 1);
    return this.runs(identifier.slice(0, at)).find((r) => r.sysId === sysId);
  }

  /** every ingest code that was not OK, in request order: `[{requestId, runId, code, count}]` */
  refusals(): Array<{ requestId: string; runId: string; code: string; count: number }> {
    return [...this.requests.values()].flatMap((r) => [...r.codes].map(([code, count]) => ({ requestId: r.requestId, runId: r.runId, code, count })));
  }

  /** Applies one `RunOperation` as Neptune does; returns its request record. */
  ingest(operation: { project: string; runId: string; createMissingProject?: boolean; create?: CreateRun; snapshots: UpdateRunSnapshot[] }, now = Date.now()): IngestRecord {
    const record: IngestRecord = { requestId: randomUUID(), project: operation.project, runId: operation.runId, codes: new Map(), operations: operation.create ? 1 : operation.snapshots.length, checks: 0 };
    this.requests.set(record.requestId, record);
    const refuse = (code: IngestCodeName, count = 1) => record.codes.set(code, (record.codes.get(code) ?? 0) + count);

    let project = this.projects.project(operation.project);
    if (!project && operation.createMissingProject) {
      const [workspace, name] = operation.project.split('/');
      if (workspace && name) project = this.projects.addProject(workspace, name);
    }
    if (!project) {
      refuse('PROJECT_NOT_FOUND', record.operations);
      return record;
    }
    const key = `${project.workspace}/${project.name}`;
    const runs = this.byProject.get(key) ?? new Map<string, ScaleRun>();
    this.byProject.set(key, runs);

    if (operation.create) {
      const create = operation.create;
      const runId = create.runId || operation.runId;
      const existing = runs.get(runId);
      if (existing) {
        // a resumed run: Neptune keeps the first one as it is (a warning for the client)
        const sameParent = (existing.fork?.parent.runId ?? '') === (create.forkPoint?.parentRunId ?? '');
        refuse(sameParent ? 'RUN_DUPLICATE' : 'RUN_CONFLICTING');
        return record;
      }
      let fork: ScaleRun['fork'];
      if (create.forkPoint?.parentRunId) {
        const parentProject = create.forkPoint.parentProject || key;
        const parent = this.run(parentProject, create.forkPoint.parentRunId);
        if (!parent) {
          refuse('RUN_FORK_PARENT_NOT_FOUND');
          return record;
        }
        fork = { parent, step: create.forkPoint.step ? stepValue(create.forkPoint.step) : 0 };
      }
      project.count += 1;
      const created = create.creationTime ? timestampMs(create.creationTime) : now;
      const run: ScaleRun = {
        runId,
        sysId: `${project.key}-${project.count}`,
        uuid: randomUUID(),
        project,
        ...(create.experimentId ? { experiment: create.experimentId } : {}),
        family: create.family || runId,
        created,
        modified: now,
        ...(fork ? { fork } : {}),
        attributes: new Map(),
      };
      if (fork && (create as { inheritConfigs?: boolean }).inheritConfigs) {
        for (const [path, a] of fork.parent.attributes) if (!('points' in a) && !path.startsWith('sys/')) run.attributes.set(path, structuredClone(a));
      }
      runs.set(runId, run);
      return record;
    }

    const run = runs.get(operation.runId);
    if (!run) {
      refuse('RUN_NOT_FOUND', record.operations);
      return record;
    }
    for (const snapshot of operation.snapshots) this.apply(run, snapshot, refuse, now);
    run.modified = now;
    return record;
  }

  private apply(run: ScaleRun, s: UpdateRunSnapshot, refuse: (code: IngestCodeName) => void, now: number): void {
    const a = run.attributes;
    const writable = (path: string): boolean => {
      if (path === '') refuse('FIELD_PATH_EMPTY');
      else if (path.startsWith('sys/') && !WRITABLE_SYS.has(path)) refuse('FIELD_PATH_NON_WRITABLE');
      else return true;
      return false;
    };
    const finite = (v: ValueCase): boolean => {
      const bad = this.options.refuseNanInf && ((v.case === 'float64' && !Number.isFinite(v.value)) || (v.case === 'histogram' && [...v.value.binEdges, ...(v.value.values.case === 'densities' ? v.value.values.value.values : [])].some((x) => !Number.isFinite(x))));
      if (bad) refuse('FLOAT_VALUE_NAN_INF_UNSUPPORTED');
      return !bad;
    };

    for (const [path, { value }] of Object.entries(s.assign ?? {}) as Array<[string, Value]>) {
      if (!writable(path) || !finite(value)) continue;
      const next = atomOf(value);
      if (!next) {
        refuse('FIELD_TYPE_UNSUPPORTED');
        continue;
      }
      const existing = a.get(path);
      if (existing && existing.type !== next.type) {
        refuse('FIELD_TYPE_CONFLICTING');
        continue;
      }
      a.set(path, next);
    }

    for (const [path, modify] of Object.entries(s.modifySets ?? {})) {
      if (!writable(path)) continue;
      if (modify.type.case !== 'string') {
        refuse('FIELD_TYPE_UNSUPPORTED');
        continue;
      }
      const existing = a.get(path);
      if (existing && existing.type !== 'stringSet') {
        refuse('FIELD_TYPE_CONFLICTING');
        continue;
      }
      const values = new Set(existing?.type === 'stringSet' ? existing.values : []);
      for (const [v, op] of Object.entries(modify.type.value.values)) {
        if (op === 1) values.add(v);
        else if (op === 2) values.delete(v);
      }
      a.set(path, { type: 'stringSet', values: [...values].sort() });
    }

    const appends = Object.entries(s.append ?? {}) as Array<[string, Value]>;
    if (appends.length === 0) return;
    const step = s.step ? stepValue(s.step) : undefined;
    const timestampMillis = s.timestamp ? timestampMs(s.timestamp) : now;
    // completion_ratio is in the descriptors' Preview but not in scale-proto's interface
    const preview = s.preview?.isPreview ? (s.preview as { isPreview: boolean; completionRatio?: number }) : undefined;
    for (const [path, { value }] of appends) {
      if (!writable(path)) continue;
      const type = value.case ? SERIES_OF[value.case] : undefined;
      if (!type) {
        refuse('FIELD_TYPE_UNSUPPORTED');
        continue;
      }
      if (step === undefined || step < 0 || !Number.isFinite(step)) {
        refuse('SERIES_STEP_INVALID');
        continue;
      }
      if (!finite(value)) continue;
      if (value.case === 'histogram') {
        const h = value.value;
        const n = h.values.case ? h.values.value.values.length : 0;
        if (h.binEdges.some((e, i) => i > 0 && e <= h.binEdges[i - 1]!)) {
          refuse('HISTOGRAM_BIN_EDGES_NOT_INCREASING');
          continue;
        }
        if (n !== h.binEdges.length - 1) {
          refuse('HISTOGRAM_VALUES_LENGTH_DOESNT_MATCH_BINS');
          continue;
        }
      }
      const existing = a.get(path);
      if (existing && existing.type !== type) {
        refuse('FIELD_TYPE_CONFLICTING');
        continue;
      }
      const series = (existing as ScaleSeries | undefined) ?? { type, points: [], previews: [] };
      const last = series.points[series.points.length - 1];
      if (run.fork && step <= run.fork.step && inherits(run.fork.parent, path)) {
        refuse('SERIES_STEP_NOT_AFTER_FORK_POINT');
        continue;
      }
      if (last && step <= last.step) {
        refuse(preview ? 'SERIES_PREVIEW_STEP_NOT_AFTER_LAST_COMMITTED_STEP' : 'SERIES_STEP_NON_INCREASING');
        continue;
      }
      if (last && timestampMillis < last.timestampMillis) {
        refuse('SERIES_TIMESTAMP_DECREASING');
        continue;
      }
      const point: ScalePoint = { step, timestampMillis, value: pointValue(value) };
      if (preview) {
        series.previews = [...series.previews.filter((p) => p.step !== step), { ...point, completionRatio: preview.completionRatio ?? 0 }].sort((x, y) => x.step - y.step);
      } else {
        series.points.push(point);
        series.previews = series.previews.filter((p) => p.step > step);
      }
      a.set(path, series);
    }
  }

  /**
   * A series as the query API reads it: with lineage, the points of the fork parents up to each
   * fork step (recursively), then the run's own.
   */
  seriesPoints(run: ScaleRun, path: string, lineage: boolean): ScalePoint[] {
    const own = run.attributes.get(path);
    const points = own && 'points' in own ? own.points : [];
    if (!lineage || !run.fork) return points;
    const { parent, step } = run.fork;
    return [...this.seriesPoints(parent, path, true).filter((p) => p.step <= step), ...points];
  }

  /** the run's attributes as the query API gives them: its own and the sys/* Neptune computes */
  attributes(run: ScaleRun): Map<string, ScaleAttribute> {
    const out = new Map<string, ScaleAttribute>();
    const runs = this.runs(`${run.project.workspace}/${run.project.name}`);
    out.set('sys/id', { type: 'string', value: run.sysId });
    out.set('sys/custom_run_id', { type: 'string', value: run.runId });
    out.set('sys/family', { type: 'string', value: run.family });
    out.set('sys/creation_time', { type: 'datetime', value: run.created });
    out.set('sys/modification_time', { type: 'datetime', value: run.modified });
    out.set('sys/ping_time', { type: 'datetime', value: run.modified });
    out.set('sys/owner', { type: 'string', value: 'tester' });
    out.set('sys/trashed', { type: 'bool', value: false });
    out.set('sys/archived', { type: 'bool', value: false });
    out.set('sys/failed', { type: 'bool', value: false });
    out.set('sys/description', { type: 'string', value: '' });
    out.set('sys/tags', { type: 'stringSet', values: [] });
    out.set('sys/group_tags', { type: 'stringSet', values: [] });
    out.set('sys/forking/depth', { type: 'int', value: depth(run) });
    if (run.fork) {
      // as neptune-exporter's loaders read them from Neptune (../shared/reference/neptune-facts.md): the parent's run id and the fork step
      out.set('sys/forking/parent', { type: 'string', value: run.fork.parent.runId });
      out.set('sys/forking/step', { type: 'float', value: run.fork.step });
    }
    out.set('sys/diagnostics/run_uuid', { type: 'string', value: run.uuid });
    out.set('sys/diagnostics/project_uuid', { type: 'string', value: run.project.id });
    if (run.experiment !== undefined) {
      out.set('sys/name', { type: 'string', value: run.experiment });
      out.set('sys/experiment/name', { type: 'string', value: run.experiment });
      out.set('sys/experiment/is_head', { type: 'bool', value: this.isHead(run, runs) });
    } else out.set('sys/name', { type: 'string', value: '' });
    for (const [path, attribute] of run.attributes) out.set(path, attribute);
    return out;
  }

  /** the run an experiment is at: the newest of the runs with its name */
  isHead(run: ScaleRun, runs = this.runs(`${run.project.workspace}/${run.project.name}`)): boolean {
    if (run.experiment === undefined) return false;
    const same = runs.filter((r) => r.experiment === run.experiment);
    return same[same.length - 1] === run;
  }
}

function depth(run: ScaleRun): number {
  return run.fork ? depth(run.fork.parent) + 1 : 0;
}

function inherits(parent: ScaleRun, path: string): boolean {
  const a = parent.attributes.get(path);
  return (a !== undefined && 'points' in a && a.points.length > 0) || (parent.fork !== undefined && inherits(parent.fork.parent, path));
}

function atomOf(v: ValueCase): ScaleAttribute | undefined {
  switch (v.case) {
    case 'float64':
      return { type: 'float', value: v.value };
    case 'int64':
      return { type: 'int', value: Number(v.value) };
    case 'bool':
      return { type: 'bool', value: v.value };
    case 'string':
      return { type: 'string', value: v.value };
    case 'timestamp':
      return { type: 'datetime', value: timestampMs(v.value) };
    case 'stringSet':
      return { type: 'stringSet', values: [...new Set(v.value.values)].sort() };
    case 'fileRef':
      return { type: 'fileRef', value: fileRefOf(v.value) };
    default:
      return undefined;
  }
}

const fileRefOf = (f: { path: string; sizeBytes: bigint; mimeType: string }): ScaleFileRef => ({ path: f.path, sizeBytes: Number(f.sizeBytes), mimeType: f.mimeType });

function pointValue(v: ValueCase): PointValue {
  switch (v.case) {
    case 'float64':
    case 'string':
      return v.value;
    case 'fileRef':
      return fileRefOf(v.value);
    case 'histogram': {
      const h = v.value;
      return h.values.case === 'counts' ? { type: 'COUNTING', edges: [...h.binEdges], values: h.values.value.values.map(Number) } : { type: 'DENSITY', edges: [...h.binEdges], values: h.values.case === 'densities' ? [...h.values.value.values] : [] };
    }
    default:
      throw new Error(`not a series value: ${String(v.case)}`);
  }
}
