/**
 * Interop with the Python tools users already have: directories written by mlflow-migration
 * (the maintained fork of mlflow-export-import, from PyPI, in its own pinned environment) are
 * imported by trackshift and compared field by field with what the mlflow client wrote; and
 * directories trackshift writes are imported by their importers, MLflow 3 versions registered
 * from logged models included (mlflow-migration knows no logged models: it imports them as
 * versions of their run's files, which trackshift's export links there for it).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector, type MlflowStore } from '../../src/connectors/mlflow/index.js';
import { EximSource } from '../../src/connectors/exim/read.js';
import type { Source } from '../../src/connectors/types.js';
import { cli } from '../cli/run-cli.js';
import { runPython, runTool, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { snapshot } from '../helpers/snapshot.js';

const dir = () => mkdtempSync(join(tmpdir(), 'trackshift-interop-'));
const open = async (url: string) => (await mlflowConnector.openSource!({ location: url, side: 'src', env: {} })) as MlflowStore;

async function snap(source: Source, experimentNames: string[]) {
  try {
    return await snapshot(source, { experimentNames });
  } finally {
    await source.close?.();
  }
}

/** A model's versions with runs named instead of identified. */
async function registry(source: Source, name: string) {
  try {
    const model = (await source.registry!.getModel(name))!;
    const versions = [];
    for await (const v of source.registry!.listVersions(name)) {
      const tags = Object.fromEntries(Object.entries(v.tags).filter(([k]) => !k.startsWith('trackshift.')));
      versions.push({ version: v.version, stage: v.stage, description: v.description, tags, run: v.runId ? (await source.getRun!(v.runId))?.name : undefined });
    }
    const tags = Object.fromEntries(Object.entries(model.tags).filter(([k]) => !k.startsWith('trackshift.')));
    return { description: model.description, tags, aliases: model.aliases, versions };
  } finally {
    await source.close?.();
  }
}

describe('directories written by mlflow-migration', () => {
  let a: MlflowServer;
  let b: MlflowServer;

  beforeAll(async () => {
    [a, b] = await Promise.all([startMlflowServer(), startMlflowServer()]);
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: a.url });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('imports an export-experiment directory: every run, metric point, tag and artifact as the client wrote it', async () => {
    const out = join(dir(), 'rich');
    await runTool('migration', 'mlflow-migration-export-experiment', ['--experiment', 'rich', '--output-dir', out, '--export-deleted-runs', 'true'], { MLFLOW_TRACKING_URI: a.url });
    // read directly, the export already equals the source
    const source = await snap(await open(a.url), ['rich']);
    expect(await snap(new EximSource(out), ['rich'])).toEqual(source);
    // and imported into another server, it still does
    const result = await cli(['import', out, b.url, '--include-deleted', '--state-dir', dir(), '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).failed).toEqual([]);
    expect(await snap(await open(b.url), ['rich'])).toEqual(source);
  });

  it('writes a directory that mlflow-migration imports: what their importer keeps matches the source', async () => {
    const out = join(dir(), 'for-python');
    const exported = await cli(['export', a.url, out, '--format', 'mlflow-export-import', '--experiment', 'rich', '--include-deleted', '--state-dir', dir()]);
    expect(exported.code, exported.stderr + exported.stdout).toBe(0);
    const source = await snap(await open(a.url), ['rich']);
    // trackshift reads its own export back whole
    expect(await snap(new EximSource(out), ['rich'])).toEqual(source);
    const experimentDir = join(out, 'experiments', (await collectIds(new EximSource(out)))[0]!);
    await runTool('migration', 'mlflow-migration-import-experiment', ['--experiment-name', 'rich-by-python', '--input-dir', experimentDir], { MLFLOW_TRACKING_URI: b.url });
    const imported = (await snap(await open(b.url), ['rich-by-python']))['rich-by-python']!;
    // their importer stamps its own status and times and adds its tags: compare the rest, run by run
    const keep = (run: (typeof imported.runs)[string]) => ({
      name: run.name,
      lifecycle: run.lifecycle,
      params: run.params,
      metrics: run.metrics,
      artifacts: run.artifacts,
      tags: Object.fromEntries(Object.entries(run.tags).filter(([k]) => !k.startsWith('mlflow_export_import') && k !== 'mlflow.user')),
    });
    const byName = (runs: typeof imported.runs) => Object.fromEntries(Object.values(runs).map((r) => [r.name, keep(r)]));
    expect(byName(imported.runs)).toEqual(byName(source.rich!.runs));
  });
});

async function collectRunIds(source: EximSource): Promise<string[]> {
  const ids: string[] = [];
  for await (const model of source.registry.listModels()) for await (const v of source.registry.listVersions(model.name)) if (v.runId) ids.push(v.runId);
  return ids;
}

async function collectIds(source: Source): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of source.listExperiments()) if (e.name === 'rich') ids.push(e.id);
  return ids;
}

