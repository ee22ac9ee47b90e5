/**
 * Unity Catalog's model registry (`/api/2.0/mlflow/unity-catalog/...`), read and written.
 *
 * Differences from MLflow's workspace registry that matter here: names have three levels
 * (`catalog.schema.model`); there are no stages (the engine turns stages into aliases); and a
 * version keeps its own copy of the model's files. Creating one is: create (PENDING_REGISTRATION,
 * with a storage location) → temporary credentials → upload the files → finalize (READY).
 * Files go through signed URLs (`/api/2.0/fs/create-upload-url`) in Databricks' default
 * storage, or with the temporary credentials to storage on S3 (SigV4, with the server-side
 * encryption the credentials ask for), Azure Data Lake (the user-delegation SAS) or GCS (the
 * OAuth token, XML API). A version that is READY already was finalized after all its files were
 * uploaded: its files are not written again.
 */
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { ArtifactFile, ModelSource, ModelStage, ModelVersion, RegisteredModel } from '../../model/index.js';
import { SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../../model/index.js';
import { InvalidInputError, UsageError } from '../../util/errors.js';
import { HttpError } from '../../util/http.js';
import { readSmall } from '../../util/streams.js';
import { SignedUrlClient } from '../../util/signed-url.js';
import { putS3 } from '../../util/s3.js';
import { isNotFound, type MlflowApi } from '../mlflow-common/client.js';
import { toRegisteredModel } from '../mlflow-common/registry.js';
import { parseVersionSource } from '../mlflow-common/version-source.js';
import { getRun, int64 } from '../mlflow-common/schemas.js';
import type { ExistingVersion, RegistryReader, RegistryWriter, VersionTarget } from '../types.js';
import { headersOf } from './artifacts.js';

const UC = 'unity-catalog/';
const PAGE = 1000;

const keyValues = z.array(z.object({ key: z.string(), value: z.string().default('') })).default([]);
const ucVersion = z.object({
  name: z.string(),
  version: z.union([z.string(), z.number()]).transform(String),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  user_id: z.string().optional(),
  description: z.string().optional(),
  source: z.string().default(''),
  run_id: z.string().optional(),
  status: z.string().default('READY'),
  storage_location: z.string().optional(),
  aliases: z.array(z.object({ alias: z.string(), version: z.union([z.string(), z.number()]).transform(String) })).default([]),
  tags: keyValues,
  model_id: z.string().optional(),
});
type UcVersion = z.infer<typeof ucVersion>;
const ucModel = z.object({
  name: z.string(),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  description: z.string().optional(),
  aliases: z.array(z.object({ alias: z.string(), version: z.union([z.string(), z.number()]).transform(String) })).default([]),
  tags: keyValues,
});
const temporaryCredentials = z.object({
  credentials: z.object({
    storage_mode: z.string().optional(),
    aws_temp_credentials: z.object({ access_key_id: z.string(), secret_access_key: z.string(), session_token: z.string().optional() }).optional(),
    azure_user_delegation_sas: z.object({ sas_token: z.string() }).optional(),
    gcp_oauth_token: z.object({ oauth_token: z.string() }).optional(),
    r2_temp_credentials: z.object({}).passthrough().optional(),
    encryption_details: z
      .object({ sse_encryption_details: z.object({ algorithm: z.string().optional(), aws_kms_key_arn: z.string().optional() }).optional() })
      .optional(),
  }),
});
type TemporaryCredentials = z.infer<typeof temporaryCredentials>['credentials'];
const uploadUrl = z.object({ url: z.string().url(), headers: z.array(z.object({ name: z.string(), value: z.string().default('') })).default([]) });
const empty = z.object({}).passthrough();

const toTags = (list: Array<{ key: string; value: string }>) => Object.fromEntries(list.map((t) => [t.key, t.value]));
const tagList = (tags: Record<string, string>) => Object.entries(tags).map(([key, value]) => ({ key, value }));
const quote = (value: string) => `'${value.replace(/'/g, "\\'")}'`;

/**
 * What Unity Catalog asks of a model's MLmodel file before it registers it (as MLflow's client
 * checks): a signature with both inputs and outputs. Returns the problem, or undefined.
 */
export function signatureProblem(mlmodel: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = parseYaml(mlmodel);
  } catch (err) {
    return `its MLmodel file is not YAML (${(err as Error).message.split('\n')[0]})`;
  }
  const signature = (parsed as { signature?: { inputs?: unknown; outputs?: unknown } } | null)?.signature;
  if (!signature) return 'its MLmodel has no signature';
  if (!signature.inputs) return 'its MLmodel signature has no inputs';
  if (!signature.outputs) return 'its MLmodel signature has inputs only, no outputs';
  return undefined;
}

