/**
 * Registered models between real MLflow 3 servers, with models logged and registered by the
 * real mlflow client (test/fixtures/registry_fixture.py): server → server, server → bundle →
 * server, deep and shallow copy-model-version, each compared field by field, and each copied
 * model loaded with mlflow.pyfunc.load_model from the destination.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector, type MlflowStore } from '../../src/connectors/mlflow/index.js';
import { MlrunsSource } from '../../src/connectors/mlruns/read.js';
import type { Source } from '../../src/connectors/types.js';
import { cli } from '../cli/run-cli.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';

interface Fixture {
  runs: Record<string, string>;
  models: Record<string, Record<string, { source: string; run_id: string; stage: string }>>;
}

interface Loaded {
  run_id: string;
  source: string;
  mlmodel_run_id: string | null;
  mlmodel_model_id: string | null;
  prediction: number[];
}

const open = async (url: string) => (await mlflowConnector.openSource!({ location: url, side: 'src', env: {} })) as MlflowStore;
const dir = () => mkdtempSync(join(tmpdir(), 'trackshift-registry-'));
const withoutOwnTags = (tags: Record<string, string>) => Object.fromEntries(Object.entries(tags).filter(([key]) => !key.startsWith('trackshift.')));

/** Everything of a registry that must survive a copy, with runs named instead of identified. */
async function registrySnapshot(where: string | Source, names: string[]) {
  const store = typeof where === 'string' ? await open(where) : where;
  try {
    const out: Record<string, unknown> = {};
    for (const name of names) {
      const model = (await store.registry!.getModel(name))!;
      const versions = [];
      for await (const v of store.registry!.listVersions(name)) {
        const run = v.runId ? await store.getRun!(v.runId) : undefined;
        versions.push({
          version: v.version,
          stage: v.stage,
          status: v.status,
          description: v.description,
          tags: withoutOwnTags(v.tags),
          run: run?.name,
          kind: v.location.type,
        });
      }
      out[name] = { description: model.description, tags: withoutOwnTags(model.tags), aliases: model.aliases, versions };
    }
    return out;
  } finally {
    await store.close?.();
  }
}

const load = async (url: string, model: string, version: string): Promise<Loaded> =>
  JSON.parse((await runPython('test/fixtures/load_model.py', [url, model, version])).trim().split('\n').pop()!) as Loaded;

