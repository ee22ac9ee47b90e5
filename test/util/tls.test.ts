/**
 * TLS settings of the HTTP client against a real local HTTPS server with a self-signed
 * certificate made here: refused by default with a hint, accepted with the CA bundle
 * (MLFLOW_TRACKING_SERVER_CERT_PATH) or with verification off (MLFLOW_TRACKING_INSECURE_TLS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HttpClient } from '../../src/util/http.js';

let server: Server;
let base: string;
let caFile: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-tls-'));
  caFile = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', caFile,
  ], { stdio: 'ignore' });
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(caFile) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const ok = z.object({ ok: z.boolean() });

describe('TLS', () => {
  it('refuses an unknown certificate, saying what to set', async () => {
    const http = new HttpClient({ baseUrl: base, retry: { policy: { retries: 0, windowMs: 0, baseDelayMs: 0, maxDelayMs: 0 } } });
    await expect(http.json('GET', 'x', ok)).rejects.toThrow(/MLFLOW_TRACKING_SERVER_CERT_PATH|MLFLOW_TRACKING_INSECURE_TLS/);
    await http.close();
  });

  it('trusts a CA bundle', async () => {
    const http = new HttpClient({ baseUrl: base, caFile });
    expect(await http.json('GET', 'x', ok)).toEqual({ ok: true });
    await http.close();
  });

  it('skips verification when told to', async () => {
    const http = new HttpClient({ baseUrl: base, insecureTls: true });
    expect(await http.json('GET', 'x', ok)).toEqual({ ok: true });
    await http.close();
  });
});
