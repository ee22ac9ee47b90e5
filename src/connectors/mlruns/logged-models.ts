/**
 * MLflow 3 logged models of a file store, read (MlrunsLoggedModels) and written, as mlflow
 * 3.17's FileStore writes them
 * (create_logged_model, log_logged_model_params, set_logged_model_tags, finalize_logged_model,
 * log_outputs):
 *
 *   <root>/<exp>/models/<model_id>/meta.yaml   artifact_location, creation_timestamp, experiment_id,
 *                                              last_updated_timestamp, model_id, model_type, name,
 *                                              source_run_id, status (1 pending … 3 failed), status_message
 *                                              (+ lifecycle_stage: active while pending, as
 *                                              create_logged_model writes it; finalize drops it)
 *   <root>/<exp>/models/<model_id>/params/<key>, tags/<key>   the raw value, no newline added
 *   <root>/<exp>/models/<model_id>/metrics/    made empty, as create_logged_model does
 *   <root>/<exp>/models/<model_id>/artifacts/… the model's files (MLmodel, weights …)
 *   <root>/<exp>/<run_id>/outputs/<model_id>/meta.yaml   the run's output link: source_type RUN_OUTPUT,
 *                                              source_id and destination_id both the model id (what
 *                                              FileStore writes and reads back), destination_type
 *                                              MODEL_OUTPUT, step, tags {}
 *
 * A copy keeps the source's model id, as run folders keep run ids, unless a folder of that id
 * is already in the store and is not this copy (then it gets a new `m-<uuid>` id, as FileStore
 * makes them, and the engine rewrites the ids in its MLmodel). The provenance tags are written
 * first, `trackshift.complete` last: a model folder without it is partial and is removed.
 * Logged-model metrics (FileStore's `metrics/<key>` lines) are not written: the neutral model
 * carries none.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import type { ArtifactFile, LoggedModel } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { exists, isDir, isFile, listDirs, walkFiles } from '../../util/fs.js';
import { removeInside, safeJoin } from '../../util/paths.js';
import type { LoggedModelReader, LoggedModelWriter, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { LOGGED_MODEL_STATUS, META, loggedModelMetaSchema, readMeta } from './format.js';
import { readKeyValueFolder } from './files.js';

const MODELS = 'models';
const STATUS_NUMBER: Record<string, number> = Object.fromEntries(Object.entries(LOGGED_MODEL_STATUS).map(([n, s]) => [s, Number(n)]));
const PENDING = STATUS_NUMBER.LOGGED_MODEL_PENDING!;
const READY = STATUS_NUMBER.LOGGED_MODEL_READY!;
/** the tag mlflow.register_model keeps on a logged model: the versions registered from it */
export const MODEL_VERSIONS_TAG = 'mlflow.modelVersions';
/** a model id that can name a folder (FileStore's are `m-` and 32 hex digits) */
const PLAIN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface StoreLayout {
  /** the folder of an experiment of the store (under the root or `.trash`) */
  experimentDir(experimentId: string): Promise<string>;
  /** every experiment folder of the store */
  experimentFolders(): Promise<string[]>;
  /** the folder of a run of the store, if it is there */
  runFolder(runId: string): Promise<string | undefined>;
}

async function writeValues(dir: string, values: Record<string, string>, what: string): Promise<void> {
  for (const [key, value] of Object.entries(values)) {
    const file = safeJoin(dir, key, `${what} ${key}`);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, value);
  }
}

/** JSON as Python's json.dumps writes it (`, ` and `: ` between items), which is how MLflow's tags read */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

async function readYaml(file: string): Promise<Record<string, unknown>> {
  return (parse(await readFile(file, 'utf8')) as Record<string, unknown> | null) ?? {};
}

export class MlrunsLoggedModelWriter implements LoggedModelWriter {
  /** destination model id → its folder, for models this process has found or made */
  private readonly dirs = new Map<string, string>();

  constructor(private readonly store: StoreLayout) {}

