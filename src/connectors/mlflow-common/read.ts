/** Reading an MLflow tracking server: experiments, runs, paged metric histories, artifacts. */
import type { Readable } from 'node:stream';
import type { ArtifactFile, Experiment, MetricPoint, Run } from '../../model/index.js';
import { MLFLOW_TAGS, mlflowSeries } from '../../model/index.js';
import type { LoggedModelReader, LoggedModelWriter, RegistryReader, RegistryWriter, RunQuery, Source } from '../types.js';
import { InvalidInputError } from '../../util/errors.js';
import { isNotFound, type MlflowApi } from './client.js';
import { restoreInfinities } from './infinity.js';
import { MlflowLoggedModels } from './logged-models.js';
import { proxyPath } from './proxy.js';
import { MlflowRegistry } from './registry.js';
import * as schema from './schemas.js';

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** The server's maximum page sizes: fewer round trips. */
const EXPERIMENT_PAGE = 1000;
const RUN_PAGE = 1000;
/**
 * Not the server's maximum (25,000): a copy reads up to 16 histories at once, and memory grows
 * with the points in flight. Pages of 25,000 took peak RSS from 130 to 320 MB when histories
 * grew from 2,000 to 20,000 points; at 2,500 it stayed at 132 MB, as fast (bench/copy.mjs
 * --memory-check), for 16% more CPU on the source server.
 */
const HISTORY_PAGE = 2_500;

/**
 * MLflow 3 leaves end_time out for unfinished runs, but older servers and Databricks send 0 or
 * null; and runs/create without start_time stores 0 (it does not stamp "now"). 0 means unset.
 */
const timeOrUndefined = (time: number | null | undefined) => (time ? time : undefined);

/** Marks a partial copy that a later attempt replaced; such runs stay deleted and are never read. */
export const DISCARDED_TAG = 'trackshift.discarded';

const toTags = (list: Array<{ key: string; value: string }>) => Object.fromEntries(list.map((t) => [t.key, t.value]));

export function toRun(raw: schema.MlflowRun): Run {
  const tags = toTags(raw.data.tags);
  const { info } = raw;
  return {
    id: info.run_id,
    experimentId: info.experiment_id,
    name: info.run_name || tags[MLFLOW_TAGS.runName] || undefined,
    status: info.status,
    startTime: timeOrUndefined(info.start_time),
    endTime: timeOrUndefined(info.end_time),
    user: info.user_id || tags[MLFLOW_TAGS.user] || undefined,
    lifecycle: info.lifecycle_stage,
    parentId: tags[MLFLOW_TAGS.parentRunId] || undefined,
    params: toTags(raw.data.params),
    tags,
    inputs: raw.inputs.dataset_inputs.map((input) => ({
      dataset: {
        name: input.dataset.name,
        digest: input.dataset.digest,
        sourceType: input.dataset.source_type,
        source: input.dataset.source,
        ...(input.dataset.schema !== undefined ? { schema: input.dataset.schema } : {}),
        ...(input.dataset.profile !== undefined ? { profile: input.dataset.profile } : {}),
      },
      tags: toTags(input.tags),
    })),
    series: [...new Set(raw.data.metrics.map((m) => m.key))].map(mlflowSeries),
    ...(raw.outputs.model_outputs.length > 0 ? { modelOutputs: raw.outputs.model_outputs.map((o) => ({ modelId: o.model_id, step: o.step })) } : {}),
  };
}

export class MlflowSource implements Source {
  readonly kind: string = 'mlflow';
  readonly capabilities = { filter: true };
  /** the registry and logged models of a plain MLflow server, or a subclass's own (Databricks) */
  constructor(
    protected readonly api: MlflowApi,
    readonly registry: RegistryReader & RegistryWriter = new MlflowRegistry(api),
    readonly loggedModels: LoggedModelReader & LoggedModelWriter = new MlflowLoggedModels(api),
  ) {}

  /** run id → its artifact root under the server's artifact proxy, as artifacts/list gave it */
  private readonly proxiedRoots = new Map<string, string>();

