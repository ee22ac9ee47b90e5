/**
 * MLflow 3 logged models in memory, read and written. A written one gets a new id and is
 * complete once finished (the provenance tag `trackshift.complete`, as in MLflow destinations);
 * finishing it lists it among its run's outputs.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { ArtifactFile, LoggedModel, Run } from '../../model/index.js';
import { SOURCE_TAGS } from '../../model/index.js';
import type { LoggedModelReader, LoggedModelWriter } from '../types.js';

export interface MemoryLoggedModel {
  model: LoggedModel;
  artifacts: Map<string, Buffer>;
}

export class MemoryLoggedModels implements LoggedModelReader, LoggedModelWriter {
  readonly models = new Map<string, MemoryLoggedModel>();

  constructor(
    private readonly newId: () => string,
    /** the stored run of a destination id, to record outputs on */
    private readonly runOf: (runId: string) => Run,
  ) {}

  private held(id: string): MemoryLoggedModel {
    const held = this.models.get(id);
    if (!held) throw new Error(`memory: no logged model ${id}`);
    return held;
  }

  /** Adds a logged model with its files (a source for tests). */
  add(model: LoggedModel, artifacts: Record<string, Buffer> = {}): void {
    this.models.set(model.id, { model: structuredClone(model), artifacts: new Map(Object.entries(artifacts)) });
  }

  // reading

  async *listLoggedModels(experimentId: string): AsyncIterable<LoggedModel> {
    for (const { model } of this.models.values()) if (model.experimentId === experimentId) yield structuredClone(model);
  }

  async *listLoggedModelArtifacts(model: LoggedModel): AsyncIterable<ArtifactFile> {
    for (const [path, bytes] of this.held(model.id).artifacts) yield { path, size: bytes.length };
  }

  async readLoggedModelArtifact(model: LoggedModel, path: string): Promise<Readable> {
    const bytes = this.held(model.id).artifacts.get(path);
    if (!bytes) throw new Error(`memory: no artifact ${path} in logged model ${model.id}`);
    return Readable.from([bytes]);
  }

  // writing

  async findLoggedModel(experimentId: string, sourceModelId: string): Promise<{ id: string; complete: boolean } | undefined> {
    for (const { model } of this.models.values()) {
      if (model.experimentId === experimentId && model.tags[SOURCE_TAGS.id] === sourceModelId) return { id: model.id, complete: model.tags[SOURCE_TAGS.complete] === 'true' };
    }
    return undefined;
  }

  async createLoggedModel(experimentId: string, model: LoggedModel, sourceRunId: string | undefined): Promise<string> {
    const id = this.newId();
    const tags = { ...model.tags };
    delete tags[SOURCE_TAGS.complete];
    const { sourceRunId: _sourceRun, ...rest } = structuredClone(model);
    this.add({ ...rest, id, experimentId, tags, status: 'LOGGED_MODEL_PENDING', ...(sourceRunId ? { sourceRunId } : {}) });
    return id;
  }

  async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    this.held(modelId).artifacts.set(file.path, await buffer(body));
  }

  async finishLoggedModel(modelId: string, model: LoggedModel, output?: { runId: string; step: number }): Promise<void> {
    const held = this.held(modelId).model;
    held.status = model.status;
    if (output) {
      const run = this.runOf(output.runId);
      run.modelOutputs = [...(run.modelOutputs ?? []).filter((o) => o.modelId !== modelId), { modelId, step: output.step }];
    }
    held.tags[SOURCE_TAGS.complete] = 'true';
  }

  async discardLoggedModel(modelId: string): Promise<void> {
    this.models.delete(modelId);
  }
}