describe('registered models written by mlflow-migration', () => {
  let a: MlflowServer;
  let b: MlflowServer;
  let c: MlflowServer;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startMlflowServer(), startMlflowServer(), startMlflowServer()]);
    // models registered the MLflow 2 way (files in the run's artifacts), by the 2.x client
    await runPython('test/fixtures/registry_fixture_mlflow2.py', [], { MLFLOW_TRACKING_URI: a.url }, 2);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('writes what mlflow-migration import-all, import-model and import-run bring in: versions with their runs, stages, descriptions and tags', async () => {
    const out = join(dir(), 'for-import-all');
    const exported = await cli(['export', a.url, out, '--format', 'mlflow-export-import', '--state-dir', dir()]);
    expect(exported.code, exported.stderr + exported.stdout).toBe(0);
    await runTool('migration', 'mlflow-migration-import-all', ['--input-dir', out], { MLFLOW_TRACKING_URI: c.url });
    const original = await registry(await open(a.url), 'doubler');
    const imported = await registry(await open(c.url), 'doubler');
    // their importer does not restore aliases, nor skip gaps in version numbers: versions are compared in order
    const strip = (r: typeof original) => r.versions.map(({ version: _, ...v }) => ({ ...v, tags: Object.fromEntries(Object.entries(v.tags).filter(([k]) => !k.startsWith('mlflow_export_import'))) }));
    expect(strip(imported)).toEqual(strip(original));
    expect(imported.description).toBe(original.description);

    // one model alone, with import-model, which reads the versions' runs from the model's folder
    await runTool('migration', 'mlflow-migration-import-model', ['--model', 'doubler-alone', '--experiment-name', 'doubler-runs', '--input-dir', join(out, 'models', 'doubler')], { MLFLOW_TRACKING_URI: c.url });
    expect(strip(await registry(await open(c.url), 'doubler-alone')).map(({ run: _, ...v }) => v)).toEqual(strip(original).map(({ run: _, ...v }) => v));
    // one run alone, with import-run
    const runDir = join(out, 'models', 'doubler', (await collectRunIds(new EximSource(out)))[0]!);
    await runTool('migration', 'mlflow-migration-import-run', ['--input-dir', runDir, '--experiment-name', 'one-run'], { MLFLOW_TRACKING_URI: c.url });
    expect(Object.keys((await snap(await open(c.url), ['one-run']))['one-run']!.runs)).toHaveLength(1);
  });

  it('imports an export-all directory: experiments, runs and the registry with stages and aliases', async () => {
    const out = join(dir(), 'all');
    await runTool('migration', 'mlflow-migration-export-all', ['--output-dir', out], { MLFLOW_TRACKING_URI: a.url });
    const exported = new EximSource(out);
    const models = [];
    for await (const m of exported.registry.listModels()) models.push(m.name);
    expect(models).toEqual(['doubler']);
    const result = await cli(['import', out, b.url, '--state-dir', dir(), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const original = await registry(await open(a.url), 'doubler');
    expect(original).toMatchObject({ aliases: { prod: '3' }, versions: [{ version: '1', stage: 'Archived' }, { version: '3', stage: 'Production' }, { version: '4', stage: 'Staging', run: 'factor-5' }] });
    expect(await registry(await open(b.url), 'doubler')).toEqual(original);
    expect(await snap(await open(b.url), ['registry-2x'])).toEqual(await snap(await open(a.url), ['registry-2x']));
  });
});

