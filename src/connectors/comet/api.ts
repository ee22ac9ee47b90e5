/**
 * The calls trackshift makes to a Comet instance, each as comet_ml 3.58 makes it
 * (connection/connection_api.py: RestApiClient for REST v2, RestServerConnection for the client
 * library's endpoints that `comet upload` and Experiment use), with what the answer must hold.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { RetryContext, Side } from '../../util/retry.js';
import type { CometConfig } from './config.js';
import { CometHttp, CometHttpError, isNotFound, type CallOptions } from './transport.js';

/** the batch sizes comet_ml sends (config_constants.py MESSAGE_BATCH_METRIC_MAX_BATCH_SIZE; stdout 500) */
export const METRIC_BATCH = 1000;
export const PARAMETER_BATCH = 1000;
export const OUTPUT_BATCH = 500;
/** the comet_ml version whose client trackshift speaks as (the server checks it on add/run) */
const LIB_VERSION = '3.58.8';
/** sdk_error_code of logger/add/run for a key already taken (comet_ml/connection: EXPERIMENT_ALREADY_EXISTS) */
export const EXPERIMENT_ALREADY_EXISTS = 90999;

const anything = z.unknown();

const addRunAnswer = z.looseObject({ runId: z.string(), project_id: z.string().nullish(), experimentKey: z.string().nullish() });

export const experimentMetadata = z.looseObject({
  experimentKey: z.string(),
  experimentName: z.string().nullish(),
  projectId: z.string().nullish(),
  projectName: z.string().nullish(),
  workspaceName: z.string().nullish(),
  startTimeMillis: z.number().nullish(),
  endTimeMillis: z.number().nullish(),
  archived: z.boolean().nullish(),
  running: z.boolean().nullish(),
});
export type ExperimentMetadata = z.infer<typeof experimentMetadata>;

export const projectRecord = z.looseObject({
  projectId: z.string(),
  projectName: z.string(),
  projectDescription: z.string().nullish(),
  workspaceName: z.string().nullish(),
  public: z.boolean().nullish(),
});
export type ProjectRecord = z.infer<typeof projectRecord>;

const projectsAnswer = z.looseObject({ projects: z.array(projectRecord).nullish() });
const valuesAnswer = z.looseObject({ values: z.array(z.looseObject({ name: z.string(), valueCurrent: z.string().nullish() })).nullish() });

export interface MetricValue {
  metricName: string;
  metricValue: number | string;
  step: number | null;
  epoch: number | null;
  context: string | null;
  timestamp: number;
}

export interface ParameterValue {
  parameterName: string;
  parameterValue: string;
  step: number | null;
  source: string;
  context: null;
  timestamp: number;
}

export interface OutputLine {
  stderr: boolean;
  output: string;
  localTimestamp: number;
  offset: number;
}

export class CometApi {
  readonly http: CometHttp;

  constructor(config: CometConfig, retry: RetryContext | undefined, side: Side) {
    this.http = new CometHttp(config, retry, side);
  }

  get root(): string {
    return this.http.root;
  }

  // ---- reads (RestApiClient)

  get<S extends z.ZodType>(path: string, query: CallOptions['query'], schema: S, what?: string): Promise<z.infer<S>> {
    return this.http.json('GET', 'rest', path, schema, { query, ...(what ? { what } : {}) });
  }

  post<S extends z.ZodType>(path: string, body: unknown, schema: S, what?: string): Promise<z.infer<S>> {
    return this.http.json('POST', 'rest', path, schema, { body, ...(what ? { what } : {}) });
  }

  download(path: string, query: CallOptions['query'], what?: string): Promise<Readable> {
    return this.http.download('rest', path, { query, ...(what ? { what } : {}) });
  }

  async projects(workspace: string): Promise<ProjectRecord[]> {
    return (await this.get('projects', { workspaceName: workspace }, projectsAnswer, `workspace ${JSON.stringify(workspace)}`)).projects ?? [];
  }

  /** an experiment's metadata, or undefined when the server has no experiment of that key */
  async metadata(key: string): Promise<ExperimentMetadata | undefined> {
    try {
      return await this.get('experiment/metadata', { experimentKey: key }, experimentMetadata);
    } catch (err) {
      // comet answers an unknown key with 400 or 404
      if (isNotFound(err) || (err instanceof CometHttpError && err.status === 400)) return undefined;
      throw err;
    }
  }

  async others(key: string): Promise<Array<{ name: string; valueCurrent?: string | null }>> {
    return (await this.get('experiment/log-other', { experimentKey: key }, valuesAnswer, `experiment ${key}`)).values ?? [];
  }

  // ---- writes

  createProject(workspace: string, project: string, description: string | undefined, isPublic: boolean): Promise<unknown> {
    return this.post('write/project/create', { workspaceName: workspace, projectName: project, projectDescription: description ?? null, isPublic }, anything);
  }

  setProjectNotes(projectId: string, notes: string): Promise<unknown> {
    return this.post('write/project/notes', { projectId, notes }, anything);
  }

