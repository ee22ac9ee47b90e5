/**
 * A local Neptune-shaped server for tests, on a free loopback port, answered as Neptune answers
 * (shapes and rules from the clients' own code, docs/neptune-server-api.md). No live Neptune
 * instance is used anywhere. It speaks both APIs:
 *
 * - 2.x, what neptune 1.14 calls (legacy.ts, swagger.ts, store.ts): its Swagger documents, the
 *   OAuth token exchange and refresh, projects, runs, operations, uploads, reads, search with NQL;
 * - 3.x, what neptune-scale 0.30 and neptune-query 1.8 call (scale.ts, scale-store.ts, query.ts):
 *   the client config's `security` and the OpenID discovery, ingest and its status checks with
 *   Neptune's refusals as ingest codes, signed storage URLs and the storage behind them, projects,
 *   and the query API (runs search, attribute definitions and values, series).
 *
 *   const server = await startNeptuneServer({ projects: [['ws', 'proj']] });
 *   env NEPTUNE_API_TOKEN=server.token OAUTHLIB_INSECURE_TRANSPORT=1 python write.py   (2.x: server.clientEnv())
 *   env server.scaleEnv() python write_scale.py                                       (3.x)
 *   server.failNext('executeOperations', { status: 429, retryAfter: 1 });
 *   expect(server.scale.refusals()).toEqual([]);
 *   expect(server.unhandled).toEqual([]);
 *   await server.close();
 *
 * Operation names (for failNext and calls): the 2.x operationIds of swagger.ts (getClientConfig,
 * exchangeApiToken, createProject and listProjects serve both APIs), and for 3.x:
 *   openIdDiscovery, ingest, checkStatus, signedUrl, completeMultipartUpload, storagePut,
 *   storageGet (scale.ts); searchEntries, queryAttributeDefinitions, queryAttributes,
 *   floatSeries, series (query.ts).
 * Anything else is counted as `METHOD /path`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, LEGACY_HANDLERS, type Handler, type Reply, type Request } from './legacy.js';
import { QUERY_ROUTES, queryHandlers } from './query.js';
import { matchRoute, SCALE_ROUTES, scaleHandlers, TOKEN_PATH, type FileStorage, type Route } from './scale.js';
import { ScaleStore } from './scale-store.js';
import { NeptuneStore } from './store.js';
import { OPERATION_IDS, SWAGGER_DOCUMENTS } from './swagger.js';

export type { Attribute, Container, Project } from './store.js';
export { NeptuneStore } from './store.js';
export type { IngestRecord, ScaleAttribute, ScaleFileRef, ScaleHistogram, ScalePoint, ScaleRun, ScaleSeries } from './scale-store.js';
export { ScaleStore } from './scale-store.js';

export interface Fault {
  status: number;
  /** seconds, sent as Retry-After */
  retryAfter?: number;
  /** how many matching calls fail (default 1) */
  times?: number;
}

export interface NeptuneServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** an API token whose address is this server (what NEPTUNE_API_TOKEN is set to) */
  token: string;
  /** another accepted token (a second user: separate source and destination tokens) */
  newToken(): string;
  store: NeptuneStore;
  /** the 3.x runs (what neptune-scale wrote) and the ingest requests with their codes */
  scale: ScaleStore;
  /** the bytes neptune-scale uploaded to a project (`ws/proj`), by storage path (a file_ref's path) */
  scaleFile(project: string, path: string): Buffer | undefined;
  /** the next `times` calls of an operation (its operationId, or `METHOD /path`) answer `status` */
  failNext(operation: string, fault: Fault): void;
  /** calls per operationId (or `METHOD /path` for what has none), faults included */
  calls: Map<string, number>;
  /** `METHOD /path` of every call nothing answered */
  unhandled: string[];
  /** the environment a real Neptune client needs to talk to this server over plain HTTP */
  clientEnv(token?: string): NodeJS.ProcessEnv;
  /** the environment neptune-scale and neptune-query need to talk to this server (short retries and timeouts) */
  scaleEnv(token?: string): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export interface NeptuneServerOptions {
  projects?: Array<[workspace: string, name: string, key?: string]>;
  /** workspaces without projects (every project's workspace exists anyway) */
  workspaces?: string[];
  /** 3.x: checks of each ingest request that answer UNAVAILABLE (not processed yet) before its status, so that the client polls again (default 0) */
  pendingChecks?: number;
  /** 3.x: refuse NaN/±Inf floats (FLOAT_VALUE_NAN_INF_UNSUPPORTED) as older Neptune backends did (default: stored, as today's Neptune does) */
  refuseNanInf?: boolean;
  /** 3.x query API: the most points of a string/histogram/file series a page holds when the client sets no limit — small to exercise the client's searchAfter paging (default 10 000); the other pages are as large as the client asks (NEPTUNE_QUERY_*_BATCH_SIZE) */
  queryPageSize?: number;
}

