/**
 * Writing to an MLflow tracking server. Runs are created with their start time, user and
 * name; the rest arrives in log-batch calls; the run is marked complete last. Artifacts go
 * through the server's artifact proxy.
 */
import { Readable } from 'node:stream';
import type { ArtifactFile, DatasetInput, Experiment, Run } from '../../model/index.js';
import { MLFLOW_TAGS, SOURCE_TAGS } from '../../model/index.js';
import type { Destination, ExistingRun, RunBatch, RunWriteResult, WriteLimits } from '../types.js';
import { HttpError } from '../../util/http.js';
import { UsageError } from '../../util/errors.js';
import { isNotFound } from './client.js';
import { MLFLOW_HOLDS } from './holds.js';
import { MLMODEL_IDS } from './mlmodel.js';
import { withParentTag } from './parent-tag.js';
import { INFINITE_KEYS_TAG } from './infinity.js';
import { proxyPath } from './proxy.js';
import { DISCARDED_TAG, MlflowSource } from './read.js';
import * as schema from './schemas.js';

/** runs/log-batch limits of the MLflow server (1000 metrics, 100 params, 100 tags, about 1 MB). */
const LIMITS: WriteLimits = { metrics: 1000, params: 100, tags: 100, entries: 1000, bytes: 900_000 };

/** Value lengths MLflow 3 accepts; longer values are cut, and the whole value kept as an artifact. */
const MAX_PARAM_VALUE = 6000;
const MAX_TAG_VALUE = 8000;
const LONG_VALUES_FOLDER = '.trackshift/long-values';

/** Tags that go with runs/create; the rest follow in batches (there may be hundreds, or long ones). */
const CREATE_TAGS = new Set<string>([MLFLOW_TAGS.runName, MLFLOW_TAGS.user, MLFLOW_TAGS.parentRunId, SOURCE_TAGS.id, SOURCE_TAGS.uri]);

const sourceIdFilter = (sourceRunId: string) => `tags.\`${SOURCE_TAGS.id}\` = '${sourceRunId.replace(/'/g, "\\'")}'`;

interface RunState {
  /** path of the run's artifact root under the artifact proxy */
  artifactRoot?: string;
  /** created by this writer, so known to be active: finishing it needs no look first */
  created?: boolean;
  infiniteKeys: Set<string>;
  warnings: string[];
}

export class MlflowStore extends MlflowSource implements Destination {
  readonly limits = LIMITS;
  readonly holds = MLFLOW_HOLDS;
  readonly idsInFiles = MLMODEL_IDS;
  private readonly runs = new Map<string, RunState>();

  private state(runId: string): RunState {
    let state = this.runs.get(runId);
    if (!state) {
      state = { infiniteKeys: new Set(), warnings: [] };
      this.runs.set(runId, state);
    }
    return state;
  }

