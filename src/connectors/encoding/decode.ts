/**
 * Reading the `.trackshift/` encoding back (./format.ts, docs/encoding.md): a Source wrapper
 * that every MLflow-family reader returns. A run tagged `trackshift.encoded` gets its series
 * list, typed config, summary, fork, group and source state from its manifest; its series are
 * read from their sidecars (streamed, page by page) or under the key they were written with
 * natively; the encoding's own artifacts are hidden. Runs without the tag pass through as they are.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesInfo, TypedPoint } from '../../model/index.js';
import { lineToPoint } from '../../model/json.js';
import { errorMessage } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';
import { readSmall } from '../../util/streams.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { ENCODED_TAG, isReservedArtifact, MANIFEST_PATH, manifestFromJson, seriesFileArtifact, seriesInfoOf, sidecarArtifact, type Manifest, type ManifestSeries } from './format.js';

/** A manifest larger than this is refused rather than read into memory. */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
/** points per page read from a sidecar */
const PAGE = 1000;

/** What reading a decoded run's series needs: its manifest's series by key. */
interface RunEncoding {
  series: Map<string, ManifestSeries>;
  /** file series whose files are kept under `.trackshift/files/` (not written natively) */
  encodedFiles: boolean;
}

export const isEncoded = (run: Run): boolean => run.tags[ENCODED_TAG] !== undefined;

class DecodingSource implements Source {
  /** runs read so far that carry a manifest (small: series entries only; the rest is on the Run) */
  private readonly encodings = new Map<string, RunEncoding>();
  private readonly failed: UnreadableObject[] = [];
  readonly getRun?: (runId: string) => Promise<Run | undefined>;
  readonly runUrl?: (experimentId: string, runId: string) => string | undefined;

  constructor(private readonly inner: Source) {
    if (inner.runUrl) this.runUrl = inner.runUrl.bind(inner);
    if (inner.getRun) {
      const getRun = inner.getRun.bind(inner);
      this.getRun = async (runId) => {
        const run = await getRun(runId);
        return run && (await this.decode(run));
      };
    }
  }

