/**
 * The MLflow REST API as trackshift uses it: credentials for one side of a copy, one pooled
 * HTTP client, and typed calls. Read and write both go through here.
 */
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { retrySide, type ConnectorTarget } from '../types.js';
import { HttpClient, HttpError } from '../../util/http.js';
import { UsageError } from '../../util/errors.js';
import * as schema from './schemas.js';

const API = 'api/2.0/mlflow/';
const SETTINGS = ['MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_INSECURE_TLS', 'MLFLOW_TRACKING_SERVER_CERT_PATH'] as const;
type Setting = (typeof SETTINGS)[number];

/** TRACKSHIFT_SRC_<NAME> / TRACKSHIFT_DST_<NAME> first, so both ends can differ in one command; then <NAME>. */
export function sideSetting(target: ConnectorTarget, name: Setting): string | undefined {
  const specific = target.env[`TRACKSHIFT_${target.side.toUpperCase()}_${name}`];
  return specific !== undefined && specific !== '' ? specific : target.env[name] || undefined;
}

const truthy = (value: string | undefined) => value !== undefined && /^(1|true|yes)$/i.test(value);

export class MlflowApi {
  readonly http: HttpClient;

  /** `signIn` replaces the MLFLOW_TRACKING_* credentials (a Databricks workspace's token) */
  constructor(target: ConnectorTarget, signIn?: { token: string; credentialsHint: string }) {
    const side = target.side.toUpperCase();
    this.http = new HttpClient({
      baseUrl: target.location,
      username: signIn ? undefined : sideSetting(target, 'MLFLOW_TRACKING_USERNAME'),
      password: signIn ? undefined : sideSetting(target, 'MLFLOW_TRACKING_PASSWORD'),
      token: signIn ? signIn.token : sideSetting(target, 'MLFLOW_TRACKING_TOKEN'),
      insecureTls: truthy(sideSetting(target, 'MLFLOW_TRACKING_INSECURE_TLS')),
      caFile: sideSetting(target, 'MLFLOW_TRACKING_SERVER_CERT_PATH'),
      retry: target.retry,
      side: retrySide(target),
      credentialsHint:
        signIn?.credentialsHint ??
        `Set TRACKSHIFT_${side}_MLFLOW_TRACKING_TOKEN, or TRACKSHIFT_${side}_MLFLOW_TRACKING_USERNAME and _PASSWORD (or the same names without TRACKSHIFT_${side}_)`,
    });
  }

  get uri(): string {
    return this.http.displayUrl;
  }

  /** the server's URL without credentials, ending in `/` */
  get baseUrl(): string {
    return this.http.displayUrl.endsWith('/') ? this.http.displayUrl : `${this.http.displayUrl}/`;
  }

  /** One cheap call, so that a wrong URL or refused credentials stop the command at once. */
  async checkReachable(): Promise<void> {
    const check = (attempts?: number) => this.http.json('POST', `${API}experiments/search`, schema.searchExperiments, { body: { max_results: 1 }, attempts });
    try {
      // nothing listening is said at once; a server that answers "busy" (429, 503) is waited for
      await check(2).catch((err) => {
        if (err instanceof HttpError && err.retryReason) return check();
        throw err;
      });
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        throw new UsageError(`${this.uri} does not answer like an MLflow tracking server (404 for ${err.path}); check the URL`);
      }
      if (err instanceof UsageError) throw err;
      throw new UsageError((err as Error).message);
    }
  }

  get<S extends z.ZodType>(endpoint: string, query: Record<string, string | number | undefined>, answer: S): Promise<z.infer<S>> {
    return this.http.json('GET', `${API}${endpoint}`, answer, { query });
  }

  post<S extends z.ZodType>(endpoint: string, body: unknown, answer: S, retry = true): Promise<z.infer<S>> {
    return this.http.json('POST', `${API}${endpoint}`, answer, { body, retry });
  }

  /**
   * A call that creates something, under the retry policy without duplicating: an attempt whose
   * answer was lost may have created it, so before creating again `lookup` looks for it.
   */
  creating<T>(create: () => Promise<T>, lookup: () => Promise<T | undefined>): Promise<T> {
    return this.http.retrying(this.http.retryPolicy, create, lookup);
  }

  /** PATCH and DELETE calls of the registry and logged models, which take a JSON body too */
  send<S extends z.ZodType>(method: 'PATCH' | 'DELETE', endpoint: string, body: unknown, answer: S): Promise<z.infer<S>> {
    return this.http.json(method, `${API}${endpoint}`, answer, { body });
  }

  /** A file of a run's artifacts, through the server (works whatever store the server uses). */
  download(runId: string, path: string): Promise<Readable> {
    return this.http.download('get-artifact', { run_id: runId, path });
  }

  /** Uploads through the artifact proxy (`mlflow server --serve-artifacts`). */
  upload(artifactPath: string, body: Readable, size?: number): Promise<void> {
    const encoded = artifactPath.split('/').map(encodeURIComponent).join('/');
    return this.http.upload(`api/2.0/mlflow-artifacts/artifacts/${encoded}`, body, size);
  }

  /** A file under the artifact proxy, by its path there (logged models' files). */
  downloadProxied(artifactPath: string): Promise<Readable> {
    const encoded = artifactPath.split('/').map(encodeURIComponent).join('/');
    return this.http.download(`api/2.0/mlflow-artifacts/artifacts/${encoded}`);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

export const isNotFound = (err: unknown) => err instanceof HttpError && (err.status === 404 || err.errorCode === 'RESOURCE_DOES_NOT_EXIST');
