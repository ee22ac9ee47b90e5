/**
 * Reading a neptune-exporter export (./format.ts): each run's parts are read row group by row
 * group. Listing reads each run once for its attributes, the list of its series and where its
 * files are; a series is read again, in pages, filtering its key (row groups whose statistics
 * rule the key out are skipped). Read only: nothing under the export is written.
 *
 * Each run is a NeptuneRun (../neptune-common/run.ts) of generation 3 when it holds an attribute
 * only 3.x has (format.ts), else 2; the experiment is then the 3.x experiment name, else the
 * project (`project_id`). Files, where `file_value.path` says (relative to the project's files
 * folder, checked to stay inside it):
 * - `file` → the artifact `<attribute path><the stored file's extension>` (2.x stores none);
 * - `file_set` → every file of its folder under `<attribute path>/` (2.x keeps the server's ZIP there);
 * - `artifact` (2.x) → `<attribute path>/files_list.json`, the listing the exporter keeps;
 * - a `file_series` point → the series file `<attribute path>/<stored file name>`.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { listDirs, listFiles, walkFiles, refuseLink } from '../../util/fs.js';
import { quoted, relativePathProblem, safeJoin } from '../../util/paths.js';
import { experimentNameOf, neptuneSeries, toModelRun, type NeptuneAttribute, type NeptuneRun } from '../neptune-common/run.js';
import type { RunQuery, Source, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { FILE_TYPES, PARAM_COLUMN, PART_FILE, SERIES_TYPE, filePath, histogramValue, isGeneration3Attribute, paramValue, type ColumnName } from './format.js';
import { ParquetPart } from './parquet.js';

export const PAGE_SIZE = 10_000;

/** The parts of one run, as found on disk. */
interface RunFiles {
  /** the first part's path, naming the run in messages */
  name: string;
  parts: string[];
  /** `<files>/<project folder>`: where its `file_value.path`s are relative to */
  filesRoot: string;
}

/** A file attribute, as an artifact: its path among the run's artifacts and where it is stored. */
interface StoredFile {
  type: 'file' | 'file_set' | 'artifact';
  artifactPath: string;
  stored: string;
}

interface ScannedRun {
  files: RunFiles;
  neptune: NeptuneRun;
  experiment: string;
  artifacts: StoredFile[];
  /** file series key → the folder (relative to filesRoot) that holds its files */
  seriesFolders: Map<string, string>;
}

const SCAN_COLUMNS: ColumnName[] = ['project_id', 'run_id', 'attribute_path', 'attribute_type'];
const VALUE_COLUMNS: ColumnName[] = ['int_value', 'float_value', 'string_value', 'bool_value', 'datetime_value', 'string_set_value', 'file_value'];
const POINT_COLUMNS: Record<SeriesInfo['type'], ColumnName> = { float: 'float_value', string: 'string_value', histogram: 'histogram_value', file: 'file_value' };

export class NeptuneExportSource implements Source {
  readonly kind = 'neptune-export';
  readonly capabilities = { filter: false };
  readonly uri: string;
  readonly unreadable: UnreadableObject[] = [];
  readonly warnings: Array<{ object: string; message: string }> = [];
  private scanned?: Map<string, ScannedRun>;

