/**
 * A Neptune 2.x project read through its API (`neptune://WORKSPACE/PROJECT`), as the neptune 1.14
 * client reads it (docs/neptune-server-api.md §2.4): the runs with all their attributes from the
 * leaderboard search (100 a page), `--filter` passed through as NQL; float and string series
 * paged by offset; image series point by point; files and file sets downloaded (a set as the
 * zip the server prepares, kept in a temporary folder while the source is open). Each run is
 * then mapped as every Neptune format maps it (neptune-common): its experiment is the project.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { z } from 'zod';
import type { ArtifactFile, Experiment, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted, relativePathProblem } from '../../util/paths.js';
import { EXACT_EXT, EXACT_PATH, parseExact, withExactPoints, type ExactPoint } from '../neptune-common/exact.js';
import { fileArtifactPath, imageFile } from '../neptune-common/files.js';
import { experimentNameOf, experimentTagsOf, neptuneSeries, toModelRun, type NeptuneAttribute, type NeptuneRun } from '../neptune-common/run.js';
import type { RunQuery, Source } from '../types.js';
import type { NeptuneApi, ProjectInfo } from './api.js';

const SEARCH_PAGE = 100;
const SERIES_PAGE = 10_000;
/** how long a prepared file-set download is waited for */
const PREPARE_TIMEOUT_MS = 120_000;

const attributeDto = z.looseObject({ name: z.string(), type: z.string() }).catchall(z.unknown());
type AttributeDto = z.infer<typeof attributeDto>;
const searchPage = z.looseObject({ matchingItemCount: z.number().optional(), entries: z.array(z.looseObject({ experimentId: z.string(), attributes: z.array(attributeDto) })) });
const seriesValues = z.looseObject({ totalItemCount: z.number(), values: z.array(z.looseObject({ step: z.number().nullish(), timestampMillis: z.number().nullish(), value: z.unknown() })) });
const imageValues = z.looseObject({
  totalItemCount: z.number(),
  values: z.array(z.looseObject({ step: z.number().nullish(), timestampMillis: z.number().nullish(), value: z.looseObject({ name: z.string().nullish() }).nullish() })).nullish(),
});
const fileValue = z.looseObject({ name: z.string().nullish(), ext: z.string().nullish(), size: z.number().nullish() });
const lsEntries = z.array(z.looseObject({ name: z.string(), size: z.number().nullish(), fileType: z.string().nullish() }));
const prepared = z.looseObject({ id: z.string(), downloadUrl: z.string().nullish() });

interface ApiRun {
  run: Run;
  /** the run's uuid, which the attribute calls take */
  uuid: string;
  experiment: string;
  experimentTags: Record<string, string>;
  files: Map<string, { attribute: string; size?: number }>;
  fileSets: string[];
  /** points kept exactly in `trackshift/exact` by trackshift's writers, by series */
  exact: Map<string, ExactPoint[]>;
  /** the series the server holds (not those only `trackshift/exact` holds) */
  onServer: Set<string>;
  /** series files `trackshift/exact` names otherwise: that name → the name the server's point reads as */
  fileAliases: Map<string, string>;
}

/** An attribute of the API as a Neptune attribute of the model; undefined for series, files and what has no value. */
function attributeOf(a: AttributeDto): NeptuneAttribute | undefined {
  const props = (a[`${a.type}Properties`] ?? {}) as Record<string, unknown>;
  const value = props.value;
  switch (a.type) {
    case 'float':
    case 'int':
      return typeof value === 'number' ? { type: a.type, value } : undefined;
    case 'bool':
      return typeof value === 'boolean' ? { type: 'bool', value } : undefined;
    case 'string':
    case 'experimentState':
    case 'notebookRef':
      return typeof value === 'string' ? { type: 'string', value } : undefined;
    case 'datetime':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? { type: 'datetime', value: Date.parse(value) } : undefined;
    case 'stringSet':
      return Array.isArray(props.values) ? { type: 'stringSet', value: props.values.map(String) } : undefined;
    case 'artifact':
      return typeof props.hash === 'string' ? { type: 'string', value: props.hash } : undefined;
    case 'gitRef': {
      // source_code/git: the commit, kept as an attribute (the API cannot write git info back)
      const commit = (props.commit ?? {}) as Record<string, unknown>;
      return typeof commit.commitId === 'string' ? { type: 'string', value: commit.commitId } : undefined;
    }
    default:
      return undefined;
  }
}

export class NeptuneApiSource implements Source {
  readonly kind = 'neptune-api';
  readonly capabilities = { filter: true };
  readonly uri: string;
  private projectInfo?: Promise<ProjectInfo>;
  private all?: Promise<Map<string, ApiRun>>;
  private readonly zips = new Map<string, Promise<string>>();
  private scratch?: Promise<string>;

