/**
 * Comet offline archives read as a source: one archive is one run (experiment = its project).
 * Opening scans each archive once (scan.ts); metric points, output and uploads are read later, one
 * series at a time, by passing over messages.json again, so memory does not grow with history length.
 */
import { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, PointBase, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { keyToFileName, quoted, relativePathProblem } from '../../util/paths.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { Archive } from './archive.js';
import { histogramOf, keptHistogram } from '../comet-common/histogram.js';
import { POINTS_PAGE, inPages } from '../comet-common/pages.js';
import { STDERR_KEY, STDOUT_KEY, projectTags } from '../comet-common/layout.js';
import { seriesFileOf } from '../comet-common/rest.js';
import { metricNumber } from '../comet-common/values.js';
import { MESSAGES_FILE, MESSAGE_TYPES, metricPayload, standardOutputPayload } from './format.js';
import { keyOfFileName, scanArchive, type ScannedRun, type Upload } from './scan.js';

/** the project of archives whose experiment.json names none */
export const NO_PROJECT = 'comet-offline';

const safePath = (path: string): string => (relativePathProblem(path) === undefined ? path : `comet-files/${keyToFileName(path)}`);

/** Step, epoch, context and time of a message, as the model's point has them (a step the client left null is 0). */
function pointBase(step: number | null | undefined, timestamp: number, epoch?: number | null, context?: string | null): PointBase {
  return { step: step ?? 0, timestamp, ...(epoch !== null && epoch !== undefined ? { epoch } : {}), ...(context ? { context } : {}) };
}

interface OpenRun {
  scanned: ScannedRun;
  experiment: string;
  series: SeriesInfo[];
  /** SeriesFile.path → the upload */
  seriesFiles: Map<string, Upload>;
  /** artifact path (safe) → where its bytes are */
  artifacts: Map<string, { blob: string } | { content: Buffer }>;
}

export class CometOfflineSource implements Source {
  readonly kind = 'comet-offline';
  readonly unreadable: UnreadableObject[] = [];
  readonly warnings: Array<{ object: string; message: string }> = [];
  private readonly runs = new Map<string, OpenRun>();

  private constructor(readonly uri: string) {}

  static async open(uri: string, files: string[]): Promise<CometOfflineSource> {
    const source = new CometOfflineSource(uri);
    for (const file of files) await source.add(file);
    return source;
  }

  private async add(file: string): Promise<void> {
    const scanned = await readOrRecord(this.unreadable, { type: 'run', file, sourceId: keyOfFileName(file) }, () => scanArchive(file));
    if (!scanned) return;
    const other = this.runs.get(scanned.key);
    if (other) {
      this.warnings.push({ object: `run ${scanned.key}`, message: `found twice, in ${other.scanned.file} and ${file}: the second is not read` });
      return;
    }
    for (const message of scanned.warnings) this.warnings.push({ object: `run ${scanned.key}`, message });
    const seriesFiles = new Map<string, Upload>();
    for (const [key, series] of scanned.series) {
      if (series.type !== 'file') continue;
      series.uploads.forEach((upload, i) => seriesFiles.set(this.seriesFile(key, i, upload).path, upload));
    }
    const artifacts = new Map<string, { blob: string } | { content: Buffer }>();
    for (const [path, where] of scanned.artifacts) artifacts.set(safePath(path), where);
    this.runs.set(scanned.key, { scanned, experiment: scanned.experiment.project_name || NO_PROJECT, series: this.seriesOf(scanned), seriesFiles, artifacts });
  }

  /** The run's series, keys unique: a key met again (a metric named `stdout`) is left out, with a warning. */
  private seriesOf(scanned: ScannedRun): SeriesInfo[] {
    const all: SeriesInfo[] = [];
    for (const [key, system] of scanned.metrics) all.push(system ? { key, type: 'float', system } : { key, type: 'float' });
    for (const key of [STDOUT_KEY, STDERR_KEY] as const) if (scanned.output[key] > 0 && !scanned.series.has(key)) all.push({ key, type: 'string' });
    for (const [key, s] of scanned.series) all.push({ key, type: s.type });
    const seen = new Set<string>();
    return all.filter((series) => {
      if (!seen.has(series.key)) return seen.add(series.key);
      this.warnings.push({ object: `run ${scanned.key}`, message: `${scanned.file}: two series are named ${quoted(series.key)}: the ${series.type} one is left out` });
      return false;
    });
  }

  /** A file series point's file: as the writer was given it (kept in the upload's metadata), else named by series, index and name. */
  private seriesFile(key: string, index: number, upload: Upload): SeriesFile {
    return seriesFileOf(key, index, upload.name, upload.payload.metadata);
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const tags = new Map<string, Record<string, string>>();
    for (const { experiment, scanned } of this.runs.values()) if (!tags.has(experiment)) tags.set(experiment, scanned.extras.experimentTags ?? projectTags(scanned.experiment.workspace));
    for (const name of [...tags.keys()].sort()) yield { id: name, name, tags: { ...tags.get(name) }, lifecycle: 'active' };
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'Comet offline archives cannot be filtered with a search expression');
    for (const run of this.runs.values()) {
      if (run.experiment !== experimentId || (run.scanned.extras.lifecycle === 'deleted' && !query.includeDeleted)) continue;
      yield this.modelRun(run);
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const run = this.runs.get(runId);
    return run && this.modelRun(run);
  }

  private modelRun({ scanned, experiment, series }: OpenRun): Run {
    const { experiment: file } = scanned;
    const failed = file.customer_error_reported === true;
    const { extras } = scanned;
    return {
      id: scanned.key,
      experimentId: experiment,
      ...(scanned.name !== undefined ? { name: scanned.name } : {}),
      status: extras.status ?? (failed ? 'FAILED' : 'FINISHED'),
      startTime: file.start_time,
      ...(extras.noEndTime ? {} : { endTime: file.stop_time }),
      ...(extras.user !== undefined ? { user: extras.user } : {}),
      lifecycle: extras.lifecycle ?? 'active',
      ...(extras.parentId !== undefined ? { parentId: extras.parentId } : {}),
      params: { ...scanned.params },
      tags: { ...Object.fromEntries(file.tags.map((t) => [t, ''])), ...extras.tags },
      inputs: structuredClone(extras.inputs ?? []),
      series: series.map((info) => ({ ...info })),
      ...(scanned.config.length > 0 ? { config: structuredClone(scanned.config) } : {}),
      ...(scanned.summary.length > 0 ? { summary: structuredClone(scanned.summary) } : {}),
      ...(failed && file.customer_error_message && !extras.status ? { sourceState: file.customer_error_message } : {}),
    };
  }

  private open(run: Run): OpenRun {
    const found = this.runs.get(run.id);
    if (!found) throw new InvalidInputError(this.uri, `no run ${quoted(run.id)}`);
    return found;
  }

  /** The payloads of messages of `type` whose line holds `needle` (a quick filter), in file order (lines that do not parse are skipped: the scan warned). */
  private async *payloads(open: OpenRun, type: string, needle: string): AsyncGenerator<unknown> {
    const archive = await Archive.open(open.scanned.file);
    try {
      const typeNeedle = JSON.stringify(type);
      for await (const { text } of archive.lines(MESSAGES_FILE)) {
        if (!text.includes(needle) || !text.includes(typeNeedle)) continue;
        let message: { type?: unknown; payload?: unknown };
        try {
          message = JSON.parse(text) as typeof message;
        } catch {
          continue;
        }
        if (message.type === type) yield message.payload;
      }
    } finally {
      archive.close();
    }
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const open = this.open(run);
    const payloads = this.payloads(open, MESSAGE_TYPES.metric, plainNeedle(key));
    async function* points(): AsyncIterable<MetricPoint> {
      for await (const payload of payloads) {
        const parsed = metricPayload.safeParse(payload);
        if (!parsed.success || parsed.data.metric.metricName !== key) continue;
        const { metric, local_timestamp, context } = parsed.data;
        yield { key, ...pointBase(metric.step, local_timestamp, metric.epoch, context), value: metricNumber(metric.metricValue) };
      }
    }
    yield* inPages(points());
  }

  async *readSeries(run: Run, info: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const open = this.open(run);
    if (info.type === 'string' && (info.key === STDOUT_KEY || info.key === STDERR_KEY) && !open.scanned.series.has(info.key)) {
      yield* this.readOutput(open, info.key === STDERR_KEY);
      return;
    }
    const series = open.scanned.series.get(info.key);
    if (!series || series.type !== info.type) return;
    const archive = await Archive.open(open.scanned.file);
    try {
      for (let i = 0; i < series.uploads.length; i += POINTS_PAGE) {
        const page: TypedPoint[] = [];
        for (const [n, upload] of series.uploads.slice(i, i + POINTS_PAGE).entries()) {
          const extra = upload.payload.additional_params;
          const base = pointBase(extra?.step, upload.payload.local_timestamp, extra?.epoch, extra?.context);
          const where = `${open.scanned.file}:${upload.blob}`;
          if (series.type === 'string') page.push({ ...base, value: (await archive.read(upload.blob)).toString('utf8') });
          else if (series.type === 'histogram') page.push({ ...base, value: keptHistogram(upload.payload.metadata, where) ?? histogramOf(parseJson(await archive.read(upload.blob), where), where) });
          else {
            const file = this.seriesFile(info.key, i + n, upload);
            const size = archive.size(upload.blob);
            page.push({ ...base, value: size !== undefined ? { ...file, size } : file });
          }
        }
        yield page;
      }
    } finally {
      archive.close();
    }
  }

  private async *readOutput(open: OpenRun, stderr: boolean): AsyncIterable<TypedPoint[]> {
    const payloads = this.payloads(open, MESSAGE_TYPES.standardOutput, '"output"');
    async function* points(): AsyncIterable<TypedPoint> {
      let index = 0;
      for await (const payload of payloads) {
        const parsed = standardOutputPayload.safeParse(payload);
        if (!parsed.success || Boolean(parsed.data.stderr) !== stderr) continue;
        yield { ...pointBase(index++, parsed.data.local_timestamp, undefined, parsed.data.context), value: parsed.data.output ?? '' };
      }
    }
    yield* inPages(points());
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const upload = open.seriesFiles.get(path);
    if (!upload) throw new InvalidInputError(open.scanned.file, `run ${quoted(run.id)} has no series file ${quoted(path)}`);
    return this.blob(open, upload.blob);
  }

  private async blob(open: OpenRun, blob: string): Promise<Readable> {
    const archive = await Archive.open(open.scanned.file);
    try {
      return await archive.stream(blob);
    } finally {
      archive.close(); // the stream keeps the file open until it ends
    }
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const open = this.open(run);
    const files = await Archive.using(open.scanned.file, async (archive) =>
      [...open.artifacts].map(([path, where]) => ({ path, size: 'content' in where ? where.content.length : archive.size(where.blob) })),
    );
    for (const { path, size } of files) yield { path, ...(size !== undefined ? { size } : {}) };
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const where = open.artifacts.get(path);
    if (!where) throw new InvalidInputError(open.scanned.file, `run ${quoted(run.id)} has no artifact ${quoted(path)}`);
    return 'content' in where ? Readable.from([where.content]) : this.blob(open, where.blob);
  }
}

/**
 * The name as it appears in a line, to pass over other series' lines without parsing them: only
 * for plain ASCII names (Python's json escapes the others in its own way), else no filter.
 */
const plainNeedle = (name: string): string => (/^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name) ? `"${name}"` : '');

function parseJson(bytes: Buffer, where: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidInputError(where, 'is not JSON');
  }
}
