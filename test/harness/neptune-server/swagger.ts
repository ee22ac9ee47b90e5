/**
 * The Swagger 2.0 documents the Neptune 2.x client (neptune 1.14, bravado) downloads at start and
 * builds its whole API from: `/api/backend/swagger.json`, `/api/leaderboard/swagger.json`,
 * `/api/artifacts/swagger.json`. The client goes by operationId, parameter names and the
 * models it reads by attribute; paths are taken from here. No `host` or `schemes`: bravado then
 * calls the host it fetched the document from. The paths follow Neptune's public spec where
 * there is one (docs/neptune-server-api.md §2); the artifacts API's are not public and are ours.
 */

type Schema = Record<string, unknown>;
interface Param {
  name: string;
  in: 'query' | 'header' | 'body';
  required: false;
  type?: string;
  items?: Schema;
  collectionFormat?: string;
  schema?: Schema;
}
export interface Operation {
  id: string;
  method: 'GET' | 'POST';
  path: string;
  params: Param[];
  response?: Schema;
}

const query = (name: string, type = 'string'): Param => ({ name, in: 'query', required: false, type });
/** an array sent as repeated query parameters (`type=run&type=model`) */
const queryList = (name: string): Param => ({ name, in: 'query', required: false, type: 'array', items: { type: 'string' }, collectionFormat: 'multi' });
const header = (name: string): Param => ({ name, in: 'header', required: false, type: 'string' });
const body = (name: string, schema: Schema = { type: 'object' }): Param => ({ name, in: 'body', required: false, schema });
const ref = (model: string): Schema => ({ $ref: `#/definitions/${model}` });
const list = (items: Schema): Schema => ({ type: 'array', items });
const model = (properties: Record<string, Schema>): Schema => ({ type: 'object', properties });
const S = { type: 'string' };
const N = { type: 'number' };
const I = { type: 'integer' };
const B = { type: 'boolean' };
const DATE = { type: 'string', format: 'date-time' };
const FILE = { type: 'file' };

const BACKEND_MODELS = {
  ClientConfig: model({ apiUrl: S, applicationUrl: S, pyLibVersions: ref('PyLibVersions'), multiPartUpload: ref('MultiPartUpload'), artifacts: ref('ArtifactsConfig'), sysNameSetByBackend: B }),
  PyLibVersions: model({ minRecommendedVersion: S, minCompatibleVersion: S, maxCompatibleVersion: S }),
  MultiPartUpload: model({ enabled: B, minChunkSize: I, maxChunkSize: I, maxChunkCount: I, maxSinglePartSize: I }),
  ArtifactsConfig: model({ enabled: B, apiVersion: I }),
  OAuthToken: model({ accessToken: S, refreshToken: S, username: S }),
  Project: model({ id: S, name: S, organizationName: S, organizationId: S, projectKey: S, version: I, visibility: S, description: S }),
  ProjectList: model({ entries: list(ref('Project')), matchingItemCount: I, totalItemCount: I }),
  Organization: model({ id: S, name: S }),
  ValidationErrors: model({ validationErrors: list(ref('ValidationError')) }),
  ValidationError: model({ path: S, errors: list(ref('ErrorWithCode')) }),
  ErrorWithCode: model({ errorCode: ref('ErrorCode') }),
  ErrorCode: model({ name: S }),
};

const BACKEND: Operation[] = [
  { id: 'getClientConfig', method: 'GET', path: '/api/backend/v1/clients/config', params: [header('X-Neptune-Api-Token'), query('alpha')], response: ref('ClientConfig') },
  { id: 'exchangeApiToken', method: 'GET', path: '/api/backend/v1/authorization/oauth-token', params: [header('X-Neptune-Api-Token')], response: ref('OAuthToken') },
  { id: 'getProject', method: 'GET', path: '/api/backend/v1/projects/get', params: [query('projectIdentifier')], response: ref('Project') },
  {
    id: 'listProjects',
    method: 'GET',
    path: '/api/backend/v1/projects',
    params: [query('limit', 'integer'), query('offset', 'integer'), query('organizationIdentifier'), query('searchTerm'), queryList('sortBy'), queryList('sortDirection'), query('userRelation')],
    response: ref('ProjectList'),
  },
  { id: 'listOrganizations', method: 'GET', path: '/api/backend/v1/myOrganizations', params: [], response: list(ref('Organization')) },
  { id: 'createProject', method: 'POST', path: '/api/backend/v1/projects', params: [body('projectToCreate')], response: ref('Project') },
];