  constructor(
    private readonly api: NeptuneApi,
    private readonly projectName: string,
  ) {
    this.uri = `neptune://${projectName}`;
  }

  private project(): Promise<ProjectInfo> {
    this.projectInfo ??= this.api.project(this.projectName, 'or the token may not see it');
    return this.projectInfo;
  }

  /** The runs the leaderboard search finds for `nql`, with all their attributes, page by page. */
  private async *search(nql: string | undefined): AsyncGenerator<{ uuid: string; attributes: AttributeDto[] }> {
    const { id } = await this.project();
    for (let offset = 0; ; offset += SEARCH_PAGE) {
      const body = {
        sorting: { dir: 'ascending', aggregationMode: 'none', sortBy: { name: 'sys/creation_time', type: 'datetime' } },
        ...(nql ? { query: { query: nql } } : {}),
        pagination: { limit: SEARCH_PAGE, offset },
      };
      const page = await this.api.json('POST', 'api/leaderboard/v1/leaderboard/entries/search', searchPage, { query: { projectIdentifier: id, type: 'run' }, body });
      for (const entry of page.entries) yield { uuid: entry.experimentId, attributes: entry.attributes };
      if (page.entries.length === 0) return;
    }
  }

  private async toApiRun(uuid: string, dtos: AttributeDto[]): Promise<ApiRun> {
    const attributes = new Map<string, NeptuneAttribute>();
    const series: SeriesInfo[] = [];
    const files = new Map<string, { attribute: string; size?: number }>();
    const fileSets: string[] = [];
    for (const a of dtos) {
      if (a.type === 'floatSeries') series.push(neptuneSeries(a.name, 'float'));
      else if (a.type === 'stringSeries') series.push(neptuneSeries(a.name, 'string'));
      else if (a.type === 'imageSeries') series.push(neptuneSeries(a.name, 'file'));
      else if (a.type === 'file') {
        const f = fileValue.safeParse(a.fileProperties ?? {});
        const ext = f.success ? (f.data.ext ?? '') : '';
        files.set(fileArtifactPath(a.name, ext), { attribute: a.name, ...(f.success && typeof f.data.size === 'number' ? { size: f.data.size } : {}) });
      } else if (a.type === 'fileSet') fileSets.push(a.name);
      else {
        const value = attributeOf(a);
        if (value) attributes.set(a.name, value);
      }
    }
    const shortId = attributes.get('sys/id');
    if (shortId?.type !== 'string') throw new InvalidInputError(this.uri, `run ${uuid} has no sys/id`);
    const onServer = new Set(series.map((s) => s.key));
    const { points: exact, paths } = await this.applyExact(uuid, shortId.value, files, attributes, series);
    const neptuneRun: NeptuneRun = { id: shortId.value, project: this.projectName, generation: 2, attributes, series };
    const experiment = experimentNameOf(neptuneRun);
    const run = toModelRun(neptuneRun, experiment);
    // config paths whose segments hold "/", as given (Neptune nests them)
    for (const path of paths) {
      const entry = run.config?.find((e) => e.path.join('/') === path.join('/'));
      if (entry) entry.path = path;
    }
    return { run, uuid, experiment, experimentTags: experimentTagsOf(neptuneRun), files, fileSets, exact, onServer, fileAliases: new Map() };
  }

  /** What trackshift's writers kept in `trackshift/exact`: attributes set, points to put back; the file is no artifact. */
  private async applyExact(uuid: string, runId: string, files: ApiRun['files'], attributes: Map<string, NeptuneAttribute>, series: SeriesInfo[]): Promise<{ points: Map<string, ExactPoint[]>; paths: string[][] }> {
    const out = new Map<string, ExactPoint[]>();
    const paths: string[][] = [];
    const name = fileArtifactPath(EXACT_PATH, EXACT_EXT);
    if (!files.delete(name)) return { points: out, paths };
    const chunks: Buffer[] = [];
    for await (const c of await this.api.download('api/leaderboard/v1/attributes/download', { experimentId: uuid, attribute: EXACT_PATH })) chunks.push(c as Buffer);
    const parsed = parseExact(Buffer.concat(chunks).toString('utf8'), `${this.uri} run ${runId}: ${EXACT_PATH}`);
    for (const entry of parsed.attributes) {
      attributes.set(entry.path.join('/'), entry.value);
      if (entry.path.some((segment) => segment.includes('/'))) paths.push(entry.path);
    }
    for (const [key, { type, points }] of parsed.series) {
      out.set(key, points);
      if (!series.some((s) => s.key === key)) series.push(neptuneSeries(key, type));
    }
    return { points: out, paths };
  }

