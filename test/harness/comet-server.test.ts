/**
 * The Comet-shaped server's own mechanics, without Python (test/connectors/comet-server.test.ts
 * checks it with the real comet_ml and cometx): the handshake's answers for a new, an existing
 * and a get-or-create key, gzip batches, multipart uploads with their query, faults injected N
 * times, unanswered paths recorded, call counts, bare NaN in JSON bodies.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCometServer, type CometServer } from './comet-server/index.js';

let server: CometServer;
const key = 'abcdef0123456789abcdef0123456789';

beforeAll(async () => {
  server = await startCometServer();
});
afterAll(() => server.close());

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.clientlibUrl}${path}`, { method: 'POST', headers: { Authorization: server.apiKey, 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('the Comet-shaped server', () => {
  it('makes an experiment with the key the client chose; the same key again is EXPERIMENT_ALREADY_EXISTS unless get-or-create', async () => {
    const run = { experimentKey: key, projectName: 'p', teamName: 'team', offline: true };
    const first = await post('logger/add/run', run);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ runId: expect.any(String), project_id: expect.any(String) });
    expect(await post('logger/add/run', run)).toMatchObject({ status: 400, json: { sdk_error_code: 90999 } });
    expect(await post('logger/add/run', { ...run, getOrCreateEnabled: true })).toMatchObject({ status: 200, json: { runId: first.json.runId } });
    expect(await post('logger/add/run', { ...run, experimentKey: 'short' })).toMatchObject({ status: 400 });
    expect(await post('logger/add/run', run, { Authorization: 'wrong' })).toMatchObject({ status: 400, json: { sdk_error_code: 90212 } });
    expect(await post('batch/logger/experiment/metric', { experimentKey: key, values: [] }, { Authorization: 'wrong' })).toMatchObject({ status: 401, json: { code: 401 } });
    expect(server.store.project('team', 'p')).toBeDefined();
  });

  it('takes gzip batches and bare NaN; keeps every point', async () => {
    const values = Array.from({ length: 2000 }, (_, i) => ({ metricName: 'x', metricValue: i, step: i, epoch: 0, context: null, timestamp: 1000 + i }));
    expect((await post('batch/logger/experiment/metric', gzipSync(JSON.stringify({ experimentKey: key, values })), { 'Content-Encoding': 'gzip' })).status).toBe(200);
    expect((await post('batch/logger/experiment/metric', `{"experimentKey": "${key}", "values": [{"metricName": "x", "metricValue": NaN, "step": 2000, "context": "NaN in a string"}]}`)).status).toBe(200);
    const points = server.store.experiments.get(key)!.metrics.get('x')!;
    expect(points).toHaveLength(2001);
    expect(points.at(-1)).toMatchObject({ metricValue: 'NaN', step: 2000, runContext: 'NaN in a string' });
  });

  it('stores a multipart upload with its query parameters and gives the bytes back', async () => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('bytes\r\n--not a boundary\r\n')]), 'file');
    form.append('metadata', '{"a":1}');
    const query = `experimentId=${key}&fileName=f.txt&type=model-element&step=3&epoch=1&context=train&assetId=0123456789abcdef0123456789abcdef`;
    const res = await fetch(`${server.clientlibUrl}asset/upload?${query}`, { method: 'POST', headers: { Authorization: server.apiKey }, body: form });
    expect(res.status).toBe(200);
    const list = await fetch(`${server.url}/api/rest/v2/experiment/asset/list?experimentKey=${key}`, { headers: { Authorization: server.apiKey } });
    expect(list.headers.get('content-type')).toBe('application/json');
    const [asset] = ((await list.json()) as { assets: Array<Record<string, unknown>> }).assets;
    expect(asset).toMatchObject({ fileName: 'f.txt', type: 'model-element', step: 3, epoch: 1, runContext: 'train', metadata: '{"a":1}', fileSize: 25 });
    const bytes = await fetch(`${server.url}/api/rest/v2/experiment/asset/get-asset?experimentKey=${key}&assetId=${asset!.assetId}`, { headers: { Authorization: server.apiKey } });
    expect(await bytes.text()).toBe('bytes\r\n--not a boundary\r\n');
  });

  it('fails the next calls as asked, records what nothing answers and counts calls', async () => {
    server.failNext(/tags\/add-tags/, { status: 503, times: 2 });
    server.failNext('add-tags', { status: 429, retryAfterCustom: 1 });
    const tags = () => fetch(`${server.clientlibUrl}tags/add-tags-to-experiment`, { method: 'POST', headers: { Authorization: server.apiKey }, body: JSON.stringify({ experimentKey: key, addedTags: ['t'] }) });
    const answers = [];
    for (let i = 0; i < 4; i++) {
      const res = await tags();
      answers.push([res.status, res.headers.get('retry-after-custom')]);
    }
    expect(answers).toEqual([[503, null], [503, null], [429, '1'], [200, null]]);
    expect(server.store.experiments.get(key)!.tags).toEqual(['t']);
    expect(server.count('add-tags-to-experiment')).toBe(4);
    const missing = await fetch(`${server.url}/api/rest/v2/experiment/nothing-here?experimentKey=${key}`, { headers: { Authorization: server.apiKey } });
    expect(missing.status).toBe(404);
    expect(server.unhandled).toEqual(['GET /api/rest/v2/experiment/nothing-here']);
  });
});

it('answers 429 with Retry-After-Custom beyond a rate limit, and takes calls again once the window frees one', async () => {
  const limited = await startCometServer();
  try {
    limited.limit('health/ping', { max: 2, windowMs: 1000 });
    const ping = () => fetch(`${limited.clientlibUrl}health/ping`);
    const first = await Promise.all([ping(), ping(), ping()]);
    expect(first.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    expect(first.find((r) => r.status === 429)!.headers.get('retry-after-custom')).toBe('1');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await ping()).status).toBe(200);
  } finally {
    await limited.close();
  }
});

it('runs from plain Node (for bench/ scripts): transpiled on the fly, one JSON line, stopped by SIGTERM', async () => {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'comet-server', 'from-node.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const info = JSON.parse(line.toString()) as { url: string; clientlibUrl: string; apiKey: string };
    expect(info.clientlibUrl).toBe(`${info.url}/clientlib/`);
    const res = await fetch(`${info.url}/api/rest/v2/workspaces`, { headers: { Authorization: info.apiKey } });
    expect(await res.json()).toEqual({ workspaceNames: ['ws'] });
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(0);
});
