/**
 * The Neptune 3.x API as neptune-scale 0.30 and neptune-query 1.8 call it (over neptune-api 0.24;
 * docs/neptune-server-api.md §3–4). Every call goes to the server the API token names (its
 * `api_url`, as the clients' `Credentials.base_url`); the client config says where tokens are
 * refreshed; the token is exchanged for a short-lived access token, refreshed before it runs out
 * (exchanged again when the refresh fails). Requests and answers are JSON or protobuf
 * (`application/x-protobuf`), checked at the boundary: protobuf that does not decode is named.
 *
 * Calls are retried by the shared policy (util/retry.ts): 429 (honouring Retry-After, which the
 * client itself ignores), 5xx and dropped connections, with backoff; 401/403 are the token's.
 */
import { z } from 'zod';
import { InvalidInputError, UsageError, errorMessage } from '../../util/errors.js';
import { HttpClient, HttpError, type CallOptions } from '../../util/http.js';
import type { RetryContext, Side } from '../../util/retry.js';
import { decodeMessage, encodeMessage } from '../neptune-common/scale-proto.js';
import { expiryOf, serverOfToken } from '../neptune-common/token.js';

/** refreshed this long before it expires (the client's margin too: NA/types.py) */
const RENEW_BEFORE_MS = 30_000;
const PROTOBUF = 'application/x-protobuf';

const clientConfig = z.looseObject({
  apiUrl: z.string(),
  applicationUrl: z.string().nullish(),
  security: z.looseObject({ clientId: z.string(), openIdDiscovery: z.string() }),
});
const discovery = z.looseObject({ token_endpoint: z.string() });
const exchanged = z.looseObject({ accessToken: z.string(), refreshToken: z.string() });
const refreshed = z.looseObject({ access_token: z.string(), refresh_token: z.string() });
const signedFiles = z.looseObject({
  files: z.array(
    z.looseObject({
      path: z.string(),
      provider: z.string(),
      url: z.string(),
      multipart: z.looseObject({ upload_id: z.string(), part_size: z.number().int().positive(), part_urls: z.array(z.string()) }).nullish(),
    }),
  ),
});
export type SignedFile = z.infer<typeof signedFiles>['files'][number];

/** google.rpc.Code: OK and UNAVAILABLE, which the ingest's check uses for "not processed yet" */
export const RPC_OK = 0;
export const RPC_UNAVAILABLE = 14;

/** neptune.ingest.v1.pub.RequestStatus as decoded */
export interface RequestStatus {
  codeByCount: Array<{ code: number; count: bigint; detail: number }>;
}
interface SubmitResponse {
  requestId: string;
  requestIds: string[];
}
interface BulkRequestStatus {
  statuses: RequestStatus[];
}

/** neptune.api.v1.model.ProtoAttributeDTO as decoded: its name, type and the properties of that type */
export interface ProtoAttribute {
  name: string;
  type: string;
  stringProperties?: { value: string };
  floatSeriesProperties?: { lastStep?: number };
  stringSeriesProperties?: { lastStep?: number };
  fileRefSeriesProperties?: { lastStep?: number };
  histogramSeriesProperties?: { lastStep?: number };
  [properties: string]: unknown;
}
/** neptune.api.v1.model.ProtoAttributesDTO (a search's entry) */
export interface SearchEntry {
  experimentId: string;
  attributes: ProtoAttribute[];
}
interface SearchResult {
  matchingItemCount: bigint;
  entries: SearchEntry[];
}
/** neptune.api.v1.model.ProtoQueryAttributesExperimentResultDTO */
export interface QueriedRun {
  experimentId: string;
  experimentShortId: string;
  attributes: ProtoAttribute[];
}
interface QueryAttributesResult {
  entries: QueriedRun[];
  nextPage?: { nextPageToken?: string; limit?: number };
}

/** The string value of attribute `name` of a search entry or queried run. */
export const stringAttribute = (attributes: ProtoAttribute[], name: string): string | undefined => attributes.find((a) => a.name === name)?.stringProperties?.value;

export interface NeptuneScaleApiOptions {
  token: string;
  /** where the token came from, for messages (a variable name, never the token) */
  origin: string;
  retry?: RetryContext;
  side: Side;
}

/** How a call is sent and what comes back: JSON (checked by a schema) or bytes (protobuf). */
export interface RequestOptions {
  query?: CallOptions['query'];
  /** a JSON body */
  json?: unknown;
  /** a protobuf body: a message's bytes */
  protobuf?: Uint8Array;
  /** false for a call that must not be repeated blindly */
  retry?: boolean;
}

