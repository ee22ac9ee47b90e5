/**
 * The HTTP side of the Comet-shaped test server: routes by path under the three bases comet_ml
 * calls (`/clientlib/…` for the logger, `/api/rest/v2/…` and `/clientlib/rest/v2/…` for REST),
 * checks the API key, injects the faults a test asked for, records call counts and every path
 * nothing answers, and reads bodies (gzip, JSON, multipart).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { CometStore, Experiment, Project } from './store.js';

/** Comet's error body (comet_ml reads `msg` and `sdk_error_code` from it) */
export class CometError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly sdkErrorCode?: number,
  ) {
    super(message);
  }
}

export interface Reply {
  status?: number;
  json?: unknown;
  bytes?: Buffer;
  contentType?: string;
}

export interface Part {
  name: string;
  filename: string | null;
  data: Buffer;
}

export class Ctx {
  private raw: Promise<Buffer> | undefined;
  constructor(
    readonly req: IncomingMessage,
    readonly url: URL,
    readonly store: CometStore,
    readonly baseUrl: string,
  ) {}

  get query(): URLSearchParams {
    return this.url.searchParams;
  }

  body(): Promise<Buffer> {
    this.raw ??= (async () => {
      const chunks: Buffer[] = [];
      for await (const c of this.req) chunks.push(c as Buffer);
      const all = Buffer.concat(chunks);
      return this.req.headers['content-encoding'] === 'gzip' ? gunzipSync(all) : all;
    })();
    return this.raw;
  }

  /** the JSON body: an object, or a 400 as Comet answers malformed input */
  async json(): Promise<Record<string, unknown>> {
    const text = (await this.body()).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text || '{}');
    } catch {
      // Python's json writes float NaN/±Infinity as bare tokens; Comet's backend takes them
      try {
        value = JSON.parse(text.replace(/("(?:[^"\\]|\\.)*")|(-?Infinity|NaN)/g, (m, quoted: string | undefined) => quoted ?? `"${m}"`));
      } catch {
        throw new CometError(400, 'Invalid JSON body');
      }
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CometError(400, 'JSON body must be an object');
    return value as Record<string, unknown>;
  }

  async multipart(): Promise<Part[]> {
    const type = this.req.headers['content-type'] ?? '';
    const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(type);
    if (!m) throw new CometError(400, 'Expected a multipart body');
    return parseMultipart(await this.body(), m[1] ?? m[2]!);
  }

  /** the experiment named by `experimentKey` (query, or the JSON body given), else Comet's 404 */
  experiment(key: unknown): Experiment {
    if (typeof key !== 'string' || key === '') throw new CometError(400, 'experimentKey is required');
    const e = this.store.experiments.get(key);
    if (!e) throw new CometError(404, `Experiment ${key} not found`, 90210);
    return e;
  }

  projectById(id: unknown): Project {
    const p = typeof id === 'string' ? this.store.projects.get(id) : undefined;
    if (!p) throw new CometError(404, `Project ${String(id)} not found`);
    return p;
  }
}

function parseMultipart(body: Buffer, boundary: string): Part[] {
  const parts: Part[] = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    const chunk = body.subarray(start + 2, next - 2); // drop the CRLF after the delimiter and before the next
    const split = chunk.indexOf('\r\n\r\n');
    const head = chunk.subarray(0, split).toString('utf8');
    const disposition = /content-disposition:[^\r\n]*/i.exec(head)?.[0] ?? '';
    const name = /\bname="([^"]*)"/.exec(disposition)?.[1] ?? '';
    const filename = /\bfilename="([^"]*)"/.exec(disposition)?.[1] ?? null;
    parts.push({ name, filename, data: chunk.subarray(split + 4) });
    at = next;
  }
  return parts;
}

export type Handler = (ctx: Ctx) => Promise<Reply> | Reply;
/** `rest`: under /api/rest/v2/ and /clientlib/rest/v2/; `clientlib`: under /clientlib/ */
export type Base = 'rest' | 'clientlib';
export interface Route {
  method: 'GET' | 'POST' | 'PUT';
  base: Base;
  path: string;
  /** false for what Comet answers without a key (version, ping) */
  auth?: boolean;
  handler: Handler;
}

export interface Fault {
  status: number;
  /** seconds, sent as the `Retry-After-Custom` header comet_ml reads on a 429 */
  retryAfterCustom?: number;
  /** how many matching calls fail (default 1) */
  times?: number;
  body?: unknown;
}

/** a rate limit: more than `max` calls within `windowMs` answer 429 with Retry-After-Custom */
export interface Limit {
  max: number;
  windowMs: number;
  /** seconds sent in Retry-After-Custom (default: until the window frees a call, rounded up) */
  retryAfterCustom?: number;
}

export class Router {
  private readonly limits: Array<{ pattern: string | RegExp; limit: Limit; times: number[] }> = [];
  private readonly routes = new Map<string, Route>();
  private readonly faults: Array<{ pattern: string | RegExp; fault: Fault; left: number }> = [];
  /** `METHOD /path` of every call no route answered */
  readonly unhandled: string[] = [];
  /** calls per `METHOD /path` (query left out), faults included */
  readonly calls = new Map<string, number>();
  /** the faults injected so far, as `METHOD /path status` */
  readonly injected: string[] = [];
  /** every call in order: `METHOD /path`, the status answered, when (ms) */
  readonly history: Array<{ call: string; status: number; at: number }> = [];