  /**
   * A new experiment of a key chosen here, as comet_ml's Experiment and `comet upload` make one
   * (RestServerConnection.add_run). A key already taken is refused (EXPERIMENT_ALREADY_EXISTS).
   */
  addRun(key: string, workspace: string, project: string): Promise<z.infer<typeof addRunAnswer>> {
    const body = { apiKey: this.http.apiKey, local_timestamp: Date.now(), experimentKey: key, offline: true, projectName: project, teamName: workspace, libVersion: LIB_VERSION, getOrCreateEnabled: false };
    return this.http.json('POST', 'clientlib', 'logger/add/run', addRunAnswer, { body, retry: false });
  }

  /** the start and end time (APIExperiment.set_start_time / set_end_time) */
  setTimes(key: string, start: number, end: number): Promise<unknown> {
    return this.post('write/experiment/set-start-end-time', { experimentKey: key, startTimeMillis: start, endTimeMillis: end }, anything, `experiment ${key}`);
  }

  addTags(key: string, tags: string[]): Promise<unknown> {
    return this.http.json('POST', 'clientlib', 'tags/add-tags-to-experiment', anything, { body: { apiKey: this.http.apiKey, experimentKey: key, addedTags: tags } });
  }

  metrics(key: string, values: MetricValue[]): Promise<unknown> {
    return this.http.json('POST', 'clientlib', 'batch/logger/experiment/metric', anything, { body: { experimentKey: key, values }, compress: true });
  }

  parameters(key: string, values: ParameterValue[]): Promise<unknown> {
    return this.http.json('POST', 'clientlib', 'batch/logger/experiment/parameter', anything, { body: { experimentKey: key, values }, compress: true });
  }

  logOther(key: string, name: string, value: string, timestamp?: number | null): Promise<unknown> {
    return this.post('write/experiment/log-other', { experimentKey: key, key: name, value, ...(timestamp !== null && timestamp !== undefined ? { timestamp } : {}) }, anything);
  }

  output(key: string, context: string | null, lines: OutputLine[]): Promise<unknown> {
    return this.http.json('POST', 'clientlibRest', 'write/experiment/output', anything, { body: { experimentKey: key, runContext: context, outputLines: lines }, compress: true });
  }

  html(key: string, html: string, override: boolean, timestamp: number): Promise<unknown> {
    return this.post('write/experiment/html', { experimentKey: key, html, override, timestamp }, anything);
  }

  /** system details, whole or in part (installed and OS packages, GPU and system info go here too) */
  systemDetails(key: string, details: Record<string, unknown>): Promise<unknown> {
    return this.http.json('POST', 'clientlibRest', 'write/experiment/system-details', anything, { body: { ...details, experimentKey: key } });
  }

  gitMetadata(key: string, git: Record<string, unknown>): Promise<unknown> {
    return this.post('write/experiment/git/metadata', { experimentKey: key, user: git.user ?? null, root: git.root ?? null, branch: git.branch ?? null, parent: git.parent ?? null, origin: git.origin ?? null }, anything);
  }

  graph(key: string, graph: string): Promise<unknown> {
    return this.post('write/experiment/graph', { experimentKey: key, graph }, anything);
  }

  filePath(key: string, filePath: string): Promise<unknown> {
    return this.post('write/experiment/file-path', { experimentKey: key, filePath }, anything);
  }

  dependency(key: string, name: string, version: string, timestamp: number): Promise<unknown> {
    return this.http.json('PUT', 'rest', 'write/experiment/dependencies', anything, { body: { experimentKey: key, timestamp, logDependencies: [{ name, version }] } });
  }

  /** an asset upload as the client library sends it (asset/upload, or git-patch/upload, visualizations/upload by type) */
  upload(endpoint: string, query: Record<string, string | number | boolean | null | undefined>, body: Readable, size: number | undefined, metadata: Record<string, unknown> | undefined): Promise<void> {
    const fields = metadata && Object.keys(metadata).length > 0 ? { metadata: JSON.stringify(metadata) } : undefined;
    return this.http.upload('clientlib', endpoint, { body, ...(size !== undefined ? { size } : {}), ...(fields ? { fields } : {}) }, { query });
  }

  /** a remote asset (a link), as the client sends one: the form's `link` and `metadata` fields */
  uploadLink(endpoint: string, query: Record<string, string | number | boolean | null | undefined>, link: string, metadata: Record<string, unknown> | undefined): Promise<void> {
    const fields: Record<string, string> = { link, ...(metadata && Object.keys(metadata).length > 0 ? { metadata: JSON.stringify(metadata) } : {}) };
    return this.http.upload('clientlib', endpoint, { fields }, { query });
  }

  archive(key: string): Promise<unknown> {
    return this.get('write/experiment/archive', { experimentKey: key }, anything, `experiment ${key}`);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

/** the client library's upload endpoint for an upload type (connection_url_helpers.py get_upload_url) */
export function uploadEndpoint(uploadType: string): string {
  if (uploadType === 'git-patch') return 'git-patch/upload';
  if (uploadType === 'shap' || uploadType === 'prophet' || uploadType === 'visualization') return 'visualizations/upload';
  if (uploadType === 'asset-item') return 'asset/asset-item';
  return 'asset/upload';
}
