/**
 * HTTP for connectors: one keep-alive connection pool per server, JSON calls validated at the
 * boundary, streamed downloads and uploads, and retries with exponential backoff and full
 * jitter on 408, 429, 5xx and dropped connections, honouring Retry-After.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { LazyAgent } from './undici.js';
import type { z } from 'zod';
import { InvalidInputError, TrackshiftError, UsageError } from './errors.js';
import { redact, redactUri } from './redact.js';
import { connectionKind, DEFAULT_RETRY_POLICY, errorCode, RETRIABLE_STATUS, statusRetryReason, withRetry, type RetryContext, type RetryPolicy, type RetryReason, type Side } from './retry.js';

export { RETRIABLE_STATUS };

export interface HttpOptions {
  /** the server's base URL, possibly with a path prefix; may hold user:pass@, which becomes basic auth */
  baseUrl: string;
  username?: string;
  password?: string;
  token?: string;
  /** a bearer token asked for before each attempt: one that expires and is renewed (never printed) */
  bearer?: () => Promise<string>;
  /** headers sent with every call; their values are secrets (never printed) */
  headers?: Record<string, string>;
  insecureTls?: boolean;
  caFile?: string;
  /** connections kept open to the server */
  connections?: number;
  /** how calls are retried, and where retries are counted */
  retry?: RetryContext;
  /** which end of the job this server is, for the retry counts */
  side?: Side;
  /** what to tell a user whose credentials were refused */
  credentialsHint?: string;
}

/** A server answered with an error status. */
export class HttpError extends TrackshiftError {
  constructor(
    message: string,
    readonly status: number,
    readonly errorCode: string | undefined,
    readonly method: string,
    readonly path: string,
    /** set when the status is worth another attempt */
    readonly retryReason?: RetryReason,
  ) {
    super(message, 1);
  }
}

/** The server could not be reached at all (after retries). */
export class ConnectionError extends TrackshiftError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message, 1);
  }

  get retryReason(): RetryReason | undefined {
    const kind = connectionKind(this.code);
    return kind ? { kind } : undefined;
  }
}

/** A server's answer fit for a one-line message: tags stripped, whitespace collapsed, cut short. */
export function excerpt(text: string, max = 200): string {
  const plain = text
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
  return plain.length > max ? `${plain.slice(0, max - 1)}…` : plain;
}

const looksLikeHtml = (text: string) => /^\s*<|<html|<body|<title/i.test(text);
const NOT_MLFLOW_HINT = 'is this an MLflow tracking server? check the URL and path prefix';

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON, raw bytes (a Buffer), or `{ stream, size }` */
  body?: unknown;
  /** the Content-Type of a Buffer body (default application/octet-stream): protobuf, a form */
  contentType?: string;
  /** false for calls that must not be repeated blindly (they create something, or stream a body) */
  retry?: boolean;
  attempts?: number;
}

export class HttpClient {
  readonly displayUrl: string;
  private readonly base: URL;
  private readonly agent: LazyAgent;
  private readonly headers: Record<string, string> = {};
  private readonly secrets: string[] = [];
  readonly retryPolicy: RetryPolicy;