  /** The folder of logged model `modelId`, in whichever experiment holds it (as FileStore finds it). */
  async modelFolder(modelId: string): Promise<string | undefined> {
    const known = this.dirs.get(modelId);
    if (known) return known;
    if (!PLAIN_ID.test(modelId)) return undefined;
    for (const dir of await this.store.experimentFolders()) {
      const folder = join(dir, MODELS, modelId);
      if (await exists(folder)) return folder;
    }
    return undefined;
  }

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    const base = join(await this.store.experimentDir(experimentId), MODELS);
    // the copy usually has the source's id; else its provenance tag tells
    const folders = await listDirs(base);
    const ordered = folders.includes(sourceModelId) ? [sourceModelId, ...folders.filter((f) => f !== sourceModelId)] : folders;
    for (const folder of ordered) {
      const dir = join(base, folder);
      const sourceId = await readFile(join(dir, 'tags', SOURCE_TAGS.id), 'utf8').catch(() => undefined);
      // a folder of the source's id with nothing in it: an attempt that stopped at once
      const empty = folder === sourceModelId && sourceId === undefined && !(await isFile(join(dir, META)));
      if (sourceId !== sourceModelId && !empty) continue;
      this.dirs.set(folder, dir);
      return { id: folder, complete: await isFile(join(dir, 'tags', SOURCE_TAGS.complete)) };
    }
    return undefined;
  }

  private meta(id: string, dir: string, experimentId: string, model: LoggedModel, sourceRunId: string | null, status: number, now: number) {
    return {
      artifact_location: pathToFileURL(join(dir, 'artifacts')).href,
      creation_timestamp: model.creationTime ?? now,
      experiment_id: experimentId,
      last_updated_timestamp: model.lastUpdatedTime ?? model.creationTime ?? now,
      model_id: id,
      model_type: model.modelType ?? null,
      name: model.name,
      source_run_id: sourceRunId,
      status,
      status_message: model.statusMessage ?? null,
    };
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const base = join(await this.store.experimentDir(experimentId), MODELS);
    const id = PLAIN_ID.test(model.id) && !(await this.modelFolder(model.id)) ? model.id : `m-${randomUUID().replace(/-/g, '')}`;
    const dir = join(base, id);
    const tags = { ...model.tags };
    delete tags[SOURCE_TAGS.complete];
    // provenance first: whatever else is there, the folder says whose copy it is
    await writeValues(join(dir, 'tags'), { [SOURCE_TAGS.id]: model.id }, `tag of logged model ${id}`);
    const now = Date.now();
    await writeFile(join(dir, META), stringify({ ...this.meta(id, dir, experimentId, model, sourceRunId ?? null, PENDING, now), lifecycle_stage: 'active' }, { sortMapEntries: true }));
    for (const sub of ['metrics', 'params', 'artifacts']) await mkdir(join(dir, sub), { recursive: true });
    await writeValues(join(dir, 'params'), model.params, `param of logged model ${id}`);
    await writeValues(join(dir, 'tags'), tags, `tag of logged model ${id}`);
    this.dirs.set(id, dir);
    return id;
  }

  private async known(modelId: string): Promise<string> {
    const dir = await this.modelFolder(modelId);
    if (!dir) throw new Error(`mlruns: logged model ${modelId} is not in this store (createLoggedModel first)`);
    return dir;
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(join(await this.known(modelId), 'artifacts'), file.path, `artifact of logged model ${modelId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishLoggedModel(modelId: string, model: LoggedModel, output?: { runId: string; step: number }): Promise<void> {
    const dir = await this.known(modelId);
    const held = await readYaml(join(dir, META));
    const status = STATUS_NUMBER[model.status] ?? READY;
    const experimentId = String(held.experiment_id);
    const sourceRunId = typeof held.source_run_id === 'string' ? held.source_run_id : null;
    // as finalize_logged_model writes it: the persisted fields, without lifecycle_stage
    const meta = this.meta(modelId, dir, experimentId, model, sourceRunId, status, Date.now());
    await writeFile(join(dir, META), stringify({ ...meta, creation_timestamp: held.creation_timestamp ?? meta.creation_timestamp }, { sortMapEntries: true }));
    if (output) {
      const runDir = await this.store.runFolder(output.runId);
      if (!runDir) throw new Error(`mlruns: run ${output.runId}, which logged model ${modelId} came from, is not in this store`);
      const outputDir = safeJoin(join(runDir, 'outputs'), modelId, `output of run ${output.runId}`);
      await mkdir(outputDir, { recursive: true });
      await writeFile(
        join(outputDir, META),
        stringify({ destination_id: modelId, destination_type: 'MODEL_OUTPUT', source_id: modelId, source_type: 'RUN_OUTPUT', step: output.step, tags: {} }),
      );
    }
    // complete only once everything else is there
    await writeFile(join(dir, 'tags', SOURCE_TAGS.complete), 'true');
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    const dir = await this.modelFolder(modelId);
    if (!dir) return;
    // the run's link to it goes too, so that the run names no model that is not there
    const meta = (await isFile(join(dir, META))) ? await readYaml(join(dir, META)) : {};
    if (typeof meta.source_run_id === 'string' && PLAIN_ID.test(meta.source_run_id)) {
      const runDir = await this.store.runFolder(meta.source_run_id);
      if (runDir) await removeInside(join(runDir, 'outputs'), safeJoin(join(runDir, 'outputs'), modelId));
    }
    await removeInside(join(dir, 'tags'), join(dir, 'tags', SOURCE_TAGS.complete));
    await removeInside(dirname(dir), dir);
    this.dirs.delete(modelId);
  }

  /**
   * Adds version `number` of `modelName` to the model's `mlflow.modelVersions` tag, as
   * mlflow.register_model does when it registers a logged model in a file store.
   */
  async addModelVersion(modelId: string, modelName: string, number: string): Promise<void> {
    const dir = await this.modelFolder(modelId);
    if (!dir) return;
    const file = join(dir, 'tags', MODEL_VERSIONS_TAG);
    let list: Array<{ name: string; version: number | string }> = [];
    try {
      const held = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (Array.isArray(held)) list = held as typeof list;
    } catch {
      // none yet (or not a list: replaced)
    }
    if (list.some((v) => v.name === modelName && String(v.version) === number)) return;
    list.push({ name: modelName, version: Number(number) });
    await writeValues(join(dir, 'tags'), { [MODEL_VERSIONS_TAG]: pythonJson(list) }, `tag of logged model ${modelId}`);
  }

  /** the file URI of a logged model's artifacts, where a version registered from it is downloaded from */
  async artifactLocation(modelId: string): Promise<string | undefined> {
    const dir = await this.modelFolder(modelId);
    if (!dir || !(await isFile(join(dir, META)))) return undefined;
    const meta = await readYaml(join(dir, META));
    return typeof meta.artifact_location === 'string' ? meta.artifact_location : pathToFileURL(join(dir, 'artifacts')).href;
  }

  /** the run a logged model of this store came from */
  async sourceRun(modelId: string): Promise<string | undefined> {
    const dir = await this.modelFolder(modelId);
    if (!dir || !(await isFile(join(dir, META)))) return undefined;
    const meta = await readYaml(join(dir, META));
    return typeof meta.source_run_id === 'string' ? meta.source_run_id : undefined;
  }
}

export class MlrunsLoggedModels implements LoggedModelReader {
  /** model id → its folder */
  private readonly dirs = new Map<string, string>();

  constructor(
    private readonly experimentDir: (experimentId: string) => Promise<string>,
    private readonly unreadable: UnreadableObject[] = [],
  ) {}

  async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    const base = join(await this.experimentDir(experimentId), MODELS);
    for (const folder of await listDirs(base)) {
      const file = join(base, folder, META);
      if (!(await isFile(file))) continue;
      const meta = await readOrRecord(this.unreadable, { type: 'logged-model', file }, async () => {
        const read = await readMeta(file, loggedModelMetaSchema);
        if (read.model_id !== folder) throw new InvalidInputError(file, `says model_id ${read.model_id}, but its folder is ${folder}`);
        return read;
      });
      if (!meta) continue;
      this.dirs.set(meta.model_id, join(base, folder));
      const status = typeof meta.status === 'number' ? LOGGED_MODEL_STATUS[meta.status] : meta.status;
      yield {
        id: meta.model_id,
        experimentId,
        name: meta.name,
        ...(meta.source_run_id ? { sourceRunId: meta.source_run_id } : {}),
        ...(meta.model_type ? { modelType: meta.model_type } : {}),
        status: status ?? 'LOGGED_MODEL_READY',
        ...(meta.status_message ? { statusMessage: meta.status_message } : {}),
        params: await readKeyValueFolder(join(base, folder, 'params')),
        tags: await readKeyValueFolder(join(base, folder, 'tags')),
        creationTime: meta.creation_timestamp,
        lastUpdatedTime: meta.last_updated_timestamp,
      };
    }
  }

  private async artifacts(model: LoggedModel): Promise<string> {
    if (!this.dirs.has(model.id)) for await (const _ of this.listLoggedModels(model.experimentId));
    const dir = this.dirs.get(model.id);
    if (!dir) throw new InvalidInputError(model.experimentId, `no logged model ${model.id}`);
    return join(dir, 'artifacts');
  }

  async *listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    const dir = await this.artifacts(model);
    if (await isDir(dir)) yield* walkFiles(dir, 'follow');
  }

  async readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    const file = safeJoin(await this.artifacts(model), path, `artifact of logged model ${model.id}`);
    const info = await stat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a file');
    return createReadStream(file);
  }
}
