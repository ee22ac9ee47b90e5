/**
 * A test-harness server folder for plain Node scripts (bench/ runs .mjs on Node 20, which cannot
 * load the TypeScript sources): its TypeScript transpiled with the project's own compiler into a
 * temporary folder under node_modules/.cache (so that its imports of packages resolve), then
 * imported. Its imports of trackshift's own sources (`../../../src/…`) load the built `dist/`
 * (`npm run build`, which the bench scripts need anyway).
 *
 *   import { loadHarness } from '../test/harness/from-node.mjs';
 *   const { startNeptuneServer } = await loadHarness('neptune-server');
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const cache = join(root, 'node_modules', '.cache');
const dist = pathToFileURL(join(root, 'dist')).href;

/** the module `test/harness/<folder>/index.ts`, transpiled with the folder's other files */
export async function loadHarness(folder) {
  mkdirSync(cache, { recursive: true });
  const out = mkdtempSync(join(cache, `trackshift-${folder}-`));
  // an ES module folder: the transpiled files keep their `./x.js` imports
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  const source = join(here, folder);
  for (const name of readdirSync(source).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(source, name), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: name,
    });
    writeFileSync(join(out, name.replace(/\.ts$/, '.js')), outputText.replace(/(['"])\.\.\/\.\.\/\.\.\/src\//g, `$1${dist}/`));
  }
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  return import(pathToFileURL(join(out, 'index.js')).href);
}
