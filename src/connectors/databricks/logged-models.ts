/**
 * MLflow 3 logged models of a Databricks workspace: mlflow-common's, with their files through
 * signed URLs (`logged-models/{id}/artifacts/credentials-for-download` / `-for-upload`).
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArtifactFile } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import type { SignedUrlClient } from '../../util/signed-url.js';
import type { MlflowApi } from '../mlflow-common/client.js';
import { MlflowLoggedModels } from '../mlflow-common/logged-models.js';
import { credentialInfo, headersOf, putSigned, type CredentialInfo } from './artifacts.js';

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
