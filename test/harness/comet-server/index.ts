/**
 * A local Comet-shaped server for tests, on a free loopback port: what comet_ml 3.58.8's offline
 * sender (`comet upload`), its online Experiment, its REST API client (comet_ml.API) and cometx
 * call, answered as Comet answers them (shapes taken from comet_ml's own code). No live Comet
 * instance is used anywhere in the tests.
 *
 *   const server = await startCometServer();
 *   env COMET_URL_OVERRIDE=server.clientlibUrl COMET_API_KEY=server.apiKey comet upload x.zip
 *   server.failNext('batch/logger/experiment/metric', { status: 429, retryAfterCustom: 1 });
 *   expect(server.unhandled).toEqual([]);
 *   await server.close();
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientlibRoutes } from './clientlib.js';
import { Router, type Fault, type Limit } from './http.js';
import { restReadRoutes } from './rest-read.js';
import { restWriteRoutes } from './rest-write.js';
import { CometStore } from './store.js';

export type { Fault, Limit } from './http.js';
export type { Asset, CometStore, Experiment, MetricPoint, Project } from './store.js';

export interface CometServerOptions {
  /** keys the server accepts (default: one, `apiKey` of the result) */
  apiKeys?: string[];
  /** the workspace of the key, used when a client names none (default `ws`) */
  workspace?: string;
}

export interface CometServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** what COMET_URL_OVERRIDE is set to: http://127.0.0.1:PORT/clientlib/ */
  clientlibUrl: string;
  /** the first accepted key */
  apiKey: string;
  port: number;
  store: CometStore;
  /** `METHOD /path` of every call no endpoint answered (a test asserts it stays empty) */
  readonly unhandled: string[];
  /** calls per `METHOD /path` */
  readonly calls: Map<string, number>;
  /** faults injected so far, as `METHOD /path status` */
  readonly injected: string[];
  /** every call in order: `METHOD /path`, the status answered, when (ms) */
  readonly history: ReadonlyArray<{ call: string; status: number; at: number }>;
  /** the next call(s) whose path contains `pattern` (or matches it) answer `fault.status` instead */
  failNext(pattern: string | RegExp, fault: Fault): void;
  /** calls whose path contains `pattern` (or matches it) beyond `limit.max` per `limit.windowMs` answer 429 with Retry-After-Custom */
  limit(pattern: string | RegExp, limit: Limit): void;
  /** total calls whose path contains `fragment` */
  count(fragment: string): number;
  close(): Promise<void>;
}

export async function startCometServer(options: CometServerOptions = {}): Promise<CometServer> {
  const apiKeys = options.apiKeys ?? ['trackshiftTestKey0123456789'];
  const store = new CometStore(mkdtempSync(join(tmpdir(), 'trackshift-comet-server-')), options.workspace ?? 'ws');
  const router = new Router(store, new Set(apiKeys));
  router.add(clientlibRoutes);
  router.add(restReadRoutes);
  router.add(restWriteRoutes);
  let url = '';
  const server = createServer((req, res) => void router.handle(req, res, url));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  url = `http://127.0.0.1:${port}`;
  return {
    url,
    clientlibUrl: `${url}/clientlib/`,
    apiKey: apiKeys[0]!,
    port,
    store,
    unhandled: router.unhandled,
    calls: router.calls,
    injected: router.injected,
    history: router.history,
    failNext: (pattern, fault) => router.failNext(pattern, fault),
    limit: (pattern, limit) => router.limit(pattern, limit),
    count: (fragment) => [...router.calls].filter(([k]) => k.includes(fragment)).reduce((n, [, c]) => n + c, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          store.dispose();
          resolve();
        });
      }),
  };
}
