/**
 * The import boundaries of DESIGN.md, checked on the source text: imports only go down
 * (cli → verify → engine → connectors → model/util), and a connector imports the contract, the
 * model, util and its family's shared module, never another connector.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(fileURLToPath(new URL('../src', import.meta.url)));

/** Folders a connector may import besides its own: code one family of connectors shares (MLflow's REST API and formats). */
const SHARED_CONNECTOR_MODULES = new Set<string>(['mlflow-common']);

/**
 * Imports that break a rule and are being moved away from. Empty now; an entry needs a reason
 * good enough to write beside it.
 */
const KNOWN_EXCEPTIONS = new Set<string>([]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file, as paths under src/ ending in .ts. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g), ...text.matchAll(/import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)];
  return found.map((m) => relative(SRC, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
}

/** Height of a file in the layering; an import must not point higher than its own file. */
function layer(path: string): number {
  if (path === 'index.ts') return 6;
  if (path.startsWith('cli/')) return 5;
  if (path.startsWith('verify/')) return 4;
  if (path.startsWith('engine/')) return 3;
  if (path === 'connectors/resolve.ts') return 2.5;
  if (path === 'connectors/types.ts') return 1;
  if (path.startsWith('connectors/')) return 2;
  return 0; // model/, util/
}

/** The connector folder a path is in (`connectors/mlflow`), or undefined. */
const connectorOf = (path: string) => /^connectors\/([^/]+)\//.exec(path)?.[1];

function violations(): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file);
    for (const to of importsOf(file)) {
      const edge = `${from} -> ${to}`;
      const goesUp = layer(to) > layer(from);
      const fromConnector = connectorOf(from);
      const toConnector = connectorOf(to);
      const crossesConnectors = fromConnector !== undefined && toConnector !== undefined && fromConnector !== toConnector && !SHARED_CONNECTOR_MODULES.has(toConnector);
      const utilUp = (from.startsWith('util/') || from.startsWith('model/')) && !(to.startsWith('util/') || to.startsWith('model/'));
      if (goesUp || crossesConnectors || utilUp) out.push(edge);
    }
  }
  return out.sort();
}

describe('import boundaries', () => {
  it('imports only go down, and connectors do not import each other', () => {
    const found = violations();
    const fresh = found.filter((edge) => !KNOWN_EXCEPTIONS.has(edge));
    expect(fresh, 'imports that break DESIGN.md\'s layering (move the shared code to util/ or a family module)').toEqual([]);
  });

  it('the list of known exceptions holds only imports that still exist', () => {
    const found = new Set(violations());
    const gone = [...KNOWN_EXCEPTIONS].filter((edge) => !found.has(edge));
    expect(gone, 'remove these from KNOWN_EXCEPTIONS: they are fixed').toEqual([]);
  });

  it('ranks the layers as DESIGN.md draws them', () => {
    const order = ['model/index.ts', 'connectors/types.ts', 'connectors/mlflow/read.ts', 'connectors/resolve.ts', 'engine/job.ts', 'verify/index.ts', 'cli/main.ts', 'index.ts'];
    const heights = order.map(layer);
    expect(heights).toEqual([...heights].sort((a, b) => a - b));
    expect(new Set(heights).size).toBe(order.length);
    expect(connectorOf('connectors/mlflow/read.ts')).toBe('mlflow');
    expect(connectorOf('connectors/types.ts')).toBeUndefined();
  });
});
