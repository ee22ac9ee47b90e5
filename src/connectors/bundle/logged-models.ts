/**
 * MLflow 3 logged models in a bundle (docs/bundle-format.md):
 *
 *   experiments/<exp>/logged-models/<id>/logged-model.partial.json   while it is written
 *   experiments/<exp>/logged-models/<id>/logged-model.json           written last: complete
 *   experiments/<exp>/logged-models/<id>/artifacts/…
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, LoggedModel } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { exists, isFile, listDirs, walkFiles, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, removeInside, safeJoin } from '../../util/paths.js';
import type { LoggedModelReader, LoggedModelWriter, UnreadableObject } from '../types.js';
import { readOrRecord } from '../unreadable.js';
import { ARTIFACTS_DIR, EXPERIMENTS_DIR, LOGGED_MODELS_DIR, LOGGED_MODEL_FILE, PARTIAL_LOGGED_MODEL_FILE, loggedModelSchema, readJsonFile, withoutUndefined } from './format.js';

export class BundleLoggedModels implements LoggedModelReader, LoggedModelWriter {
  /** logged model id → its experiment in the bundle */
  private readonly experimentOf = new Map<string, string>();

  constructor(
    private readonly root: string,
    private readonly unreadable: UnreadableObject[] = [],
  ) {}

  private dir(experimentId: string, modelId: string): string {
    return join(this.root, EXPERIMENTS_DIR, idToFolderName(experimentId), LOGGED_MODELS_DIR, idToFolderName(modelId));
  }

  private dirOf(model: { id: string; experimentId: string }): string {
    return this.dir(model.experimentId, model.id);
  }

  async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    const base = join(this.root, EXPERIMENTS_DIR, idToFolderName(experimentId), LOGGED_MODELS_DIR);
    for (const folder of await listDirs(base)) {
      const file = join(base, folder, LOGGED_MODEL_FILE);
      if (!(await isFile(file))) continue; // partial
      const model = await readOrRecord(this.unreadable, { type: 'logged-model', file }, async () => {
        const read = await readJsonFile(file, loggedModelSchema);
        if (idToFolderName(read.id) !== folder || read.experimentId !== experimentId) {
          throw new InvalidInputError(file, `holds logged model "${read.id}" of experiment "${read.experimentId}", which does not belong in this folder`);
        }
        return read;
      });
      if (model) yield model;
    }
  }

  listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    return walkFiles(join(this.dirOf(model), ARTIFACTS_DIR), 'refuse');
  }

  async readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    const file = safeJoin(join(this.dirOf(model), ARTIFACTS_DIR), path, `artifact of logged model ${model.id}`);
    const info = await lstat(file).catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot read artifact: ${errorMessage(err)}`);
    });
    if (!info.isFile()) throw new InvalidInputError(file, 'is not a regular file (symbolic links and folders are not artifacts)');
    return createReadStream(file);
  }

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    // a bundle keeps source ids: the copy of model m is folder m
    const dir = this.dir(experimentId, sourceModelId);
    if (!(await exists(dir))) return undefined;
    this.experimentOf.set(sourceModelId, experimentId);
    return { id: sourceModelId, complete: await isFile(join(dir, LOGGED_MODEL_FILE)) };
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const dir = this.dir(experimentId, model.id);
    await mkdir(join(dir, ARTIFACTS_DIR), { recursive: true });
    await writeJsonAtomic(join(dir, PARTIAL_LOGGED_MODEL_FILE), withoutUndefined({ ...model, experimentId, sourceRunId }));
    this.experimentOf.set(model.id, experimentId);
    return model.id;
  }

  private known(modelId: string): string {
    const experimentId = this.experimentOf.get(modelId);
    if (experimentId === undefined) throw new Error(`bundle: logged model ${modelId} is not being written (createLoggedModel first)`);
    return this.dir(experimentId, modelId);
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(join(this.known(modelId), ARTIFACTS_DIR), file.path, `artifact of logged model ${modelId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishLoggedModel(modelId: string, model: LoggedModel): Promise<void> {
    const dir = this.known(modelId);
    const partial = await readJsonFile(join(dir, PARTIAL_LOGGED_MODEL_FILE), loggedModelSchema);
    await writeJsonAtomic(join(dir, LOGGED_MODEL_FILE), withoutUndefined({ ...partial, status: model.status }));
    await rm(join(dir, PARTIAL_LOGGED_MODEL_FILE), { force: true });
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    const dir = this.known(modelId);
    await rm(join(dir, LOGGED_MODEL_FILE), { force: true });
    await removeInside(this.root, dir);
  }
}