const EXPERIMENT_ATTRIBUTE = [query('experimentId'), query('attribute')];
const PAGE = [query('limit', 'integer'), query('offset', 'integer')];
const UPLOAD = [query('experimentIdentifier'), query('attribute')];

const LEADERBOARD_MODELS = {
  Experiment: model({ id: S, type: S, shortId: S, organizationName: S, projectName: S, trashed: B, projectId: S, organizationId: S }),
  OperationError: model({ errorDescription: S }),
  OperationErrors: model({ errors: list(ref('OperationError')) }),
  UploadStarted: model({ uploadId: S, errors: list(ref('OperationError')) }),
  FloatValue: model({ value: N }),
  IntValue: model({ value: I }),
  BoolValue: model({ value: B }),
  StringValue: model({ value: S }),
  DatetimeValue: model({ value: DATE }),
  FloatSeriesLast: model({ last: N }),
  StringSeriesLast: model({ last: S }),
  StringSetValues: model({ values: list(S) }),
  FileValue: model({ name: S, ext: S, size: I }),
  ArtifactValue: model({ hash: S }),
  Attribute: model({
    name: S,
    type: S,
    floatProperties: ref('FloatValue'),
    intProperties: ref('IntValue'),
    boolProperties: ref('BoolValue'),
    stringProperties: ref('StringValue'),
    datetimeProperties: ref('DatetimeValue'),
    experimentStateProperties: ref('StringValue'),
    notebookRefProperties: ref('StringValue'),
    floatSeriesProperties: ref('FloatSeriesLast'),
    stringSeriesProperties: ref('StringSeriesLast'),
    stringSetProperties: ref('StringSetValues'),
    fileProperties: ref('FileValue'),
    artifactProperties: ref('ArtifactValue'),
  }),
  ExperimentAttributes: model({ id: S, type: S, attributes: list(ref('Attribute')) }),
  Point: model({ timestampMillis: I, step: N, value: {} }),
  SeriesValues: model({ totalItemCount: I, values: list(ref('Point')) }),
  ImageSeriesValues: model({ totalItemCount: I, values: list(ref('ImagePoint')) }),
  ImagePoint: model({ step: N, timestampMillis: I, value: ref('ImageValue') }),
  ImageValue: model({ name: S, description: S }),
  DownloadPrepareRequest: model({ id: S, downloadUrl: S }),
  FileEntry: model({ name: S, size: I, mtime: DATE, fileType: S }),
  AttributeDefinition: model({ name: S, type: S }),
  AttributeDefinitions: model({ entries: list(ref('AttributeDefinition')) }),
};

