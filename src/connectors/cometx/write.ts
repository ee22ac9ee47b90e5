/**
 * Writing cometx download folders (`DIR/WS/PROJ/KEY/…`) that `cometx copy` reads (cometx/cli/
 * copy.py) and that the reader reads back as the same runs: the files and record shapes cometx's
 * download writes, metric values as the REST API gives them (strings, "NaN", "Infinity").
 *
 * The folder is the source run's id when it is a valid Comet key, else sha1 of it (as the SDK
 * derives keys). A run is staged in `DIR/.trackshift-staging/<key>/` and moved into place last (a
 * rename): an experiment folder exists only when complete, and a re-run skips it.
 *
 * What the folder layout has no file for (an artifact from elsewhere, a message type cometx does
 * not download) is written as an asset whose metadata keeps its path (layout.ts PATH_META), so
 * `cometx copy` uploads it too; what an archive's upload said beyond an asset record is kept in
 * the record (rest.ts UPLOAD_FIELD), which cometx ignores.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { ArtifactFile, DatasetInput, Experiment, Histogram, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../../model/index.js';
import { isDir, listDirs } from '../../util/fs.js';
import { joinSegment, keyToFileName, quoted, relativePathProblem, removeInside, safeJoin } from '../../util/paths.js';
import { keyFor } from '../comet-common/keys.js';
import { ASSETS_MANIFEST, FILE_META, PATH_META, STDERR_KEY, STDOUT_KEY, TEXT_KEY, UPLOAD, WORKSPACE_TAG, PROJECT_TAGS, projectSays } from '../comet-common/layout.js';
import { REST_SYSTEM_DETAILS, UPLOAD_FIELD, restTypeOf, systemDetailsRecord } from '../comet-common/rest.js';
import { RestRecords, metricRecord } from '../comet-common/rest-write.js';
import { COMET_HOLDS, artifactJson, fileUploadType, histogramUpload, inManifestOrder, otherMessagesType, payloadsSchema, seriesKeyMeta } from '../comet-common/writing.js';
import type { Destination, DestinationHolds, ExistingRun, RunBatch, WriteLimits } from '../types.js';
import { FILES, assetFile } from './format.js';

const STAGING = '.trackshift-staging';
/** files staged before their place is known (left-over ones are removed before the folder is moved into place) */
const BLOB_PREFIX = '.blob-';
/** the workspace folder when neither the target nor the source names one */
export const DEFAULT_WORKSPACE = 'default';
/** what cometx writes as `cometDownloadVersion`: here, who wrote the folder */
const WRITER = 'trackshift';

/** A workspace or project name as one folder name: itself when plain, else a portable hashed name. */
const folderName = (name: string): string => (name !== '' && !name.includes('/') && relativePathProblem(name) === undefined ? name : keyToFileName(name));

interface AssetRecord {
  fileName: string;
  type: string;
  step: number | null;
  epoch: number | null;
  runContext: string | null;
  createdAt: number | null;
  metadata: string | null;
  remote: boolean;
  link?: string | null;
  logAsFileName?: string;
  diskFileName?: string;
  [UPLOAD_FIELD]?: Record<string, unknown>;
}

interface Staged {
  key: string;
  dir: string;
  final: string;
  workspace: string;
  project: string;
  run: Run;
  records: RestRecords;
  metrics: WriteStream;
  metricCount: number;
  /** open only once the run has output */
  chunks?: WriteStream;
  output?: WriteStream;
  assets: AssetRecord[];
  /** disk names taken, per asset type folder */
  diskNames: Map<string, Set<string>>;
  /** SeriesFile.path → the staged file */
  seriesFiles: Map<string, string>;
  seriesPoints: Map<string, number>;
  /** artifacts waiting for the manifest (comet/assets.json) that says how each was uploaded */
  artifacts: Array<{ path: string; blob: string }>;
  manifest: Array<Record<string, unknown> & { path: string }>;
  /** what the comet/<type>.json artifacts said that has a file of its own */
  system?: { payload: Record<string, unknown>; osPackages?: string[] };
  systemRest?: Record<string, unknown>;
  fileName?: string;
  blobs: number;
  /** blobs moved into place, and where (a file given once may be the file of several points) */
  placed: Map<string, string>;
}

