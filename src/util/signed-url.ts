/**
 * Transfers to and from pre-signed cloud storage URLs (what Databricks hands out for
 * artifacts). No credentials of ours go with them: the URL is the credential, so it is a
 * secret too and only its origin and path ever appear in a message.
 */
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { HttpError, RETRIABLE_STATUS } from './http.js';
import { ConnectionError } from './http.js';

const ATTEMPTS = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A URL fit for a message: origin and path, never the query that holds the signature. */
export const showUrl = (url: string) => {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(a malformed URL)';
  }
};

export class SignedUrlClient {
  private readonly agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });

  private async send(method: Dispatcher.HttpMethod, url: string, headers: Record<string, string>, body?: Readable | Buffer | string, retry = true): Promise<Dispatcher.ResponseData> {
    for (let attempt = 1; ; attempt++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method, headers, body, dispatcher: this.agent });
      } catch (err) {
        if (retry && attempt < ATTEMPTS) {
          await sleep(250 * 2 ** attempt * Math.random());
          continue;
        }
        throw new ConnectionError(`cannot reach ${showUrl(url)}: ${(err as Error).message}`, 'ERROR');
      }
      if (res.statusCode < 300) return res;
      const text = (await res.body.text().catch(() => '')).slice(0, 300);
      if (retry && attempt < ATTEMPTS && RETRIABLE_STATUS.has(res.statusCode)) {
        await sleep(250 * 2 ** attempt * Math.random());
        continue;
      }
      const expired = res.statusCode === 403 ? ' (the signed URL may have expired)' : '';
      throw new HttpError(`${method} ${showUrl(url)} failed with ${res.statusCode}${expired}: ${text.replace(/sig=[^&\s"<]+/gi, 'sig=***')}`, res.statusCode, undefined, method, new URL(url).pathname);
    }
  }

  async download(url: string, headers: Record<string, string> = {}): Promise<Readable> {
    return (await this.send('GET', url, headers)).body;
  }

  /** One PUT of the whole body (the body is a stream: not retried here; the engine reads the file again). */
  async upload(url: string, headers: Record<string, string>, body: Readable, size?: number): Promise<void> {
    const all = { ...headers, ...(size !== undefined ? { 'content-length': String(size) } : {}) };
    await (await this.send('PUT', url, all, body, false)).body.dump();
  }

  /**
   * Azure Data Lake Gen2 (a `dfs` SAS URL): create the file, append the body, flush, as the
   * ADLS REST API wants it. `size` is needed for the flush.
   */
  async uploadAdls(url: string, headers: Record<string, string>, body: Readable, size: number): Promise<void> {
    const withParams = (params: Record<string, string>) => {
      const u = new URL(url);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.toString();
    };
    await (await this.send('PUT', withParams({ resource: 'file' }), headers, undefined, false)).body.dump();
    if (size > 0) await (await this.send('PATCH', withParams({ action: 'append', position: '0' }), { ...headers, 'content-length': String(size) }, body, false)).body.dump();
    else body.resume();
    await (await this.send('PATCH', withParams({ action: 'flush', position: String(size) }), headers, undefined, false)).body.dump();
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
