/**
 * Transfers to and from pre-signed cloud storage URLs (what Databricks hands out for
 * artifacts). No credentials of ours go with them: the URL is the credential, so it is a
 * secret too and only its origin and path ever appear in a message.
 *
 * Large files go in pieces, each held in memory once (`chunkSize`): Azure Blob storage as
 * blocks committed by a block list, Azure Data Lake as appends at increasing positions. A
 * piece is a buffer, so it is retried; a whole streamed body is not (the engine reads the file
 * again).
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { LazyAgent } from './undici.js';
import { HttpError } from './http.js';
import { ConnectionError } from './http.js';
import { redact } from './redact.js';
import { DEFAULT_RETRY_POLICY, errorCode, statusRetryReason, withRetry, type RetryContext, type Side } from './retry.js';

/** A URL fit for a message: origin and path, never the query that holds the signature. */
export const showUrl = (url: string) => {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(a malformed URL)';
  }
};

/** Every value in a signed URL's query, to be kept out of messages (error bodies echo them). */
function querySecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const values = [...parsed.searchParams.values()];
    return [parsed.search.slice(1), ...values, ...values.map(encodeURIComponent)].filter((v) => v.length >= 8);
  } catch {
    return [url];
  }
}

/** The body in pieces of exactly `size` bytes (the last one shorter); one piece in memory at a time. */
export async function* chunks(body: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const data of body) {
    let buf = Buffer.isBuffer(data) ? data : Buffer.from(data as string);
    while (length + buf.length >= size) {
      const take = size - length;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts, size);
      buf = buf.subarray(take);
      parts = [];
      length = 0;
    }
    if (buf.length > 0) {
      parts.push(buf);
      length += buf.length;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

/** Azure's block ids: base64, all of one length within a blob. */
export const azureBlockId = (index: number) => Buffer.from(`trackshift-block-${String(index).padStart(6, '0')}`).toString('base64');

export interface ChunkSettings {
  /** files larger than this go in pieces (and every file of unknown size to Azure Blob storage) */
  threshold: number;
  /** the size of a piece */
  chunkSize: number;
}

/** MLflow's defaults: pieces above 500 MiB, of 10 MiB each. */
export const DEFAULT_CHUNKS: ChunkSettings = { threshold: 500 * 1024 ** 2, chunkSize: 10 * 1024 ** 2 };

export class SignedUrlClient {
  private readonly agent = new LazyAgent({ connections: 16, keepAliveTimeout: 30_000 });

  /** `retry`: the job's policy and counts, `side`: which end these URLs belong to */
  constructor(
    readonly chunking: ChunkSettings = DEFAULT_CHUNKS,
    private readonly retry?: RetryContext,
    private readonly side?: Side,
  ) {}

  private async send(method: Dispatcher.HttpMethod, url: string, headers: Record<string, string>, body?: Readable | Buffer | string, retry = true): Promise<Dispatcher.ResponseData> {
    const policy = retry ? (this.retry?.policy ?? DEFAULT_RETRY_POLICY) : { ...DEFAULT_RETRY_POLICY, retries: 0 };
    return withRetry(
      policy,
      async () => {
        let res: Dispatcher.ResponseData;
        try {
          res = await this.agent.request(url, { method, headers, body });
        } catch (err) {
          throw new ConnectionError(`cannot reach ${showUrl(url)}: ${redact((err as Error).message, querySecrets(url))}`, errorCode(err) ?? 'ERROR');
        }
        if (res.statusCode < 300) return res;
        const text = (await res.body.text().catch(() => '')).slice(0, 300);
        const expired = res.statusCode === 403 ? ' (the signed URL may have expired)' : '';
        const detail = redact(text, querySecrets(url)).replace(/(sig|signature|x-amz-signature|x-goog-signature|x-amz-security-token|x-amz-credential)=[^&\s"<]+/gi, '$1=***');
        const reason = statusRetryReason(res.statusCode, res.headers['retry-after']);
        throw new HttpError(`${method} ${showUrl(url)} failed with ${res.statusCode}${expired}: ${detail}`, res.statusCode, undefined, method, new URL(url).pathname, reason);
      },
      { side: this.side, stats: this.retry?.stats },
    );
  }

  async download(url: string, headers: Record<string, string> = {}): Promise<Readable> {
    return (await this.send('GET', url, headers)).body;
  }

  /** One PUT of the whole body (the body is a stream: not retried here; the engine reads the file again). */
  async upload(url: string, headers: Record<string, string>, body: Readable, size?: number): Promise<void> {
    await this.putStream(url, headers, body, size);
  }

  /** `upload`, returning the ETag the storage answered (S3's, which a multipart completion or a client's check needs). */
  async putStream(url: string, headers: Record<string, string>, body: Readable, size?: number): Promise<string | undefined> {
    const all = { ...headers, ...(size !== undefined ? { 'content-length': String(size) } : {}) };
    const res = await this.send('PUT', url, all, body, false);
    await res.body.dump();
    const etag = res.headers.etag;
    return Array.isArray(etag) ? etag[0] : etag;
  }

  /** One PUT of a piece held in memory (retried); returns the ETag the storage answered. */
  async putPiece(url: string, headers: Record<string, string>, piece: Buffer): Promise<string | undefined> {
    const res = await this.send('PUT', url, { ...headers, 'content-length': String(piece.length) }, piece);
    await res.body.dump();
    const etag = res.headers.etag;
    return Array.isArray(etag) ? etag[0] : etag;
  }

  /**
   * Azure Blob storage (a blob SAS URL): one Put Blob when the size is known and small, else
   * Put Block for each piece and Put Block List to commit them, as MLflow's client does.
   */
  async uploadAzureBlob(url: string, headers: Record<string, string>, body: Readable, size?: number): Promise<void> {
    if (size !== undefined && size <= this.chunking.threshold) {
      return this.upload(url, { ...headers, 'x-ms-blob-type': 'BlockBlob' }, body, size);
    }
    const withParams = (params: Record<string, string>) => appendQuery(url, params);
    // blob properties belong to the commit; a block takes only the others
    const blockHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => !/^x-ms-blob-/i.test(name)));
    const ids: string[] = [];
    for await (const piece of chunks(body, this.chunking.chunkSize)) {
      const id = azureBlockId(ids.length);
      await this.putPiece(withParams({ comp: 'block', blockid: id }), blockHeaders, piece);
      ids.push(id);
    }
    const list = `<?xml version="1.0" encoding="utf-8"?>\n<BlockList>\n${ids.map((id) => `<Uncommitted>${id}</Uncommitted>\n`).join('')}</BlockList>`;
    const commitHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'x-ms-blob-type'));
    await this.putPiece(withParams({ comp: 'blocklist' }), commitHeaders, Buffer.from(list));
  }

  /**
   * Azure Data Lake Gen2 (a `dfs` SAS URL): create the file, append the body (in pieces when
   * large), flush, as the ADLS REST API wants it. `size` is needed for the flush.
   */
  async uploadAdls(url: string, headers: Record<string, string>, body: Readable, size: number): Promise<void> {
    const withParams = (params: Record<string, string>) => appendQuery(url, params);
    await (await this.send('PUT', withParams({ resource: 'file' }), headers, undefined, false)).body.dump();
    if (size === 0) body.resume();
    else if (size <= this.chunking.threshold) {
      await (await this.send('PATCH', withParams({ action: 'append', position: '0' }), { ...headers, 'content-length': String(size) }, body, false)).body.dump();
    } else {
      let position = 0;
      for await (const piece of chunks(body, this.chunking.chunkSize)) {
        const res = await this.send('PATCH', withParams({ action: 'append', position: String(position) }), { ...headers, 'content-length': String(piece.length) }, piece);
        await res.body.dump();
        position += piece.length;
      }
    }
    await (await this.send('PATCH', withParams({ action: 'flush', position: String(size) }), headers, undefined, false)).body.dump();
  }

  /** A DELETE (abandoning a multipart upload), retried. */
  async remove(url: string, headers: Record<string, string> = {}): Promise<void> {
    await (await this.send('DELETE', url, headers)).body.dump();
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** The signed URL as it was given (never re-encoded: the signature covers it), plus `params`. */
function appendQuery(url: string, params: Record<string, string>): string {
  const [base, hash] = url.split('#', 2) as [string, string | undefined];
  const extra = new URLSearchParams(params).toString();
  return `${base}${base.includes('?') ? (base.endsWith('?') || base.endsWith('&') ? '' : '&') : '?'}${extra}${hash !== undefined ? `#${hash}` : ''}`;
}
