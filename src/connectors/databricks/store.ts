/**
 * A Databricks workspace's tracking server: the MLflow REST API under the workspace host with
 * a token, except for files. Databricks keeps run artifacts in cloud storage and hands out
 * signed URLs for them (`artifacts/credentials-for-read` / `-for-write`), so files go straight
 * between trackshift and the storage.
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArtifactFile, Run } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { SignedUrlClient } from '../../util/signed-url.js';
import type { MlflowApi } from '../mlflow/client.js';
import { MlflowStore } from '../mlflow/write.js';
import type { RegistryReader, RegistryWriter } from '../types.js';
import { MlflowLoggedModels } from '../mlflow/logged-models.js';

const header = z.object({ name: z.string(), value: z.string().default('') });
export const credentialInfo = z.object({
  run_id: z.string().optional(),
  path: z.string().optional(),
  signed_uri: z.string().url(),
  headers: z.array(header).default([]),
  type: z.enum(['AZURE_SAS_URI', 'AWS_PRESIGNED_URL', 'GCP_SIGNED_URL', 'AZURE_ADLS_GEN2_SAS_URI']),
});
export type CredentialInfo = z.infer<typeof credentialInfo>;
const credentials = z.object({ credential_infos: z.array(credentialInfo).default([]) });

export const headersOf = (info: { headers: Array<{ name: string; value: string }> }) => Object.fromEntries(info.headers.map((h) => [h.name, h.value]));

/** Puts a body at a signed URL the way its storage wants it. */
export async function putSigned(signed: SignedUrlClient, info: CredentialInfo, file: ArtifactFile, body: Readable): Promise<void> {
  const headers = headersOf(info);
  if (info.type === 'AZURE_ADLS_GEN2_SAS_URI') {
    if (file.size === undefined) throw new InvalidInputError(file.path, 'the size of a file must be known to upload it to Azure Data Lake storage');
    return signed.uploadAdls(info.signed_uri, headers, body, file.size);
  }
  if (info.type === 'AZURE_SAS_URI') headers['x-ms-blob-type'] = 'BlockBlob';
  return signed.upload(info.signed_uri, headers, body, file.size);
}

const loggedModelCredentials = z.object({ credentials: z.array(z.object({ credential_info: credentialInfo })).default([]) });

/** Logged models' files on Databricks go through their own signed-URL endpoints too. */
export class DatabricksLoggedModels extends MlflowLoggedModels {
  constructor(
    api: MlflowApi,
    private readonly signed: SignedUrlClient,
  ) {
    super(api);
  }

  private async credential(kind: 'download' | 'upload', modelId: string, path: string): Promise<CredentialInfo> {
    const answer = await this.api.post(`logged-models/${encodeURIComponent(modelId)}/artifacts/credentials-for-${kind}`, { model_id: modelId, paths: [path] }, loggedModelCredentials);
    const info = answer.credentials.map((c) => c.credential_info).find((c) => c.path === undefined || c.path === path) ?? answer.credentials[0]?.credential_info;
    if (!info) throw new InvalidInputError(`${this.api.uri} logged-models/${modelId}/artifacts/credentials-for-${kind}`, `no signed URL for ${path}`);
    return info;
  }

  override async readArtifact(modelId: string, path: string): Promise<Readable> {
    const info = await this.credential('download', modelId, path);
    return this.signed.download(info.signed_uri, headersOf(info));
  }

  override async writeLoggedModelArtifact(modelId: string, file: ArtifactFile, body: Readable): Promise<void> {
    await putSigned(this.signed, await this.credential('upload', modelId, file.path), file, body);
  }
}

export class DatabricksStore extends MlflowStore {
  override readonly kind: string;

  constructor(
    api: MlflowApi,
    unityCatalog: boolean,
    registry: (RegistryReader & RegistryWriter) | undefined,
    private readonly signed = new SignedUrlClient(),
  ) {
    super(api, registry, new DatabricksLoggedModels(api, signed));
    this.kind = unityCatalog ? 'databricks-uc' : 'databricks';
  }

  private async credential(kind: 'read' | 'write', runId: string, path: string): Promise<CredentialInfo> {
    const answer = await this.api.post(`artifacts/credentials-for-${kind}`, { run_id: runId, path: [path] }, credentials);
    const info = answer.credential_infos.find((c) => c.path === undefined || c.path === path) ?? answer.credential_infos[0];
    if (!info) throw new InvalidInputError(`${this.uri} artifacts/credentials-for-${kind}`, `no signed URL for ${path} of run ${runId}`);
    return info;
  }

  override async readArtifact(run: Run, path: string): Promise<Readable> {
    const info = await this.credential('read', run.id, path);
    return this.signed.download(info.signed_uri, headersOf(info));
  }

  override async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const info = await this.credential('write', runId, file.path);
    await putSigned(this.signed, info, file, body);
  }

  override async close(): Promise<void> {
    await this.signed.close();
    await super.close();
  }
}
