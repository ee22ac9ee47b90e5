/**
 * Reading a bundle. Everything read is validated: JSON files against their schemas, file names
 * named inside them through safeJoin, series lines one by one. Nothing is ever written here.
 * Series (of every type) are streamed line by line and handed out in pages.
 */
import { createReadStream } from 'node:fs';
import { lstat, open, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, FilePoint, MetricPoint, Run, SeriesInfo, SeriesType, TypedPoint } from '../../model/index.js';
import { decodeEntry, lineToPoint } from '../../model/json.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { isDir, isFile, listDirs, refuseLink, walkFiles } from '../../util/fs.js';
import { idToFolderName, quoted, safeJoin } from '../../util/paths.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { BundleLoggedModels } from './logged-models.js';
import { BundleRegistry } from './registry.js';
import {
  ARTIFACTS_DIR,
  EXPERIMENTS_DIR,
  EXPERIMENT_FILE,
  ROOT_FILE,
  RUNS_DIR,
  RUN_FILE,
  SERIES_FILES_DIR,
  checkVersion,
  experimentSchema,
  parseJson,
  parseLine,
  readJsonFile,
  rootSchema,
  runSchema,
  seriesDirOf,
  seriesEntries,
  seriesInfo,
  type RootFile,
  type RunFile,
} from './format.js';

/** A page holds at most this many points, */
export const PAGE_SIZE = 10_000;
/** and about this many characters of lines at most (string and histogram points may be long). */
export const PAGE_CHARS = 4 * 1024 * 1024;

/** Reads and validates the root file: format name and version first. */
export async function readRootFile(root: string): Promise<RootFile> {
  const file = join(root, ROOT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(file, `cannot read the bundle's root file: ${errorMessage(err)}`);
  }
  checkVersion(file, text);
  return parseJson(file, text, rootSchema);
}

interface RunLocation {
  dir: string;
  record: RunFile;
}

export class BundleReader implements Source {
  readonly kind = 'bundle';
  readonly capabilities = { filter: false };
  readonly root: string;
  /** run id → where it was read from, so readMetric/listArtifacts need not look again */
  protected readonly located = new Map<string, RunLocation>();
  /** experiments and runs whose files are malformed: left out, reported as failed */
  readonly unreadable: UnreadableObject[] = [];
  readonly registry: BundleRegistry;
  readonly loggedModels: BundleLoggedModels;

  constructor(
    root: string,
    readonly uri: string,
  ) {
    this.root = resolve(root);
    this.registry = new BundleRegistry(this.root, this.unreadable);
    this.loggedModels = new BundleLoggedModels(this.root, this.unreadable);
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const base = join(this.root, EXPERIMENTS_DIR);
    for (const name of await listDirs(base)) {
      const file = join(base, name, EXPERIMENT_FILE);
      // a folder without experiment.json is an experiment whose creation was cut off: nothing in it
      if (!(await isFile(file))) continue;
      const record = await readOrRecord(this.unreadable, { type: 'experiment', file }, async () => {
        const read = await readJsonFile(file, experimentSchema);
        if (idToFolderName(read.id) !== name) throw new InvalidInputError(file, `holds experiment id "${read.id}", which does not belong in folder "${name}"`);
        return read;
      });
      if (!record) continue;
      yield {
        id: record.id,
        name: record.name,
        tags: record.tags,
        lifecycle: record.lifecycle,
        creationTime: record.creationTime,
        lastUpdateTime: record.lastUpdateTime,
        artifactLocation: record.artifactLocation,
      };
    }
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'a bundle cannot filter runs with a search expression');
    const base = join(this.root, EXPERIMENTS_DIR, idToFolderName(experimentId), RUNS_DIR);
    for (const name of await listDirs(base)) {
      const dir = join(base, name);
      const location = await readOrRecord(this.unreadable, { type: 'run', file: join(dir, RUN_FILE) }, () => this.readRun(dir, experimentId));
      if (!location) continue; // partial (a copy stopped part way through it), or unreadable
      if (location.record.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield toRun(location.record);
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const base = join(this.root, EXPERIMENTS_DIR);
    for (const name of await listDirs(base)) {
      const file = join(base, name, EXPERIMENT_FILE);
      if (!(await isFile(file))) continue;
      const experimentId = (await readJsonFile(file, experimentSchema)).id;
      const dir = join(base, name, RUNS_DIR, idToFolderName(runId));
      if (!(await isDir(dir))) continue;
      const location = await this.readRun(dir, experimentId);
      if (location) return toRun(location.record);
    }
    return undefined;
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    yield* this.pages(run, { key, type: 'float' }, (line) => lineToPoint('float', line, key));
  }

  async *readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    if (series.type === 'float') throw new Error(`bundle: readSeries of the float series ${quoted(series.key)}: read it with readMetric`);
    const type = series.type;
    const { dir } = await this.locate(run);
    for await (const page of this.pages(run, series, (line) => lineToPoint(type, line))) {
      // a file series' files are checked before its page is handed out: there, of the size its point says
      if (type === 'file') for (const { value } of page as FilePoint[]) await this.seriesFileOf(dir, value.path, value.size);
      yield page;
    }
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const { dir } = await this.locate(run);
    return createReadStream(await this.seriesFileOf(dir, path));
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const { dir } = await this.locate(run);
    yield* walkFiles(join(dir, ARTIFACTS_DIR), 'refuse');
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const { dir } = await this.locate(run);
    const file = safeJoin(join(dir, ARTIFACTS_DIR), path, `artifact of run ${run.id} in ${this.uri}`);
    const info = await lstat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a regular file (symbolic links and folders are not artifacts)');
    return createReadStream(file);
  }

