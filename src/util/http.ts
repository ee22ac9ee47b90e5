/**
 * HTTP for connectors: one keep-alive connection pool per server, JSON calls validated at the
 * boundary, streamed downloads and uploads, and retries with exponential backoff and full
 * jitter on 408, 429, 5xx and dropped connections, honouring Retry-After.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { InvalidInputError, TrackshiftError, UsageError } from './errors.js';
import { redact, redactUri } from './redact.js';

export const RETRIABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRIABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export interface HttpOptions {
  /** the server's base URL, possibly with a path prefix; may hold user:pass@, which becomes basic auth */
  baseUrl: string;
  username?: string;
  password?: string;
  token?: string;
  insecureTls?: boolean;
  caFile?: string;
  /** connections kept open to the server */
  connections?: number;
  /** attempts per call, the first included */
  attempts?: number;
  /** first backoff delay, doubled each attempt (full jitter) */
  baseDelayMs?: number;
  maxDelayMs?: number;
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
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** false for calls that must not be repeated blindly (they create something) */
  retry?: boolean;
  attempts?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function errorCodeOf(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export class HttpClient {
  readonly displayUrl: string;
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly headers: Record<string, string> = {};
  private readonly secrets: string[] = [];
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

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
    let ca: Buffer | undefined;
    if (options.caFile) {
      try {
        ca = readFileSync(options.caFile);
      } catch (err) {
        throw new UsageError(`cannot read the CA bundle ${options.caFile}: ${(err as Error).message}`);
      }
    }
    this.agent = new Agent({
      connections: options.connections ?? 32,
      keepAliveTimeout: 30_000,
      connect: { rejectUnauthorized: !options.insecureTls, ...(ca ? { ca } : {}) },
    });
    this.attempts = options.attempts ?? 6;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
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
      throw new InvalidInputError(`${this.displayUrl} ${method} ${path}`, `the answer is not JSON: ${text.slice(0, 200)}`);
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new InvalidInputError(`${this.displayUrl} ${method} ${path}`, `unexpected answer at ${issue?.path.join('.') || '(top)'}: ${issue?.message}`);
    }
    return result.data;
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
    const attempts = options.retry === false ? 1 : (options.attempts ?? this.attempts);
    const streamed = options.body as { stream?: Readable; size?: number } | undefined;
    const isStream = Boolean(streamed && typeof streamed === 'object' && streamed.stream);
    const headers: Record<string, string> = { ...this.headers };
    let body: string | Readable | undefined;
    if (isStream) {
      body = streamed!.stream;
      headers['content-type'] = 'application/octet-stream';
      // a known length avoids chunked encoding, which not every server stack reads
      if (streamed!.size !== undefined) headers['content-length'] = String(streamed!.size);
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    for (let attempt = 1; ; attempt++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method, headers, body, dispatcher: this.agent });
      } catch (err) {
        const code = errorCodeOf(err) ?? 'ERROR';
        if (attempt < attempts && RETRIABLE_CODES.has(code)) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw this.connectionError(code, err);
      }
      if (res.statusCode < 300) return read(res);
      const text = await res.body.text().catch(() => '');
      if (attempt < attempts && RETRIABLE_STATUS.has(res.statusCode)) {
        await sleep(retryAfterMs(res.headers['retry-after']) ?? this.backoff(attempt));
        continue;
      }
      throw this.statusError(method, url, res.statusCode, text);
    }
  }

  private backoff(attempt: number): number {
    return Math.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
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

  private statusError(method: string, url: URL, status: number, text: string): TrackshiftError {
    let errorCode: string | undefined;
    let message = text.slice(0, 500);
    try {
      const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // not JSON: keep the text
    }
    message = redact(message, this.secrets);
    if (status === 401 || status === 403) {
      return new UsageError(
        `${this.displayUrl} refused the credentials (${status}${errorCode ? ` ${errorCode}` : ''}: ${message.trim() || 'no detail'})` +
          (this.options.credentialsHint ? `. ${this.options.credentialsHint}` : ''),
      );
    }
    const path = url.pathname;
    return new HttpError(`${method} ${url.origin}${path} failed with ${status}${errorCode ? ` ${errorCode}` : ''}: ${message.trim()}`, status, errorCode, method, path);
  }
}