  private runs(): Promise<Map<string, ApiRun>> {
    this.all ??= (async () => {
      const out = new Map<string, ApiRun>();
      for await (const { uuid, attributes } of this.search(undefined)) {
        const read = await this.toApiRun(uuid, attributes);
        out.set(read.run.id, read);
      }
      return out;
    })();
    return this.all;
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    const seen = new Map<string, Experiment>();
    for (const r of (await this.runs()).values()) {
      if (!seen.has(r.experiment)) seen.set(r.experiment, { id: r.experiment, name: r.experiment, tags: r.experimentTags, lifecycle: 'active' });
    }
    if (seen.size === 0) {
      await this.project(); // an empty project is still there; a missing one is an error
      return;
    }
    yield* seen.values();
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    const all = await this.runs();
    let wanted: Set<string> | undefined;
    if (query.filter) {
      wanted = new Set();
      for await (const { uuid } of this.search(query.filter)) for (const r of all.values()) if (r.uuid === uuid) wanted.add(r.run.id);
    }
    for (const r of all.values()) {
      if (r.experiment !== experimentId || (wanted && !wanted.has(r.run.id))) continue;
      if (r.run.lifecycle === 'deleted' && !query.includeDeleted) continue;
      yield r.run;
    }
  }

  runUrl(_experimentId: string, runId: string): string | undefined {
    return this.api.runUrl(this.projectName, runId);
  }

  async getRun(runId: string): Promise<Run | undefined> {
    return (await this.runs()).get(runId)?.run;
  }

  private async located(run: Run): Promise<ApiRun> {
    const found = (await this.runs()).get(run.id);
    if (!found) throw new InvalidInputError(this.uri, `no run ${run.id}`);
    return found;
  }

  private async *seriesPages(run: Run, key: string, kind: 'float' | 'string') {
    const { uuid, onServer } = await this.located(run);
    // a series only trackshift/exact holds (all its points NaN) has none on the server
    if (!onServer.has(key)) return;
    for (let offset = 0; ; offset += SERIES_PAGE) {
      const page = await this.api.json('GET', `api/leaderboard/v1/attributes/series/${kind}`, seriesValues, { query: { experimentId: uuid, attribute: key, limit: SERIES_PAGE, offset } });
      if (page.values.length > 0) yield page.values;
      if (page.values.length === 0 || offset + page.values.length >= page.totalItemCount) return;
    }
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    const { exact } = await this.located(run);
    const pages = async function* (self: NeptuneApiSource) {
      for await (const page of self.seriesPages(run, key, 'float')) {
        yield page.map((p, i): MetricPoint => ({ key, step: p.step ?? i, ...(typeof p.timestampMillis === 'number' ? { timestamp: p.timestampMillis } : {}), value: typeof p.value === 'number' ? p.value : Number(p.value) }));
      }
    };
    yield* withExactPoints(exact.get(key), pages(this));
  }

  async *readSeries(run: Run, info: SeriesInfo): AsyncIterable<TypedPoint[]> {
    if (info.type === 'string') {
      const { exact } = await this.located(run);
      const pages = async function* (self: NeptuneApiSource) {
        for await (const page of self.seriesPages(run, info.key, 'string')) {
          yield page.map((p, i): TypedPoint => ({ step: p.step ?? i, ...(typeof p.timestampMillis === 'number' ? { timestamp: p.timestampMillis } : {}), value: String(p.value) }));
        }
      };
      yield* withExactPoints(exact.get(info.key), pages(this));
      return;
    }
    if (info.type !== 'file') return;
    const { uuid, exact, fileAliases, onServer } = await this.located(run);
    const points: TypedPoint[] = [];
    if (onServer.has(info.key)) {
      const listed = await this.api.json('GET', 'api/leaderboard/v1/attributes/series/image', imageValues, { query: { experimentId: uuid, attribute: info.key, limit: SERIES_PAGE, offset: 0 } });
      for (let index = 0; index < listed.totalItemCount; index++) {
        const bytes = await this.imageBytes(uuid, info.key, index);
        const value = listed.values?.[index];
        points.push({ step: value?.step ?? index, ...(typeof value?.timestampMillis === 'number' ? { timestamp: value.timestampMillis } : {}), value: imageFile(info.key, index, bytes, value?.value?.name ?? undefined) });
      }
    }
    const alias = (read: TypedPoint, kept: TypedPoint) => fileAliases.set((kept.value as SeriesFile).path, (read.value as SeriesFile).path);
    yield* withExactPoints(exact.get(info.key), (async function* () {
      if (points.length > 0) yield points;
    })(), alias);
  }