export interface CometxTarget {
  dir: string;
  workspace?: string;
  project?: string;
  dryRun?: boolean;
}

const manifestSchema = z.array(z.looseObject({ path: z.string(), upload_type: z.string(), local_timestamp: z.number(), additional_params: z.record(z.string(), z.unknown()).nullable() }));

export class CometxDestination implements Destination {
  readonly kind = 'cometx';
  readonly uri: string;
  readonly limits: WriteLimits = { metrics: 5000, params: 1000, tags: 1000, entries: 5000, bytes: 16_000_000 };
  /** a folder's records may have no time (timestamp, createdAt null), and its extras keep the source's state */
  readonly holds: DestinationHolds = { ...COMET_HOLDS, pointsWithoutTimestamp: true, sourceStates: true };
  private readonly dir: string;
  /** by experiment id (`WS/PROJ`): its folders and the tags of the experiment written into it */
  private readonly projects = new Map<string, { workspace: string; project: string; tags: Record<string, string>; says: Record<string, string> }>();
  private readonly staged = new Map<string, Staged>();

  constructor(private readonly target: CometxTarget) {
    this.dir = resolve(target.dir);
    const query = [target.workspace ? `workspace=${target.workspace}` : '', target.project ? `project=${target.project}` : ''].filter(Boolean).join('&');
    this.uri = `cometx:${this.dir}${query ? `?${query}` : ''}`;
  }

  private stagingDir(key: string): string {
    return joinSegment(join(this.dir, STAGING), key);
  }

  private projectDir(workspace: string, project: string): string {
    return joinSegment(joinSegment(this.dir, folderName(workspace)), folderName(project));
  }

  private folders(experimentId: string) {
    const project = this.projects.get(experimentId);
    if (!project) throw new Error(`cometx: experiment ${quoted(experimentId)} was not prepared in ${this.dir}`);
    return project;
  }

  async findExperiment(name: string) {
    return (await isDir(this.dir)) ? { id: this.target.project ?? name, lifecycle: 'active' as const } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const project = this.target.project ?? name;
    const workspace = this.target.workspace ?? exp.tags[WORKSPACE_TAG] ?? DEFAULT_WORKSPACE;
    const description = exp.tags[PROJECT_TAGS.description] ?? '';
    const notes = exp.tags[PROJECT_TAGS.notes];
    const isPublic = exp.tags[PROJECT_TAGS.public] === 'true';
    // the tags the reader finds from the folders alone (workspace, project files)
    const says = projectSays(workspace, exp.tags);
    const id = `${workspace}/${project}`;
    this.projects.set(id, { workspace, project, tags: { ...exp.tags }, says });
    if (!this.target.dryRun) {
      const dir = this.projectDir(workspace, project);
      await mkdir(dir, { recursive: true });
      // cometx copy reads projectDescription and public to create the project
      const metadata = { projectId: null, projectName: project, ownerUserName: null, projectDescription: description, workspaceName: workspace, numberOfExperiments: null, lastUpdated: null, public: isPublic, cometDownloadVersion: WRITER };
      await writeFile(join(dir, FILES.projectMetadata), JSON.stringify(metadata));
      if (notes) await writeFile(join(dir, FILES.projectNotes), notes);
    }
    return id;
  }

