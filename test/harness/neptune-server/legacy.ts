/**
 * The Neptune 2.x API as the neptune 1.14 client calls it, one handler per operationId of
 * ./swagger.ts (request and reply shapes: docs/neptune-server-api.md §2).
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yazl from 'yazl';
import { nqlMatches, NqlSyntaxError } from './nql.js';
import { applyOperation, attributeDto, comparable, type Attribute, type ArtifactFile, type Container, type NeptuneStore, type Project } from './store.js';

export interface Request {
  query: URLSearchParams;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
  store: NeptuneStore;
  baseUrl: string;
  /** files prepared for download (file set zips), by id */
  downloads: Map<string, { data: Buffer; name: string }>;
  /** the groups of a route whose path is a pattern */
  match?: RegExpExecArray;
}
export interface Reply {
  status?: number;
  json?: unknown;
  bytes?: Buffer;
  headers?: Record<string, string>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.title ?? status));
  }
}

const notFound = (what: string) => new ApiError(404, { title: `${what} not found`, code: 404 });
const json = (req: Request): Record<string, unknown> => JSON.parse(req.body.toString('utf8') || '{}') as Record<string, unknown>;

function project(req: Request, identifier = req.query.get('projectIdentifier')): Project {
  const p = identifier ? req.store.project(identifier) : undefined;
  if (!p) throw notFound(`project ${identifier ?? ''}`);
  return p;
}
function container(req: Request): Container {
  const id = req.query.get('experimentId') ?? req.query.get('experimentIdentifier') ?? '';
  const c = req.store.container(id);
  if (!c) throw notFound(`experiment ${id}`);
  return c;
}
function attribute(req: Request): { c: Container; path: string; a: Attribute } {
  const c = container(req);
  const path = req.query.get('attribute') ?? '';
  const a = req.store.attributes(c).get(path);
  if (!a) throw notFound(`attribute ${path}`);
  return { c, path, a };
}
function typed<T extends Attribute['type']>(a: Attribute, ...types: T[]): Extract<Attribute, { type: T }> {
  if (!(types as string[]).includes(a.type)) throw new ApiError(400, { title: `attribute is a ${a.type}, not ${types.join(' or ')}` });
  return a as Extract<Attribute, { type: T }>;
}

const projectDto = (p: Project, store: NeptuneStore) => ({
  id: p.id,
  name: p.name,
  organizationName: p.workspace,
  organizationId: store.workspaces.get(p.workspace),
  projectKey: p.key,
  version: 2,
  visibility: p.visibility,
  description: p.description,
});
const experimentDto = (c: Container, store: NeptuneStore) => ({
  id: c.id,
  type: c.kind,
  shortId: c.shortId,
  organizationName: c.project.workspace,
  projectName: c.project.name,
  trashed: false,
  projectId: c.project.id,
  organizationId: store.workspaces.get(c.project.workspace),
});

/** uploads in flight: the extension of a file atom arrives with the start only */
const uploads = new Map<string, { ext: string; parts: Map<number, Buffer> }>();

function storeFile(c: Container, path: string, data: Buffer, file: { ext: string } | { subPath: string }): void {
  c.modified = Date.now();
  if ('ext' in file) {
    const leaf = path.split('/').pop()!;
    c.attributes.set(path, { type: 'file', name: file.ext ? `${leaf}.${file.ext}` : leaf, ext: file.ext, data });
    return;
  }
  const existing = c.attributes.get(path);
  const set = existing?.type === 'fileSet' ? existing : { type: 'fileSet' as const, files: new Map<string, Buffer>() };
  set.files.set(file.subPath, data);
  c.attributes.set(path, set);
}

