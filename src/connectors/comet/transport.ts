/**
 * HTTP to a Comet instance as comet_ml's RestApiClient and RestServerConnection talk to it:
 * the API key in the `Authorization` header as it is (no "Bearer"), JSON bodies, answers
 * validated at the boundary, multipart uploads streamed. Three bases: REST v2
 * (`<root>/api/rest/v2/`), its client-library twin (`<root>/clientlib/rest/v2/`) and the client
 * library itself (url_override, `<root>/clientlib/`).
 *
 * Retries as comet_ml's: 500, 502, 503, 504 with backoff; 429 waits `Retry-After-Custom`
 * seconds + 0.5 (60 s without it, streamer/retry/retry_helpers.py); dropped connections. All
 * under the job's retry policy (its window bounds every wait) and counted on this side.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { LazyAgent } from '../../util/undici.js';
import type { z } from 'zod';
import { InvalidInputError, TrackshiftError, UsageError } from '../../util/errors.js';
import { excerpt } from '../../util/http.js';
import { redact } from '../../util/redact.js';
import { connectionKind, DEFAULT_RETRY_POLICY, errorCode, withRetry, type RetryContext, type RetryPolicy, type RetryReason, type Side } from '../../util/retry.js';
import type { CometConfig } from './config.js';

export type Base = 'rest' | 'clientlibRest' | 'clientlib';

/** comet_ml's status_forcelist (no auth errors) and its 429 handling */
const RETRIED = new Set([500, 502, 503, 504]);
const DEFAULT_RETRY_AFTER_S = 60;

/** A Comet server answered with an error status (401 is a UsageError instead). */
export class CometHttpError extends TrackshiftError {
  constructor(
    message: string,
    readonly status: number,
    /** comet's `sdk_error_code`, when it sent one */
    readonly sdkErrorCode: number | undefined,
    readonly retryReason?: RetryReason,
  ) {
    super(message, 1);
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof CometHttpError && err.status === 404;

export interface CallOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
  /** what the call is about (`experiment abc…`, `project ws/p`), for a 404's message */
  what?: string;
  /** false: a single attempt (a call whose repetition could duplicate, or a body not replayable) */
  retry?: boolean;
  /** gzip the JSON body, as comet_ml sends its batches */
  compress?: boolean;
}

export interface UploadFile {
  /** absent for a remote asset: the form then holds its `link` field only */
  body?: Readable;
  size?: number;
  /** the multipart form's other fields (comet_ml sends `metadata` as JSON text) */
  fields?: Record<string, string>;
}

export class CometHttp {
  readonly root: string;
  private readonly agent: LazyAgent;
  private readonly policy: RetryPolicy;
  private readonly secrets: string[];

  constructor(
    private readonly config: CometConfig,
    private readonly retry: RetryContext | undefined,
    private readonly side: Side,
  ) {
    this.root = config.root;
    this.agent = new LazyAgent({ connections: 16, keepAliveTimeout: 30_000 });
    this.policy = retry?.policy ?? DEFAULT_RETRY_POLICY;
    // the whole key is sent, and its part before `*` identifies it too: neither is ever printed
    this.secrets = [config.apiKey, config.apiKey.split('*')[0]!];
  }

  get apiKey(): string {
    return this.config.apiKey;
  }

  url(base: Base, path: string, query?: CallOptions['query']): URL {
    const prefix = base === 'rest' ? `${this.root}/api/rest/v2/` : base === 'clientlibRest' ? `${this.root}/clientlib/rest/v2/` : this.config.clientlib;
    const url = new URL(path, prefix);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    return url;
  }

  /** A JSON call whose answer `schema` validates. */
  async json<S extends z.ZodType>(method: 'GET' | 'POST' | 'PUT', base: Base, path: string, schema: S, options: CallOptions = {}): Promise<z.infer<S>> {
    const url = this.url(base, path, options.query);
    const text = await this.send(method, url, options, options.body === undefined ? undefined : { json: options.body }, (res) => res.body.text());
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new InvalidInputError(`${this.root} ${method} ${url.pathname}`, `the answer is not JSON: "${this.clean(excerpt(text))}"; is ${this.root} a Comet server? check COMET_URL_OVERRIDE`);
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new InvalidInputError(`${this.root} ${method} ${url.pathname}`, `unexpected answer at ${issue?.path.join('.') || '(top)'}: ${issue?.message}`);
    }
    return result.data;
  }

  /** A streamed download (assets, the git patch); retried while nothing has been received. */
  download(base: Base, path: string, options: CallOptions = {}): Promise<Readable> {
    return this.send('GET', this.url(base, path, options.query), options, undefined, async (res) => res.body);
  }

  /** A multipart upload of one streamed file (field `file`, as comet_ml names it); not retried here: the caller replays it. */
  async upload(base: Base, path: string, file: UploadFile, options: CallOptions = {}): Promise<void> {
    await this.send('POST', this.url(base, path, options.query), { ...options, retry: false }, { multipart: file }, (res) => res.body.dump());
  }