  async finishExperiment(): Promise<void> {}

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const key = keyFor(sourceRunId);
    const known = this.projects.get(experimentId);
    // before ensureExperiment (a dry run), the project is looked for in every workspace
    const workspaces = known ? [known.workspace] : this.target.workspace ? [this.target.workspace] : (await listDirs(this.dir)).filter((n) => !n.startsWith('.'));
    for (const workspace of workspaces) {
      if (await isDir(joinSegment(this.projectDir(workspace, known?.project ?? experimentId), key))) return { id: key, complete: true, lifecycle: 'active' };
    }
    if (await isDir(this.stagingDir(key))) return { id: key, complete: false };
    return undefined;
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const key = keyFor(run.id);
    const { workspace, project } = this.folders(experimentId);
    const dir = this.stagingDir(key);
    await removeInside(this.dir, dir);
    await mkdir(dir, { recursive: true });
    const metrics = createWriteStream(join(dir, FILES.metrics), { flags: 'wx' });
    await once(metrics, 'open');
    const staged: Staged = {
      key,
      dir,
      final: joinSegment(this.projectDir(workspace, project), key),
      workspace,
      project,
      run,
      records: new RestRecords(run),
      metrics,
      metricCount: 0,
      assets: [],
      diskNames: new Map(),
      seriesFiles: new Map(),
      seriesPoints: new Map(),
      artifacts: [],
      manifest: [],
      blobs: 0,
      placed: new Map(),
    };
    this.staged.set(key, staged);
    return key;
  }

  private open(runId: string): Staged {
    const staged = this.staged.get(runId);
    if (!staged) throw new Error(`cometx: no run ${quoted(runId)} being written in ${this.dir}`);
    return staged;
  }

  private static async line(stream: WriteStream, value: unknown): Promise<void> {
    if (!stream.write(JSON.stringify(value) + '\n')) await once(stream, 'drain');
  }

  /** A new file in the staging folder, not yet placed. */
  private async blob(staged: Staged, body: Readable | Buffer | string): Promise<string> {
    const name = `${BLOB_PREFIX}${String(staged.blobs++).padStart(8, '0')}`;
    const file = join(staged.dir, name);
    if (typeof body === 'string' || Buffer.isBuffer(body)) await writeFile(file, body, { flag: 'wx' });
    else await pipeline(body, createWriteStream(file, { flags: 'wx' }));
    return name;
  }

  /** Moves a staged blob to `relPath` in the experiment folder. */
  private async place(staged: Staged, blob: string, relPath: string): Promise<void> {
    const to = safeJoin(staged.dir, relPath);
    await mkdir(dirname(to), { recursive: true });
    const before = staged.placed.get(blob);
    if (before !== undefined) return copyFile(safeJoin(staged.dir, before), to);
    await rename(join(staged.dir, blob), to);
    staged.placed.set(blob, relPath);
  }

  /** An asset of `type` named `fileName`: a disk name of its own in the type's folder (cometx's `<base>_<n>.<ext>` for repeats), and its record. */
  private async addAsset(staged: Staged, blob: string | undefined, record: Omit<AssetRecord, 'diskFileName'>): Promise<void> {
    // the type names a folder: one that is no plain folder name is made one (the record says the same)
    const asset: AssetRecord = { ...record, type: folderName(record.type) };
    if (blob !== undefined) {
      const taken = staged.diskNames.get(asset.type) ?? staged.diskNames.set(asset.type, new Set()).get(asset.type)!;
      let disk = asset.fileName;
      for (let n = 1; taken.has(disk) || relativePathProblem(assetFile(asset.type, disk)) !== undefined; n++) {
        const safe = relativePathProblem(assetFile(asset.type, asset.fileName)) === undefined ? asset.fileName : keyToFileName(asset.fileName);
        const dot = safe.lastIndexOf('.');
        disk = dot > 0 ? `${safe.slice(0, dot)}_${n}${safe.slice(dot)}` : `${safe}_${n}`;
      }
      taken.add(disk);
      if (disk !== asset.fileName) asset.diskFileName = disk;
      await this.place(staged, blob, assetFile(asset.type, disk));
    }
    staged.assets.push(asset);
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const staged = this.open(runId);
    for (const { key, value } of batch.params) staged.records.addParam(key, value);
    staged.records.addTags(Object.fromEntries(batch.tags.map((t) => [t.key, t.value])));
    for (const point of batch.metrics) await this.metric(staged, point);
  }

  private async metric(staged: Staged, point: MetricPoint): Promise<void> {
    staged.metricCount++;
    await CometxDestination.line(staged.metrics, metricRecord(point));
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const staged = this.open(runId);
    for (const point of points) {
      const at = point.timestamp !== undefined ? Math.round(point.timestamp) : null;
      if (series.type === 'string' && (series.key === STDOUT_KEY || series.key === STDERR_KEY)) {
        await this.output(staged, point.value as string, series.key === STDERR_KEY, at, point.context);
        continue;
      }
      const index = staged.seriesPoints.get(series.key) ?? 0;
      staged.seriesPoints.set(series.key, index + 1);
      const upload = this.assetOf(series, point, index);
      const blob = series.type === 'file' ? staged.seriesFiles.get((point.value as SeriesFile).path) : await this.blob(staged, upload.body!);
      if (blob === undefined) throw new Error(`cometx: the file of ${quoted(series.key)} at step ${point.step} was not given before its point`);
      const metadata = Object.keys(upload.metadata).length > 0 ? JSON.stringify(upload.metadata) : null;
      await this.addAsset(staged, blob, { fileName: upload.fileName, type: restTypeOf(upload.type), step: point.step, epoch: point.epoch ?? null, runContext: point.context ?? null, createdAt: at, metadata, remote: false });
    }
  }

  private async output(staged: Staged, text: string, stderr: boolean, at: number | null, context: string | undefined): Promise<void> {
    if (!staged.chunks) {
      await mkdir(join(staged.dir, 'run'), { recursive: true });
      staged.chunks = createWriteStream(join(staged.dir, ...FILES.outputChunks.split('/')), { flags: 'wx' });
      staged.output = createWriteStream(join(staged.dir, ...FILES.output.split('/')), { flags: 'wx' });
    }
    await CometxDestination.line(staged.chunks, { output: text, stderr, timestamp: at, context: context ?? null });
    // output.txt: what `experiment/output` gives and cometx copy logs line by line
    if (!staged.output!.write(text)) await once(staged.output!, 'drain');
  }

  /** How a point of a string, histogram or file series is an asset (as the offline writer uploads it), and the file it makes. */
  private assetOf(series: SeriesInfo, point: TypedPoint, index: number): { type: string; fileName: string; metadata: Record<string, unknown>; body?: string } {
    // unlike an upload (writing.ts seriesUpload), a text sample is a file of its own name, and a file keeps its size
    if (series.type === 'string') return { type: UPLOAD.text, fileName: `text-sample-${index}.txt`, metadata: seriesKeyMeta(series.key, series.key === TEXT_KEY), body: point.value as string };
    if (series.type === 'histogram') return histogramUpload(series.key, point.value as Histogram);
    const file = point.value as SeriesFile;
    const type = fileUploadType(series.key);
    const fileName = file.name ?? file.path.split('/').pop()!;
    // the reader names a file by series, index and name: a file named otherwise keeps its own
    const derived = file.name !== undefined && file.mimeType === undefined && file.size !== undefined && file.path === `${series.key}/${index}/${file.name}`;
    const kept = derived ? {} : { [FILE_META]: { path: file.path, ...(file.name !== undefined ? { name: file.name } : {}), ...(file.mimeType !== undefined ? { mimeType: file.mimeType } : {}), ...(file.size !== undefined ? { size: file.size } : {}) } };
    return { type, fileName, metadata: { ...seriesKeyMeta(series.key, series.key === `${type}/${fileName}`), ...kept } };
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    const staged = this.open(runId);
    staged.seriesFiles.set(file.path, await this.blob(staged, body));
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const staged = this.open(runId);
    (staged.records.extras.inputs ??= []).push(...structuredClone(inputs));
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const staged = this.open(runId);
    if (file.path === ASSETS_MANIFEST) {
      // kept as written: a parse would reorder its fields, and it is written back as it came
      staged.manifest.push(...(artifactJson(file.path, await buffer(body), manifestSchema).json as Staged['manifest']));
      return;
    }
    if (file.path === REST_SYSTEM_DETAILS) {
      staged.systemRest = artifactJson(file.path, await buffer(body), z.record(z.string(), z.unknown())).json as Record<string, unknown>;
      return;
    }
    const type = otherMessagesType(file.path);
    if (type) {
      const bytes = await buffer(body);
      if (await this.otherMessages(staged, type, bytes)) return;
      staged.artifacts.push({ path: file.path, blob: await this.blob(staged, bytes) });
      return;
    }
    staged.artifacts.push({ path: file.path, blob: await this.blob(staged, body) });
  }

  /** The payloads of a `comet/<type>.json` artifact written to the file cometx has for them; false when there is none. */
  private async otherMessages(staged: Staged, type: string, bytes: Buffer): Promise<boolean> {
    let list: Array<Record<string, unknown>>;
    try {
      list = payloadsSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch {
      return false;
    }
    const only = list.length === 1 ? list[0]! : undefined;
    const single = (field: string): unknown => (only && Object.keys(only).length === 1 && field in only ? only[field] : undefined);
    const text = async (relPath: string, value: unknown): Promise<boolean> => {
      if (typeof value !== 'string' || value === '') return false;
      await this.place(staged, await this.blob(staged, value), relPath);
      return true;
    };
    switch (type) {
      case 'html':
        return text(FILES.html, single('html'));
      case 'graph':
        return text(FILES.graph, single('graph'));
      case 'git_metadata': {
        const git = single('git_metadata');
        return git !== null && typeof git === 'object' && !Array.isArray(git) ? text(FILES.gitMetadata, JSON.stringify(git)) : false;
      }
      case 'installed_packages': {
        const packages = single('installed_packages');
        // requirements.txt is the packages joined by newlines: only when that reads back the same
        if (!Array.isArray(packages) || packages.length === 0 || !packages.every((p) => typeof p === 'string' && !p.includes('\n')) || packages.at(-1) === '') return false;
        return text(FILES.requirements, packages.join('\n'));
      }
      case 'os_packages': {
        const packages = single('os_packages');
        if (!Array.isArray(packages) || packages.length === 0 || !packages.every((p) => typeof p === 'string')) return false;
        (staged.system ??= { payload: {} }).osPackages = packages as string[];
        return true;
      }
      case 'system_details':
        if (!only || Object.keys(only).length === 0) return false;
        (staged.system ??= { payload: {} }).payload = only;
        return true;
      case 'file_name': {
        const name = single('file_name');
        if (typeof name !== 'string') return false;
        staged.fileName = name;
        return true;
      }
      case 'remote_file':
        // remote assets are asset records with a link (cometx copy logs them with log_remote_asset)
        for (const payload of list) {
          const extra = (payload.additional_params ?? {}) as Record<string, unknown>;
          const uri = typeof payload.remote_uri === 'string' ? payload.remote_uri : null;
          const fileName = typeof extra.fileName === 'string' ? extra.fileName : uri ? basename(uri) : 'remote';
          const metadata = payload.metadata && typeof payload.metadata === 'object' ? JSON.stringify(payload.metadata) : null;
          await this.addAsset(staged, undefined, { fileName, type: restTypeOf(typeof payload.upload_type === 'string' ? payload.upload_type : UPLOAD.asset), step: numberOrNull(extra.step), epoch: numberOrNull(extra.epoch), runContext: typeof extra.context === 'string' ? extra.context : null, createdAt: null, metadata, remote: true, link: uri, [UPLOAD_FIELD]: payload });
        }
        return true;
      default:
        return false;
    }
  }

  async finishRun(runId: string, run: Run): Promise<void> {
    const staged = this.open(runId);
    // assets in the order they were uploaded (the manifest's), the other artifacts after them
    inManifestOrder(staged.artifacts, staged.manifest);
    for (const { path, blob } of staged.artifacts) {
      const kept = staged.manifest.find((m) => m.path === path);
      if (kept) {
        const { path: _path, ...upload } = kept;
        const extra = (upload.additional_params ?? {}) as Record<string, unknown>;
        const uploadType = String(upload.upload_type);
        const name = path.split('/').pop()!;
        const metadata = upload.metadata && typeof upload.metadata === 'object' ? JSON.stringify(upload.metadata) : null;
        await this.addAsset(staged, blob, { fileName: name, type: restTypeOf(uploadType), step: numberOrNull(extra.step), epoch: numberOrNull(extra.epoch), runContext: typeof extra.context === 'string' ? extra.context : null, createdAt: numberOrNull(upload.local_timestamp), metadata, remote: false, [UPLOAD_FIELD]: upload });
        continue;
      }
      if (path.startsWith('run/') && !Object.values(FILES).includes(path as never) && relativePathProblem(path) === undefined) {
        // run/git_diff.patch, run/script.py, run/code/…: where cometx keeps them
        await this.place(staged, blob, path);
        continue;
      }
      const name = path.split('/').pop()!;
      await this.addAsset(staged, blob, { fileName: name, type: UPLOAD.asset, step: null, epoch: null, runContext: null, createdAt: run.startTime !== undefined ? Math.round(run.startTime) : null, metadata: JSON.stringify({ [PATH_META]: path }), remote: false });
    }
    const project = this.folders(`${staged.workspace}/${staged.project}`);
    const { tags, others } = staged.records.finish(run, project.tags, project.says);
    const metadata = {
      experimentKey: staged.key,
      experimentName: run.name ?? null,
      projectName: staged.project,
      workspaceName: staged.workspace,
      startTimeMillis: run.startTime !== undefined ? Math.round(run.startTime) : null,
      endTimeMillis: run.endTime !== undefined ? Math.round(run.endTime) : null,
      durationMillis: run.startTime !== undefined && run.endTime !== undefined ? Math.round(run.endTime - run.startTime) : null,
      running: run.status === 'RUNNING',
      archived: run.lifecycle === 'deleted',
      fileName: staged.fileName !== undefined ? basename(staged.fileName) : null,
      filePath: staged.fileName ?? null,
      tags,
      cometDownloadVersion: WRITER,
    };
    const dir = staged.dir;
    await writeFile(join(dir, FILES.metadata), JSON.stringify(metadata), { flag: 'wx' });
    await writeFile(join(dir, FILES.parameters), JSON.stringify(staged.records.parameters), { flag: 'wx' });
    await writeFile(join(dir, FILES.others), others.map((o) => JSON.stringify(o) + '\n').join(''), { flag: 'wx' });
    if (staged.system || staged.systemRest) {
      const record = systemDetailsRecord(staged.system?.payload ?? {}, staged.systemRest);
      if (staged.system?.osPackages) record.osPackages = staged.system.osPackages;
      await writeFile(join(dir, FILES.systemDetails), JSON.stringify(record), { flag: 'wx' });
    }
    if (staged.assets.length > 0) {
      await mkdir(join(dir, 'assets'), { recursive: true });
      await writeFile(join(dir, ...FILES.assetsMetadata.split('/')), staged.assets.map((a) => JSON.stringify(a) + '\n').join(''), { flag: 'wx' });
    }
    await closeStream(staged.metrics);
    if (staged.metricCount === 0) await removeInside(dir, join(dir, FILES.metrics));
    if (staged.chunks) await closeStream(staged.chunks);
    for (let i = 0; i < staged.blobs; i++) {
      const blob = `${BLOB_PREFIX}${String(i).padStart(8, '0')}`;
      if (!staged.placed.has(blob)) await rm(join(dir, blob), { force: true });
    }
    if (staged.output) await closeStream(staged.output);
    await mkdir(dirname(staged.final), { recursive: true });
    await rename(dir, staged.final);
    this.staged.delete(runId);
  }

  async discardRun(runId: string): Promise<void> {
    const staged = this.staged.get(runId);
    if (staged) {
      for (const stream of [staged.metrics, staged.chunks, staged.output]) stream?.destroy();
      this.staged.delete(runId);
    }
    await removeInside(this.dir, this.stagingDir(runId));
  }

  async close(): Promise<void> {
    for (const key of [...this.staged.keys()]) await this.discardRun(key);
  }
}

const numberOrNull = (value: unknown): number | null => (typeof value === 'number' ? value : null);

async function closeStream(stream: WriteStream): Promise<void> {
  stream.end();
  await once(stream, 'close');
}
