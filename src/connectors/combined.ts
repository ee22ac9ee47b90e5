/**
 * One folder, several formats: a `.neptune` folder holds the runs of both Neptune clients
 * (2.x operation logs and neptune-scale databases). Where more than one connector that says
 * `sharesFolders` recognises a path, the resolver opens each and reads them as one source.
 *
 * Experiments are not merged across the parts: each keeps its own id, made unique with the
 * part's connector name when two parts give the same id; every call on a run goes to the part
 * whose experiment it is in, with that part's ids.
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesInfo, TypedPoint } from '../model/index.js';
import type { RunQuery, Source, UnreadableObject } from './types.js';

interface Part {
  name: string;
  source: Source;
}

export class CombinedSource implements Source {
  /** the parts' formats, `neptune2+neptune3`: what a message about this source names */
  readonly kind: string;
  /** combined experiment id → the part and its own id for it */
  private readonly experiments = new Map<string, { part: Part; id: string }>();

  constructor(
    readonly uri: string,
    private readonly parts: Part[],
  ) {
    this.kind = parts.map((p) => p.name).join('+');
  }

  get unreadable(): UnreadableObject[] {
    return this.parts.flatMap((p) => p.source.unreadable ?? []);
  }

  get warnings(): Array<{ object: string; message: string }> {
    return this.parts.flatMap((p) => p.source.warnings ?? []);
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const ids = new Map<string, number>();
    const listed: Array<{ part: Part; experiment: Experiment }> = [];
    for (const part of this.parts) {
      for await (const experiment of part.source.listExperiments()) {
        listed.push({ part, experiment });
        ids.set(experiment.id, (ids.get(experiment.id) ?? 0) + 1);
      }
    }
    for (const { part, experiment } of listed) {
      const id = ids.get(experiment.id)! > 1 ? `${part.name}:${experiment.id}` : experiment.id;
      this.experiments.set(id, { part, id: experiment.id });
      yield { ...experiment, id };
    }
  }

  private partOf(experimentId: string): { part: Part; id: string } {
    const found = this.experiments.get(experimentId);
    if (!found) throw new Error(`${this.uri}: no experiment ${experimentId} (list the experiments first)`);
    return found;
  }

  /** The run as its part knows it (its own experiment id). */
  private own(run: Run): { source: Source; run: Run } {
    const { part, id } = this.partOf(run.experimentId);
    return { source: part.source, run: { ...run, experimentId: id } };
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    const { part, id } = this.partOf(experimentId);
    for await (const run of part.source.listRuns(id, query)) yield { ...run, experimentId };
  }

  readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const own = this.own(run);
    return own.source.readMetric(own.run, key);
  }

  readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const own = this.own(run);
    if (!own.source.readSeries) throw new Error(`${own.source.uri} cannot read the ${series.type} series "${series.key}"`);
    return own.source.readSeries(own.run, series);
  }

  readSeriesFile(run: Run, path: string): Promise<Readable> {
    const own = this.own(run);
    if (!own.source.readSeriesFile) throw new Error(`${own.source.uri} cannot read series files`);
    return own.source.readSeriesFile(own.run, path);
  }

  listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const own = this.own(run);
    return own.source.listArtifacts(own.run);
  }

  readArtifact(run: Run, path: string): Promise<Readable> {
    const own = this.own(run);
    return own.source.readArtifact(own.run, path);
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.source.close?.()));
  }
}