async function untar(gz: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        if (header.type === 'file') files.set(header.name.replace(/^\.\//, ''), Buffer.concat(chunks));
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from([gz]).pipe(createGunzip()).pipe(extract);
  await done;
  return files;
}

async function zip(files: Map<string, Buffer>): Promise<Buffer> {
  const archive = new yazl.ZipFile();
  for (const [name, data] of files) archive.addBuffer(data, name);
  archive.end();
  const chunks: Buffer[] = [];
  for await (const c of archive.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function sortValue(attributes: Map<string, Attribute>, path: string): string | number {
  const a = attributes.get(path);
  if (!a) return '';
  if (a.type === 'datetime') return a.value;
  const v = comparable(a);
  return typeof v === 'number' ? v : String(v ?? '');
}

function createProjectByWorkspaceName(req: Request, b: Record<string, unknown>): Reply {
  const workspace = String(b.organizationIdentifier);
  // plain text: neptune-scale matches it (`Organization .* not found`)
  if (!req.store.workspaces.has(workspace)) return { status: 404, bytes: Buffer.from(`Organization ${workspace} not found`), headers: { 'Content-Type': 'text/plain' } };
  const name = typeof b.name === 'string' ? b.name : '';
  if (!/^[\w.-]{3,}$/.test(name)) throw new ApiError(400, { title: 'Validation failed', message: `invalid project name "${name}"`, code: 400 });
  if (req.store.project(`${workspace}/${name}`)) return { status: 409, json: { title: 'Conflict', message: `project ${workspace}/${name} already exists`, code: 409 } };
  const p = req.store.addProject(workspace, name, typeof b.projectKey === 'string' && b.projectKey ? b.projectKey : undefined, typeof b.visibility === 'string' ? b.visibility : 'priv', typeof b.description === 'string' ? b.description : '');
  return { json: projectDto(p, req.store) };
}

export type Handler = (req: Request) => Reply | Promise<Reply>;

export const LEGACY_HANDLERS: Record<string, Handler> = {
  getClientConfig: (req) => ({
    json: {
      apiUrl: req.baseUrl,
      applicationUrl: req.baseUrl,
      pyLibVersions: { minRecommendedVersion: '1.0.0', minCompatibleVersion: '1.0.0', maxCompatibleVersion: '1.99.0' },
      multiPartUpload: { enabled: true, minChunkSize: 5 * 2 ** 20, maxChunkSize: 2 ** 30, maxChunkCount: 1000, maxSinglePartSize: 5 * 2 ** 20 },
      artifacts: { enabled: true, apiVersion: 2 },
      sysNameSetByBackend: false,
      // what neptune-scale and neptune-query bootstrap from (3.x)
      security: { clientId: 'neptune-cli', openIdDiscovery: `${req.baseUrl}/auth/realms/neptune/.well-known/openid-configuration` },
    },
  }),

  getProject: (req) => ({ json: projectDto(project(req), req.store) }),
  listProjects: (req) => {
    const workspace = req.query.get('organizationIdentifier');
    const term = req.query.get('searchTerm');
    const entries = [...req.store.projects.values()].filter((p) => (!workspace || p.workspace === workspace) && (!term || p.name.includes(term))).map((p) => projectDto(p, req.store));
    return { json: { entries, matchingItemCount: entries.length, totalItemCount: entries.length } };
  },
  listOrganizations: (req) => ({ json: [...req.store.workspaces].map(([name, id]) => ({ id, name })) }),
  createProject: (req) => {
    const b = json(req);
    // neptune-scale names the workspace, and expects 409 for a project that exists (3.x)
    if (typeof b.organizationIdentifier === 'string') return createProjectByWorkspaceName(req, b);
    const workspace = [...req.store.workspaces].find(([, id]) => id === b.organizationId)?.[0];
    if (!workspace) throw notFound(`organization ${String(b.organizationId)}`);
    const name = String(b.name);
    if (req.store.project(`${workspace}/${name}`)) {
      throw new ApiError(400, { title: 'Validation failed', validationErrors: [{ path: 'name', errors: [{ errorCode: { name: 'ERR_NOT_UNIQUE' } }] }] });
    }
    const p = req.store.addProject(workspace, name, typeof b.projectKey === 'string' ? b.projectKey : undefined, typeof b.visibility === 'string' ? b.visibility : 'priv', typeof b.description === 'string' ? b.description : '');
    return { json: projectDto(p, req.store) };
  },

  createExperiment: (req) => {
    const b = json(req);
    const p = project(req, String(b.projectIdentifier));
    const git = b.gitInfo as { commit?: { commitId?: string } } | null | undefined;
    const c = req.store.createRun(p, typeof b.customId === 'string' ? b.customId : undefined, git?.commit?.commitId);
    return { json: experimentDto(c, req.store) };
  },
  getExperiment: (req) => ({ json: experimentDto(container(req), req.store) }),
  ping: (req) => {
    container(req).pinged = Date.now();
    return { json: null };
  },
  executeOperations: (req) => {
    const c = container(req);
    const ops = JSON.parse(req.body.toString('utf8')) as Array<Record<string, unknown> & { path: string }>;
    const errors = ops.map((op) => applyOperation(c, op)).filter((e): e is string => e !== undefined);
    return { json: errors.map((errorDescription) => ({ errorDescription })) };
  },
  getExperimentAttributes: (req) => {
    const c = container(req);
    return { json: { id: c.id, type: c.kind, attributes: [...req.store.attributes(c)].map(([name, a]) => attributeDto(name, a)) } };
  },

  getFloatAttribute: (req) => ({ json: { value: typed(attribute(req).a, 'float').value } }),
  getIntAttribute: (req) => ({ json: { value: typed(attribute(req).a, 'int').value } }),
  getBoolAttribute: (req) => ({ json: { value: typed(attribute(req).a, 'bool').value } }),
  getStringAttribute: (req) => ({ json: { value: typed(attribute(req).a, 'string').value } }),
  getDatetimeAttribute: (req) => ({ json: { value: new Date(typed(attribute(req).a, 'datetime').value).toISOString() } }),
  getStringSetAttribute: (req) => ({ json: { values: typed(attribute(req).a, 'stringSet').values } }),
  getArtifactAttribute: (req) => ({ json: { hash: typed(attribute(req).a, 'artifact').hash } }),
  getFileAttribute: (req) => {
    const a = typed(attribute(req).a, 'file');
    return { json: { name: a.name, ext: a.ext, size: a.data.length } };
  },
  getFloatSeriesAttribute: (req) => ({ json: { last: typed(attribute(req).a, 'floatSeries').points.at(-1)?.value ?? null } }),
  getStringSeriesAttribute: (req) => ({ json: { last: typed(attribute(req).a, 'stringSeries').points.at(-1)?.value ?? null } }),
  getFloatSeriesValues: (req) => seriesPage(req, 'floatSeries'),
  getStringSeriesValues: (req) => seriesPage(req, 'stringSeries'),
  getImageSeriesValues: (req) => {
    const points = typed(attribute(req).a, 'imageSeries').points;
    const offset = Number(req.query.get('offset') ?? 0);
    const limit = Number(req.query.get('limit') ?? 1000);
    const values = points.slice(offset, offset + limit).map((p) => ({ step: p.step, timestampMillis: p.timestampMillis, value: { name: p.name ?? null, description: p.description ?? null } }));
    return { json: { totalItemCount: points.length, values } };
  },
  getImageSeriesValue: (req) => {
    const point = typed(attribute(req).a, 'imageSeries').points[Number(req.query.get('index'))];
    if (!point) throw notFound('image');
    return { bytes: point.data, headers: { 'Content-Type': 'image/png' } };
  },
  downloadAttribute: (req) => {
    const a = typed(attribute(req).a, 'file');
    return { bytes: a.data, headers: { 'Content-Type': 'application/octet-stream', 'Content-Disposition': `attachment; filename="${a.name}"` } };
  },
  prepareForDownloadFileSetAttributeZip: async (req) => {
    const { path, a } = attribute(req);
    const id = randomUUID();
    req.downloads.set(id, { data: await zip(typed(a, 'fileSet').files), name: `${path.split('/').pop()}.zip` });
    return { json: { id, downloadUrl: null } };
  },
  getDownloadPrepareRequest: (req) => {
    const id = req.query.get('id') ?? '';
    if (!req.downloads.has(id)) throw notFound(`download ${id}`);
    return { json: { id, downloadUrl: `${req.baseUrl}/downloads/${id}` } };
  },
  lsFileSetAttribute: (req) => {
    const files = typed(attribute(req).a, 'fileSet').files;
    const under = (req.query.get('path') ?? '').replace(/\/$/, '');
    const entries = [...files].filter(([name]) => !under || name.startsWith(`${under}/`));
    return { json: entries.map(([name, data]) => ({ name: under ? name.slice(under.length + 1) : name, size: data.length, mtime: new Date().toISOString(), fileType: 'file' })) };
  },

  searchLeaderboardAttributes: (req) => {
    const p = project(req);
    const search = req.query.get('search') ?? '';
    const names = new Map<string, string>();
    for (const run of req.store.runs(p)) for (const [name, a] of req.store.attributes(run)) if (name.includes(search)) names.set(name, a.type);
    return { json: { entries: [...names].sort().map(([name, type]) => ({ name, type })) } };
  },
  searchLeaderboardEntries: (req) => {
    const p = project(req);
    const b = json(req) as { query?: { query?: string }; sorting?: { dir?: string; sortBy?: { name?: string } }; pagination?: { limit?: number; offset?: number }; attributeFilters?: Array<{ path: string }> };
    const types = req.query.getAll('type');
    let rows: Array<{ c: Container; attributes: Map<string, Attribute> }>;
    try {
      rows = [...req.store.containers.values()]
        .filter((c) => c.project === p && (types.length === 0 || types.includes(c.kind)))
        .map((c) => ({ c, attributes: req.store.attributes(c) }))
        .filter((r) => nqlMatches(b.query?.query, r.attributes));
    } catch (err) {
      if (err instanceof NqlSyntaxError) throw new ApiError(400, { title: 'Syntax error', message: err.message });
      throw err;
    }
    const sortBy = b.sorting?.sortBy?.name ?? 'sys/creation_time';
    const sign = b.sorting?.dir === 'descending' ? -1 : 1;
    rows.sort((x, y) => {
      const [a, c] = [sortValue(x.attributes, sortBy), sortValue(y.attributes, sortBy)];
      return a < c ? -sign : a > c ? sign : x.c.shortId.localeCompare(y.c.shortId, 'en', { numeric: true });
    });
    const offset = b.pagination?.offset ?? 0;
    const limit = b.pagination?.limit ?? 100;
    const columns = b.attributeFilters?.map((f) => f.path);
    const entries = rows.slice(offset, offset + limit).map(({ c, attributes }) => ({
      experimentId: c.id,
      type: c.kind,
      attributes: [...attributes].filter(([name]) => !columns || columns.includes(name)).map(([name, a]) => attributeDto(name, a)),
    }));
    return { json: { matchingItemCount: rows.length, totalItemCount: rows.length, entries } };
  },

  fileAtomUpload: (req) => {
    storeFile(container(req), req.query.get('attribute') ?? '', req.body, { ext: req.query.get('ext') ?? '' });
    return { json: { errors: [] } };
  },
  fileSetFileUpload: (req) => {
    storeFile(container(req), req.query.get('attribute') ?? '', req.body, { subPath: req.query.get('subPath') ?? '' });
    return { json: { errors: [] } };
  },
  fileAtomMultipartUploadStart: (req) => startUpload(req),
  fileSetFileMultipartUploadStart: (req) => startUpload(req),
  fileAtomMultipartUploadPart: (req) => uploadPart(req),
  fileSetFileMultipartUploadPart: (req) => uploadPart(req),
  fileAtomMultipartUploadFinish: (req) => finishUpload(req, (data, ext) => ({ ext })),
  fileSetFileMultipartUploadFinish: (req) => finishUpload(req, () => ({ subPath: req.query.get('subPath') ?? '' })),
  uploadFileSetAttributeTar: async (req) => {
    const c = container(req);
    const path = req.query.get('attribute') ?? '';
    const existing = c.attributes.get(path);
    const set = existing?.type === 'fileSet' && req.query.get('reset') !== 'True' ? existing : { type: 'fileSet' as const, files: new Map<string, Buffer>() };
    for (const [name, data] of await untar(req.body)) set.files.set(name, data);
    c.attributes.set(path, set);
    c.modified = Date.now();
    return { json: { errors: [] } };
  },

  createNewArtifact: (req) => {
    const hash = req.query.get('hash') ?? '';
    const key = `${project(req).id}:${hash}`;
    return { json: { artifactHash: hash, size: Number(req.query.get('size') ?? 0), receivedMetadata: req.store.artifacts.has(key) } };
  },
  uploadArtifactFilesMetadata: (req) => artifactFiles(req),
  createArtifactVersion: (req) => artifactFiles(req),
  listArtifactFiles: (req) => {
    const files = req.store.artifacts.get(`${project(req).id}:${req.query.get('hash') ?? ''}`);
    if (!files) throw notFound('artifact');
    return { json: { files } };
  },
};

function seriesPage(req: Request, type: 'floatSeries' | 'stringSeries'): Reply {
  const points = typed(attribute(req).a, type).points;
  const offset = Number(req.query.get('offset') ?? 0);
  const limit = Number(req.query.get('limit') ?? 1000);
  return { json: { totalItemCount: points.length, values: points.slice(offset, offset + limit) } };
}

function startUpload(req: Request): Reply {
  container(req);
  const uploadId = randomUUID();
  uploads.set(uploadId, { ext: req.query.get('ext') ?? '', parts: new Map() });
  return { json: { uploadId, errors: [] } };
}

function uploadPart(req: Request): Reply {
  const upload = uploads.get(req.query.get('uploadId') ?? '');
  if (!upload) throw notFound('upload');
  upload.parts.set(Number(req.query.get('uploadPartIdx')), req.body);
  return { json: { errors: [] } };
}

function finishUpload(req: Request, file: (data: Buffer, ext: string) => { ext: string } | { subPath: string }): Reply {
  const id = req.query.get('uploadId') ?? '';
  const upload = uploads.get(id);
  if (!upload) throw notFound('upload');
  uploads.delete(id);
  const data = Buffer.concat([...upload.parts].sort(([a], [b]) => a - b).map(([, part]) => part));
  storeFile(container(req), req.query.get('attribute') ?? '', data, file(data, upload.ext));
  return { json: { errors: [] } };
}

function artifactFiles(req: Request): Reply {
  const hash = req.query.get('hash') ?? '';
  const files = ((json(req).files ?? []) as ArtifactFile[]).map((f) => ({ filePath: f.filePath, fileHash: f.fileHash, type: f.type, ...(f.size !== undefined ? { size: f.size } : {}), metadata: f.metadata ?? [] }));
  req.store.artifacts.set(`${project(req).id}:${hash}`, files);
  return { json: { artifactHash: hash, size: files.reduce((n, f) => n + (f.size ?? 0), 0), receivedMetadata: true } };
}