  // ---- helpers ----

  /**
   * A series' points, streamed line by line (`parse` is the model's codec) and handed out in
   * pages; the number of lines must be what run.json says.
   */
  private async *pages<T>(run: Run, series: { key: string; type: SeriesType }, parse: (line: string) => T): AsyncIterable<T[]> {
    const { dir, record } = await this.locate(run);
    const runFile = join(dir, RUN_FILE);
    const entry = seriesEntries(record).find((s) => s.key === series.key);
    if (!entry) return;
    const where = `${runFile} (series ${quoted(series.key)})`;
    if (entry.type !== series.type) throw new InvalidInputError(where, `is a ${entry.type} series, not a ${series.type} series`);
    const file = safeJoin(dir, entry.file, where);
    await refuseLink(file, 'a bundle');
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw new InvalidInputError(where, `cannot open its file ${entry.file}: ${errorMessage(err)}`);
    }
    let page: T[] = [];
    let chars = 0;
    let count = 0;
    try {
      for await (const line of handle.readLines({ encoding: 'utf8' })) {
        count++;
        if (line.trim() === '') throw new InvalidInputError(`${file}:${count}`, 'empty line');
        page.push(parseLine(`${file}:${count}`, () => parse(line)));
        chars += line.length;
        if (page.length >= PAGE_SIZE || chars >= PAGE_CHARS) {
          yield page;
          page = [];
          chars = 0;
        }
      }
    } finally {
      await handle.close();
    }
    // a file cut short (or grown) since run.json was written is not the history it claims to be
    if (count !== entry.points) throw new InvalidInputError(file, `holds ${count} points, but ${RUN_FILE} says ${entry.points}`);
    if (page.length > 0) yield page;
  }

  /**
   * The file at `path` among a run's series files: a regular file reached without a symbolic
   * link on the way (they could point anywhere), of `size` bytes when the point says.
   */
  private async seriesFileOf(dir: string, path: string, size?: number): Promise<string> {
    const base = join(dir, SERIES_FILES_DIR);
    const file = safeJoin(base, path, `series file of ${join(dir, RUN_FILE)}`);
    const segments = path.split('/');
    for (let i = 0; i <= segments.length; i++) await refuseLink(join(base, ...segments.slice(0, i)), 'a bundle');
    const info = await lstat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read series file: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a regular file (a series file must be one)');
    if (size !== undefined && info.size !== size) throw new InvalidInputError(file, `holds ${info.size} bytes, but its point says ${size}`);
    return file;
  }

  /** A complete run folder's record, validated; undefined when the folder is partial. */
  private async readRun(dir: string, experimentId: string): Promise<RunLocation | undefined> {
    const file = join(dir, RUN_FILE);
    if (!(await isFile(file))) return undefined;
    const record = await readJsonFile(file, runSchema);
    const folder = basename(dir);
    if (idToFolderName(record.id) !== folder) throw new InvalidInputError(file, `holds run id "${record.id}", which does not belong in folder "${folder}"`);
    if (record.experimentId !== experimentId) throw new InvalidInputError(file, `says experiment "${record.experimentId}", but it is in experiment "${experimentId}"`);
    checkSeriesEntries(file, dir, record);
    const location = { dir, record };
    this.located.set(record.id, location);
    return location;
  }

  private async locate(run: Run): Promise<RunLocation> {
    const known = this.located.get(run.id);
    if (known) return known;
    const dir = join(this.root, EXPERIMENTS_DIR, idToFolderName(run.experimentId), RUNS_DIR, idToFolderName(run.id));
    const location = await this.readRun(dir, run.experimentId);
    if (!location) throw new InvalidInputError(dir, `run ${run.id} is not complete in this bundle (no ${RUN_FILE})`);
    return location;
  }
}

/**
 * Each series file must be a file of the run's series folder (`metrics/` in version 1), whatever
 * run.json says, and keys are unique within a run.
 */
function checkSeriesEntries(file: string, dir: string, record: RunFile): void {
  const folder = seriesDirOf(record);
  const keys = new Set<string>();
  for (const s of seriesEntries(record)) {
    const what = `series ${quoted(s.key)}`;
    safeJoin(dir, s.file, `${file} (${what})`);
    if (!s.file.startsWith(`${folder}/`) || s.file.split('/').length !== 2) {
      throw new InvalidInputError(file, `${what} names file ${quoted(s.file)}, outside ${folder}/`);
    }
    if (keys.has(s.key)) throw new InvalidInputError(file, `lists ${what} twice`);
    keys.add(s.key);
  }
}

function toRun(record: RunFile): Run {
  return {
    id: record.id,
    experimentId: record.experimentId,
    name: record.name,
    status: record.status,
    startTime: record.startTime,
    endTime: record.endTime,
    user: record.user,
    lifecycle: record.lifecycle,
    parentId: record.parentId,
    params: record.params,
    tags: record.tags,
    inputs: record.inputs,
    series: seriesEntries(record).map(seriesInfo),
    ...(record.config ? { config: record.config.map(decodeEntry) } : {}),
    ...(record.summary ? { summary: record.summary.map(decodeEntry) } : {}),
    ...(record.fork ? { fork: record.fork } : {}),
    ...(record.group !== undefined ? { group: record.group } : {}),
    ...(record.sourceState !== undefined ? { sourceState: record.sourceState } : {}),
    ...(record.modelOutputs ? { modelOutputs: record.modelOutputs } : {}),
  };
}