  get uri() {
    return this.inner.uri;
  }
  get kind() {
    return this.inner.kind;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  get registry() {
    return this.inner.registry;
  }
  get loggedModels() {
    return this.inner.loggedModels;
  }
  get warnings() {
    return this.inner.warnings;
  }
  /** the inner source's, and the runs whose manifest could not be read */
  get unreadable(): UnreadableObject[] {
    return [...(this.inner.unreadable ?? []), ...this.failed];
  }

  listExperiments(): AsyncIterable<Experiment> {
    return this.inner.listExperiments();
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    for await (const run of this.inner.listRuns(experimentId, query)) {
      if (!isEncoded(run)) {
        yield run;
        continue;
      }
      let decoded: Run;
      try {
        decoded = await this.decode(run);
      } catch (err) {
        // this run fails alone, as a malformed file of a file source does
        if (!this.failed.some((f) => f.sourceId === run.id)) this.failed.push({ type: 'run', sourceId: run.id, reason: errorMessage(err) });
        continue;
      }
      yield decoded;
    }
  }

  /** The run as its source held it, from its manifest. */
  private async decode(run: Run): Promise<Run> {
    if (!isEncoded(run)) return run;
    const manifest = await this.readManifest(run);
    const byKey = new Map(manifest.series.map((s) => [s.key, s]));
    const nativeKeys = new Set(manifest.series.flatMap((s) => (s.native !== undefined ? [s.native] : [])));
    this.encodings.set(run.id, { series: byKey, encodedFiles: manifest.series.some((s) => s.type === 'file' && s.native === undefined) });
    const viewParams = new Set(manifest.viewParams ?? []);
    const tags = { ...run.tags };
    delete tags[ENCODED_TAG];
    const decoded: Run = {
      ...run,
      tags,
      params: Object.fromEntries(Object.entries(run.params).filter(([key]) => !viewParams.has(key))),
      // series logged natively after the copy, under keys the manifest does not know, are kept too
      series: [...manifest.series.map(seriesInfoOf), ...run.series.filter((s) => !nativeKeys.has(s.key) && !byKey.has(s.key))],
    };
    for (const field of ['config', 'summary', 'fork', 'group', 'sourceState'] as const) {
      if (manifest[field] !== undefined) Object.assign(decoded, { [field]: manifest[field] });
    }
    return decoded;
  }

  private async readManifest(run: Run): Promise<Manifest> {
    const where = `run ${run.id}: ${MANIFEST_PATH}`;
    let text: string;
    try {
      const bytes = await readSmall(await this.inner.readArtifact(run, MANIFEST_PATH), MAX_MANIFEST_BYTES);
      if (!bytes) throw new Error(`larger than ${MAX_MANIFEST_BYTES} bytes`);
      text = bytes.toString('utf8');
    } catch (err) {
      throw new Error(`${where}: the run is tagged ${ENCODED_TAG} but its manifest cannot be read: ${errorMessage(err)}`);
    }
    try {
      return manifestFromJson(text);
    } catch (err) {
      throw new Error(`${where}: not a valid trackshift encoding manifest: ${errorMessage(err)}`);
    }
  }

  private entry(run: Run, key: string): ManifestSeries | undefined {
    return this.encodings.get(run.id)?.series.get(key);
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const entry = this.entry(run, key);
    if (!entry) return yield* this.inner.readMetric(run, key);
    if (entry.file !== undefined) {
      for await (const page of this.readSidecar(run, entry.file, (line) => lineToPoint('float', line, key))) yield page;
      return;
    }
    if (entry.native === undefined) return; // a series without points
    for await (const page of this.inner.readMetric(run, entry.native)) yield entry.native === key ? page : page.map((p) => ({ ...p, key }));
  }

  async *readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const { type } = series;
    if (type === 'float') throw new Error(`series "${series.key}" is a float series: read it with readMetric`);
    const entry = this.entry(run, series.key);
    if (entry?.file !== undefined) return yield* this.readSidecar(run, entry.file, (line) => lineToPoint(type, line));
    if (entry && entry.native === undefined) return;
    if (!this.inner.readSeries) throw new Error(`${this.uri} cannot read the ${series.type} series "${series.key}" of run ${run.id}`);
    yield* this.inner.readSeries(run, entry ? { ...series, key: entry.native! } : series);
  }

  /** A sidecar's points, a page at a time: never more than a page in memory. */
  private async *readSidecar<P>(run: Run, name: string, parse: (line: string) => P): AsyncIterable<P[]> {
    const path = sidecarArtifact(name);
    const body = await this.inner.readArtifact(run, path);
    const lines = createInterface({ input: body, crlfDelay: Infinity });
    let page: P[] = [];
    let n = 0;
    try {
      for await (const line of lines) {
        n++;
        if (line === '') continue;
        try {
          page.push(parse(line));
        } catch (err) {
          throw new Error(`run ${run.id}: ${path} line ${n}: ${errorMessage(err)}`);
        }
        if (page.length >= PAGE) {
          yield page;
          page = [];
        }
      }
    } finally {
      lines.close();
      body.destroy();
    }
    if (page.length > 0) yield page;
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    if (this.encodings.get(run.id)?.encodedFiles) return this.inner.readArtifact(run, seriesFileArtifact(path));
    if (!this.inner.readSeriesFile) throw new Error(`${this.uri} holds no series file ${quoted(path)} in run ${run.id}`);
    return this.inner.readSeriesFile(run, path);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    if (!this.encodings.has(run.id)) return yield* this.inner.listArtifacts(run);
    for await (const file of this.inner.listArtifacts(run)) if (!isReservedArtifact(file.path)) yield file;
  }

  readArtifact(run: Run, path: string): Promise<Readable> {
    return this.inner.readArtifact(run, path);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/** `source` with the `.trackshift/` encoding of its runs undone. */
export function decodingSource(source: Source): Source {
  return new DecodingSource(source);
}
