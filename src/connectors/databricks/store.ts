/**
 * A Databricks workspace's tracking server: the MLflow REST API under the workspace host with
 * a token, except for files. Databricks keeps run artifacts in cloud storage and hands out
 * signed URLs for them (`artifacts/credentials-for-read` / `-for-write`), so files go straight
 * between trackshift and the storage.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArtifactFile, Run } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { SignedUrlClient } from '../../util/signed-url.js';
import type { MlflowApi } from '../mlflow-common/client.js';
import { MlflowStore } from '../mlflow-common/write.js';
import type { RegistryReader, RegistryWriter } from '../types.js';
import { MlflowLoggedModels } from '../mlflow-common/logged-models.js';
import { credentialInfo, headersOf, putSigned, runCredential, type CredentialInfo } from './artifacts.js';

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
    private readonly signed: SignedUrlClient = new SignedUrlClient(),
  ) {
    super(api, registry, new DatabricksLoggedModels(api, signed));
    this.kind = unityCatalog ? 'databricks-uc' : 'databricks';
  }

  override async readArtifact(run: Run, path: string): Promise<Readable> {
    const info = await runCredential(this.api, 'read', run.id, path);
    return this.signed.download(info.signed_uri, headersOf(info));
  }

  override async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    const info = await runCredential(this.api, 'write', runId, file.path);
    await putSigned(this.signed, info, file, body, { api: this.api, runId });
  }

  override async close(): Promise<void> {
    await this.signed.close();
    await super.close();
  }
}