export async function startNeptuneServer(options: NeptuneServerOptions = {}): Promise<NeptuneServer> {
  const store = new NeptuneStore();
  const scale = new ScaleStore(store, { ...(options.refuseNanInf ? { refuseNanInf: true } : {}) });
  const files: FileStorage = new Map();
  const routes: Route[] = [...SCALE_ROUTES, ...QUERY_ROUTES];
  const handlers: Record<string, Handler> = {
    ...scaleHandlers({ scale, files, signed: new Map(), pendingChecks: options.pendingChecks ?? 0 }),
    ...queryHandlers({ scale, pageSize: options.queryPageSize ?? 10_000 }),
  };
  for (const ws of options.workspaces ?? []) store.addWorkspace(ws);
  for (const [ws, name, key] of options.projects ?? []) store.addProject(ws, name, key);
  const apiTokens = new Set<string>();
  const accessTokens = new Set<string>();
  const refreshTokens = new Set<string>();
  const faults: Array<{ operation: string; fault: Fault; left: number }> = [];
  const calls = new Map<string, number>();
  const unhandled: string[] = [];
  const downloads = new Map<string, { data: Buffer; name: string }>();
  let url = '';

  const jwt = (claims: Record<string, unknown>) => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.c2ln`;
  const issue = () => {
    const claims = { exp: Math.floor(Date.now() / 1000) + 3600, azp: 'neptune-cli', iss: `${url}/auth/realms/neptune`, preferred_username: 'tester' };
    const access = jwt({ ...claims, jti: randomBytes(8).toString('hex') });
    const refresh = jwt({ ...claims, typ: 'Refresh', jti: randomBytes(8).toString('hex') });
    accessTokens.add(access);
    refreshTokens.add(refresh);
    return { access, refresh };
  };
  const newToken = () => {
    // standard base64, as both clients decode it
    const token = Buffer.from(JSON.stringify({ api_address: url, api_url: url, api_key: randomBytes(12).toString('hex') })).toString('base64');
    apiTokens.add(token);
    return token;
  };

  const takeFault = (operation: string): Fault | undefined => {
    const entry = faults.find((f) => f.operation === operation && f.left > 0);
    if (!entry) return undefined;
    entry.left -= 1;
    return entry.fault;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const parsed = new URL(req.url ?? '/', url);
    const path = parsed.pathname;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);

    const document = SWAGGER_DOCUMENTS.get(path);
    if (document) return send(res, { json: document });
    if (req.method === 'POST' && path === TOKEN_PATH) {
      const form = new URLSearchParams(body.toString('utf8'));
      if (!refreshTokens.has(form.get('refresh_token') ?? '')) return send(res, { status: 401, json: { error: 'invalid_grant' } });
      const { access, refresh } = issue();
      return send(res, { json: { access_token: access, refresh_token: refresh, token_type: 'bearer', expires_in: 3600 } });
    }
    const download = /^\/downloads\/([\w-]+)$/.exec(path);
    if (req.method === 'GET' && download) {
      const file = downloads.get(download[1]!);
      if (!file) return send(res, { status: 404, json: { title: 'not found' } });
      return send(res, { bytes: file.data, headers: { 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="${file.name}"` } });
    }

    const routed = matchRoute(routes, req.method ?? '', path);
    const operation = routed?.route.operation ?? OPERATION_IDS.get(`${req.method} ${path}`);
    const name = operation ?? `${req.method} ${path}`;
    calls.set(name, (calls.get(name) ?? 0) + 1);
    if (!operation) {
      // the client's notification websocket: a 404 is what it copes with
      if (!path.startsWith('/api/notifications/')) unhandled.push(name);
      return send(res, { status: 404, json: { title: `no endpoint ${name}` } });
    }
    const fault = takeFault(operation);
    if (fault) {
      return send(res, { status: fault.status, json: { title: `injected ${fault.status}`, code: fault.status }, headers: fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {} });
    }
    if (operation === 'exchangeApiToken') {
      if (!apiTokens.has(String(req.headers['x-neptune-api-token'] ?? ''))) return send(res, { status: 401, json: { title: 'Invalid API token' } });
      const { access, refresh } = issue();
      return send(res, { json: { accessToken: access, refreshToken: refresh, username: 'tester' } });
    }
    if (routed ? routed.route.auth : operation !== 'getClientConfig') {
      const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      if (!bearer || !accessTokens.has(bearer)) return send(res, { status: 401, json: { title: 'Unauthorized' } });
    }
    const request: Request = { query: parsed.searchParams, body, headers: req.headers, store, baseUrl: url, downloads, ...(routed?.match ? { match: routed.match } : {}) };
    const handler = routed ? handlers[operation] : LEGACY_HANDLERS[operation];
    if (!handler) throw new Error(`no handler for ${operation}`);
    send(res, await handler(request));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof ApiError) send(res, { status: err.status, json: err.body });
      else {
        // loud: the clients retry a 500 for a minute
        console.error('neptune test server:', err);
        send(res, { status: 500, json: { title: String(err) } });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const token = newToken();

  return {
    url,
    token,
    newToken,
    store,
    scale,
    scaleFile: (project, path) => files.get(project)?.get(path)?.data,
    failNext: (operation, fault) => faults.push({ operation, fault, left: fault.times ?? 1 }),
    calls,
    unhandled,
    clientEnv: (t = token) => ({ NEPTUNE_API_TOKEN: t, OAUTHLIB_INSECURE_TRANSPORT: '1', NEPTUNE_RETRIES_TIMEOUT: '20' }),
    scaleEnv: (t = token) => ({
      NEPTUNE_API_TOKEN: t,
      // neptune-query gives up on a wrong answer after these, not after its 30 min / 1 h defaults
      NEPTUNE_QUERY_RETRY_SOFT_TIMEOUT: '60',
      NEPTUNE_QUERY_RETRY_HARD_TIMEOUT: '120',
      NEPTUNE_HTTP_REQUEST_TIMEOUT_SECONDS: '30',
      NEPTUNE_VERIFY_SSL: 'false',
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent) return;
  const data = reply.bytes ?? Buffer.from(reply.json === undefined || reply.json === null ? '' : JSON.stringify(reply.json));
  res.writeHead(reply.status ?? 200, { 'Content-Type': reply.bytes ? 'application/octet-stream' : 'application/json', ...reply.headers, 'Content-Length': String(data.length) });
  res.end(data);
}
