/**
 * A Databricks workspace's tracking server: the MLflow REST API under the workspace host with
 * a token, except for files. Databricks keeps run artifacts in cloud storage and hands out
 * signed URLs for them (`artifacts/credentials-for-read` / `-for-write`), so files go straight
 * between trackshift and the storage. One store reads and writes, as mlflow-common's does.
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, Run } from '../../model/index.js';
import { SignedUrlClient } from '../../util/signed-url.js';
import type { MlflowApi } from '../mlflow-common/client.js';
import { MlflowStore } from '../mlflow-common/write.js';
import type { RegistryReader, RegistryWriter } from '../types.js';
import { headersOf, putSigned, runCredential } from './artifacts.js';
import { DatabricksLoggedModels } from './logged-models.js';

export class DatabricksStore extends MlflowStore {
  override readonly kind: string;
  /** with Unity Catalog as its registry (databricks-uc) or without, runs are tracked in the same workspace */
  readonly trackingStore = 'databricks';

  constructor(
    api: MlflowApi,
    unityCatalog: boolean,
    registry: (RegistryReader & RegistryWriter) | undefined,
    private readonly signed: SignedUrlClient = new SignedUrlClient(),
  ) {
    super(api, registry, new DatabricksLoggedModels(api, signed));
    this.kind = unityCatalog ? 'databricks-uc' : 'databricks';
  }

  /** the run's page in the workspace's web app */
  override runUrl(experimentId: string, runId: string): string | undefined {
    return `${this.api.baseUrl}ml/experiments/${encodeURIComponent(experimentId)}/runs/${encodeURIComponent(runId)}`;
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