/** field numbers: RunOperation.update_batch, UpdateRunSnapshots.snapshots */
const RUN_OPERATION_UPDATE_BATCH = 8;
const UPDATE_RUN_SNAPSHOTS_SNAPSHOTS = 1;

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest > 127) {
    out.push((rest % 128) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}


/** Python's `urllib.parse.quote_plus`, as the client quotes names in a run's URL. */
const quotePlus = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');

export class NeptuneScaleApi {
  /** the server the token names, without a trailing slash: the API's root and the web app's (the client's `get_run_url`) */
  readonly baseUrl: string;
  /** calls without the access token: the client config, the token exchange */
  private readonly bootstrap: HttpClient;
  private readonly api: HttpClient;
  private readonly exchange: HttpClient;
  private config?: Promise<{ clientId: string; tokenEndpoint: URL }>;
  /** clients for the hosts the server names for tokens, by origin */
  private readonly others = new Map<string, HttpClient>();
  private access?: Promise<{ token: string; refresh: string; expires: number }>;

  constructor(private readonly options: NeptuneScaleApiOptions) {
    this.baseUrl = serverOfToken(options.token, options.origin).replace(/\/+$/, '');
    const common = { baseUrl: this.baseUrl, retry: options.retry, side: options.side, credentialsHint: `check ${options.origin}` };
    this.bootstrap = new HttpClient(common);
    this.exchange = new HttpClient({ ...common, headers: { 'X-Neptune-Api-Token': options.token } });
    this.api = new HttpClient({ ...common, bearer: () => this.accessToken() });
  }

  /** the server's address, safe to print */
  get displayUrl(): string {
    return this.api.displayUrl;
  }

  /** The client config and the token endpoint its OpenID discovery document names, read once. */
  private clientConfig(): Promise<{ clientId: string; tokenEndpoint: URL }> {
    this.config ??= (async () => {
      const config = await this.bootstrap.json('GET', 'api/backend/v1/clients/config', clientConfig);
      const discoveryUrl = new URL(config.security.openIdDiscovery, this.baseUrl);
      const found = await this.otherHost(discoveryUrl).json('GET', discoveryUrl.pathname + discoveryUrl.search, discovery);
      return { clientId: config.security.clientId, tokenEndpoint: new URL(found.token_endpoint, discoveryUrl) };
    })();
    this.config.catch(() => (this.config = undefined));
    return this.config;
  }

  /** A client for a URL the server named (the discovery document, the token endpoint): no credentials of ours go with it. */
  private otherHost(url: URL): HttpClient {
    if (url.origin === new URL(this.baseUrl).origin) return this.bootstrap;
    let client = this.others.get(url.origin);
    if (!client) this.others.set(url.origin, (client = new HttpClient({ baseUrl: url.origin, retry: this.options.retry, side: this.options.side })));
    return client;
  }

  private async accessToken(): Promise<string> {
    const pending = this.access;
    const current = await pending?.catch(() => undefined);
    if (current && current.expires - Date.now() > RENEW_BEFORE_MS) return current.token;
    // one renewal for all the calls that find the token expiring (or missing) at once
    if (this.access === pending) this.access = this.renew(current);
    return (await this.access!).token;
  }

  /** A new access token: the refresh the client's NeptuneAuthenticator posts, or (first, or when that is refused) the API token exchanged. */
  private async renew(current: { refresh: string; expires: number } | undefined): Promise<{ token: string; refresh: string; expires: number }> {
    const { clientId, tokenEndpoint } = await this.clientConfig();
    if (current) {
      try {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: current.refresh, client_id: clientId, expires_in: String(Math.max(0, Math.round((current.expires - Date.now()) / 1000))) });
        const answer = await this.otherHost(tokenEndpoint).json('POST', tokenEndpoint.pathname + tokenEndpoint.search, refreshed, { body: Buffer.from(form.toString()), contentType: 'application/x-www-form-urlencoded' });
        return { token: answer.access_token, refresh: answer.refresh_token, expires: expiryOf(answer.access_token) ?? Date.now() + 5 * 60_000 };
      } catch {
        // exchanged again below
      }
    }
    const answer = await this.exchange.json('GET', 'api/backend/v1/authorization/oauth-token', exchanged);
    return { token: answer.accessToken, refresh: answer.refreshToken, expires: expiryOf(answer.accessToken) ?? Date.now() + 5 * 60_000 };
  }

  private callOptions(options: RequestOptions): CallOptions {
    const call: CallOptions = { query: options.query, ...(options.retry !== undefined ? { retry: options.retry } : {}) };
    if (options.protobuf) return { ...call, body: Buffer.from(options.protobuf), contentType: PROTOBUF };
    return options.json !== undefined ? { ...call, body: options.json } : call;
  }

  /** A call whose answer is JSON, checked by `schema`. */
  async json<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, options: RequestOptions = {}): Promise<z.infer<S>> {
    return this.api.json(method, path, schema, this.callOptions(options));
  }

  /** A call whose answer is bytes (a protobuf message; see `message`). */
  async bytes(method: 'GET' | 'POST', path: string, options: RequestOptions = {}): Promise<Buffer> {
    return this.api.bytes(method, path, this.callOptions(options));
  }

  /** A call whose answer is the protobuf message `name` (a full name: `neptune.api.v1.model.…`); undecodable bytes are named. */
  async message<T>(name: string, method: 'GET' | 'POST', path: string, options: RequestOptions = {}): Promise<T> {
    const bytes = await this.bytes(method, path, options);
    try {
      return decodeMessage<T>(name, bytes);
    } catch (err) {
      throw new InvalidInputError(`${this.displayUrl} ${method} /${path}`, `the answer is not a ${name.split('.').pop()} message: ${errorMessage(err)}`);
    }
  }

  // ——— ingest (neptune-scale's sync process) ———

  /**
   * One `neptune.ingest.v1.pub.RunOperation` (`{project, runId, create | updateBatch}`); the ids to
   * check its processing by. Repeated on 429/5xx as the client repeats it: a repeated batch
   * that had been taken has its points refused as duplicates, never doubled.
   */
  async ingest(operation: object): Promise<string[]> {
    return this.ingestBytes(encodeMessage('neptune.ingest.v1.pub.RunOperation', operation));
  }

  private async ingestBytes(protobuf: Uint8Array): Promise<string[]> {
    const answer = await this.message<SubmitResponse>('neptune.ingest.v1.pub.SubmitResponse', 'POST', 'api/client/v1/ingest', { protobuf });
    const ids = answer.requestIds.length > 0 ? answer.requestIds : answer.requestId ? [answer.requestId] : [];
    if (ids.length === 0) throw new InvalidInputError(`${this.displayUrl} POST /api/client/v1/ingest`, 'the server took the operation but gave no request id to follow it by');
    return ids;
  }

  /**
   * `update_batch` of UpdateRunSnapshots already encoded (each at most 2 MiB, all together at
   * most a request's 16 MiB): framed as protobuf frames repeated fields, so that no snapshot is
   * encoded twice.
   */
  async ingestUpdates(project: string, runId: string, snapshots: Uint8Array[]): Promise<string[]> {
    const head = encodeMessage('neptune.ingest.v1.pub.RunOperation', { project, runId });
    const frame = (field: number, length: number) => Buffer.from([...varint(field * 8 + 2), ...varint(length)]);
    const frames = snapshots.map((s) => frame(UPDATE_RUN_SNAPSHOTS_SNAPSHOTS, s.length));
    const batchLength = snapshots.reduce((n, s, i) => n + frames[i]!.length + s.length, 0);
    const parts: Uint8Array[] = [head, frame(RUN_OPERATION_UPDATE_BATCH, batchLength)];
    snapshots.forEach((s, i) => parts.push(frames[i]!, s));
    return this.ingestBytes(Buffer.concat(parts));
  }

  /** The processing status of each request id, in their order (up to 1000 at once, as the client asks). */
  async checkRequests(project: string, ids: string[]): Promise<RequestStatus[]> {
    const protobuf = encodeMessage('neptune.ingest.v1.pub.RequestIdList', { ids: ids.map((value) => ({ value })) });
    const answer = await this.message<BulkRequestStatus>('neptune.ingest.v1.pub.BulkRequestStatus', 'POST', 'api/client/v1/ingest/check', { query: { projectIdentifier: project }, protobuf });
    if (answer.statuses.length !== ids.length) throw new InvalidInputError(`${this.displayUrl} POST /api/client/v1/ingest/check`, `${answer.statuses.length} statuses for ${ids.length} request ids`);
    return answer.statuses;
  }

  // ——— files (the storage bridge) ———

  /** Signed URLs for files of a project, by their destination path (`write` with their sizes, or `read`). */
  async signedUrls(project: string, files: Array<{ path: string; size?: number }>, permission: 'read' | 'write'): Promise<Map<string, SignedFile>> {
    const json = { files: files.map((f) => ({ path: f.path, project_identifier: project, permission, ...(f.size !== undefined ? { size: f.size } : {}) })) };
    const answer = await this.json('POST', 'api/storagebridge/v1/signedUrl', signedFiles, { json });
    const byPath = new Map(answer.files.map((f) => [f.path, f]));
    for (const f of files) if (!byPath.has(f.path)) throw new InvalidInputError(`${this.displayUrl} POST /api/storagebridge/v1/signedUrl`, `no signed URL for ${f.path}`);
    return byPath;
  }

  /** Ends an S3 multipart upload whose parts were PUT to the signed part URLs. */
  async completeMultipartUpload(project: string, path: string, uploadId: string, etags: string[]): Promise<void> {
    const json = { upload_id: uploadId, project_identifier: project, path, parts: etags.map((etag, i) => ({ part_number: i + 1, etag })) };
    await this.json('POST', 'api/storagebridge/v1/s3/completeMultipartUpload', z.unknown(), { json });
  }

  // ——— projects ———

  /** Whether the project `WORKSPACE/NAME` exists (and the token sees it): neptune-api's get_project. */
  async projectExists(project: string): Promise<boolean> {
    try {
      await this.json('GET', 'api/backend/v1/projects/get', z.unknown(), { query: { projectIdentifier: project } });
      return true;
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return false;
      throw err;
    }
  }

  /**
   * Creates a private project, as neptune-scale's `create_project` does: 409 means it exists
   * (`existed`); a 404 naming the organization means the workspace does not.
   */
  async createProject(workspace: string, name: string): Promise<'created' | 'existed'> {
    const json = { name, description: null, projectKey: null, organizationIdentifier: workspace, visibility: 'priv' };
    try {
      // repeated after a 429/5xx like any call: had the first been taken, the repeat's 409 says the project is there
      await this.json('POST', 'api/backend/v1/projects', z.unknown(), { json });
      return 'created';
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (err.status === 409) return 'existed';
      if (err.status === 404) throw new UsageError(`neptune-scale://${workspace}/${name}: the Neptune server at ${this.displayUrl} has no workspace ${workspace} (or the token cannot see it); create it in Neptune first, or check the workspace name`);
      if (err.status >= 400 && err.status < 500) throw new UsageError(`neptune-scale://${workspace}/${name}: the Neptune server refused to create the project (${err.message})`);
      throw err;
    }
  }

  // ——— queries (neptune-query's retrieval API; the reader adds its own in query.ts) ———

  /**
   * Every run of a project with the attributes `attributes` (string properties as the search
   * gives them), optionally those an NQL `query` matches; offset paging as neptune-query pages.
   */
  async searchRuns(project: string, attributes: string[], query?: string): Promise<SearchEntry[]> {
    const limit = 1000;
    const entries: SearchEntry[] = [];
    for (let offset = 0; ; offset += limit) {
      const json = {
        attributeFilters: attributes.map((path) => ({ path })),
        experimentLeader: false,
        pagination: { limit, offset },
        sorting: { sortBy: { name: 'sys/creation_time', type: 'datetime' }, dir: 'ascending' },
        ...(query ? { query: { query } } : {}),
      };
      const page = await this.message<SearchResult>('neptune.api.v1.model.ProtoLeaderboardEntriesSearchResultDTO', 'POST', 'api/leaderboard/v1/proto/leaderboard/entries/search/', { query: { projectIdentifier: project, type: 'run' }, json });
      entries.push(...page.entries);
      if (page.entries.length < limit) return entries;
    }
  }

  /**
   * The attributes of runs given by `ws/proj/SYS-ID` (of the types given, or all), with their
   * values and series' last steps; a run's attributes may come in several entries (pages).
   */
  async queryAttributes(project: string, runs: string[], types?: string[]): Promise<QueriedRun[]> {
    const out: QueriedRun[] = [];
    let nextPageToken: string | undefined;
    do {
      const filter = types ? { attributeNameFilter: {}, attributeFilter: types.map((attributeType) => ({ attributeType })) } : {};
      const json = { experimentIdsFilter: runs, ...filter, nextPage: { limit: 10_000, ...(nextPageToken ? { nextPageToken } : {}) } };
      const page = await this.message<QueryAttributesResult>('neptune.api.v1.model.ProtoQueryAttributesResultDTO', 'POST', 'api/leaderboard/v1/proto/leaderboard/attributes/query', { query: { projectIdentifier: project }, json });
      out.push(...page.entries);
      nextPageToken = page.nextPage?.nextPageToken || undefined;
      if (page.entries.length === 0) break;
    } while (nextPageToken);
    return out;
  }

  /** Where the web app shows a run, as neptune-scale's `get_run_url()` builds it from the token's `api_url`. */
  runUrl(project: string, runId: string): string {
    const [workspace = '', name = ''] = project.split('/', 2);
    return `${this.baseUrl}/${quotePlus(workspace)}/${quotePlus(name)}/-/run/?customId=${quotePlus(runId)}`;
  }

  async close(): Promise<void> {
    await Promise.all([this.bootstrap.close(), this.exchange.close(), this.api.close(), ...[...this.others.values()].map((c) => c.close())]);
  }
}
