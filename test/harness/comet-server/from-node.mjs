/**
 * The Comet-shaped test server for plain Node scripts (bench/ runs .mjs on Node 20, which cannot
 * load the TypeScript sources): this folder transpiled by ../from-node.mjs and imported.
 *
 *   import { loadCometServer } from '../test/harness/comet-server/from-node.mjs';
 *   const { startCometServer } = await loadCometServer();
 *   const server = await startCometServer();   // server.clientlibUrl, server.apiKey, server.close()
 *
 * Run directly, it starts one server and prints {"url", "clientlibUrl", "apiKey"} as one JSON
 * line, then serves until it is sent SIGTERM or SIGINT:
 *
 *   node test/harness/comet-server/from-node.mjs
 */
import { fileURLToPath } from 'node:url';
import { loadHarness } from '../from-node.mjs';

/** the server's module (startCometServer), transpiled from this folder's TypeScript */
export const loadCometServer = () => loadHarness('comet-server');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { startCometServer } = await loadCometServer();
  const server = await startCometServer();
  console.log(JSON.stringify({ url: server.url, clientlibUrl: server.clientlibUrl, apiKey: server.apiKey }));
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
