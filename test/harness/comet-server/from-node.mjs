/**
 * The Comet-shaped test server for plain Node scripts (bench/ runs .mjs on Node 20, which cannot
 * load the TypeScript sources): transpiles this folder with the project's own TypeScript into a
 * temporary folder and imports it.
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
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));

/** the server's module (startCometServer), transpiled from this folder's TypeScript */
export async function loadCometServer() {
  const out = mkdtempSync(join(tmpdir(), 'trackshift-comet-server-js-'));
  mkdirSync(out, { recursive: true });
  // an ES module folder: the transpiled files keep their `./x.js` imports
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  for (const name of readdirSync(here).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(here, name), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: name,
    });
    writeFileSync(join(out, name.replace(/\.ts$/, '.js')), outputText);
  }
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  return import(pathToFileURL(join(out, 'index.js')).href);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { startCometServer } = await loadCometServer();
  const server = await startCometServer();
  console.log(JSON.stringify({ url: server.url, clientlibUrl: server.clientlibUrl, apiKey: server.apiKey }));
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
