/**
 * One signed PUT of a file into S3 with temporary credentials (what Unity Catalog hands out for
 * a model version stored on S3). Requests are signed with AWS Signature Version 4 by `aws4`;
 * the body streams unsigned (UNSIGNED-PAYLOAD), so nothing is buffered.
 *
 * The bucket's region comes from AWS_REGION / AWS_DEFAULT_REGION, or is asked of S3 (the
 * x-amz-bucket-region header of a HEAD on the bucket). AWS_ENDPOINT_URL_S3 (or
 * AWS_ENDPOINT_URL), the AWS tools' own setting, sends requests to another S3-compatible
 * endpoint, path-style.
 */
import type { Readable } from 'node:stream';
import aws4 from 'aws4';
import { loadUndici } from './undici.js';
import { UsageError } from './errors.js';
import { HttpError } from './http.js';
import { redact } from './redact.js';

export interface AwsTemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const regions = new Map<string, string>();

async function bucketRegion(bucket: string, env: NodeJS.ProcessEnv): Promise<string> {
  const configured = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (configured) return configured;
  let region = regions.get(bucket);
  if (!region) {
    const res = await (await loadUndici()).request(`https://${bucket}.s3.amazonaws.com/`, { method: 'HEAD' });
    await res.body.dump();
    const header = res.headers['x-amz-bucket-region'];
    region = (Array.isArray(header) ? header[0] : header) || 'us-east-1';
    regions.set(bucket, region);
  }
  return region;
}

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3a?:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match) throw new UsageError(`"${uri}" is not an s3:// location`);
  return { bucket: match[1]!, prefix: match[2]!.replace(/\/+$/, '') };
}

export async function putS3(
  location: string,
  path: string,
  credentials: AwsTemporaryCredentials,
  body: Readable,
  size: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
  extraHeaders: Record<string, string> = {},
): Promise<void> {
  const { bucket, prefix } = parseS3Uri(location);
  const key = [prefix, path].filter(Boolean).join('/');
  const encodedKey = key.split('/').map(encodeURIComponent).join('/');
  const region = await bucketRegion(bucket, env);
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  const base = endpoint ? new URL(endpoint) : new URL(`https://${bucket}.s3.${region}.amazonaws.com`);
  const pathname = endpoint ? `${base.pathname.replace(/\/$/, '')}/${bucket}/${encodedKey}` : `/${encodedKey}`;
  const headers: Record<string, string> = { 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD', ...extraHeaders };
  if (size !== undefined) headers['Content-Length'] = String(size);
  const signed = aws4.sign({ host: base.host, path: pathname, method: 'PUT', service: 's3', region, headers }, credentials);
  const url = `${base.protocol}//${base.host}${pathname}`;
  const res = await (await loadUndici()).request(url, { method: 'PUT', headers: signed.headers as Record<string, string>, body });
  const text = await res.body.text().catch(() => '');
  if (res.statusCode >= 300) {
    // S3's SignatureDoesNotMatch answer echoes the canonical request, session token included
    const detail = redact(text.replace(/<(CanonicalRequest|StringToSign)(Bytes)?>[\s\S]*?<\/\1\2>/g, ''), [credentials.secretAccessKey, credentials.sessionToken]);
    throw new HttpError(`PUT ${url} failed with ${res.statusCode}: ${detail.slice(0, 300)}`, res.statusCode, undefined, 'PUT', pathname);
  }
}
