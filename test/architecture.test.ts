/**
 * The import boundaries of DESIGN.md, checked by dependency-cruiser with the project's
 * .dependency-cruiser.cjs: imports only go down (cli → verify/engine → connectors → model/util),
 * a connector imports the contract, the model, util and the shared modules, never another
 * connector, and nothing imports in a circle.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const config = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs')) as { forbidden: IForbiddenRuleType[]; options: ICruiseOptions };

/** Every rule broken under `baseDir`/src, as `rule: from → to`. */
async function violations(baseDir: string): Promise<string[]> {
  const options: ICruiseOptions = { ...config.options, baseDir, validate: true, ruleSet: { forbidden: config.forbidden }, tsConfig: { fileName: join(ROOT, 'tsconfig.json') } };
  const result = await cruise(['src'], options);
  const output = result.output as ICruiseResult;
  return output.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

describe('import boundaries (dependency-cruiser)', () => {
  it('src/ breaks none of them', async () => {
    expect(await violations(ROOT), 'imports that break DESIGN.md\'s layering (move the shared code to util/ or a shared module)').toEqual([]);
  }, 60_000);

  describe('fails on a forbidden import', () => {
    const tree = mkdtempSync(join(tmpdir(), 'trackshift-architecture-'));
    afterAll(() => rmSync(tree, { recursive: true, force: true }));
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(tree, path)), { recursive: true });
      writeFileSync(join(tree, path), text);
    };
    write('src/model/x.ts', "import { y } from '../engine/y.js';\nexport const x = y;\n");
    write('src/engine/y.ts', 'export const y = 1;\n');
    // allowed: the shared modules and connectors/unreadable.ts; forbidden: another connector
    write('src/connectors/a/index.ts', "import { b } from '../b/index.js';\nimport { common } from '../mlflow-common/common.js';\nimport { encoded } from '../encoding/encoded.js';\nimport { unreadable } from '../unreadable.js';\nexport const a = b + common + encoded + unreadable;\n");
    write('src/connectors/unreadable.ts', 'export const unreadable = 1;\n');
    write('src/connectors/b/read.ts', "import { open } from '../resolve.js';\nexport const read = open;\n");
    write('src/connectors/resolve.ts', 'export const open = 1;\n');
    write('src/engine/z.ts', "import { v } from '../verify/v.js';\nexport const z = v;\n");
    write('src/verify/v.ts', "import { y } from '../engine/y.js';\nexport const v = y;\n");
    write('src/connectors/b/index.ts', 'export const b = 1;\n');
    write('src/connectors/mlflow-common/common.ts', 'export const common = 1;\n');
    write('src/connectors/encoding/encoded.ts', 'export const encoded = 1;\n');
    write('src/connectors/types.ts', "import { a } from './a/index.js';\nexport const contract = a;\n");
    write('src/engine/p.ts', "import { q } from './q.js';\nexport const p = 1;\nexport const pq = q;\n");
    write('src/engine/q.ts', "import { p } from './p.js';\nexport const q = p;\n");

    it('names each broken rule, and only those', async () => {
      const found = await violations(tree);
      expect(found).toEqual(
        [
          'connectors-do-not-import-each-other: src/connectors/a/index.ts → src/connectors/b/index.ts',
          'contract-imports-only-model-and-util: src/connectors/types.ts → src/connectors/a/index.ts',
          'model-and-util-import-nothing-above: src/model/x.ts → src/engine/y.ts',
          'connectors-imports-only-down: src/connectors/b/read.ts → src/connectors/resolve.ts',
          'engine-imports-only-down: src/engine/z.ts → src/verify/v.ts',
          'no-circular: src/engine/p.ts → src/engine/q.ts',
        ].sort(),
      );
    }, 60_000);
  });
});
