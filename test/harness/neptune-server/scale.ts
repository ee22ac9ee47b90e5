/**
 * The Neptune 3.x API that neptune-scale 0.30 calls (and neptune-query 1.8 for its bootstrap and
 * downloads), docs/neptune-server-api.md §3: the OpenID discovery document, ingest and its status
 * check (protobuf), signed storage URLs and the storage they point at (this server, provider
 * "aws"). The client config, the token exchange and refresh and the projects endpoints are shared
 * with the 2.x API (legacy.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { decodeMessage, encodeMessage, type CreateRun, type UpdateRunSnapshot } from '../../../src/connectors/neptune-common/scale-proto.js';
import { ApiError, type Handler, type Reply, type Request } from './legacy.js';
import { INGEST_CODE, type IngestCodeName, type IngestRecord, type ScaleStore } from './scale-store.js';

export interface Route {
  operation: string;
  method: string;
  /** an exact path, or a pattern whose groups the handler reads */
  path: string | RegExp;
  /** false for what the clients call without a Bearer token */
  auth: boolean;
}

/** bytes put through signed URLs: `ws/proj` → storage path → file */
export type FileStorage = Map<string, Map<string, { data: Buffer; contentType: string }>>;

export interface ScaleContext {
  scale: ScaleStore;
  files: FileStorage;
  /** signed URL id → what it allows */
  signed: Map<string, { project: string; path: string; permission: 'read' | 'write' }>;
  /** how many checks of each request answer UNAVAILABLE (not processed yet) before its status */
  pendingChecks: number;
}

export const DISCOVERY_PATH = '/auth/realms/neptune/.well-known/openid-configuration';
export const TOKEN_PATH = '/auth/realms/neptune/protocol/openid-connect/token';

export const SCALE_ROUTES: Route[] = [
  { operation: 'openIdDiscovery', method: 'GET', path: DISCOVERY_PATH, auth: false },
  { operation: 'ingest', method: 'POST', path: '/api/client/v1/ingest', auth: true },
  { operation: 'checkStatus', method: 'POST', path: '/api/client/v1/ingest/check', auth: true },
  { operation: 'signedUrl', method: 'POST', path: '/api/storagebridge/v1/signedUrl', auth: true },
  { operation: 'completeMultipartUpload', method: 'POST', path: '/api/storagebridge/v1/s3/completeMultipartUpload', auth: true },
  // signed URLs carry their own permission, as S3's do
  { operation: 'storagePut', method: 'PUT', path: /^\/storage\/([\w-]+)$/, auth: false },
  { operation: 'storageGet', method: 'GET', path: /^\/storage\/([\w-]+)$/, auth: false },
];

/** google.rpc.Code of each refusal in a RequestStatus */
const RPC = { OK: 0, INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, FAILED_PRECONDITION: 9, UNAVAILABLE: 14, INTERNAL: 13 } as const;
const RPC_OF: Partial<Record<IngestCodeName, number>> = {
  PROJECT_NOT_FOUND: RPC.NOT_FOUND,
  RUN_NOT_FOUND: RPC.NOT_FOUND,
  RUN_FORK_PARENT_NOT_FOUND: RPC.NOT_FOUND,
  RUN_DUPLICATE: RPC.ALREADY_EXISTS,
  RUN_CONFLICTING: RPC.ALREADY_EXISTS,
  FIELD_TYPE_CONFLICTING: RPC.FAILED_PRECONDITION,
  SERIES_STEP_NON_INCREASING: RPC.FAILED_PRECONDITION,
  SERIES_TIMESTAMP_DECREASING: RPC.FAILED_PRECONDITION,
  SERIES_STEP_NOT_AFTER_FORK_POINT: RPC.FAILED_PRECONDITION,
  SERIES_PREVIEW_STEP_NOT_AFTER_LAST_COMMITTED_STEP: RPC.FAILED_PRECONDITION,
};

const badRequest = (title: string) => new ApiError(400, { title, code: 400 });

function protobufBody<T>(req: Request, name: string): T {
  try {
    return decodeMessage<T>(name, req.body);
  } catch (err) {
    throw badRequest(`the body is not a ${name}: ${String(err)}`);
  }
}
const protobufReply = (name: string, message: object): Reply => ({ bytes: Buffer.from(encodeMessage(name, message)), headers: { 'Content-Type': 'application/x-protobuf' } });