  /** the run's page in MLflow's web app, served by the tracking server */
  runUrl(experimentId: string, runId: string): string | undefined {
    return `${this.api.baseUrl}#/experiments/${encodeURIComponent(experimentId)}/runs/${encodeURIComponent(runId)}`;
  }

  get uri(): string {
    return this.api.uri;
  }

  async *listExperiments(): AsyncIterable<Experiment> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.post('experiments/search', { max_results: EXPERIMENT_PAGE, view_type: 'ALL', page_token: pageToken }, schema.searchExperiments);
      for (const e of page.experiments) {
        yield {
          id: e.experiment_id,
          name: e.name,
          tags: toTags(e.tags),
          lifecycle: e.lifecycle_stage,
          creationTime: e.creation_time,
          lastUpdateTime: e.last_update_time,
          artifactLocation: e.artifact_location,
        };
      }
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async *listRuns(experimentId: string, query: RunQuery): AsyncIterable<Run> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.post(
        'runs/search',
        {
          experiment_ids: [experimentId],
          filter: query.filter ?? '',
          run_view_type: query.includeDeleted ? 'ALL' : 'ACTIVE_ONLY',
          max_results: RUN_PAGE,
          // oldest first, so that parents usually come before their children
          order_by: ['attributes.start_time ASC'],
          page_token: pageToken,
        },
        schema.searchRuns,
      );
      for (const raw of page.runs) {
        // left behind by an interrupted copy and replaced since: not data
        if (raw.data.tags.some((t) => t.key === DISCARDED_TAG)) continue;
        yield toRun(raw);
      }
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async getRun(runId: string): Promise<Run | undefined> {
    try {
      return toRun((await this.api.get('runs/get', { run_id: runId }, schema.getRun)).run);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *readMetric(run: Run, key: string): AsyncIterable<MetricPoint[]> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.get('metrics/get-history', { run_id: run.id, metric_key: key, max_results: HISTORY_PAGE, page_token: pageToken }, schema.metricHistory);
      let points: MetricPoint[];
      try {
        points = schema.toMetricPoints(page.metrics, key);
      } catch (err) {
        throw new InvalidInputError(`${this.uri} metrics/get-history for run ${run.id} key "${key}"`, `unexpected answer at ${(err as Error).message}`);
      }
      yield restoreInfinities(run, key, points);
      // some older servers answered a page with the token they were given: never loop forever
      if (page.next_page_token && page.next_page_token === pageToken) {
        throw new Error(`${this.uri} metrics/get-history for run ${run.id} key "${key}" repeats page token ${pageToken}; stopping instead of looping`);
      }
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async *listArtifacts(run: Run): AsyncIterable<ArtifactFile> {
    const folders = [''];
    while (folders.length > 0) {
      const folder = folders.shift()!;
      let pageToken: string | undefined;
      do {
        const page = await this.api.get('artifacts/list', { run_id: run.id, path: folder || undefined, page_token: pageToken }, schema.listArtifacts);
        const proxied = proxyPath(page.root_uri);
        if (proxied) this.proxiedRoots.set(run.id, proxied);
        for (const file of page.files) {
          if (file.is_dir) folders.push(file.path);
          else yield { path: file.path, size: file.file_size };
        }
        pageToken = page.next_page_token || undefined;
      } while (pageToken);
    }
  }

  /**
   * Through the artifact proxy when the run's files are there (listArtifacts saw its root):
   * get-artifact loads the whole run first, and cost a one-worker server 7× the CPU per file.
   * Not for a file whose name is not ASCII: MLflow 2.x's proxy puts the name in its
   * Content-Disposition header unencoded, and gunicorn drops the connection instead of answering.
   */
  readArtifact(run: Run, path: string): Promise<Readable> {
    const root = this.proxiedRoots.get(run.id);
    const name = path.slice(path.lastIndexOf('/') + 1);
    return root && PRINTABLE_ASCII.test(name) ? this.api.downloadProxied(`${root}/${path}`) : this.api.download(run.id, path);
  }

  close(): Promise<void> {
    return this.api.close();
  }
}
