/**
 * What `verify` finds, as data: a summary of objects compared, and every difference with a
 * path that names it (`experiment/run/metric:key@step`), the source value and the destination
 * value. The text, JSON and HTML outputs are all renderings of this one value.
 */

import type { RetrySummary } from '../util/retry.js';

export type ObjectType = 'experiment' | 'run' | 'model' | 'version';
export type ObjectState = 'equal' | 'different' | 'missing-in-destination' | 'missing-in-source';

export interface Difference {
  /**
   * e.g. `churn/3f1c…/metric:loss@12`, `churn/3f1c…/series:log@3`, `churn/3f1c…/series:log/type`,
   * `churn/3f1c…/param:lr`, `churn/3f1c…/config:optimizer/lr`, `churn/3f1c…/summary:loss/min`,
   * `churn/3f1c…/fork`, `model:clf/version:2/stage`
   */
  path: string;
  /** a printable value; absent when the thing is not on that side */
  source?: string;
  destination?: string;
}

/** A metric's two histories, thinned to a few hundred points, for the HTML report's charts. */
export interface MetricChart {
  key: string;
  /** [step, value] pairs; non-finite values are left out and counted */
  source: Array<[number, number]>;
  destination: Array<[number, number]>;
  nonFinite: { source: number; destination: number };
}

/** One object (experiment, run, model or version) that is not equal on both sides. */
export interface ObjectReport {
  type: ObjectType;
  state: Exclude<ObjectState, 'equal'>;
  /** the object's path, the prefix of its differences' paths */
  path: string;
  experiment?: string;
  model?: string;
  /** ids and names on each side, when there */
  sourceId?: string;
  destinationId?: string;
  name?: string;
  /** the first differences, up to the cap */
  differences: Difference[];
  /** how many more differences there are beyond the cap */
  omitted: number;
  charts?: MetricChart[];
}

export interface Counts {
  compared: number;
  equal: number;
  different: number;
  missingInDestination: number;
  missingInSource: number;
}

export const emptyCounts = (): Counts => ({ compared: 0, equal: 0, different: 0, missingInDestination: 0, missingInSource: 0 });

/** How runs of the two sides were paired, counted. */
export interface Matching {
  /** by the source id trackshift records on what it writes (`trackshift.source.id`) */
  provenance: number;
  /** by the same id on both sides (a bundle or folder that keeps the source's ids) */
  id: number;
  /** by run name and start time, for data another tool copied */
  nameAndStartTime: number;
}

export interface VerifyReport {
  source: string;
  destination: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** true when both sides hold the same, as far as compared */
  equal: boolean;
  summary: Record<ObjectType, Counts>;
  matching: Matching;
  /**
   * What was read and compared, counted on the source side: points of float series
   * (`metricPoints`) and of the other series types, file series' files and their bytes, artifacts
   */
  compared: {
    metricPoints: number;
    seriesPoints: { string: number; file: number; histogram: number };
    seriesFiles: number;
    seriesFileBytes: number;
    artifacts: number;
    artifactBytes: number;
  };
  /** `--sample N`: only these many runs had their histories and artifacts compared */
  sample?: { runs: number; of: number; seed: number };
  /** what could not be compared, and why (a capability one side lacks) */
  notes: string[];
  /**
   * objects whose comparison could not be finished (a read failed even after retries): the
   * result is incomplete, neither equal nor different (exit code 3)
   */
  incomplete: Array<{ path: string; reason: string }>;
  /** calls retried on each side, per kind */
  retries?: RetrySummary;
  objects: ObjectReport[];
}

/**
 * Collects one object's differences, keeping the first `cap` and counting the rest, so that a
 * run whose million points all differ costs a counter, not a million entries.
 */
export class DifferenceList {
  readonly kept: Difference[] = [];
  omitted = 0;

  constructor(private readonly cap: number) {}

  add(path: string, source: string | undefined, destination: string | undefined): void {
    if (this.kept.length < this.cap) this.kept.push({ path, ...(source !== undefined ? { source } : {}), ...(destination !== undefined ? { destination } : {}) });
    else this.omitted++;
  }

  get count(): number {
    return this.kept.length + this.omitted;
  }
}

/** A printable form of any value: numbers keep NaN and ±Infinity, objects become JSON. */
export function show(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value);
}
