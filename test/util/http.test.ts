/**
 * The HTTP client against a real local server (its peer, not a mock of MLflow): retries,
 * Retry-After, dropped connections, non-idempotent calls, error messages without secrets.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConnectionError, HttpClient, HttpError } from '../../src/util/http.js';
import { InvalidInputError, UsageError } from '../../src/util/errors.js';
import { redact, redactUri } from '../../src/util/redact.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

let server: Server;
let base: string;
let handlers: Handler[] = [];
let seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }> = [];

/** The next answers, in order; the last one repeats. */
const answer = (...list: Handler[]) => {
  handlers = list;
};
const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const handler = handlers.length > 1 ? handlers.shift()! : handlers[0]!;
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => {
  seen = [];
});

const ok = z.object({ ok: z.boolean() });
/** a policy that retries at once (no real waiting in tests) */
const fastRetry = (retries: number) => ({ policy: { retries, windowMs: 60_000, baseDelayMs: 5, maxDelayMs: 50 } });
const client = (extra: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}) =>
  new HttpClient({ baseUrl: base, retry: fastRetry(5), ...extra });

describe('HttpClient', () => {
  it('retries a 503 and returns the answer that follows', async () => {
    answer(json(503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }), json(200, { ok: true }));
    const http = client();
    expect(await http.json('POST', 'api/x', ok, { body: { a: 1 } })).toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    // the body is sent again, whole
    expect(seen.map((s) => s.body.toString())).toEqual(['{"a":1}', '{"a":1}']);
    await http.close();
  });

  it('waits as long as Retry-After says, in seconds or as an HTTP date', async () => {
    answer(json(429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }, { 'retry-after': '1' }), json(200, { ok: true }));
    const http = client();
    let started = Date.now();
    await http.json('GET', 'api/x', ok);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);

    // HTTP dates have a resolution of one second: ask for two, expect more than a few ms
    answer(json(503, {}, { 'retry-after': new Date(Date.now() + 2000).toUTCString() }), json(200, { ok: true }));
    started = Date.now();
    await http.json('GET', 'api/x', ok);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    await http.close();
  });

  it('retries a connection the server drops', async () => {
    answer((req) => req.socket.destroy(), json(200, { ok: true }));
    const http = client();
    expect(await http.json('GET', 'api/x', ok)).toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    await http.close();
  });

  it('gives up after the configured number of attempts with a typed error', async () => {
    answer(json(502, { error_code: 'BAD_GATEWAY', message: 'upstream down' }));
    const http = client({ retry: fastRetry(2) });
    const error = await http.json('GET', 'api/2.0/thing', ok, { query: { run_id: 'r1' } }).catch((e) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ status: 502, errorCode: 'BAD_GATEWAY', method: 'GET', path: '/api/2.0/thing' });
    expect(error.message).toMatch(/upstream down/);
    expect(seen).toHaveLength(3);
    await http.close();
  });

  it('does not repeat a call marked non-idempotent', async () => {
    answer(json(503, { message: 'busy' }), json(200, { ok: true }));
    const http = client();
    await expect(http.json('POST', 'api/create', ok, { body: {}, retry: false })).rejects.toMatchObject({ status: 503 });
    expect(seen).toHaveLength(1);
    await http.close();
  });

  it('does not retry client errors, and keeps the MLflow error code', async () => {
    answer(json(400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'bad key' }));
    const http = client();
    await expect(http.json('POST', 'api/x', ok, { body: {} })).rejects.toMatchObject({ status: 400, errorCode: 'INVALID_PARAMETER_VALUE' });
    expect(seen).toHaveLength(1);
    await http.close();
  });

  it('sends basic auth from the URL or the options, and bearer tokens; refused credentials are a usage error without the secret', async () => {
    answer(json(401, { error_code: 'UNAUTHENTICATED', message: 'You are not authenticated.' }));
    const withUrl = new HttpClient({ baseUrl: base.replace('://', '://ana:s3cret-pw@'), retry: fastRetry(5), credentialsHint: 'Set MLFLOW_TRACKING_USERNAME' });
    expect(withUrl.displayUrl).toBe(base);
    const error = await withUrl.json('GET', 'api/x', ok).catch((e) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(/refused the credentials \(401/);
    expect(error.message).toMatch(/MLFLOW_TRACKING_USERNAME/);
    expect(error.message).not.toContain('s3cret-pw');
    expect(seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('ana:s3cret-pw').toString('base64')}`);
    expect(seen).toHaveLength(1);
    await withUrl.close();

    answer(json(200, { ok: true }));
    const withToken = client({ token: 'tok-123456' });
    await withToken.json('GET', 'api/x', ok);
    expect(seen[1]!.headers.authorization).toBe('Bearer tok-123456');
    await withToken.close();
  });

  it('says clearly when nothing listens at the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const http = new HttpClient({ baseUrl: `http://u:hidden-pw@127.0.0.1:${port}`, retry: fastRetry(1) });
    const error = await http.json('GET', 'api/x', ok).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toMatch(new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED.*is the server running\\?`));
    expect(error.message).not.toContain('hidden-pw');
    await http.close();
  });

  it('rejects an answer of the wrong shape, naming the call', async () => {
    answer(json(200, { ok: 'yes' }));
    const http = client();
    const error = await http.json('GET', 'api/shape', ok).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(/api\/shape.*ok/);
    await http.close();
  });

  it('streams uploads and downloads, empty ones included', async () => {
    answer((_req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(body);
    });
    const http = client();
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    await http.upload('up/a%20b', Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]), payload.length);
    expect(seen[0]!.method).toBe('PUT');
    expect(seen[0]!.url).toBe('/up/a%20b');
    expect(seen[0]!.body.equals(payload)).toBe(true);
    await http.upload('up/empty', Readable.from([]), 0);
    expect(seen[1]!.body.length).toBe(0);

    answer((_req, res) => {
      res.writeHead(200);
      res.end(payload);
    });
    const chunks: Buffer[] = [];
    for await (const chunk of await http.download('down', { path: 'x y' })) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(seen[2]!.url).toBe('/down?path=x+y');
    await http.close();
  });
});

describe('answers from a server that is not MLflow', () => {
  const page = (status: number, title: string): Handler => (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/html' });
    res.end(
      `<!DOCTYPE html>\n<html><head><title>${title}</title><style>body { color: red }</style>\n<script>var x = 1;</script></head>\n` +
        `<body>\n  <h1>${title}</h1>\n  <p>The   requested URL\n was not found &amp; that is all.</p>\n${'<div>filler text</div>\n'.repeat(400)}</body></html>`,
    );
  };

  it('shows an HTML error page as status, a one-line excerpt and a hint (404, 500)', async () => {
    for (const [status, title] of [[404, 'Not Found'], [500, 'Internal Server Error']] as const) {
      answer(page(status, title));
      const http = client({ retry: fastRetry(1) });
      const error = await http.json('POST', 'api/2.0/mlflow/runs/search', ok, { body: {} }).catch((e) => e);
      expect(error).toBeInstanceOf(HttpError);
      const message = (error as Error).message;
      expect(message).toContain(`failed with ${status}: ${title} The requested URL was not found & that is all.`);
      expect(message).toContain('is this an MLflow tracking server? check the URL and path prefix');
      expect(message).not.toMatch(/<|\n|color: red|var x/);
      const excerptPart = message.slice(message.indexOf(`${status}: `) + 5, message.indexOf(' (is this'));
      expect(excerptPart.length).toBeLessThanOrEqual(200);
      await http.close();
    }
  });

  it('says an HTML page answered with 200 is not JSON, briefly, with the hint', async () => {
    answer(page(200, 'Welcome to nginx'));
    const http = client();
    const error = await http.json('GET', 'api/2.0/mlflow/experiments/search', ok).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(/the answer is not JSON: "Welcome to nginx The requested URL/);
    expect(error.message).toContain('is this an MLflow tracking server?');
    expect(error.message.length).toBeLessThan(400);
    expect(error.message).not.toMatch(/<|\n/);
    await http.close();
  });
});

describe('redaction', () => {
  it('removes credentials from URIs', () => {
    expect(redactUri('https://ana:pw@mlflow.example.com:5000')).toBe('https://mlflow.example.com:5000');
    expect(redactUri('https://h/x?token=abc&run=1')).toBe('https://h/x?token=***&run=1');
    expect(redactUri('http://127.0.0.1:5000/')).toBe('http://127.0.0.1:5000/');
    expect(redactUri('/data/mlruns')).toBe('/data/mlruns');
  });
  it('replaces known secret values', () => {
    expect(redact('user ana with pw hunter22 failed: hunter22', ['hunter22', undefined])).toBe('user ana with pw *** failed: ***');
  });
});