  constructor(
    private readonly store: CometStore,
    private readonly apiKeys: ReadonlySet<string>,
  ) {}

  add(routes: readonly Route[]): void {
    for (const r of routes) {
      const prefixes = r.base === 'rest' ? ['/api/rest/v2/', '/clientlib/rest/v2/'] : ['/clientlib/'];
      for (const p of prefixes) this.routes.set(`${r.method} ${p}${r.path}`, r);
    }
  }

  failNext(pattern: string | RegExp, fault: Fault): void {
    this.faults.push({ pattern, fault, left: fault.times ?? 1 });
  }

  async handle(req: IncomingMessage, res: ServerResponse, baseUrl: string): Promise<void> {
    const url = new URL(req.url ?? '/', baseUrl);
    const path = url.pathname.replace(/\/{2,}/g, '/');
    const key = `${req.method} ${path}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    res.once('finish', () => this.history.push({ call: key, status: res.statusCode, at: Date.now() }));
    try {
      const fault = this.takeFault(path) ?? this.overLimit(path);
      if (fault) {
        req.resume();
        this.injected.push(`${key} ${fault.status}`);
        const headers: Record<string, string> = fault.retryAfterCustom !== undefined ? { 'Retry-After-Custom': String(fault.retryAfterCustom) } : {};
        send(res, fault.status, { json: fault.body ?? { msg: `injected ${fault.status}`, code: fault.status, data: null, sdk_error_code: 0 } }, headers);
        return;
      }
      const route = this.routes.get(key);
      if (!route) {
        req.resume();
        this.unhandled.push(key);
        throw new CometError(404, `No endpoint ${key}`);
      }
      const ctx = new Ctx(req, url, this.store, baseUrl);
      if (route.auth !== false) await this.checkKey(ctx, route);
      send(res, 200, await route.handler(ctx));
    } catch (err) {
      if (!(err instanceof CometError)) {
        send(res, 500, { json: { msg: String((err as Error)?.message ?? err), code: 500, data: null, sdk_error_code: 0 } });
        return;
      }
      req.resume();
      send(res, err.status, { json: { msg: err.message, code: err.status, data: null, sdk_error_code: err.sdkErrorCode ?? 0 } });
    }
  }

  limit(pattern: string | RegExp, limit: Limit): void {
    this.limits.push({ pattern, limit, times: [] });
  }

  /** Comet's documented per-minute limits, as a 429 when a call goes over */
  private overLimit(path: string): Fault | undefined {
    const now = Date.now();
    for (const l of this.limits) {
      if (!(typeof l.pattern === 'string' ? path.includes(l.pattern) : l.pattern.test(path))) continue;
      while (l.times.length > 0 && l.times[0]! <= now - l.limit.windowMs) l.times.shift();
      if (l.times.length >= l.limit.max) {
        const wait = l.limit.retryAfterCustom ?? Math.ceil((l.times[0]! + l.limit.windowMs - now) / 1000);
        return { status: 429, retryAfterCustom: wait, body: { msg: 'Too many requests', code: 429, data: null, sdk_error_code: 0 } };
      }
      l.times.push(now);
    }
    return undefined;
  }

  private takeFault(path: string): Fault | undefined {
    for (const f of this.faults) {
      if (f.left <= 0) continue;
      if (typeof f.pattern === 'string' ? path.includes(f.pattern) : f.pattern.test(path)) {
        f.left--;
        return f.fault;
      }
    }
    return undefined;
  }

  /**
   * comet_ml sends the key as the bare `Authorization` header on every call (and also as `apiKey`
   * in the logger's JSON bodies). A wrong or missing key: REST answers 401; the logger's
   * handshake answers 400 with sdk_error_code 90212 (API_KEY_NOT_REGISTERED), which comet_ml turns
   * into InvalidAPIKey.
   */
  private async checkKey(ctx: Ctx, route: Route): Promise<void> {
    const header = ctx.req.headers.authorization;
    if (typeof header === 'string' && this.apiKeys.has(header)) return;
    if (route.path === 'logger/add/run' || route.path === 'logger/get/run') throw new CometError(400, 'Invalid API key', 90212);
    throw new CometError(401, 'Unauthorized: invalid or missing API key', 90212);
  }
}

function send(res: ServerResponse, status: number, reply: Reply, headers: Record<string, string> = {}): void {
  const s = reply.status ?? status;
  if (reply.bytes) {
    res.writeHead(s, { ...headers, 'Content-Type': reply.contentType ?? 'application/octet-stream', 'Content-Length': reply.bytes.length });
    res.end(reply.bytes);
    return;
  }
  // exactly `application/json`: comet_ml's REST client compares the header with it
  const body = Buffer.from(JSON.stringify(reply.json ?? {}), 'utf8');
  res.writeHead(s, { ...headers, 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}