/** The S3 headers for the server-side encryption Unity Catalog asks for (as MLflow's client sets them). */
export function sseHeaders(credentials: { encryption_details?: { sse_encryption_details?: { algorithm?: string; aws_kms_key_arn?: string } } }): Record<string, string> {
  const sse = credentials.encryption_details?.sse_encryption_details;
  if (sse?.algorithm === 'AWS_SSE_S3') return { 'x-amz-server-side-encryption': 'AES256' };
  if (sse?.algorithm === 'AWS_SSE_KMS') {
    return { 'x-amz-server-side-encryption': 'aws:kms', ...(sse.aws_kms_key_arn ? { 'x-amz-server-side-encryption-aws-kms-key-id': sse.aws_kms_key_arn } : {}) };
  }
  return {};
}

/** Unity Catalog names have three levels: refuse anything else before a call does. */
export function checkThreeLevelName(name: string): void {
  if (name.split('.').length !== 3 || name.split('.').some((part) => !part)) {
    throw new UsageError(`"${name}" is not a Unity Catalog model name: it needs three levels, catalog.schema.model; choose one with --dst-model`);
  }
}

interface Pending {
  storage: string;
  /** finalized already: its files are in place */
  ready: boolean;
  /** asked for once per version, however many files go up at once */
  credentials?: Promise<TemporaryCredentials>;
}

export class UcRegistry implements RegistryReader, RegistryWriter {
  readonly hasStages = false;
  /** versions being written: where their files go */
  private readonly pending = new Map<string, Promise<Pending>>();

  /**
   * `env`: AWS_REGION and AWS_ENDPOINT_URL_S3 for versions stored on S3. `signed`: the client
   * for signed URLs and storage endpoints (shared with the workspace's artifacts; closed there).
   */
  constructor(
    private readonly api: MlflowApi,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly signed: SignedUrlClient = new SignedUrlClient(),
  ) {}

  /** Refuses a name that is not catalog.schema.model before anything is written. */
  checkModelName(name: string): void {
    checkThreeLevelName(name);
  }

  // reading

  private toModel(raw: z.infer<typeof ucModel>): RegisteredModel {
    return toRegisteredModel(raw);
  }

