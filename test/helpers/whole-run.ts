/**
 * Reads every run of a Source whole, through the contract (series of every type point by point
 * in the order the source gives them, series files, artifacts, typed config, fork …), keyed by
 * origin (the source id trackshift recorded, or the run's own), so that two ends of a copy
 * compare with toEqual. trackshift's own tags are left out, as verify leaves them out; ids
 * that name runs (parent, fork) are given as origins too.
 */
import { createHash } from 'node:crypto';
import type { Source } from '../../src/connectors/types.js';
import { SOURCE_TAG_PREFIX, SOURCE_TAGS, type MetricPoint, type Run, type SeriesFile, type TypedPoint } from '../../src/model/index.js';

const sha = async (body: AsyncIterable<unknown>) => {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
};

export async function wholeRuns(source: Source): Promise<Record<string, unknown>> {
  const runs: Run[] = [];
  for await (const experiment of source.listExperiments()) for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) runs.push(run);
  const origin = new Map(runs.map((r) => [r.id, r.tags[SOURCE_TAGS.id] ?? r.id]));
  const out: Record<string, unknown> = {};
  for (const run of runs) {
    const series = [];
    const seriesFiles: Record<string, string> = {};
    // in key order: stores list series in orders of their own
    for (const info of [...run.series].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
      const points: Array<MetricPoint | TypedPoint> = [];
      if (info.type === 'float') for await (const page of source.readMetric(run, info.key)) points.push(...page);
      else for await (const page of source.readSeries!(run, info)) points.push(...page);
      if (info.type === 'file') for (const p of points) seriesFiles[(p.value as SeriesFile).path] = await sha(await source.readSeriesFile!(run, (p.value as SeriesFile).path));
      series.push({ info, points });
    }
    const artifacts: Record<string, string> = {};
    for await (const file of source.listArtifacts(run)) artifacts[file.path] = await sha(await source.readArtifact(run, file.path));
    const { id: _id, experimentId: _e, tags, parentId, fork, series: _s, ...rest } = run;
    out[origin.get(run.id)!] = {
      ...rest,
      tags: Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(SOURCE_TAG_PREFIX))),
      ...(parentId ? { parent: origin.get(parentId) ?? parentId } : {}),
      ...(fork ? { fork: { ...fork, runId: origin.get(fork.runId) ?? fork.runId } } : {}),
      series,
      seriesFiles,
      artifacts,
    };
  }
  return out;
}