  constructor(
    private readonly dataDir: string,
    private readonly filesDir: string,
    uri: string,
  ) {
    this.uri = resolve(uri);
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const names = new Set<string>();
    for (const run of (await this.runs()).values()) names.add(run.experiment);
    for (const name of [...names].sort()) yield { id: name, name, tags: {}, lifecycle: 'active' };
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    if (query.filter) throw new InvalidInputError(this.uri, 'a neptune-exporter export cannot be filtered with a search expression');
    for (const run of (await this.runs()).values()) {
      if (run.experiment !== experimentId) continue;
      const model = toModelRun(run.neptune, experimentId);
      if (model.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield model;
    }
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const run = (await this.runs()).get(runId);
    return run && toModelRun(run.neptune, run.experiment);
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    for await (const page of this.points(run, { key, type: 'float' })) yield page as MetricPoint[];
  }

  async *readSeries(run: Run, series: SeriesInfo): AsyncIterable<TypedPoint[]> {
    for await (const page of this.points(run, series)) yield page as TypedPoint[];
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const scanned = await this.located(run);
    const key = dirname(path);
    const folder = scanned.seriesFolders.get(key);
    if (folder === undefined) throw new InvalidInputError(scanned.files.name, `run ${run.id} has no file series holding ${quoted(path)}`);
    return openFile(safeJoin(scanned.files.filesRoot, `${folder}/${basename(path)}`, scanned.files.name));
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const scanned = await this.located(run);
    for (const file of scanned.artifacts) {
      const full = safeJoin(scanned.files.filesRoot, file.stored, scanned.files.name);
      if (file.type === 'file_set') {
        for await (const inner of walkFiles(full, 'refuse')) yield { path: `${file.artifactPath}/${inner.path}`, size: inner.size };
      } else {
        const info = await stat(full).catch(() => undefined);
        if (!info?.isFile()) throw new InvalidInputError(full, `the file of attribute ${quoted(file.artifactPath)} of run ${run.id} is missing`);
        yield { path: file.artifactPath, size: info.size };
      }
    }
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const scanned = await this.located(run);
    for (const file of scanned.artifacts) {
      if (file.type !== 'file_set' && file.artifactPath === path) return openFile(safeJoin(scanned.files.filesRoot, file.stored, scanned.files.name));
      if (file.type === 'file_set' && path.startsWith(`${file.artifactPath}/`)) {
        const folder = safeJoin(scanned.files.filesRoot, file.stored, scanned.files.name);
        return openFile(safeJoin(folder, path.slice(file.artifactPath.length + 1), scanned.files.name));
      }
    }
    throw new InvalidInputError(scanned.files.name, `run ${run.id} has no artifact ${quoted(path)}`);
  }

  // ---- reading points ----

  /** A series' points in pages, in the order of the parts and rows. */
  private async *points(run: Run, series: Pick<SeriesInfo, 'key' | 'type'>): AsyncIterable<Array<MetricPoint | TypedPoint>> {
    const scanned = await this.located(run);
    const type = Object.keys(SERIES_TYPE).find((t) => SERIES_TYPE[t] === series.type)!;
    const valueColumn = POINT_COLUMNS[series.type];
    let page: Array<MetricPoint | TypedPoint> = [];
    for (const file of scanned.files.parts) {
      const part = await ParquetPart.open(file);
      try {
        for (let g = 0; g < part.rowGroups; g++) {
          if (!part.mayHold(g, 'attribute_path', series.key)) continue;
          // a row group of this series alone (by its statistics) needs no key and type columns
          const alone = part.constantIn(g, 'attribute_path') === series.key && part.constantIn(g, 'attribute_type') === type;
          const { rows, columns } = await part.readRowGroup(g, alone ? ['step', 'timestamp', valueColumn] : ['attribute_path', 'attribute_type', 'step', 'timestamp', valueColumn]);
          const paths = columns.attribute_path;
          const types = columns.attribute_type;
          for (let i = 0; i < rows; i++) {
            if (!alone && (paths![i] !== series.key || types![i] !== type)) continue;
            page.push(this.point(scanned, series, columns.step![i], columns.timestamp![i], columns[valueColumn]![i], () => `${file}: row group ${g}, row ${i}`));
            if (page.length >= PAGE_SIZE) {
              yield page;
              page = [];
            }
          }
        }
      } finally {
        await part.close();
      }
    }
    if (page.length > 0) yield page;
  }

  private point(scanned: ScannedRun, series: Pick<SeriesInfo, 'key' | 'type'>, step: unknown, timestamp: unknown, raw: unknown, where: () => string): MetricPoint | TypedPoint {
    // a point without a step is at step 0, as the exporter's own loaders read it
    const at = typeof step === 'number' ? step : 0;
    if (series.type === 'float') {
      // the hot path (millions of points): objects built whole, no spreads
      if (typeof raw !== 'number') throw new InvalidInputError(where(), `float_value of ${quoted(series.key)} is not a double`);
      return typeof timestamp === 'number' ? { key: series.key, step: at, timestamp, value: raw } : { key: series.key, step: at, value: raw };
    }
    const base = { step: at, ...(typeof timestamp === 'number' ? { timestamp } : {}) };
    switch (series.type) {
      case 'string':
        if (typeof raw !== 'string') throw new InvalidInputError(where(), `string_value of ${quoted(series.key)} is not a string`);
        return { ...base, value: raw };
      case 'histogram': {
        const value = histogramValue(raw);
        if (typeof value === 'string') throw new InvalidInputError(where(), value);
        return { ...base, value };
      }
      case 'file': {
        const stored = storedPath(raw, where());
        if (dirname(stored) !== scanned.seriesFolders.get(series.key)) throw new InvalidInputError(where(), `the files of file series ${quoted(series.key)} are in more than one folder (${quoted(stored)})`);
        const name = basename(stored);
        return { ...base, value: { path: `${series.key}/${name}`, name } };
      }
    }
  }

  // ---- listing: one pass over each run's parts ----

  private async runs(): Promise<Map<string, ScannedRun>> {
    if (this.scanned) return this.scanned;
    const runs = new Map<string, ScannedRun>();
    for (const files of await this.findRuns()) {
      const scanned = await readOrRecord(this.unreadable, { type: 'run', file: files.name, sourceId: basename(files.name) }, () => this.scan(files));
      if (!scanned) continue;
      const id = scanned.neptune.id;
      if (runs.has(id)) {
        this.warnings.push({ object: files.name, message: `run ${quoted(id)} is also exported in ${runs.get(id)!.files.name}; this copy is left out` });
        continue;
      }
      runs.set(id, scanned);
    }
    this.scanned = runs;
    return runs;
  }

  private async located(run: Run): Promise<ScannedRun> {
    const scanned = (await this.runs()).get(run.id);
    if (!scanned) throw new InvalidInputError(this.uri, `no run ${quoted(run.id)} in this export`);
    return scanned;
  }

  /** Every run's parts: project folders under the data folder, parts grouped by their file stem. */
  private async findRuns(): Promise<RunFiles[]> {
    const found: RunFiles[] = [];
    for (const project of await listDirs(this.dataDir)) {
      const dir = join(this.dataDir, project);
      const sets = new Map<string, Array<{ n: number; file: string }>>();
      for (const name of await listFiles(dir)) {
        const match = PART_FILE.exec(name);
        if (!match) continue;
        const parts = sets.get(match[1]!) ?? [];
        parts.push({ n: Number(match[2]), file: join(dir, name) });
        sets.set(match[1]!, parts);
      }
      for (const [stem, parts] of [...sets].sort(([a], [b]) => (a < b ? -1 : 1))) {
        parts.sort((a, b) => a.n - b.n);
        if (parts[0]!.n !== 0) {
          this.warnings.push({ object: join(dir, stem), message: 'has no part_0: the exporter was stopped before this run was complete (export it again); left out' });
          continue;
        }
        found.push({ name: parts[0]!.file, parts: parts.map((p) => p.file), filesRoot: join(this.filesDir, project) });
      }
    }
    return found;
  }

  /** Attributes, series and files of one run; ids from the columns. */
  private async scan(files: RunFiles): Promise<ScannedRun> {
    let ids: { project: string; run: string } | undefined;
    const attributes = new Map<string, NeptuneAttribute>();
    const series = new Map<string, SeriesInfo>();
    const artifacts: StoredFile[] = [];
    const seriesFolders = new Map<string, string>();
    const typesOf = new Map<string, string>();
    let generation = 2 as 2 | 3;
    /** what every row (or row group of one series) says of its run: the same ids, one type per attribute */
    const note = (where: string, project: string, run: string, path: string, type: string): void => {
      ids ??= { project, run };
      if (ids.project !== project || ids.run !== run) throw new InvalidInputError(where, `holds run ${quoted(project)}/${quoted(run)}, but the run's parts are of ${quoted(ids.project)}/${quoted(ids.run)} (one run per file)`);
      const known = typesOf.get(path);
      if (known !== undefined && known !== type) throw new InvalidInputError(where, `attribute ${quoted(path)} is both ${known} and ${type}`);
      typesOf.set(path, type);
      if (isGeneration3Attribute(path, type)) generation = 3;
    };
    for (const file of files.parts) {
      await refuseLink(file, 'a neptune-exporter export');
      const part = await ParquetPart.open(file);
      try {
        for (let g = 0; g < part.rowGroups; g++) {
          // a row group of one series' points (most of a long history): its statistics say all there is to know
          const constant = SCAN_COLUMNS.map((c) => part.constantIn(g, c));
          if (constant.every((v) => v !== undefined) && constant[3]! in SERIES_TYPE && constant[3] !== 'file_series') {
            const [project, run, path, type] = constant as [string, string, string, string];
            note(`${file}: row group ${g}`, project, run, path, type);
            if (!series.has(path)) series.set(path, neptuneSeries(path, SERIES_TYPE[type]!));
            continue;
          }
          const { rows, columns } = await part.readRowGroup(g, SCAN_COLUMNS);
          const types = columns.attribute_type!;
          const needsValues = types.some((t) => typeof t === 'string' && (t in PARAM_COLUMN || FILE_TYPES.has(t) || t === 'file_series'));
          const values = needsValues ? (await part.readRowGroup(g, VALUE_COLUMNS)).columns : {};
          for (let i = 0; i < rows; i++) {
            const where = `${file}: row group ${g}, row ${i}`;
            const project = columns.project_id![i];
            const run = columns.run_id![i];
            const path = columns.attribute_path![i];
            const type = types[i];
            if (typeof project !== 'string' || typeof run !== 'string' || typeof path !== 'string' || typeof type !== 'string') {
              throw new InvalidInputError(where, 'project_id, run_id, attribute_path and attribute_type must all be strings');
            }
            note(where, project, run, path, type);
            if (type in PARAM_COLUMN) {
              const value = paramValue(type, values[PARAM_COLUMN[type]!]![i]);
              if (typeof value === 'string') throw new InvalidInputError(where, `attribute ${quoted(path)}: ${value}`);
              attributes.set(path, value);
            } else if (type in SERIES_TYPE) {
              if (!series.has(path)) series.set(path, neptuneSeries(path, SERIES_TYPE[type]!));
              if (type === 'file_series' && !seriesFolders.has(path)) {
                checkKey(path, where);
                seriesFolders.set(path, dirname(storedPath(values.file_value![i], where)));
              }
            } else if (FILE_TYPES.has(type)) {
              checkKey(path, where);
              const stored = storedPath(values.file_value![i], where);
              const artifactPath = type === 'file' ? `${path}${extname(basename(stored))}` : type === 'artifact' ? `${path}/${basename(stored)}` : path;
              artifacts.push({ type: type as StoredFile['type'], artifactPath, stored });
            } else if (!this.warnings.some((w) => w.object === file && w.message.includes(`"${type}"`))) {
              this.warnings.push({ object: file, message: `attribute type "${type}" is not one neptune-exporter documents; its rows are left out` });
            }
          }
        }
      } finally {
        await part.close();
      }
    }
    if (!ids) throw new InvalidInputError(files.name, 'holds no rows: no run to read');
    const parent = attributes.get('sys/forking/parent');
    const forkStep = attributes.get('sys/forking/step');
    const neptune: NeptuneRun = {
      id: ids.run,
      project: ids.project,
      generation,
      attributes,
      series: [...series.values()],
      ...(generation === 3 && parent?.type === 'string' && parent.value
        ? { fork: { runId: parent.value, ...(forkStep && (forkStep.type === 'float' || forkStep.type === 'int') ? { step: forkStep.value } : {}) } }
        : {}),
    };
    return { files, neptune, experiment: experimentNameOf(neptune), artifacts, seriesFolders };
  }
}

/** `file_value.path`: a plain relative path (no `..`, not absolute), or the run fails naming the file. */
function storedPath(raw: unknown, where: string): string {
  const path = filePath(raw);
  if (path === undefined) throw new InvalidInputError(where, 'file_value.path is missing');
  const problem = relativePathProblem(path);
  if (problem) throw new InvalidInputError(where, `file_value.path ${quoted(path)} ${problem}`);
  return path;
}

/** An attribute path that names artifacts or series files must be a plain relative path too. */
function checkKey(path: string, where: string): void {
  const problem = relativePathProblem(path);
  if (problem) throw new InvalidInputError(where, `attribute path ${quoted(path)} cannot name a file: it ${problem}`);
}

async function openFile(file: string): Promise<Readable> {
  await refuseLink(file, 'a neptune-exporter export');
  const info = await stat(file).catch((err: unknown) => {
    throw new InvalidInputError(file, `cannot read: ${errorMessage(err)}`);
  });
  if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
  return createReadStream(file);
}