  private async imageBytes(uuid: string, key: string, index: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.api.download('api/leaderboard/v1/attributes/series/image/single', { experimentId: uuid, attribute: key, index })) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async readSeriesFile(run: Run, path: string): Promise<Readable> {
    const { uuid, fileAliases } = await this.located(run);
    const asRead = /^(.*)\/(\d+)(?:\.\w+)?$/;
    // a name trackshift/exact gave: learnt by reading the series once
    if (!fileAliases.has(path) && !asRead.test(path)) for (const series of run.series) if (series.type === 'file') for await (const _ of this.readSeries(run, series));
    const m = asRead.exec(fileAliases.get(path) ?? path);
    if (!m) throw new InvalidInputError(this.uri, `run ${run.id} has no series file ${quoted(path)}`);
    return Readable.from([await this.imageBytes(uuid, m[1]!, Number(m[2]))]);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const r = await this.located(run);
    for (const [path, file] of r.files) yield { path, ...(file.size !== undefined ? { size: file.size } : {}) };
    for (const set of r.fileSets) yield* this.listFileSet(r, set, '');
  }

  private async *listFileSet(r: ApiRun, set: string, under: string): AsyncGenerator<ArtifactFile> {
    const entries = await this.api.json('GET', 'api/leaderboard/v1/attributes/ls', lsEntries, { query: { experimentId: r.uuid, attribute: set, path: under } });
    for (const e of entries) {
      const name = under ? `${under}/${e.name}` : e.name;
      const problem = relativePathProblem(name);
      if (problem) throw new InvalidInputError(this.uri, `run ${r.run.id}: file set ${quoted(set)} holds ${quoted(name)}, which cannot name a file: ${problem}`);
      if (e.fileType === 'directory') yield* this.listFileSet(r, set, name);
      else yield { path: `${set}/${name}`, ...(typeof e.size === 'number' ? { size: e.size } : {}) };
    }
  }

  async readArtifact(run: Run, path: string): Promise<Readable> {
    const r = await this.located(run);
    const file = r.files.get(path);
    if (file) return this.api.download('api/leaderboard/v1/attributes/download', { experimentId: r.uuid, attribute: file.attribute });
    const set = r.fileSets.find((s) => path.startsWith(`${s}/`));
    if (!set) throw new InvalidInputError(this.uri, `run ${run.id} has no artifact ${quoted(path)}`);
    return entryOf(await this.fileSetZip(r, set), path.slice(set.length + 1));
  }

  /** The zip of a file set the server prepares, downloaded once into the scratch folder. */
  private fileSetZip(r: ApiRun, set: string): Promise<string> {
    const key = `${r.uuid}\n${set}`;
    let zip = this.zips.get(key);
    if (!zip) {
      const name = `${this.zips.size}.zip`;
      zip = (async () => {
        let request = await this.api.json('POST', 'api/leaderboard/v1/attributes/downloadFileSetZipRequest', prepared, { query: { experimentId: r.uuid, attribute: set } });
        const deadline = Date.now() + PREPARE_TIMEOUT_MS;
        for (let wait = 500; !request.downloadUrl; wait = Math.min(wait * 2, 5000)) {
          if (Date.now() > deadline) throw new InvalidInputError(this.uri, `run ${r.run.id}: the server did not prepare file set ${quoted(set)} within ${PREPARE_TIMEOUT_MS / 1000} s`);
          await new Promise((resolve) => setTimeout(resolve, wait));
          request = await this.api.json('GET', 'api/leaderboard/v1/download/downloadRequest', prepared, { query: { id: request.id } });
        }
        this.scratch ??= mkdtemp(join(tmpdir(), 'trackshift-neptune-'));
        const file = join(await this.scratch, name);
        await pipeline(await this.api.downloadUrl(request.downloadUrl), createWriteStream(file));
        return file;
      })();
      this.zips.set(key, zip);
    }
    return zip;
  }

  async close(): Promise<void> {
    await this.api.close();
    if (this.scratch) await rm(await this.scratch, { recursive: true, force: true });
  }
}

/** One member of a zip file, streamed. */
async function entryOf(zipFile: string, name: string): Promise<Readable> {
  const zip = await yauzl.openPromise(zipFile, { lazyEntries: true, autoClose: false });
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
        const done = (value: yauzl.Entry | undefined, err?: unknown) => {
          zip.removeAllListeners('entry').removeAllListeners('end').removeAllListeners('error');
          if (err) reject(err);
          else resolve(value);
        };
        zip.once('entry', (e: yauzl.Entry) => done(e));
        zip.once('end', () => done(undefined));
        zip.once('error', (err: unknown) => done(undefined, err));
        zip.readEntry();
      });
      if (!entry) throw new InvalidInputError(zipFile, `the file set's zip holds no ${quoted(name)}`);
      if (entry.fileName === name) {
        const stream = await zip.openReadStreamPromise(entry);
        stream.once('close', () => zip.close());
        return stream;
      }
    }
  } catch (err) {
    zip.close();
    throw err;
  }
}