describe('model registry between real MLflow servers', () => {
  let a: MlflowServer;
  let b: MlflowServer;
  let c: MlflowServer;
  let fixture: Fixture;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([
      startMlflowServer(),
      startMlflowServer(),
      startMlflowServer(),
    ]);
    const out = await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: a.url });
    fixture = JSON.parse(out.trim().split('\n').pop()!) as Fixture;
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('copies models server → server with their runs: numbers, stages, aliases, descriptions, tags; the copies load', async () => {
    const state = dir();
    const report = join(state, 'report.json');
    const result = await cli(['copy', a.url, b.url, '--model', 'fraud-classifier', '--model', 'pyfunc-model', '--state-dir', state, '--report', report]);
    expect(result.stderr).not.toMatch(/FAILED/);
    expect(result.code).toBe(0);
    const models = ['fraud-classifier', 'pyfunc-model'];
    const source = await registrySnapshot(a.url, models);
    expect(source['fraud-classifier']).toMatchObject({
      aliases: { champion: '2', challenger: '3' },
      versions: [{ version: '1', stage: 'Archived' }, { version: '2', stage: 'Production' }, { version: '3', stage: 'Staging', run: 'trial-3' }, { version: '5', kind: 'run' }],
    });
    expect(await registrySnapshot(b.url, models)).toEqual(source);

    const written = JSON.parse(readFileSync(report, 'utf8'));
    expect(written.copied.versions).toBe(5);
    expect(written.copied.loggedModels).toBe(4);
    // the versions' runs (and the nested run's parent) came along, and nothing else
    expect(Object.keys(written.idMap.runs).sort()).toEqual(
      ['train-1', 'train-2', 'tuning', 'trial-3', 'train-5', 'pyfunc'].map((n) => fixture.runs[n]).sort(),
    );

    // each copy loads from the destination, predicts as the source does, and names the copied run
    for (const [model, version] of [['fraud-classifier', '2'], ['fraud-classifier', '5'], ['pyfunc-model', '1']] as const) {
      const [copy, original] = await Promise.all([load(b.url, model, version), load(a.url, model, version)]);
      expect(copy.prediction).toEqual(original.prediction);
      expect(copy.run_id).toBe(written.idMap.runs[original.run_id]);
      expect(copy.mlmodel_run_id).toBe(copy.run_id);
      if (original.mlmodel_model_id) {
        expect(copy.mlmodel_model_id).toBe(written.idMap.loggedModels[original.mlmodel_model_id]);
        expect(copy.source).toBe(`models:/${copy.mlmodel_model_id}`);
      }
    }
    // the nested run stays nested under its copied parent
    const dst = await open(b.url);
    const trial = (await dst.getRun(written.idMap.runs[fixture.runs['trial-3']!]))!;
    expect(trial.parentId).toBe(written.idMap.runs[fixture.runs.tuning!]);
    // the run lists its copied logged model among its outputs
    const train2 = (await dst.getRun(written.idMap.runs[fixture.runs['train-2']!]))!;
    expect(train2.modelOutputs?.map((o) => o.modelId)).toEqual([copyOfModel(written, fixture.models['fraud-classifier']!['2']!.source)]);
    await dst.close();

    // run again: nothing is copied twice
    const again = await cli(['copy', a.url, b.url, '--model', 'fraud-classifier', '--model', 'pyfunc-model', '--state-dir', state, '--json']);
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout);
    expect(second.copied).toMatchObject({ versions: 0, runs: 0, loggedModels: 0 });
    expect(second.skipped.versions).toBe(5);
    expect(await registrySnapshot(b.url, models)).toEqual(source);

    // --delete-model replaces the destination model once; the re-run does not delete it again
    const replaced = JSON.parse((await cli(['copy', a.url, b.url, '--model', 'pyfunc-model', '--delete-model', '--state-dir', dir(), '--json'])).stdout);
    expect(replaced.copied.versions).toBe(1);
    expect(await registrySnapshot(b.url, ['pyfunc-model'])).toEqual({ 'pyfunc-model': source['pyfunc-model'] });
  });

  it('copies models server → bundle → server, and the import loads', async () => {
    const bundle = join(dir(), 'bundle');
    const exported = await cli(['export', a.url, bundle, '--model', 'fraud-classifier', '--state-dir', dir()]);
    expect(exported.code).toBe(0);
    const imported = await cli(['import', bundle, c.url, '--state-dir', dir(), '--json']);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout).failed).toEqual([]);
    expect(await registrySnapshot(c.url, ['fraud-classifier'])).toEqual(await registrySnapshot(a.url, ['fraud-classifier']));
    const [copy, original] = await Promise.all([load(c.url, 'fraud-classifier', '3'), load(a.url, 'fraud-classifier', '3')]);
    expect(copy.prediction).toEqual(original.prediction);
    expect(copy.mlmodel_run_id).toBe(copy.run_id);
    expect(copy.run_id).not.toBe(original.run_id);
  });

  it('reads models and logged models from an mlruns folder written by the file store, and copies them into a server', async () => {
    const store = join(dir(), 'mlruns');
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: `file://${store}`, MLFLOW_ALLOW_FILE_STORE: 'true' });
    const fromFiles = await registrySnapshot(new MlrunsSource(store), ['fraud-classifier', 'pyfunc-model']);
    // the same script against a server: the same registry, read from files
    expect(fromFiles).toEqual(await registrySnapshot(a.url, ['fraud-classifier', 'pyfunc-model']));
    const result = await cli(['copy', store, b.url, '--model', 'fraud-classifier', '--dst-model', 'fraud-from-mlruns', '--state-dir', dir(), '--json']);
    expect(result.code, result.stdout).toBe(0);
    expect(JSON.parse(result.stdout).copied).toMatchObject({ versions: 4, loggedModels: 3 });
    expect((await registrySnapshot(b.url, ['fraud-from-mlruns']))['fraud-from-mlruns']).toEqual(fromFiles['fraud-classifier']);
    for (const version of ['2', '5']) {
      const loaded = await load(b.url, 'fraud-from-mlruns', version);
      expect(loaded.prediction).toEqual([0, 1]);
      expect(loaded.mlmodel_run_id).toBe(loaded.run_id);
    }
  });

  it('copy-model-version deep: the version\'s run is copied into the named experiment and the new version points at it', async () => {
    const result = await cli([
      'copy-model-version', '--src-model', 'fraud-classifier', '--src-version', '5', '--dst-model', 'fraud-deep',
      '--dst-experiment', 'deep-copies', '--lineage-tags', a.url, c.url, '--state-dir', dir(), '--json',
    ]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    const store = await open(c.url);
    const [version] = await collect(store.registry.listVersions('fraud-deep'));
    // one version copied into a model takes its next number, as MLflow's copy_model_version does
    expect(version).toMatchObject({ version: '1', description: 'from run artifacts' });
    expect(version!.tags).toMatchObject({
      'trackshift.lineage.model': 'fraud-classifier',
      'trackshift.lineage.version': '5',
      'trackshift.lineage.run_id': fixture.runs['train-5'],
      'trackshift.lineage.tracking_uri': a.url,
    });
    const run = (await store.getRun(version!.runId!))!;
    expect(run.id).toBe(report.idMap.runs[fixture.runs['train-5']!]);
    const experiment = (await collect(store.listExperiments())).find((e) => e.id === run.experimentId)!;
    expect(experiment.name).toBe('deep-copies');
    await store.close();
    const loaded = await load(c.url, 'fraud-deep', '1');
    expect(loaded.mlmodel_run_id).toBe(run.id);
  });

  it('copy-model-version shallow: within a server the new version points at the same files; between MLflow 3 servers it is refused with a way out', async () => {
    const result = await cli(['copy-model-version', '--src-model', 'fraud-classifier', '--src-version', '2', '--dst-model', 'fraud-shallow', a.url, a.url, '--state-dir', dir(), '--json']);
    expect(result.code, result.stdout).toBe(0);
    const store = await open(a.url);
    const [version] = await collect(store.registry.listVersions('fraud-shallow'));
    await store.close();
    expect(version).toMatchObject({ version: '1', source: fixture.models['fraud-classifier']!['2']!.source, runId: fixture.runs['train-2'], description: 'the one in production' });
    expect(version!.tags.validated).toBe('yes');
    const [copy, original] = await Promise.all([load(a.url, 'fraud-shallow', '1'), load(a.url, 'fraud-classifier', '2')]);
    expect(copy).toEqual({ ...original });

    // MLflow 3 refuses a version whose files are on another MLflow server: one clear failure, exit 1
    const refused = await cli(['copy-model-version', '--src-model', 'fraud-classifier', '--src-version', '5', '--dst-model', 'fraud-shallow', a.url, c.url, '--state-dir', dir()]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/shallow copy.*copy deep/is);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function copyOfModel(report: { idMap: { loggedModels: Record<string, string> } }, source: string): string | undefined {
  return report.idMap.loggedModels[source.replace('models:/', '')];
}
