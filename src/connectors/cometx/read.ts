/**
 * cometx download folders read as a source: one experiment folder is one run, its project folder
 * the experiment (named by the project; `WS/PROJ` when two workspaces hold the same project name).
 * Opening reads each experiment's small files (scan.ts); metric points, output and asset files
 * are read later, streamed, one series at a time, so memory does not grow with history length.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { isFile } from '../../util/fs.js';
import { quoted, safeJoin } from '../../util/paths.js';
import { histogramOf, keptHistogram } from '../comet-common/histogram.js';
import { POINTS_PAGE, inPages } from '../comet-common/pages.js';
import { FILE_META, STDERR_KEY, STDOUT_KEY, projectFieldTags } from '../comet-common/layout.js';
import { COMBINED_HISTOGRAM, assetMetadata, assetName, assetPointBase, combinedHistogramSchema, experimentTagsOf, metricPointOf, parseRecord, pointBase, restMetricSchema, seriesFileOf, type RestAsset } from '../comet-common/rest.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { FILES, parsePythonJson } from './format.js';
import { chunkSchema, experimentFolders, fileLines, readProject, scanExperiment, type ExperimentFolder, type ScannedExperiment } from './scan.js';


interface OpenRun {
  scanned: ScannedExperiment;
  /** SeriesFile.path → the asset */
  seriesFiles: Map<string, RestAsset>;
}

export class CometxSource implements Source {
  readonly kind = 'cometx';
  readonly unreadable: UnreadableObject[] = [];
  readonly warnings: Array<{ object: string; message: string }> = [];
  private readonly runs = new Map<string, OpenRun>();
  private readonly experiments = new Map<string, Experiment>();

  private constructor(readonly uri: string) {}

  static async open(location: string): Promise<CometxSource> {
    const source = new CometxSource(`cometx:${location}`);
    const folders = await experimentFolders(location);
    // a project name found in two workspaces: each experiment is named by both
    const workspaces = new Map<string, Set<string | undefined>>();
    for (const f of folders) (workspaces.get(f.project) ?? workspaces.set(f.project, new Set()).get(f.project)!).add(f.workspace);
    const idOf = (f: ExperimentFolder) => (workspaces.get(f.project)!.size > 1 ? `${f.workspace}/${f.project}` : f.project);
    const projects = new Map<string, Awaited<ReturnType<typeof readProject>> | undefined>();
    for (const folder of folders) {
      const experimentId = idOf(folder);
      if (!projects.has(folder.projectDir)) projects.set(folder.projectDir, await readOrRecord(source.unreadable, { type: 'experiment', file: join(folder.projectDir, FILES.projectMetadata), sourceId: experimentId }, () => readProject(folder.projectDir)));
      const scanned = await readOrRecord(source.unreadable, { type: 'run', file: join(folder.dir, FILES.metadata) }, () => scanExperiment(folder, experimentId));
      if (!scanned) continue;
      source.add(scanned, projects.get(folder.projectDir));
    }
    return source;
  }

  private add(scanned: ScannedExperiment, project: Awaited<ReturnType<typeof readProject>> | undefined): void {
    const { run } = scanned.rest;
    const other = this.runs.get(run.id);
    if (other) {
      this.warnings.push({ object: `run ${run.id}`, message: `found twice, in ${other.scanned.folder.dir} and ${scanned.folder.dir}: the second is not read` });
      return;
    }
    for (const message of scanned.warnings) this.warnings.push({ object: `run ${run.id}`, message });
    const seriesFiles = new Map<string, RestAsset>();
    for (const [key, series] of scanned.rest.series) {
      if (series.type !== 'file') continue;
      series.assets.forEach((asset, i) => seriesFiles.set(this.seriesFile(key, i, asset).path, asset));
    }
    this.runs.set(run.id, { scanned, seriesFiles });
    if (!this.experiments.has(run.experimentId)) {
      const workspace = scanned.metadata?.workspaceName ?? scanned.folder.workspace;
      const fromProject = projectFieldTags({ description: project?.metadata?.projectDescription, isPublic: project?.metadata?.public, notes: project?.notes });
      const tags = scanned.rest.extras.experimentTags ? experimentTagsOf(scanned.rest.extras, workspace) : { ...experimentTagsOf({}, workspace), ...fromProject };
      // named as the metadata says (its folder may be a hashed form of a name that is no folder name)
      this.experiments.set(run.experimentId, { id: run.experimentId, name: scanned.metadata?.projectName || scanned.folder.project, tags, lifecycle: 'active' });
    }
  }

  private seriesFile(key: string, index: number, asset: RestAsset): SeriesFile {
    return seriesFileOf(key, index, assetName(asset), assetMetadata(asset));
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    for (const id of [...this.experiments.keys()].sort()) yield structuredClone(this.experiments.get(id)!);
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'cometx download folders cannot be filtered with a search expression');
    for (const { scanned } of this.runs.values()) {
      const { run } = scanned.rest;
      if (run.experimentId !== experimentId || (run.lifecycle === 'deleted' && !query.includeDeleted)) continue;
      yield structuredClone(run);
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const run = this.runs.get(runId);
    return run && structuredClone(run.scanned.rest.run);
  }

  private open(run: Run): OpenRun {
    const found = this.runs.get(run.id);
    if (!found) throw new InvalidInputError(this.uri, `no run ${quoted(run.id)}`);
    return found;
  }

