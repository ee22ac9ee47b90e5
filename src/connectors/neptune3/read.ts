/**
 * A folder of neptune-scale offline databases read as a source. Opening scans each database once
 * (scan.ts) for attributes and the list of series; points are read later, one series at a time,
 * by passing over the operations again in pages, so memory does not grow with history length.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';
import { experimentNameOf, experimentTagsOf, toModelRun } from '../neptune-common/run.js';
import { readOrRecord } from '../unreadable.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { RunDatabase } from './db.js';
import { decodeAppendOf } from './append.js';
import { safeFilePath as safePath, seriesFileName, seriesFilePath } from '../neptune-common/scale-paths.js';
import { OPERATION_UPDATE, stepValue, timestampMs, type Value } from '../neptune-common/scale-proto.js';
import { decodeOperation, scanRun, type ScannedRun } from './scan.js';

/** points per page given to the engine */
const POINTS_PAGE = 1000;

interface OpenRun {
  db: RunDatabase;
  scanned: ScannedRun;
  experiment: string;
  /** SeriesFile.path → file_ref path */
  seriesFiles: Map<string, string>;
  /** artifact path → file_ref path */
  artifacts: Map<string, string>;
}

export class Neptune3Source implements Source {
  readonly kind = 'neptune3';
  readonly unreadable: UnreadableObject[] = [];
  readonly warnings: Array<{ object: string; message: string }> = [];
  private readonly runs = new Map<string, OpenRun>();

  private constructor(readonly uri: string) {}

  /** Scans every database; one that cannot be read is recorded in `unreadable`, the others are read. */
  static async open(uri: string, files: string[]): Promise<Neptune3Source> {
    const source = new Neptune3Source(uri);
    for (const file of files) await source.add(file);
    return source;
  }

  private async add(file: string): Promise<void> {
    const opened = await readOrRecord(this.unreadable, { type: 'run', file }, async () => {
      const db = RunDatabase.open(file);
      try {
        return { db, scanned: scanRun(db) };
      } catch (err) {
        db.close();
        throw err;
      }
    });
    if (!opened) return;
    const { db, scanned } = opened;
    const id = scanned.neptune.id;
    const other = this.runs.get(id);
    if (other) {
      db.close();
      this.warnings.push({ object: `run ${id}`, message: `found twice, in ${other.db.file} and ${file}: the second is not read` });
      return;
    }
    for (const message of scanned.warnings) this.warnings.push({ object: `run ${id}`, message: `${message} (${file})` });
    const seriesFiles = new Map<string, string>();
    for (const ref of scanned.uploads.keys()) seriesFiles.set(seriesFilePath(ref, id), ref);
    const artifacts = new Map<string, string>();
    for (const [attribute, ref] of scanned.assignedFiles) if (!scanned.missingFiles.has(ref)) artifacts.set(safePath(attribute), ref);
    this.runs.set(id, { db, scanned, experiment: experimentNameOf(scanned.neptune), seriesFiles, artifacts });
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const names = [...new Set([...this.runs.values()].map((r) => r.experiment))].sort();
    // an experiment's tags, when a writer kept them on its runs (neptune-common/target.ts)
    const tagsOf = (name: string) => {
      for (const run of this.runs.values()) if (run.experiment === name && run.scanned.neptune.attributes.has('run_info/experiment_tags')) return experimentTagsOf(run.scanned.neptune);
      return {};
    };
    for (const name of names) yield { id: name, name, tags: tagsOf(name), lifecycle: 'active' };
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    for (const run of this.runs.values()) {
      if (run.experiment !== experimentId) continue;
      const model = toModelRun(run.scanned.neptune, experimentId);
      if (model.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield model;
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const run = this.runs.get(runId);
    return run && toModelRun(run.scanned.neptune, run.experiment);
  }

  private open(run: Run): OpenRun {
    const found = this.runs.get(run.id);
    if (!found) throw new Error(`neptune3: no run ${quoted(run.id)} in ${this.uri}`);
    return found;
  }

  /** The committed appends of `key`, in sequence order, with their step and timestamp. */
  private *appends(open: OpenRun, key: string): Generator<{ step: number; timestamp?: number; value: Value['value'] }> {
    const keyBytes = Buffer.from(key, 'utf8');
    for (const page of open.db.operations(keyBytes)) {
      for (const row of page) {
        if (row.operation_type !== OPERATION_UPDATE) continue;
        const update = decodeOperation(open.db, row.sequence_id, (bytes) => decodeAppendOf(bytes, keyBytes), row.operation);
        const value = update?.append[key];
        if (!value || update.preview?.isPreview) continue;
        yield {
          step: update.step ? stepValue(update.step) : 0,
          ...(update.timestamp ? { timestamp: timestampMs(update.timestamp) } : {}),
          value: value.value,
        };
      }
    }
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    let page: MetricPoint[] = [];
    for (const { value, ...point } of this.appends(this.open(run), key)) {
      if (value.case === 'float64') page.push({ key, ...point, value: value.value });
      else if (value.case === 'int64') page.push({ key, ...point, value: Number(value.value) });
      else continue;
      if (page.length >= POINTS_PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  async *readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const open = this.open(run);
    let page: TypedPoint[] = [];
    for (const { value, ...point } of this.appends(open, series.key)) {
      const typed = this.typedPoint(open, series, value);
      if (typed === undefined) continue;
      page.push({ ...point, value: typed } as TypedPoint);
      if (page.length >= POINTS_PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  private typedPoint(open: OpenRun, series: SeriesInfo, value: Value['value']): TypedPoint['value'] | undefined {
    if (series.type === 'string' && value.case === 'string') return value.value;
    if (series.type === 'histogram' && value.case === 'histogram') {
      const { binEdges, values } = value.value;
      if (values.case === 'counts') return { edges: [...binEdges], kind: 'counts', values: values.value.values.map(Number) };
      if (values.case === 'densities') return { edges: [...binEdges], kind: 'densities', values: [...values.value.values] };
      return undefined;
    }
    if (series.type === 'file' && value.case === 'fileRef') {
      const ref = value.value;
      if (open.scanned.missingFiles.has(ref.path)) return undefined;
      const upload = open.scanned.uploads.get(ref.path);
      const file: SeriesFile = { path: seriesFilePath(ref.path, open.scanned.neptune.id), name: seriesFileName(ref.path) };
      const size = ref.sizeBytes > 0n ? Number(ref.sizeBytes) : upload?.size;
      const mimeType = ref.mimeType || upload?.mimeType;
      return { ...file, ...(size !== undefined ? { size } : {}), ...(mimeType ? { mimeType } : {}) };
    }
    return undefined;
  }

  private localCopy(open: OpenRun, ref: string | undefined, what: string): Readable {
    const upload = ref === undefined ? undefined : open.scanned.uploads.get(ref);
    if (!upload) throw new InvalidInputError(open.db.file, `no ${what} in run ${quoted(open.scanned.neptune.id)}`);
    return createReadStream(upload.sourcePath);
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    return this.localCopy(open, open.seriesFiles.get(path), `series file ${quoted(path)}`);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const open = this.open(run);
    for (const [path, ref] of open.artifacts) {
      const size = open.scanned.uploads.get(ref)?.size;
      yield { path, ...(size !== undefined ? { size } : {}) };
    }
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    return this.localCopy(open, open.artifacts.get(path), `artifact ${quoted(path)}`);
  }

  async close(): Promise<void> {
    for (const run of this.runs.values()) run.db.close();
    this.runs.clear();
  }
}