/** The MLflow 3 logged models of an experiment, keyed by origin, with their run named and their files' sizes. */
async function loggedModels(source: Source, experimentName: string) {
  try {
    const out: Record<string, unknown> = {};
    for await (const experiment of source.listExperiments()) {
      if (experiment.name !== experimentName) continue;
      const runNames = new Map<string, string | undefined>();
      for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) runNames.set(run.id, run.name);
      for await (const model of source.loggedModels!.listLoggedModels(experiment.id)) {
        const files: Record<string, number | undefined> = {};
        for await (const file of source.loggedModels!.listLoggedModelArtifacts(model)) files[file.path] = file.size;
        // mlflow.modelVersions names the versions of each side's own registry
        const tags = Object.fromEntries(Object.entries(model.tags).filter(([k]) => !k.startsWith('trackshift.') && k !== 'mlflow.modelVersions'));
        out[model.tags['trackshift.source.id'] ?? model.id] = { name: model.name, status: model.status, params: model.params, tags, run: runNames.get(model.sourceRunId ?? ''), files };
      }
    }
    return out;
  } finally {
    await source.close?.();
  }
}

const predict = async (url: string, name: string, version: string) =>
  JSON.parse((await runPython('test/fixtures/load_model.py', [url, name, version])).trim().split('\n').pop()!) as { source: string; prediction: number[] };

describe('MLflow 3 versions registered from logged models, through mlflow-export-import directories', () => {
  let a: MlflowServer;
  let b: MlflowServer;
  let c: MlflowServer;
  let out: string;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startMlflowServer(), startMlflowServer(), startMlflowServer()]);
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: a.url });
    out = join(dir(), 'mlflow3');
    const exported = await cli(['export', a.url, out, '--format', 'mlflow-export-import', '--state-dir', dir(), '--json']);
    expect(exported.code, exported.stderr + exported.stdout).toBe(0);
    expect(JSON.parse(exported.stdout).copied.loggedModels).toBeGreaterThanOrEqual(5);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('trackshift reads its export back whole: the runs as they were, the logged models, versions registered from them', async () => {
    expect(await snap(new EximSource(out), ['registry-exp'])).toEqual(await snap(await open(a.url), ['registry-exp']));
    expect(await loggedModels(new EximSource(out), 'registry-exp')).toEqual(await loggedModels(await open(a.url), 'registry-exp'));
    const locations = [];
    for await (const v of new EximSource(out).registry.listVersions('fraud-classifier')) locations.push([v.version, v.location.type]);
    expect(locations).toEqual([['1', 'logged-model'], ['2', 'logged-model'], ['3', 'logged-model'], ['5', 'run']]);
  });

  it('mlflow-migration import-all and import-model bring the versions in, and mlflow loads each', async () => {
    await runTool('migration', 'mlflow-migration-import-all', ['--input-dir', out], { MLFLOW_TRACKING_URI: c.url });
    const original = await registry(await open(a.url), 'fraud-classifier');
    const imported = await registry(await open(c.url), 'fraud-classifier');
    // their importer does not skip gaps in version numbers: versions are compared in order
    const strip = (r: typeof original) => r.versions.map(({ version: _, ...v }) => ({ ...v, tags: Object.fromEntries(Object.entries(v.tags).filter(([k]) => !k.startsWith('mlflow_export_import'))) }));
    expect(strip(imported)).toEqual(strip(original));
    for (const number of ['1', '2', '3', '4']) expect((await predict(c.url, 'fraud-classifier', number)).prediction).toEqual([0, 1]);
    expect((await predict(c.url, 'pyfunc-model', '1')).prediction).toEqual([1, 3, 6, -2]);

    await runTool('migration', 'mlflow-migration-import-model', ['--model', 'fraud-alone', '--experiment-name', 'fraud-runs', '--input-dir', join(out, 'models', 'fraud-classifier')], { MLFLOW_TRACKING_URI: c.url });
    expect(strip(await registry(await open(c.url), 'fraud-alone')).map(({ run: _, ...v }) => v)).toEqual(strip(original).map(({ run: _, ...v }) => v));
    expect((await predict(c.url, 'fraud-alone', '1')).prediction).toEqual([0, 1]);
  });

  it('imported by trackshift into another server, the logged models and the versions on them are as in the source', async () => {
    const result = await cli(['import', out, b.url, '--state-dir', dir(), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(await loggedModels(await open(b.url), 'registry-exp')).toEqual(await loggedModels(await open(a.url), 'registry-exp'));
    expect(await registry(await open(b.url), 'fraud-classifier')).toEqual(await registry(await open(a.url), 'fraud-classifier'));
    const loaded = await predict(b.url, 'fraud-classifier', '1');
    expect(loaded.source).toMatch(/^models:\/m-[0-9a-f]{32}$/);
    expect(loaded.prediction).toEqual([0, 1]);
  });
});