function jsonBody(req: Request): Record<string, unknown> {
  try {
    const parsed = JSON.parse(req.body.toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw badRequest('the body is not a JSON object');
}

interface RunOperation {
  project: string;
  runId: string;
  createMissingProject?: boolean;
  operation: { case: 'create'; value: CreateRun } | { case: 'update'; value: UpdateRunSnapshot } | { case: 'updateBatch'; value: { snapshots: UpdateRunSnapshot[] } } | { case: undefined };
}

function statusOf(record: IngestRecord, pendingChecks: number): object {
  record.checks += 1;
  if (record.checks <= pendingChecks) return { codeByCount: [{ code: RPC.UNAVAILABLE, count: 1n, detail: INGEST_CODE.OK }] };
  if (record.codes.size === 0) return { codeByCount: [{ code: RPC.OK, count: BigInt(Math.max(1, record.operations)), detail: INGEST_CODE.OK }] };
  return {
    codeByCount: [...record.codes].map(([name, count]) => ({ code: RPC_OF[name as IngestCodeName] ?? RPC.INVALID_ARGUMENT, count: BigInt(count), detail: INGEST_CODE[name as IngestCodeName] })),
  };
}

export function scaleHandlers(ctx: ScaleContext): Record<string, Handler> {
  return {
    openIdDiscovery: (req) => ({
      json: {
        issuer: `${req.baseUrl}/auth/realms/neptune`,
        authorization_endpoint: `${req.baseUrl}/auth/realms/neptune/protocol/openid-connect/auth`,
        token_endpoint: `${req.baseUrl}${TOKEN_PATH}`,
      },
    }),

    ingest: (req) => {
      const op = protobufBody<RunOperation>(req, 'neptune.ingest.v1.pub.RunOperation');
      if (!op.project || !op.runId || !op.operation.case) throw badRequest('a RunOperation needs project, run_id and an operation');
      const snapshots = op.operation.case === 'update' ? [op.operation.value] : op.operation.case === 'updateBatch' ? op.operation.value.snapshots : [];
      const record = ctx.scale.ingest({
        project: op.project,
        runId: op.runId,
        ...(op.createMissingProject ? { createMissingProject: true } : {}),
        ...(op.operation.case === 'create' ? { create: op.operation.value } : {}),
        snapshots,
      });
      return protobufReply('neptune.ingest.v1.pub.SubmitResponse', { requestId: record.requestId, requestIds: [record.requestId] });
    },

    checkStatus: (req) => {
      const list = protobufBody<{ ids: Array<{ value: string }> }>(req, 'neptune.ingest.v1.pub.RequestIdList');
      const statuses = list.ids.map(({ value }) => {
        const record = ctx.scale.requests.get(value);
        // an id this server never gave: Neptune knows nothing of it
        return record ? statusOf(record, ctx.pendingChecks) : { codeByCount: [{ code: RPC.NOT_FOUND, count: 1n, detail: 64 }] };
      });
      return protobufReply('neptune.ingest.v1.pub.BulkRequestStatus', { statuses });
    },

    signedUrl: (req) => {
      const files = jsonBody(req).files;
      if (!Array.isArray(files)) throw badRequest('files must be a list');
      return {
        json: {
          files: files.map((f: Record<string, unknown>) => {
            const path = typeof f.path === 'string' ? f.path : '';
            const project = typeof f.project_identifier === 'string' ? f.project_identifier : '';
            const permission = f.permission === 'write' ? 'write' : f.permission === 'read' ? 'read' : undefined;
            if (!path || !project || !permission) throw badRequest('each file needs path, project_identifier and permission read|write');
            if (!ctx.scale.projects.project(project)) throw new ApiError(404, { title: `project ${project} not found`, code: 404 });
            const id = randomUUID();
            ctx.signed.set(id, { project, path, permission });
            return { path, project_identifier: project, provider: 'aws', url: `${req.baseUrl}/storage/${id}` };
          }),
        },
      };
    },

    // single-part uploads are all this server hands out; a multipart completion has nothing to join
    completeMultipartUpload: () => ({ status: 400, json: { title: 'no multipart upload was started', code: 400 } }),

    storagePut: (req): Reply => {
      const grant = ctx.signed.get(req.match?.[1] ?? '');
      if (grant?.permission !== 'write') return { status: 403, bytes: Buffer.from('<Error><Code>AccessDenied</Code></Error>'), headers: { 'Content-Type': 'application/xml' } };
      const files = ctx.files.get(grant.project) ?? new Map<string, { data: Buffer; contentType: string }>();
      ctx.files.set(grant.project, files);
      files.set(grant.path, { data: req.body, contentType: String(req.headers['content-type'] ?? 'application/octet-stream') });
      return { status: 200, bytes: Buffer.alloc(0), headers: { ETag: `"${createHash('md5').update(req.body).digest('hex')}"` } };
    },

    storageGet: (req): Reply => {
      const grant = ctx.signed.get(req.match?.[1] ?? '');
      if (grant?.permission !== 'read') return { status: 403, bytes: Buffer.from('<Error><Code>AccessDenied</Code></Error>'), headers: { 'Content-Type': 'application/xml' } };
      const file = ctx.files.get(grant.project)?.get(grant.path);
      if (!file) return { status: 404, bytes: Buffer.from('<Error><Code>NoSuchKey</Code></Error>'), headers: { 'Content-Type': 'application/xml' } };
      return { bytes: file.data, headers: { 'Content-Type': file.contentType } };
    },
  };
}

/** The route of a request, if it is one of `routes`, with the groups of its path's pattern. */
export function matchRoute(routes: Route[], method: string, path: string): { route: Route; match?: RegExpExecArray } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    if (typeof route.path === 'string') {
      if (route.path === path) return { route };
    } else {
      const match = route.path.exec(path);
      if (match) return { route, match };
    }
  }
  return undefined;
}
