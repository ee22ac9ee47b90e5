/**
 * The import boundaries of DESIGN.md, checked by dependency-cruiser (test/architecture.test.ts
 * runs it; `npx depcruise src` shows the same). Imports only go down the layers
 *
 *   index.ts → cli → verify → engine → connectors/resolve.ts → connector folders → connectors/types.ts → model, util
 *
 * and a connector folder imports the contract, the model, util and the shared modules
 * (SHARED: code a family of connectors shares, not a connector itself), never another connector.
 */

/** Folders under src/connectors/ that are no connector but code connectors share. */
const SHARED = ['mlflow-common', 'neptune-common', 'comet-common', 'encoding'];
const shared = SHARED.join('|');

/** Each layer and what lies above it (what it must not import). */
const LAYERS = [
  { name: 'cli', path: '^src/cli/', above: ['^src/index\\.ts$'] },
  { name: 'verify', path: '^src/verify/', above: ['^src/index\\.ts$', '^src/cli/'] },
  { name: 'engine', path: '^src/engine/', above: ['^src/index\\.ts$', '^src/cli/', '^src/verify/'] },
  { name: 'resolver', path: '^src/connectors/resolve\\.ts$', above: ['^src/index\\.ts$', '^src/cli/', '^src/verify/', '^src/engine/'] },
  { name: 'connectors', path: '^src/connectors/', above: ['^src/index\\.ts$', '^src/cli/', '^src/verify/', '^src/engine/', '^src/connectors/resolve\\.ts$'] },
];

module.exports = {
  forbidden: [
    ...LAYERS.map((layer) => ({
      name: `${layer.name}-imports-only-down`,
      severity: 'error',
      comment: `${layer.name} imports only layers below it (DESIGN.md: cli → verify/engine → connectors → model/util)`,
      from: { path: layer.path },
      to: { path: layer.above },
    })),
    {
      name: 'contract-imports-only-model-and-util',
      severity: 'error',
      comment: 'connectors/types.ts, the contract, stands on the model and util alone',
      from: { path: '^src/connectors/types\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/model/', '^src/util/'] },
    },
    {
      name: 'model-and-util-import-nothing-above',
      severity: 'error',
      comment: 'model/ and util/ are the floor: they import only each other',
      from: { path: '^src/(model|util)/' },
      to: { path: '^src/', pathNot: ['^src/model/', '^src/util/'] },
    },
    {
      name: 'connectors-do-not-import-each-other',
      severity: 'error',
      comment: `a connector folder imports the contract, the model, util and the shared modules (${SHARED.join(', ')}, connectors/unreadable.ts), never another connector: move shared code to one of those`,
      from: { path: '^src/connectors/([^/]+)/' },
      to: { path: '^src/connectors/[^/]+/', pathNot: [`^src/connectors/($1|${shared})/`] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'an import cycle ties modules together that should stand apart',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'an import the checker cannot follow would escape every rule above',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` counts: a type import ties the layers together as much as a value import
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // packages' subpath exports (`@bufbuild/protobuf/wkt`) resolve as Node resolves them
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