  async findExperiment(name: string) {
    try {
      const { experiment } = await this.api.get('experiments/get-by-name', { experiment_name: name }, schema.getExperiment);
      return { id: experiment.experiment_id, lifecycle: experiment.lifecycle_stage };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    const tags = Object.entries(exp.tags).map(([key, value]) => ({ key, value }));
    let existing = await this.findExperiment(name);
    if (!existing) {
      try {
        // names are unique, so a repeated create cannot duplicate: it fails, and we look it up
        const created = await this.api.post('experiments/create', { name, tags }, schema.createExperiment);
        return created.experiment_id;
      } catch (err) {
        if (!(err instanceof HttpError && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
        existing = await this.findExperiment(name);
        if (!existing) throw err;
      }
    }
    if (existing.lifecycle === 'deleted') await this.api.post('experiments/restore', { experiment_id: existing.id }, schema.empty);
    const { experiment } = await this.api.get('experiments/get', { experiment_id: existing.id }, schema.getExperiment);
    const current = new Map(experiment.tags.map((t) => [t.key, t.value]));
    for (const { key, value } of tags) {
      if (current.get(key) !== value) await this.api.post('experiments/set-experiment-tag', { experiment_id: existing.id, key, value }, schema.empty);
    }
    return existing.id;
  }

  async finishExperiment(experimentId: string, exp: Experiment): Promise<void> {
    if (exp.lifecycle === 'deleted') await this.api.post('experiments/delete', { experiment_id: experimentId }, schema.empty);
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const page = await this.api.post(
      'runs/search',
      { experiment_ids: [experimentId], filter: sourceIdFilter(sourceRunId), run_view_type: 'ALL', max_results: 10 },
      schema.searchRuns,
    );
    const found = page.runs.map((raw) => ({
      id: raw.info.run_id,
      complete: raw.data.tags.some((t) => t.key === SOURCE_TAGS.complete && t.value === 'true'),
      lifecycle: raw.info.lifecycle_stage,
    }));
    return found.find((r) => r.complete) ?? found[0];
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const tags = withParentTag(run.tags, run.parentId);
    const createTags = Object.entries(tags)
      .filter(([key, value]) => CREATE_TAGS.has(key) && value.length <= MAX_TAG_VALUE)
      .map(([key, value]) => ({ key, value }));
    const body = {
      experiment_id: experimentId,
      run_name: run.name,
      start_time: run.startTime,
      user_id: run.user,
      tags: createTags,
    };
    const sourceId = run.tags[SOURCE_TAGS.id];
    const runId = await this.api.creating(
      async () => {
        const created = await this.api.post('runs/create', body, schema.getRun, false);
        const id = created.run.info.run_id;
        this.state(id).artifactRoot = proxyPath(created.run.info.artifact_uri);
        this.state(id).created = true;
        // MLflow 3 always names a run: one without a name gets a generated one, which we report
        if (!run.name && created.run.info.run_name) {
          this.state(id).warnings.push(`the source run has no name; MLflow named the copy "${created.run.info.run_name}"`);
        }
        return id;
      },
      // the run may have been created before the answer was lost: its source tag finds it
      async () => (sourceId ? (await this.findRun(experimentId, sourceId))?.id : undefined),
    );
    const rest = Object.entries(tags)
      .filter(([key]) => !createTags.some((t) => t.key === key))
      .map(([key, value]) => ({ key, value }));
    for (let i = 0; i < rest.length; i += LIMITS.tags) {
      await this.writeBatch(runId, { params: [], tags: rest.slice(i, i + LIMITS.tags), metrics: [] });
    }
    return runId;
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const state = this.state(runId);
    const params = await Promise.all(batch.params.map((p) => this.fit(runId, 'params', p, MAX_PARAM_VALUE)));
    const tags = await Promise.all(batch.tags.map((t) => this.fit(runId, 'tags', t, MAX_TAG_VALUE)));
    const metrics = batch.metrics.map((m) => {
      if (m.value === Infinity || m.value === -Infinity) state.infiniteKeys.add(m.key);
      return { key: m.key, value: schema.encodeDouble(m.value), timestamp: m.timestamp, step: m.step };
    });
    // log-batch is safe to repeat: same params, overwritten tags, identical metric rows
    await this.api.post('runs/log-batch', { run_id: runId, params, tags, metrics }, schema.empty);
  }

  /** A value longer than the server takes is cut, and kept whole as an artifact. */
  private async fit(runId: string, kind: 'params' | 'tags', entry: { key: string; value: string }, max: number) {
    if (entry.value.length <= max) return entry;
    const path = `${LONG_VALUES_FOLDER}/${kind}/${entry.key}`;
    const bytes = Buffer.from(entry.value);
    await this.writeArtifact(runId, { path, size: bytes.length }, Readable.from([bytes]));
    this.state(runId).warnings.push(
      `${kind === 'params' ? 'param' : 'tag'} "${entry.key}" has ${entry.value.length} characters, more than the ${max} this server takes: ` +
        `its first ${max} characters were written, and the whole value as the artifact ${path}`,
    );
    return { key: entry.key, value: entry.value.slice(0, max) };
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const datasets = inputs.map((input) => ({
      tags: Object.entries(input.tags).map(([key, value]) => ({ key, value })),
      dataset: {
        name: input.dataset.name,
        digest: input.dataset.digest,
        source_type: input.dataset.sourceType,
        source: input.dataset.source,
        schema: input.dataset.schema,
        profile: input.dataset.profile,
      },
    }));
    await this.api.post('runs/log-inputs', { run_id: runId, datasets }, schema.empty);
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const state = this.state(runId);
    if (state.artifactRoot === undefined) {
      const { run } = await this.api.get('runs/get', { run_id: runId }, schema.getRun);
      state.artifactRoot = proxyPath(run.info.artifact_uri);
    }
    if (!state.artifactRoot) {
      throw new UsageError(
        `${this.uri} keeps artifacts where trackshift cannot write through the server; start it with --serve-artifacts ` +
          `(artifact proxy) so that artifacts can be uploaded`,
      );
    }
    try {
      await this.api.upload(`${state.artifactRoot}/${file.path}`, body, file.size);
    } catch (err) {
      // a server started with --no-serve-artifacts answers the proxy with 503 and says so
      if (err instanceof HttpError && err.status === 503 && /serve-artifacts/.test(err.message)) {
        throw new UsageError(`${this.uri} does not accept artifact uploads (started with --no-serve-artifacts); restart it with --serve-artifacts`);
      }
      throw err;
    }
  }

  async finishRun(runId: string, run: Run): Promise<RunWriteResult> {
    const state = this.state(runId);
    const update: Record<string, unknown> = { run_id: runId, status: run.status, run_name: run.name };
    if (run.endTime !== undefined) update.end_time = run.endTime;
    if (!state.created) {
      const current = await this.api.get('runs/get', { run_id: runId }, schema.getRun);
      if (current.run.info.lifecycle_stage === 'deleted') await this.api.post('runs/restore', { run_id: runId }, schema.empty);
    }
    await this.api.post('runs/update', update, schema.empty);
    const tags: Array<{ key: string; value: string }> = [{ key: SOURCE_TAGS.complete, value: 'true' }];
    if (state.infiniteKeys.size > 0) {
      tags.unshift({ key: INFINITE_KEYS_TAG, value: JSON.stringify([...state.infiniteKeys].sort()) });
      state.warnings.push(
        `metric(s) ${[...state.infiniteKeys].join(', ')} hold ±Infinity, which an SQL-backed MLflow server stores as ±1.7976931348623157e308; ` +
          `trackshift reads them back as ±Infinity (tag ${INFINITE_KEYS_TAG}), other clients see the stored number`,
      );
    }
    // complete only once everything else is there; deleted after, so a stop in between is redone
    await this.api.post('runs/log-batch', { run_id: runId, tags }, schema.empty);
    if (run.lifecycle === 'deleted') await this.api.post('runs/delete', { run_id: runId }, schema.empty);
    this.runs.delete(runId);
    return { warnings: state.warnings };
  }

  async discardRun(runId: string): Promise<void> {
    const { run } = await this.api.get('runs/get', { run_id: runId }, schema.getRun);
    if (run.info.lifecycle_stage === 'deleted') await this.api.post('runs/restore', { run_id: runId }, schema.empty);
    // without its source id it no longer counts as a copy; deleted, it is out of sight
    await this.api.post('runs/delete-tag', { run_id: runId, key: SOURCE_TAGS.id }, schema.empty);
    await this.api.post('runs/set-tag', { run_id: runId, key: DISCARDED_TAG, value: 'true' }, schema.empty);
    await this.api.post('runs/delete', { run_id: runId }, schema.empty);
    this.runs.delete(runId);
  }
}