  /**
   * Work under this side's retry policy. `lookup`, before each retry, looks for what a creating
   * call may have made before its answer was lost: found, it is the result and nothing is made again.
   */
  retrying<T>(work: () => Promise<T>, lookup?: () => Promise<T | undefined>): Promise<T> {
    return withRetry(this.policy, work, { side: this.side, stats: this.retry?.stats, beforeRetry: lookup });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private clean(text: string): string {
    return redact(text, this.secrets);
  }

  private async send<T>(
    method: Dispatcher.HttpMethod,
    url: URL,
    options: CallOptions,
    payload: { json: unknown } | { multipart: UploadFile } | undefined,
    read: (res: Dispatcher.ResponseData) => Promise<T>,
  ): Promise<T> {
    const policy = options.retry === false ? { ...this.policy, retries: 0 } : this.policy;
    return withRetry(
      policy,
      async () => {
        const headers: Record<string, string> = { authorization: this.config.apiKey };
        let body: string | Buffer | Readable | undefined;
        if (payload && 'json' in payload) {
          body = JSON.stringify(payload.json);
          headers['content-type'] = 'application/json;charset=utf-8';
          if (options.compress) {
            body = gzipSync(body);
            headers['content-encoding'] = 'gzip';
          }
        } else if (payload) {
          const form = multipart(payload.multipart);
          body = form.body;
          headers['content-type'] = form.contentType;
          if (form.length !== undefined) headers['content-length'] = String(form.length);
        }
        let res: Dispatcher.ResponseData;
        try {
          res = await this.agent.request(url, { method, headers, body });
        } catch (err) {
          const code = errorCode(err) ?? 'ERROR';
          const kind = connectionKind(code);
          const error = new CometHttpError(`cannot reach ${this.root} (${code}: ${this.clean((err as Error)?.message ?? String(err))}): is the server running? check COMET_URL_OVERRIDE`, 0, undefined, kind ? { kind } : undefined);
          throw error;
        }
        if (res.statusCode < 300) return read(res);
        const text = await res.body.text().catch(() => '');
        throw this.statusError(method, url, res.statusCode, text, res.headers['retry-after-custom'], options.what);
      },
      { side: this.side, stats: this.retry?.stats },
    );
  }

  private statusError(method: string, url: URL, status: number, text: string, retryAfter: string | string[] | undefined, what: string | undefined): TrackshiftError {
    let msg: string | undefined;
    let sdkErrorCode: number | undefined;
    try {
      const parsed = JSON.parse(text) as { msg?: unknown; message?: unknown; sdk_error_code?: unknown };
      const m = parsed.msg ?? parsed.message;
      if (typeof m === 'string') msg = m.slice(0, 1000);
      if (typeof parsed.sdk_error_code === 'number') sdkErrorCode = parsed.sdk_error_code;
    } catch {
      // not JSON: an excerpt below
    }
    const detail = this.clean(msg ?? excerpt(text)).trim() || 'no detail';
    if (status === 401 || status === 403) {
      return new UsageError(`${this.root} refused the Comet API key from ${this.config.keyOrigin} (${status}: ${detail}); ${this.config.keyHint}`);
    }
    if (status === 404 && what) {
      return new CometHttpError(`${this.root}: no ${what} (404 for ${method} ${url.pathname}: ${detail}); check the workspace, project and experiment names in the comet:// location`, status, sdkErrorCode);
    }
    let reason: RetryReason | undefined;
    if (status === 429) {
      const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
      const seconds = header !== undefined && header !== '' && Number.isFinite(Number(header)) ? Number(header) : DEFAULT_RETRY_AFTER_S;
      reason = { kind: 'HTTP 429', retryAfterMs: Math.max(0, seconds + 0.5) * 1000 };
    } else if (RETRIED.has(status)) {
      reason = { kind: `HTTP ${status}` };
    }
    return new CometHttpError(`${method} ${this.root}${url.pathname} failed with ${status}: ${detail}`, status, sdkErrorCode, reason);
  }
}

/** A multipart/form-data body: the fields, then the file streamed (its length known when the file's is). */
function multipart(file: UploadFile): { body: Readable; contentType: string; length?: number } {
  const boundary = `trackshift-${randomBytes(12).toString('hex')}`;
  const head: Buffer[] = [];
  for (const [name, value] of Object.entries(file.fields ?? {})) {
    head.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`, 'utf8'));
  }
  if (file.body) head.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\nContent-Type: application/octet-stream\r\n\r\n`, 'utf8'));
  const tail = Buffer.from(`${file.body ? '\r\n' : ''}--${boundary}--\r\n`, 'utf8');
  const prefix = Buffer.concat(head);
  const body = file.body;
  async function* parts() {
    yield prefix;
    if (body) for await (const chunk of body) yield chunk as Buffer;
    yield tail;
  }
  const size = body ? file.size : 0;
  return {
    body: Readable.from(parts(), { objectMode: false }),
    contentType: `multipart/form-data; boundary=${boundary}`,
    ...(size !== undefined ? { length: prefix.length + size + tail.length } : {}),
  };
}
