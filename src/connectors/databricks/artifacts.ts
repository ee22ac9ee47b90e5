/**
 * Run artifacts of a Databricks workspace, through the signed-URL credential endpoints
 * (mlflow's databricks_artifacts.proto, as its DatabricksArtifactRepository uses them):
 *
 *   read   POST artifacts/credentials-for-read  {run_id, path: [p]}  → credential_infos[{signed_uri, type, headers}]
 *          then GET the signed URL with those headers
 *   write  POST artifacts/credentials-for-write {run_id, path: [p]}  → the same, then by type:
 *          AWS_PRESIGNED_URL  PUT (over the multipart threshold: create-multipart-upload, a PUT per
 *                             part, complete-multipart-upload; abort on failure)
 *          AZURE_SAS_URI      Put Blob (x-ms-blob-type: BlockBlob), or Put Block + Put Block List
 *          AZURE_ADLS_GEN2_SAS_URI  create, append, flush
 *          GCP_SIGNED_URL     PUT
 *   list   GET artifacts/list (the MLflow connector's own listing)
 *
 * Thresholds follow MLflow's own settings: MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MiB)
 * and MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE (10 MiB). Signed URLs are secrets: never printed.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArtifactFile } from '../../model/index.js';
import { InvalidInputError, UsageError } from '../../util/errors.js';
import { chunks, DEFAULT_CHUNKS, type ChunkSettings, type SignedUrlClient } from '../../util/signed-url.js';
import type { MlflowApi } from '../mlflow-common/client.js';

const header = z.object({ name: z.string(), value: z.string().default('') });
export const credentialInfo = z.object({
  run_id: z.string().optional(),
  path: z.string().optional(),
  signed_uri: z.string().url(),
  headers: z.array(header).default([]),
  type: z.enum(['AZURE_SAS_URI', 'AWS_PRESIGNED_URL', 'GCP_SIGNED_URL', 'AZURE_ADLS_GEN2_SAS_URI']),
});
export type CredentialInfo = z.infer<typeof credentialInfo>;
const credentials = z.object({ credential_infos: z.array(credentialInfo).default([]), next_page_token: z.string().optional() });
const multipartUpload = z.object({
  upload_id: z.string(),
  upload_credential_infos: z.array(credentialInfo).default([]),
  abort_credential_info: credentialInfo.optional(),
});
const empty = z.object({}).passthrough();

export const headersOf = (info: { headers: Array<{ name: string; value: string }> }) => Object.fromEntries(info.headers.map((h) => [h.name, h.value]));

/** MLflow's multipart settings, from the environment of one side. */
export function chunkSettings(env: NodeJS.ProcessEnv): ChunkSettings {
  const read = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) throw new UsageError(`${name} must be a whole number of bytes, not "${raw}"`);
    return value;
  };
  return { threshold: read('MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE', DEFAULT_CHUNKS.threshold), chunkSize: read('MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE', DEFAULT_CHUNKS.chunkSize) };
}

/** S3 takes at most 10,000 parts: a larger file gets larger parts. */
const S3_MAX_PARTS = 10_000;

/** An S3 multipart upload of a run's file through Databricks' own endpoints. */
export interface MultipartEndpoints {
  api: MlflowApi;
  runId: string;
}

async function multipartPut(signed: SignedUrlClient, endpoints: MultipartEndpoints, file: ArtifactFile & { size: number }, body: Readable): Promise<void> {
  const { api, runId } = endpoints;
  const partSize = Math.max(signed.chunking.chunkSize, Math.ceil(file.size / S3_MAX_PARTS));
  const numParts = Math.max(1, Math.ceil(file.size / partSize));
  const created = await api.post('artifacts/create-multipart-upload', { run_id: runId, path: file.path, num_parts: numParts }, multipartUpload, false);
  if (created.upload_credential_infos.length < numParts) {
    throw new InvalidInputError(`${api.uri} artifacts/create-multipart-upload`, `${created.upload_credential_infos.length} signed URLs for ${numParts} parts of ${file.path}`);
  }
  try {
    const etags: Array<{ part_number: number; etag: string }> = [];
    let index = 0;
    for await (const piece of chunks(body, partSize)) {
      const info = created.upload_credential_infos[index];
      if (!info) throw new InvalidInputError(file.path, `longer than its size, ${file.size} bytes`);
      const etag = await signed.putPiece(info.signed_uri, headersOf(info), piece);
      if (!etag) throw new InvalidInputError(`${file.path} part ${index + 1}`, 'the storage answered without an ETag');
      etags.push({ part_number: index + 1, etag });
      index++;
    }
    if (index !== numParts) throw new InvalidInputError(file.path, `shorter than its size, ${file.size} bytes`);
    await api.post('artifacts/complete-multipart-upload', { run_id: runId, path: file.path, upload_id: created.upload_id, part_etags: etags }, empty, false);
  } catch (err) {
    // leave no orphaned parts behind (best effort: the first error is the one to report)
    const abort = created.abort_credential_info;
    if (abort) await signed.remove(abort.signed_uri, headersOf(abort)).catch(() => undefined);
    body.resume();
    throw err;
  }
}

/**
 * Puts a body at a signed URL the way its storage wants it. `multipart`: the run whose file it
 * is, for S3 multipart uploads of large files (logged models have no such endpoints).
 */
export async function putSigned(signed: SignedUrlClient, info: CredentialInfo, file: ArtifactFile, body: Readable, multipart?: MultipartEndpoints): Promise<void> {
  const headers = headersOf(info);
  switch (info.type) {
    case 'AZURE_ADLS_GEN2_SAS_URI':
      if (file.size === undefined) throw new InvalidInputError(file.path, 'the size of a file must be known to upload it to Azure Data Lake storage');
      return signed.uploadAdls(info.signed_uri, headers, body, file.size);
    case 'AZURE_SAS_URI':
      return signed.uploadAzureBlob(info.signed_uri, headers, body, file.size);
    case 'AWS_PRESIGNED_URL':
      if (multipart && file.size !== undefined && file.size > signed.chunking.threshold) return multipartPut(signed, multipart, { ...file, size: file.size }, body);
      return signed.upload(info.signed_uri, headers, body, file.size);
    case 'GCP_SIGNED_URL':
      return signed.upload(info.signed_uri, headers, body, file.size);
  }
}

/** Signed URLs for one file of a run. */
export async function runCredential(api: MlflowApi, kind: 'read' | 'write', runId: string, path: string): Promise<CredentialInfo> {
  const answer = await api.post(`artifacts/credentials-for-${kind}`, { run_id: runId, path: [path] }, credentials);
  const info = answer.credential_infos.find((c) => c.path === undefined || c.path === path) ?? answer.credential_infos[0];
  if (!info) throw new InvalidInputError(`${api.uri} artifacts/credentials-for-${kind}`, `no signed URL for ${path} of run ${runId}`);
  return info;
}
