/**
 * The MLflow 3 logged models of an mlflow-export-import directory (see ./write.ts for the layout).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactFile, LoggedModel } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import { exists, isFile, listDirs, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, removeInside, safeJoin } from '../../util/paths.js';
import type { LoggedModelWriter } from '../types.js';
import { LOGGED_MODELS, system } from './export-files.js';
import { parsePythonJson } from './format.js';

const LOGGED_MODEL_FILE = 'logged_model.json';
/** a logged model being written: what logged_model.json will say (it is written last) */
const PARTIAL_LOGGED_MODEL = '.trackshift-partial.json';
/** the neutral statuses (proto names) as mlflow.entities.LoggedModelStatus values, which their files hold */
const LOGGED_MODEL_STATUS: Record<string, string> = {
  LOGGED_MODEL_STATUS_UNSPECIFIED: 'UNSPECIFIED',
  LOGGED_MODEL_PENDING: 'PENDING',
  LOGGED_MODEL_READY: 'READY',
  LOGGED_MODEL_UPLOAD_FAILED: 'FAILED',
};

/**
 * MLflow 3 logged models as mlflow-export-import writes them (./format.ts):
 * `experiments/<exp>/logged_models/<model_id>/logged_model.json`, written last (a folder without
 * it is partial), with the files in `artifacts/` beside it. The source's model ids are kept, as
 * run ids are; the experiment's experiment.json and logged_models.json list the complete ones.
 */
export class EximLoggedModelWriter implements LoggedModelWriter {
  /** model id → its experiment in this export */
  private readonly experimentOf = new Map<string, string>();

  constructor(
    private readonly experimentsDir: string,
    private readonly experimentDir: (experimentId: string) => string,
    private readonly listed: (experimentId: string, modelId: string) => Promise<void>,
    private readonly rewritten: (modelId: string) => Promise<void>,
  ) {}

  private dir(experimentId: string, modelId: string): string {
    return join(this.experimentDir(experimentId), LOGGED_MODELS, idToFolderName(modelId));
  }

  private known(modelId: string): string {
    const experimentId = this.experimentOf.get(modelId);
    if (experimentId === undefined) throw new Error(`exim: logged model ${modelId} is not being written (createLoggedModel first)`);
    return this.dir(experimentId, modelId);
  }

  /** the folder and name of a complete logged model, in whichever experiment holds it */
  async folder(modelId: string): Promise<{ dir: string; name: string } | undefined> {
    for (const experiment of await listDirs(this.experimentsDir)) {
      const dir = join(this.experimentsDir, experiment, LOGGED_MODELS, idToFolderName(modelId));
      const file = join(dir, LOGGED_MODEL_FILE);
      if (!(await isFile(file))) continue;
      const held = (parsePythonJson(await readFile(file, 'utf8')) as { mlflow: { model_id: string; name?: string } }).mlflow;
      if (held.model_id === modelId) return { dir, name: held.name ?? '' };
    }
    return undefined;
  }

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    const dir = this.dir(experimentId, sourceModelId);
    if (!(await exists(dir))) return undefined;
    this.experimentOf.set(sourceModelId, experimentId);
    return { id: sourceModelId, complete: await isFile(join(dir, LOGGED_MODEL_FILE)) };
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const dir = this.dir(experimentId, model.id);
    await removeInside(this.experimentsDir, dir);
    await mkdir(join(dir, 'artifacts'), { recursive: true });
    const tags = { ...model.tags };
    delete tags[SOURCE_TAGS.complete];
    // the LoggedModel entity's fields, as their export_logged_model writes them
    const record = {
      experiment_id: experimentId,
      model_id: model.id,
      name: model.name,
      artifact_location: `mlflow-artifacts:/${experimentId}/models/${model.id}/artifacts`,
      creation_time: model.creationTime ?? null,
      last_updated_timestamp: model.lastUpdatedTime ?? null,
      model_type: model.modelType ?? null,
      source_run_id: sourceRunId ?? null,
      status: LOGGED_MODEL_STATUS.LOGGED_MODEL_PENDING,
      status_message: model.statusMessage ?? null,
      tags,
      params: model.params,
      // a logged model's own metrics are not carried (the neutral model has none)
      metrics: [],
      model_uri: `models:/${model.id}`,
    };
    await writeJsonAtomic(join(dir, PARTIAL_LOGGED_MODEL), record);
    this.experimentOf.set(model.id, experimentId);
    return model.id;
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const target = safeJoin(join(this.known(modelId), 'artifacts'), file.path, `artifact of logged model ${modelId}`);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(body, createWriteStream(target));
  }

  async finishLoggedModel(modelId: string, model: LoggedModel): Promise<void> {
    const dir = this.known(modelId);
    const record = JSON.parse(await readFile(join(dir, PARTIAL_LOGGED_MODEL), 'utf8')) as Record<string, unknown>;
    await writeJsonAtomic(join(dir, LOGGED_MODEL_FILE), {
      system: system('export_logged_model.py'),
      mlflow: { ...record, status: LOGGED_MODEL_STATUS[model.status] ?? LOGGED_MODEL_STATUS.LOGGED_MODEL_READY },
    });
    await rm(join(dir, PARTIAL_LOGGED_MODEL), { force: true });
    await this.listed(this.experimentOf.get(modelId)!, modelId);
    await this.rewritten(modelId);
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    await removeInside(this.experimentsDir, this.known(modelId));
  }
}
