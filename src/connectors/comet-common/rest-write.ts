/**
 * The model as REST records, for the destinations that write what the REST API gives (cometx
 * download folders, and the REST connector's writes): the inverse of rest.ts, so that a run
 * written and read back is the same run. Values are REST's strings (values.ts valueText); what the
 * strings cannot say travels in the run extras (the other `trackshift.run`).
 */
import type { MetricPoint, Run, TypedValue } from '../../model/index.js';
import type { RunExtras } from './extras.js';
import { NAME_OTHER, RUN_OTHER, paramOf, paramPath } from './layout.js';
import { metricText, valueText, valueTypeOf } from './values.js';

/** A parameter or other record with one value (current = min = max), as REST lists it. */
export interface ValueRecord {
  name: string;
  valueCurrent: string;
  valueMin: string;
  valueMax: string;
  timestampCurrent: number | null;
  timestampMin: number | null;
  timestampMax: number | null;
  editable: boolean;
}

export const valueRecord = (name: string, text: string, timestamp: number | null): ValueRecord => ({
  name,
  valueCurrent: text,
  valueMin: text,
  valueMax: text,
  timestampCurrent: timestamp,
  timestampMin: timestamp,
  timestampMax: timestamp,
  editable: false,
});

/** A metric point as `experiment/metrics/get-all` gives it: the value as a string ("NaN", "Infinity" included). */
export const metricRecord = (point: MetricPoint) => ({
  metricName: point.key,
  metricValue: metricText(point.value),
  timestamp: point.timestamp !== undefined ? Math.round(point.timestamp) : null,
  step: point.step,
  epoch: point.epoch ?? null,
  runContext: point.context ?? null,
});

const samePath = (a: string[], b: string[]): boolean => a.length === b.length && a.every((segment, i) => segment === b[i]);

/**
 * Collects a run's parameters and others as REST records, and the extras that say what the
 * records cannot: paths that are not the name split on `|`, types the text does not tell, MLflow
 * params, tags with values, inputs, user, parent, status, lifecycle, end time, experiment tags.
 */
export class RestRecords {
  readonly parameters: ValueRecord[] = [];
  readonly others: ValueRecord[] = [];
  readonly extras: RunExtras = {};
  private readonly paramNames = new Set<string>();

  constructor(private readonly run: Run) {
    const at = run.startTime !== undefined ? Math.round(run.startTime) : null;
    if (run.name !== undefined) this.others.push(valueRecord(NAME_OTHER, run.name, at));
    for (const entry of run.config ?? []) {
      // REST has no parameter source: a client-logged parameter (auto-logged/curr_step) keeps its path in the extras
      let name = paramOf(entry.path).name;
      if (this.paramNames.has(name)) name = entry.path.join('|');
      if (!samePath(paramPath(name, undefined), entry.path)) (this.extras.paramPaths ??= {})[name] = entry.path;
      this.param(name, entry.value, at, 'paramTypes');
    }
    for (const entry of run.summary ?? []) {
      const key = entry.path.join('|');
      if (!samePath([key], entry.path)) (this.extras.otherPaths ??= {})[key] = entry.path;
      const type = valueTypeOf(entry.value);
      if (type) (this.extras.otherTypes ??= {})[key] = type;
      this.others.push(valueRecord(key, valueText(entry.value), at));
    }
    this.addTags(run.tags);
    if (run.user !== undefined) this.extras.user = run.user;
    if (run.parentId !== undefined) this.extras.parentId = run.parentId;
  }

  private param(name: string, value: TypedValue, at: number | null, types: 'paramTypes'): void {
    this.paramNames.add(name);
    const type = valueTypeOf(value);
    if (type) (this.extras[types] ??= {})[name] = type;
    this.parameters.push(valueRecord(name, valueText(value), at));
  }

  /** An MLflow param (a string). */
  addParam(key: string, value: string): void {
    (this.extras.params ??= []).push(key);
    this.paramNames.add(key);
    this.parameters.push(valueRecord(key, value, this.run.startTime !== undefined ? Math.round(this.run.startTime) : null));
  }

  addTags(tags: Record<string, string>): void {
    for (const [key, value] of Object.entries(tags)) (this.extras.tags ??= {})[key] = value;
  }

  /**
   * The finished run's Comet tags (those without a value), and its others with the extras last
   * (the other `trackshift.run`), given the experiment tags its project says by itself (by
   * default its workspace: `comet.workspace`).
   */
  finish(run: Run, experimentTags: Record<string, string> | undefined, projectSays: Record<string, string>): { tags: string[]; others: ValueRecord[] } {
    const extras: RunExtras = { ...this.extras };
    const all = Object.entries(extras.tags ?? {});
    const cometTags = all.filter(([, v]) => v === '').map(([tag]) => tag);
    const valued = all.filter(([, v]) => v !== '');
    if (valued.length > 0) extras.tags = Object.fromEntries(valued);
    else delete extras.tags;
    if (run.status !== 'FINISHED' && run.status !== 'RUNNING') extras.status = run.status;
    if (run.lifecycle !== 'active') extras.lifecycle = run.lifecycle;
    if (run.endTime === undefined && run.status !== 'RUNNING') extras.noEndTime = true;
    if (run.sourceState !== undefined) extras.sourceState = run.sourceState;
    if (experimentTags && !sameTags(experimentTags, projectSays)) extras.experimentTags = experimentTags;
    const others = [...this.others];
    if (Object.keys(extras).length > 0) others.push(valueRecord(RUN_OTHER, JSON.stringify(extras), null));
    return { tags: cometTags, others };
  }
}

const sameTags = (a: Record<string, string>, b: Record<string, string>): boolean => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