  constructor(private readonly options: HttpOptions) {
    const url = new URL(options.baseUrl);
    const username = options.username ?? decodeURIComponent(url.username);
    const password = options.password ?? decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    this.base = url;
    this.displayUrl = redactUri(options.baseUrl);
    if (options.token) {
      this.headers.authorization = `Bearer ${options.token}`;
      this.secrets.push(options.token);
    } else if (username || password) {
      this.headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      this.secrets.push(password);
    }
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      this.headers[name.toLowerCase()] = value;
      this.secrets.push(value);
    }
    let ca: Buffer | undefined;
    if (options.caFile) {
      try {
        ca = readFileSync(options.caFile);
      } catch (err) {
        throw new UsageError(`cannot read the CA bundle ${options.caFile}: ${(err as Error).message}`);
      }
    }
    this.agent = new LazyAgent({
      connections: options.connections ?? 32,
      keepAliveTimeout: 30_000,
      connect: { rejectUnauthorized: !options.insecureTls, ...(ca ? { ca } : {}) },
    });
    this.retryPolicy = options.retry?.policy ?? DEFAULT_RETRY_POLICY;
  }

  url(path: string, query?: CallOptions['query']): URL {
    const url = new URL(path.replace(/^\//, ''), this.base);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    return url;
  }

  /** A JSON call whose answer is validated by `schema`. */
  async json<S extends z.ZodType>(method: Dispatcher.HttpMethod, path: string, schema: S, options: CallOptions = {}): Promise<z.infer<S>> {
    const text = await this.call(method, path, options, async (res) => res.body.text());
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      const hint = looksLikeHtml(text) ? `; ${NOT_MLFLOW_HINT}` : '';
      throw new InvalidInputError(`${this.displayUrl} ${method} ${path}`, `the answer is not JSON: "${redact(excerpt(text), this.secrets)}"${hint}`);
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new InvalidInputError(`${this.displayUrl} ${method} ${path}`, `unexpected answer at ${issue?.path.join('.') || '(top)'}: ${issue?.message}`);
    }
    return result.data;
  }

  /** A call whose answer is taken as bytes (a protobuf message), read whole. */
  async bytes(method: Dispatcher.HttpMethod, path: string, options: CallOptions = {}): Promise<Buffer> {
    return this.call(method, path, options, async (res) => Buffer.from(await res.body.arrayBuffer()));
  }

  /** A streamed download; retried while nothing has been received. */
  async download(path: string, query?: CallOptions['query']): Promise<Readable> {
    return this.call('GET', path, { query }, async (res) => res.body);
  }

  /** A streamed upload. The body cannot be replayed, so the caller retries (from a new stream). */
  async upload(path: string, body: Readable, size?: number): Promise<void> {
    await this.call('PUT', path, { retry: false, body: { stream: body, size } }, async (res) => res.body.dump());
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    options: CallOptions,
    read: (res: Dispatcher.ResponseData) => Promise<T>,
  ): Promise<T> {
    const url = this.url(path, options.query);
    const streamed = options.body as { stream?: Readable; size?: number } | undefined;
    const isStream = Boolean(streamed && typeof streamed === 'object' && streamed.stream);
    const headers: Record<string, string> = { ...this.headers };
    let body: string | Buffer | Readable | undefined;
    if (Buffer.isBuffer(options.body)) {
      // raw bytes: replayable, so retried like any call
      body = options.body;
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    } else if (isStream) {
      body = streamed!.stream;
      headers['content-type'] = 'application/octet-stream';
      // a known length avoids chunked encoding, which not every server stack reads
      if (streamed!.size !== undefined) headers['content-length'] = String(streamed!.size);
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const retries = options.retry === false ? 0 : options.attempts !== undefined ? options.attempts - 1 : this.retryPolicy.retries;
    const policy = retries === this.retryPolicy.retries ? this.retryPolicy : { ...this.retryPolicy, retries };
    return this.retrying(policy, async () => {
      if (this.options.bearer) {
        const token = await this.options.bearer();
        if (!this.secrets.includes(token)) this.secrets.push(token);
        headers.authorization = `Bearer ${token}`;
      }
      let res: Dispatcher.ResponseData;
      try {
        res = await this.agent.request(url, { method, headers, body });
      } catch (err) {
        throw this.connectionError(errorCode(err) ?? 'ERROR', err);
      }
      if (res.statusCode < 300) return read(res);
      const text = await res.body.text().catch(() => '');
      throw this.statusError(method, url, res.statusCode, text, res.headers['retry-after']);
    });
  }

  /**
   * Work against this server under its retry policy, counted on its side. `beforeRetry` looks
   * for what a creating call may have made before its answer was lost (see withRetry).
   */
  retrying<T>(policy: RetryPolicy, work: () => Promise<T>, beforeRetry?: () => Promise<T | undefined>): Promise<T> {
    return withRetry(policy, work, { side: this.options.side, stats: this.options.retry?.stats, beforeRetry });
  }

  private connectionError(code: string, err: unknown): ConnectionError {
    const detail = redact((err as Error)?.message ?? String(err), this.secrets);
    const hint =
      code === 'ECONNREFUSED'
        ? 'is the server running? check the URL and port'
        : code === 'ENOTFOUND'
          ? 'check the host name'
          : code.startsWith('UND_ERR') || code === 'ETIMEDOUT'
            ? 'the server did not answer in time'
            : /certificate|self.signed|CERT/i.test(detail)
              ? 'set MLFLOW_TRACKING_SERVER_CERT_PATH to a CA bundle, or MLFLOW_TRACKING_INSECURE_TLS=true'
              : 'check the URL and the network';
    return new ConnectionError(`cannot reach ${this.displayUrl} (${code}: ${detail}): ${hint}`, code);
  }

  private statusError(method: string, url: URL, status: number, text: string, retryAfter?: string | string[]): TrackshiftError {
    let errorCode: string | undefined;
    let message: string | undefined;
    try {
      const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
      if (typeof parsed.message === 'string') message = parsed.message.slice(0, 1000);
    } catch {
      // not JSON: an excerpt below
    }
    // a page from something that is not an MLflow server (a proxy, another app): its gist and a hint
    const html = message === undefined && looksLikeHtml(text);
    message = redact(message ?? excerpt(text), this.secrets).trim();
    const hint = html ? ` (${NOT_MLFLOW_HINT})` : '';
    if (status === 401 || status === 403) {
      return new UsageError(
        `${this.displayUrl} refused the credentials (${status}${errorCode ? ` ${errorCode}` : ''}: ${message || 'no detail'})${hint}` +
          (this.options.credentialsHint ? `. ${this.options.credentialsHint}` : ''),
      );
    }
    const path = url.pathname;
    const reason = statusRetryReason(status, retryAfter);
    return new HttpError(`${method} ${url.origin}${path} failed with ${status}${errorCode ? ` ${errorCode}` : ''}: ${message || 'no detail'}${hint}`, status, errorCode, method, path, reason);
  }
}