  private file(open: OpenRun, relPath: string): string {
    return safeJoin(open.scanned.folder.dir, relPath);
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const open = this.open(run);
    const file = open.scanned.metricFiles.get(key);
    if (!file) return;
    const needle = plainNeedle(key);
    async function* points(): AsyncIterable<MetricPoint> {
      for await (const { text, lineNo } of fileLines(file!)) {
        if (!text.includes(needle) || text.trim() === '') continue;
        const where = `${file}:${lineNo}`;
        const record = parseRecord(restMetricSchema, parsePythonJson(text, where), where);
        if (record.metricName !== key) continue;
        const point = metricPointOf(record);
        if (point) yield point;
      }
    }
    yield* inPages(points());
  }

  async *readSeries(run: Run, info: SeriesInfo): AsyncIterable<TypedPoint[]> {
    const open = this.open(run);
    const series = open.scanned.rest.series.get(info.key);
    if (!series && info.type === 'string' && (info.key === STDOUT_KEY || info.key === STDERR_KEY)) {
      yield* this.readOutput(open, info.key === STDERR_KEY);
      return;
    }
    if (!series || series.type !== info.type) return;
    let page: TypedPoint[] = [];
    for (const [i, asset] of series.assets.entries()) {
      const relPath = open.scanned.assetFiles.get(asset)!;
      const where = join(open.scanned.folder.dir, relPath);
      const base = assetPointBase(asset);
      if (series.type === 'string') page.push({ ...base, value: await readFile(this.file(open, relPath), 'utf8') });
      else if (series.type === 'histogram') {
        const json = parsePythonJson(await readFile(this.file(open, relPath), 'utf8'), where);
        if (asset.type === COMBINED_HISTOGRAM) {
          for (const { step, histogram } of parseRecord(combinedHistogramSchema, json, where).histograms) page.push({ ...base, step: step ?? 0, value: histogramOf(histogram, where) });
        } else page.push({ ...base, value: keptHistogram(assetMetadata(asset), where) ?? histogramOf(json, where) });
      } else {
        // a file from elsewhere is as it was given (its size when it had one); Comet's have their size on disk
        const file = this.seriesFile(info.key, i, asset);
        const kept = assetMetadata(asset)?.[FILE_META] !== undefined;
        page.push({ ...base, value: kept ? file : { ...file, size: (await stat(this.file(open, relPath))).size } });
      }
      if (page.length >= POINTS_PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  /** trackshift's chunk file when there (each chunk as logged), else output.txt line by line as stdout. */
  private async *readOutput(open: OpenRun, stderr: boolean): AsyncIterable<TypedPoint[]> {
    const chunks = this.file(open, FILES.outputChunks);
    const fromChunks = await isFile(chunks);
    const file = fromChunks ? chunks : this.file(open, FILES.output);
    if (!fromChunks && (stderr || !(await isFile(file)))) return;
    let index = 0;
    async function* fromChunkFile(): AsyncIterable<TypedPoint> {
      for await (const { text, lineNo } of fileLines(file)) {
        if (text.trim() === '') continue;
        const where = `${file}:${lineNo}`;
        const chunk = parseRecord(chunkSchema, parsePythonJson(text, where), where);
        if (chunk.stderr !== stderr) continue;
        yield { ...pointBase(index++, chunk.timestamp, undefined, chunk.context), value: chunk.output };
      }
    }
    // output.txt: lines with their newline, as cometx copy logs them
    async function* fromOutputTxt(): AsyncIterable<TypedPoint> {
      for await (const line of outputLines(file)) yield { ...pointBase(index++, undefined), value: line };
    }
    yield* inPages(fromChunks ? fromChunkFile() : fromOutputTxt());
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const asset = open.seriesFiles.get(path);
    if (!asset) throw new InvalidInputError(open.scanned.folder.dir, `run ${quoted(run.id)} has no series file ${quoted(path)}`);
    return createReadStream(this.file(open, open.scanned.assetFiles.get(asset)!));
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const open = this.open(run);
    for (const [path, where] of open.scanned.rest.artifacts) {
      const size = 'content' in where ? where.content.length : (await stat(this.file(open, open.scanned.assetFiles.get(where.asset)!))).size;
      yield { path, size };
    }
    for (const [path, size] of open.scanned.files) yield { path, size };
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const open = this.open(run);
    const where = open.scanned.rest.artifacts.get(path);
    if (where) return 'content' in where ? Readable.from([where.content]) : createReadStream(this.file(open, open.scanned.assetFiles.get(where.asset)!));
    if (open.scanned.files.has(path)) return createReadStream(this.file(open, path));
    throw new InvalidInputError(open.scanned.folder.dir, `run ${quoted(run.id)} has no artifact ${quoted(path)}`);
  }
}

/** The lines of a text file with their newlines (the last one may have none), streamed. */
async function* outputLines(file: string): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8' })) {
    const parts = (rest + (chunk as string)).split('\n');
    rest = parts.pop()!;
    for (const part of parts) yield `${part}\n`;
  }
  if (rest !== '') yield rest;
}

/**
 * The name as it appears in a line, to pass over other metrics' lines without parsing them: only
 * for plain ASCII names (Python's json escapes the others in its own way), else no filter.
 */
const plainNeedle = (name: string): string => (/^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name) ? `"${name}"` : '');
