/**
 * Reads everything a Source holds into one comparable value, through the connector contract,
 * so two ends of a copy can be compared field by field with toEqual. Runs are keyed by their
 * origin (the source id trackshift recorded, or their own id); trackshift's provenance tags
 * are left out, as verify leaves them out.
 */
import { createHash } from 'node:crypto';
import type { Source } from '../../src/connectors/types.js';
import { isMlmodelFile } from '../../src/connectors/mlflow-common/mlmodel.js';
import { MLFLOW_TAGS, SOURCE_TAG_PREFIX, type DatasetInput, type Tags } from '../../src/model/index.js';

export interface RunSnapshot {
  name?: string;
  status: string;
  startTime?: number;
  endTime?: number;
  user?: string;
  lifecycle: string;
  parent?: string;
  params: Record<string, string>;
  tags: Tags;
  inputs: DatasetInput[];
  metrics: Record<string, Array<[number, number, number]>>;
  artifacts: Record<string, { size: number; sha256: string }>;
}

export interface ExperimentSnapshot {
  tags: Tags;
  lifecycle: string;
  runs: Record<string, RunSnapshot>;
}

const withoutProvenance = (tags: Tags, drop: string[] = []): Tags =>
  Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(SOURCE_TAG_PREFIX) && !drop.includes(k)).sort(([a], [b]) => a.localeCompare(b)));

export async function snapshot(source: Source, options: { artifacts?: boolean; experimentNames?: string[] } = {}): Promise<Record<string, ExperimentSnapshot>> {
  const result: Record<string, ExperimentSnapshot> = {};
  for await (const experiment of source.listExperiments()) {
    if (options.experimentNames && !options.experimentNames.includes(experiment.name)) continue;
    const runs: Record<string, RunSnapshot> = {};
    const originOf = new Map<string, string>();
    const parents = new Map<string, string | undefined>();
    for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) {
      const origin = run.tags[`${SOURCE_TAG_PREFIX}source.id`] ?? run.id;
      originOf.set(run.id, origin);
      parents.set(origin, run.parentId);
      const metrics: RunSnapshot['metrics'] = {};
      for (const key of run.series.map((s) => s.key).sort()) {
        const points: Array<[number, number, number]> = [];
        for await (const page of source.readMetric(run, key)) for (const p of page) points.push([p.step, p.timestamp ?? 0, p.value]);
        points.sort((a, b) => a[0] - b[0] || a[1] - b[1] || String(a[2]).localeCompare(String(b[2])));
        metrics[key] = points;
      }
      const artifacts: RunSnapshot['artifacts'] = {};
      if (options.artifacts !== false) {
        for await (const file of source.listArtifacts(run)) {
          const hash = createHash('sha256');
          let size = 0;
          const chunks: Buffer[] = [];
          for await (const chunk of await source.readArtifact(run, file.path)) {
            size += (chunk as Buffer).length;
            if (isMlmodelFile(file.path)) chunks.push(chunk as Buffer);
            else hash.update(chunk as Buffer);
          }
          // a copied MLmodel names the copy's run (by design): compare it with that id left out
          if (isMlmodelFile(file.path)) hash.update(Buffer.concat(chunks).toString('utf8').split(run.id).join('<this run>'));
          artifacts[file.path] = { size, sha256: hash.digest('hex') };
        }
      }
      runs[origin] = {
        name: run.name,
        status: run.status,
        startTime: run.startTime,
        endTime: run.endTime,
        user: run.user,
        lifecycle: run.lifecycle,
        params: Object.fromEntries(Object.entries(run.params).sort(([a], [b]) => a.localeCompare(b))),
        tags: withoutProvenance(run.tags, [MLFLOW_TAGS.parentRunId]),
        inputs: [...run.inputs].sort((a, b) => a.dataset.digest.localeCompare(b.dataset.digest)),
        metrics,
        artifacts: Object.fromEntries(Object.entries(artifacts).sort(([a], [b]) => a.localeCompare(b))),
      };
    }
    // parents by origin, so that new ids compare equal to old ones
    for (const [origin, parentId] of parents) {
      if (parentId) runs[origin]!.parent = originOf.get(parentId) ?? `(not here) ${parentId}`;
    }
    result[experiment.name] = { tags: withoutProvenance(experiment.tags), lifecycle: experiment.lifecycle, runs };
  }
  return result;
}