const LEADERBOARD: Operation[] = [
  { id: 'createExperiment', method: 'POST', path: '/api/leaderboard/v1/experiments', params: [body('experimentCreationParams'), header('X-Neptune-CliVersion')], response: ref('Experiment') },
  { id: 'getExperiment', method: 'GET', path: '/api/leaderboard/v1/experiments', params: [query('experimentId')], response: ref('Experiment') },
  { id: 'ping', method: 'POST', path: '/api/leaderboard/v1/attributes/ping', params: [query('experimentId')] },
  { id: 'executeOperations', method: 'POST', path: '/api/leaderboard/v1/attributes/operations', params: [query('experimentId'), body('operations', list({ type: 'object' }))], response: list(ref('OperationError')) },
  { id: 'getExperimentAttributes', method: 'GET', path: '/api/leaderboard/v1/attributes', params: [query('experimentId')], response: ref('ExperimentAttributes') },
  { id: 'getFloatAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/floats', params: EXPERIMENT_ATTRIBUTE, response: ref('FloatValue') },
  { id: 'getIntAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/integers', params: EXPERIMENT_ATTRIBUTE, response: ref('IntValue') },
  { id: 'getBoolAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/booleans', params: EXPERIMENT_ATTRIBUTE, response: ref('BoolValue') },
  { id: 'getStringAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/strings', params: EXPERIMENT_ATTRIBUTE, response: ref('StringValue') },
  { id: 'getDatetimeAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/datetimes', params: EXPERIMENT_ATTRIBUTE, response: ref('DatetimeValue') },
  { id: 'getFileAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/files', params: EXPERIMENT_ATTRIBUTE, response: ref('FileValue') },
  { id: 'getStringSetAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/stringSets', params: EXPERIMENT_ATTRIBUTE, response: ref('StringSetValues') },
  { id: 'getFloatSeriesAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/floatSeries', params: EXPERIMENT_ATTRIBUTE, response: ref('FloatSeriesLast') },
  { id: 'getStringSeriesAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/stringSeries', params: EXPERIMENT_ATTRIBUTE, response: ref('StringSeriesLast') },
  { id: 'getArtifactAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/artifacts', params: EXPERIMENT_ATTRIBUTE, response: ref('ArtifactValue') },
  { id: 'getFloatSeriesValues', method: 'GET', path: '/api/leaderboard/v1/attributes/series/float', params: [...EXPERIMENT_ATTRIBUTE, ...PAGE], response: ref('SeriesValues') },
  { id: 'getStringSeriesValues', method: 'GET', path: '/api/leaderboard/v1/attributes/series/string', params: [...EXPERIMENT_ATTRIBUTE, ...PAGE], response: ref('SeriesValues') },
  { id: 'getImageSeriesValues', method: 'GET', path: '/api/leaderboard/v1/attributes/series/image', params: [...EXPERIMENT_ATTRIBUTE, ...PAGE], response: ref('ImageSeriesValues') },
  { id: 'getImageSeriesValue', method: 'GET', path: '/api/leaderboard/v1/attributes/series/image/single', params: [...EXPERIMENT_ATTRIBUTE, query('index', 'integer')], response: FILE },
  { id: 'downloadAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/download', params: EXPERIMENT_ATTRIBUTE, response: FILE },
  { id: 'prepareForDownloadFileSetAttributeZip', method: 'POST', path: '/api/leaderboard/v1/attributes/downloadFileSetZipRequest', params: EXPERIMENT_ATTRIBUTE, response: ref('DownloadPrepareRequest') },
  { id: 'getDownloadPrepareRequest', method: 'GET', path: '/api/leaderboard/v1/download/downloadRequest', params: [query('id')], response: ref('DownloadPrepareRequest') },
  { id: 'lsFileSetAttribute', method: 'GET', path: '/api/leaderboard/v1/attributes/ls', params: [...EXPERIMENT_ATTRIBUTE, query('path')], response: list(ref('FileEntry')) },
  { id: 'searchLeaderboardAttributes', method: 'POST', path: '/api/leaderboard/v1/leaderboard/attributes/search', params: [query('projectIdentifier'), query('search'), queryList('type'), body('params')], response: ref('AttributeDefinitions') },
  // the client reads this one's JSON as it comes
  { id: 'searchLeaderboardEntries', method: 'POST', path: '/api/leaderboard/v1/leaderboard/entries/search', params: [query('projectIdentifier'), queryList('type'), body('params')], response: { type: 'object' } },
  // raw bodies: the client takes only the path of these, or calls start and finish through bravado
  { id: 'fileAtomUpload', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/file/upload', params: [...UPLOAD, query('ext')], response: ref('OperationErrors') },
  { id: 'fileAtomMultipartUploadStart', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/file/upload/start', params: [...UPLOAD, query('ext'), query('totalLength', 'integer')], response: ref('UploadStarted') },
  { id: 'fileAtomMultipartUploadPart', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/file/upload/part', params: [...UPLOAD, query('uploadId'), query('uploadPartIdx', 'integer')], response: ref('OperationErrors') },
  { id: 'fileAtomMultipartUploadFinish', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/file/upload/finish', params: [...UPLOAD, query('uploadId')], response: ref('OperationErrors') },
  { id: 'fileSetFileUpload', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/fileset/upload', params: [...UPLOAD, query('subPath')], response: ref('OperationErrors') },
  { id: 'fileSetFileMultipartUploadStart', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/fileset/upload/start', params: [...UPLOAD, query('subPath'), query('totalLength', 'integer')], response: ref('UploadStarted') },
  { id: 'fileSetFileMultipartUploadPart', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/fileset/upload/part', params: [...UPLOAD, query('subPath'), query('uploadId'), query('uploadPartIdx', 'integer')], response: ref('OperationErrors') },
  { id: 'fileSetFileMultipartUploadFinish', method: 'POST', path: '/api/leaderboard/v1/attributes/storage/fileset/upload/finish', params: [...UPLOAD, query('subPath'), query('uploadId')], response: ref('OperationErrors') },
  { id: 'uploadFileSetAttributeTar', method: 'POST', path: '/api/leaderboard/v1/attributes/uploadFileSetTar', params: [query('experimentId'), query('attribute'), query('reset')], response: ref('OperationErrors') },
];

const ARTIFACT_MODELS = {
  Artifact: model({ artifactHash: S, size: I, receivedMetadata: B }),
  ArtifactMetadata: model({ key: S, value: S }),
  ArtifactFile: model({ filePath: S, fileHash: S, type: S, size: I, metadata: list(ref('ArtifactMetadata')) }),
  ArtifactFiles: model({ files: list(ref('ArtifactFile')) }),
};

const ARTIFACTS: Operation[] = [
  { id: 'createNewArtifact', method: 'POST', path: '/api/artifacts/v1/artifacts', params: [query('projectIdentifier'), query('hash'), query('size', 'integer'), query('parentIdentifier')], response: ref('Artifact') },
  { id: 'uploadArtifactFilesMetadata', method: 'POST', path: '/api/artifacts/v1/artifacts/files', params: [query('projectIdentifier'), query('hash'), body('artifactFilesDTO')], response: ref('Artifact') },
  { id: 'createArtifactVersion', method: 'POST', path: '/api/artifacts/v1/artifacts/version', params: [query('projectIdentifier'), query('hash'), query('parentIdentifier'), body('artifactFilesDTO')], response: ref('Artifact') },
  { id: 'listArtifactFiles', method: 'GET', path: '/api/artifacts/v1/artifacts/files', params: [query('projectIdentifier'), query('hash')], response: ref('ArtifactFiles') },
];

function document(operations: Operation[], definitions: Record<string, Schema>): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const op of operations) {
    const responses = { '200': { description: 'OK', ...(op.response ? { schema: op.response } : {}) } };
    (paths[op.path] ??= {})[op.method.toLowerCase()] = { operationId: op.id, parameters: op.params, consumes: ['application/json'], produces: ['application/json'], responses };
  }
  return { swagger: '2.0', info: { title: 'Neptune-shaped test server', version: '1' }, basePath: '/', paths, definitions };
}

/** path → document */
export const SWAGGER_DOCUMENTS: ReadonlyMap<string, Schema> = new Map([
  ['/api/backend/swagger.json', document(BACKEND, BACKEND_MODELS)],
  ['/api/leaderboard/swagger.json', document(LEADERBOARD, LEADERBOARD_MODELS)],
  ['/api/artifacts/swagger.json', document(ARTIFACTS, ARTIFACT_MODELS)],
]);

/** `METHOD /path` → operationId */
export const OPERATION_IDS: ReadonlyMap<string, string> = new Map([...BACKEND, ...LEADERBOARD, ...ARTIFACTS].map((op) => [`${op.method} ${op.path}`, op.id]));