  async *listModels(): AsyncIterable<RegisteredModel> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.get(`${UC}registered-models/search`, { max_results: PAGE, page_token: pageToken }, z.object({ registered_models: z.array(ucModel).default([]), next_page_token: z.string().optional() }));
      for (const raw of page.registered_models) yield this.toModel(raw);
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    try {
      return this.toModel((await this.api.get(`${UC}registered-models/get`, { name }, z.object({ registered_model: ucModel }))).registered_model);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * The source a new version names, as mlflow.register_model gives it: the run's artifact
   * location (`dbfs:/databricks/mlflow-tracking/…/artifacts/model`), `models:/m-…`, or a URI.
   */
  private async sourceFor(location: ModelSource): Promise<string> {
    if (location.type === 'uri') return location.uri;
    if (location.type === 'logged-model') return `models:/${location.modelId}`;
    const { run } = await this.api.get('runs/get', { run_id: location.runId }, getRun);
    const root = (run.info.artifact_uri ?? '').replace(/\/+$/, '');
    return root ? `${root}/${location.path}` : `runs:/${location.runId}/${location.path}`;
  }

  private async *rawVersions(modelName: string): AsyncIterable<UcVersion> {
    let pageToken: string | undefined;
    do {
      const page = await this.api.get(
        `${UC}model-versions/search`,
        { filter: `name=${quote(modelName)}`, max_results: PAGE, page_token: pageToken },
        z.object({ model_versions: z.array(ucVersion).default([]), next_page_token: z.string().optional() }),
      );
      yield* page.model_versions;
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  async *listVersions(modelName: string): AsyncIterable<ModelVersion> {
    const raws: UcVersion[] = [];
    for await (const raw of this.rawVersions(modelName)) if (raw.status === 'READY') raws.push(raw);
    raws.sort((a, b) => Number(a.version) - Number(b.version));
    for (const raw of raws) {
      // a deep copy follows the run or logged model the version came from; else its own files
      const parsed = parseVersionSource(raw.source, raw.run_id, raw.model_id);
      const location: ModelSource = parsed.type === 'uri' && raw.storage_location ? { type: 'uri', uri: raw.storage_location } : parsed;
      yield {
        modelName: raw.name,
        version: raw.version,
        source: raw.source,
        location,
        ...(raw.storage_location ? { portableSource: raw.storage_location } : {}),
        ...(raw.run_id ? { runId: raw.run_id } : {}),
        ...(raw.model_id ? { loggedModelId: raw.model_id } : {}),
        status: raw.status,
        stage: 'None',
        ...(raw.description ? { description: raw.description } : {}),
        tags: toTags(raw.tags),
        ...(raw.user_id ? { user: raw.user_id } : {}),
        creationTime: raw.creation_timestamp,
        lastUpdatedTime: raw.last_updated_timestamp,
      };
    }
  }

  // writing

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    const model = await this.getModel(name);
    return model && { tags: model.tags };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    checkThreeLevelName(name);
    const existing = await this.getModel(name);
    if (!existing) {
      await this.api.post(`${UC}registered-models/create`, { name, description: model.description, tags: tagList(model.tags) }, empty);
      return;
    }
    if ((existing.description ?? '') !== (model.description ?? '')) {
      await this.api.send('PATCH', `${UC}registered-models/update`, { name, description: model.description ?? '' }, empty);
    }
    for (const [key, value] of Object.entries(model.tags)) {
      if (existing.tags[key] !== value) await this.api.post(`${UC}registered-models/set-tag`, { name, key, value }, empty);
    }
  }

  async deleteModel(name: string): Promise<void> {
    try {
      await this.api.send('DELETE', `${UC}registered-models/delete`, { name }, empty);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for await (const raw of this.rawVersions(modelName)) {
      const tags = toTags(raw.tags);
      // a version never finalized holds no files: it does not count as a copy
      if (raw.status !== 'READY') delete tags[SOURCE_TAGS.complete];
      yield { version: raw.version, tags };
    }
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const body = {
      name: modelName,
      // lineage: the files are uploaded into the version's own storage
      source: await this.sourceFor(target.location),
      run_id: target.runId,
      description: version.description,
      tags: tagList(version.tags),
      model_id: target.loggedModelId,
    };
    const sourceId = version.tags[SOURCE_TAGS.id];
    return this.api.creating(
      async () => {
        const created = await this.api.post(`${UC}model-versions/create`, body, z.object({ model_version: ucVersion }), false);
        const { version: number, storage_location } = created.model_version;
        if (storage_location) this.pending.set(`${modelName}/${number}`, Promise.resolve({ storage: storage_location, ready: false }));
        return number;
      },
      // created before its answer was lost: the version with the same provenance tags is it
      async () => {
        if (!sourceId) return undefined;
        for await (const existing of this.listExistingVersions(modelName)) {
          if (Object.entries(version.tags).every(([key, value]) => !key.startsWith(SOURCE_TAG_PREFIX) || existing.tags[key] === value)) return existing.version;
        }
        return undefined;
      },
    );
  }

  /** Where a version's files go, and whether it is finalized already (a version made by an earlier attempt). */
  private versionState(modelName: string, number: string): Promise<Pending> {
    const key = `${modelName}/${number}`;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.api
        .get(`${UC}model-versions/get`, { name: modelName, version: number }, z.object({ model_version: ucVersion }))
        .then(({ model_version }) => ({ storage: model_version.storage_location ?? '', ready: model_version.status === 'READY' }));
      pending.catch(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private credentialsFor(pending: Pending, modelName: string, number: string): Promise<TemporaryCredentials> {
    pending.credentials ??= this.api
      .post(`${UC}model-versions/generate-temporary-credentials`, { name: modelName, version: number, operation: 'MODEL_VERSION_OPERATION_READ_WRITE' }, temporaryCredentials)
      .then((answer) => answer.credentials);
    return pending.credentials;
  }

  async writeVersionFile(modelName: string, number: string, file: ArtifactFile, body: Readable): Promise<void> {
    let upload: Readable = body;
    let size = file.size;
    if (file.path === 'MLmodel') {
      const bytes = await readSmall(body, 1_000_000);
      if (!bytes) throw new InvalidInputError(file.path, 'an MLmodel file over 1 MB');
      const problem = signatureProblem(bytes.toString('utf8'));
      if (problem) {
        // a version not finalized holds no files: leave nothing half made
        if (!(await this.versionState(modelName, number)).ready) await this.deleteVersion(modelName, number);
        this.pending.delete(`${modelName}/${number}`);
        throw new InvalidInputError(
          `version ${number} of ${modelName}`,
          `Unity Catalog registers only models whose signature has inputs and outputs, and ${problem}; log the model with a signature (mlflow.models.infer_signature) and register it again`,
        );
      }
      upload = Readable.from([bytes]);
      size = bytes.length;
    }
    const pending = await this.versionState(modelName, number);
    if (pending.ready) {
      upload.resume();
      return;
    }
    const { storage } = pending;
    const credentials = await this.credentialsFor(pending, modelName, number);
    if (credentials.storage_mode === 'DEFAULT_STORAGE' || !storage) {
      // Databricks' default storage: a signed URL per file, under /Models/<catalog>/<schema>/<model>/<version>
      const path = `/Models/${modelName.split('.').join('/')}/${number}/${file.path}`;
      const signed = await this.api.http.json('POST', 'api/2.0/fs/create-upload-url', uploadUrl, { body: { path } });
      return this.signed.upload(signed.url, headersOf(signed), upload, size);
    }
    if (credentials.aws_temp_credentials && /^s3a?:\/\//.test(storage)) {
      const aws = credentials.aws_temp_credentials;
      const keys = { accessKeyId: aws.access_key_id, secretAccessKey: aws.secret_access_key, sessionToken: aws.session_token };
      return putS3(storage, file.path, keys, upload, size, this.env, sseHeaders(credentials));
    }
    const url = storageUrl(storage, file.path);
    if (credentials.azure_user_delegation_sas) {
      const sas = credentials.azure_user_delegation_sas.sas_token.replace(/^\?/, '');
      if (size === undefined) throw new InvalidInputError(file.path, 'the size of a file must be known to upload it to Azure Data Lake storage');
      return this.signed.uploadAdls(`${url}?${sas}`, {}, upload, size);
    }
    if (credentials.gcp_oauth_token) {
      return this.signed.upload(url, { authorization: `Bearer ${credentials.gcp_oauth_token.oauth_token}` }, upload, size);
    }
    upload.resume();
    const kinds = Object.keys(credentials).filter((k) => k !== 'storage_mode' && k !== 'expiration_time' && k !== 'encryption_details');
    throw new UsageError(`${modelName} keeps its files at ${storage}, with credentials trackshift does not know how to use (${kinds.join(', ') || 'none'}); it writes to Databricks default storage, S3, Azure Data Lake and GCS`);
  }

  async finishVersion(modelName: string, number: string): Promise<void> {
    const pending = await this.pending.get(`${modelName}/${number}`);
    if (!pending?.ready) await this.api.post(`${UC}model-versions/finalize`, { name: modelName, version: number }, empty);
    this.pending.delete(`${modelName}/${number}`);
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    const { model_version: current } = await this.api.get(`${UC}model-versions/get`, { name: modelName, version: number }, z.object({ model_version: ucVersion }));
    if ((current.description ?? '') !== (version.description ?? '')) {
      await this.api.send('PATCH', `${UC}model-versions/update`, { name: modelName, version: number, description: version.description ?? '' }, empty);
    }
    const tags = toTags(current.tags);
    for (const [key, value] of Object.entries(version.tags)) if (tags[key] !== value) await this.setVersionTag(modelName, number, key, value);
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    try {
      await this.api.send('DELETE', `${UC}model-versions/delete`, { name: modelName, version: number }, empty);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async setStage(modelName: string, number: string, stage: ModelStage): Promise<void> {
    throw new UsageError(`Unity Catalog has no stages (version ${number} of ${modelName} → ${stage}); trackshift sets aliases instead`);
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    await this.api.post(`${UC}registered-models/alias`, { name: modelName, alias, version: number }, empty);
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    try {
      await this.api.post(`${UC}model-versions/set-tag`, { name: modelName, version: number, key, value }, empty);
    } catch (err) {
      // Unity Catalog tag keys are stricter than MLflow's: say which one, not only "invalid"
      if (err instanceof HttpError && err.errorCode === 'INVALID_PARAMETER_VALUE' && !key.startsWith(SOURCE_TAG_PREFIX)) {
        throw new InvalidInputError(`tag "${key}" of version ${number} of ${modelName}`, err.message);
      }
      throw err;
    }
  }
}

/**
 * The HTTPS URL of a file under an external location: `abfss://container@account.dfs.core.windows.net/p`
 * (Azure Data Lake) or `gs://bucket/p` (GCS's XML API, which takes a PUT with an OAuth token).
 */
export function storageUrl(storage: string, path: string): string {
  const root = storage.replace(/\/+$/, '');
  const abfss = /^abfss?:\/\/([^@/]+)@([^/]+)(\/.*)?$/.exec(root);
  if (abfss) return `https://${abfss[2]}/${abfss[1]}${abfss[3] ?? ''}/${path.split('/').map(encodeURIComponent).join('/')}`;
  const gs = /^gs:\/\/([^/]+)(\/.*)?$/.exec(root);
  if (gs) {
    const name = `${(gs[2] ?? '').replace(/^\//, '')}/${path}`.replace(/^\//, '');
    return `https://storage.googleapis.com/${gs[1]}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }
  throw new UsageError(`cannot upload to the Unity Catalog storage location ${storage}: trackshift writes to Databricks default storage, s3://, abfss:// and gs:// locations`);
}
