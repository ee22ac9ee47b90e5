/**
 * The mlruns writer: a store trackshift writes is opened by the real mlflow client (file store
 * enabled) and shows exactly what the source server shows: experiments, runs with their times,
 * every metric point, params, tags, inputs, nesting, deleted objects and artifacts, registered
 * models, and MLflow 3 logged models with the versions registered from them.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonFloat } from '../../src/connectors/mlruns/write.js';
import { MlrunsSource } from '../../src/connectors/mlruns/read.js';
import { parsePythonFloat } from '../../src/connectors/mlruns/format.js';
import { cli } from '../cli/run-cli.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';

type Dump = Record<string, { tags: Record<string, string>; lifecycle: string; creation_time: number; runs: Record<string, unknown> }>;

const dump = async (uri: string): Promise<Dump> =>
  JSON.parse((await runPython('test/fixtures/dump_store.py', [uri], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!) as Dump;

interface LoggedModelDump {
  experiment: string;
  name: string;
  model_type: string | null;
  status: string;
  status_message: string | null;
  source_run_id: string | null;
  creation_timestamp: number;
  last_updated_timestamp: number;
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: unknown[];
  artifacts: Array<[string, number]>;
}
interface ModelsDump {
  models: Record<string, LoggedModelDump>;
  outputs: Record<string, Array<[string, number]>>;
  versions: Record<string, { source: string; model_id: string | null; run_id: string | null; download_uri: string }>;
}

const dumpModels = async (uri: string): Promise<ModelsDump> =>
  JSON.parse((await runPython('test/fixtures/dump_logged_models.py', [uri], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!) as ModelsDump;

const loadModel = async (store: string, name: string, version: string) =>
  JSON.parse((await runPython('test/fixtures/load_model.py', [`file://${store}`, name, version], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!) as {
    run_id: string;
    source: string;
    mlmodel_run_id: string;
    mlmodel_model_id: string;
    prediction: number[];
  };

/**
 * A logged model as compared between the two sides. Left out: metrics (the neutral model carries
 * none of a logged model's own, so none are written), and `mlflow.modelVersions`, which names the
 * destination's versions and is checked on its own. A server says "" where the file store keeps
 * null (model_type, status_message of the same log_model call). `registered_model_meta` is the
 * file mlflow.pyfunc.load_model leaves in a local model folder it loads from.
 */
function comparable(model: LoggedModelDump) {
  const { metrics: _metrics, tags, model_type, status_message, artifacts, ...rest } = model;
  const { 'mlflow.modelVersions': _versions, ...plain } = tags;
  return {
    ...rest,
    model_type: model_type || null,
    status_message: status_message || null,
    tags: plain,
    artifacts: artifacts.filter(([path]) => path !== 'registered_model_meta'),
  };
}
const mapValues = <T, U>(record: Record<string, T>, f: (v: T) => U) => Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v)]));

const newState = () => mkdtempSync(join(tmpdir(), 'trackshift-state-'));

describe('mlruns writer', () => {
  let server: MlflowServer;

  beforeAll(async () => {
    server = await startMlflowServer();
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
  });
  afterAll(() => server?.stop());

  it('writes floats as Python reads them back, exactly', () => {
    for (const v of [0, -0, 1, 0.1, 1 / 3, 1e300, 5e-324, -2.5e-7, Number.MAX_VALUE, NaN, Infinity, -Infinity, 123456789012345680000]) {
      expect(Object.is(parsePythonFloat(pythonFloat(v)), v)).toBe(true);
    }
  });

  it('writes a store that mlflow itself reads as the source server', async () => {
    const store = join(mkdtempSync(join(tmpdir(), 'trackshift-mlruns-w-')), 'mlruns');
    const result = await cli(['copy', server.url, `mlruns:${store}`, '--include-deleted', '--state-dir', mkdtempSync(join(tmpdir(), 'trackshift-state-')), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const [source, written] = await Promise.all([dump(server.url), dump(`file://${store}`)]);
    // registered models and MLflow 3 logged models are another test's subject
    delete source['registry-exp'];
    delete written['registry-exp'];
    // MLflow makes its own Default experiment in each store: compared without its time
    delete (source.Default as Partial<Dump[string]>).creation_time;
    delete (written.Default as Partial<Dump[string]>).creation_time;
    expect(written).toEqual(source);
    expect(Object.keys(written.rich!.runs).length).toBeGreaterThanOrEqual(5);

    // and again: nothing is written twice
    const again = await cli(['copy', server.url, `mlruns:${store}`, '--include-deleted', '--state-dir', mkdtempSync(join(tmpdir(), 'trackshift-state-')), '--json']);
    expect(JSON.parse(again.stdout).copied.runs).toBe(0);
  });

  it('writes registered models that mlflow loads from the store: numbers, stages, aliases, the copied run', async () => {
    const store = join(mkdtempSync(join(tmpdir(), 'trackshift-mlruns-w-')), 'mlruns');
    const result = await cli(['copy', server.url, `mlruns:${store}`, '--model', 'fraud-classifier', '--state-dir', mkdtempSync(join(tmpdir(), 'trackshift-state-')), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const versions = [];
    for await (const v of new MlrunsSource(store).registry.listVersions('fraud-classifier')) versions.push([v.version, v.stage, v.description]);
    expect(versions).toEqual([
      ['1', 'Archived', 'first try'],
      ['2', 'Production', 'the one in production'],
      ['3', 'Staging', 'from the tuning sweep'],
      ['5', 'None', 'from run artifacts'],
    ]);
    expect((await new MlrunsSource(store).registry.getModel('fraud-classifier'))!.aliases).toEqual({ champion: '2', challenger: '3' });
    const loaded = JSON.parse((await runPython('test/fixtures/load_model.py', [`file://${store}`, 'fraud-classifier', '5'], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!);
    expect(loaded.prediction).toEqual([0, 1]);
    expect(loaded.mlmodel_run_id).toBe(loaded.run_id);
  });

  it('writes MLflow 3 logged models as FileStore does, and versions registered from them load from the store', async () => {
    const store = join(mkdtempSync(join(tmpdir(), 'trackshift-mlruns-w-')), 'mlruns');
    const result = await cli(['copy', server.url, `mlruns:${store}`, '--state-dir', newState(), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const [source, written] = await Promise.all([dumpModels(server.url), dumpModels(`file://${store}`)]);
    const sourceModels = Object.keys(source.models).sort();
    expect(sourceModels.length).toBeGreaterThanOrEqual(5); // four of fraud-classifier (one version deleted), one of pyfunc-model
    expect(JSON.parse(result.stdout).copied.loggedModels).toBe(sourceModels.length);
    // the copies keep the source's ids, as the runs do; name, params, tags, status, times, files, source run
    expect(Object.keys(written.models).sort()).toEqual(sourceModels);
    expect(mapValues(written.models, comparable)).toEqual(mapValues(source.models, comparable));
    for (const [id, model] of Object.entries(written.models)) {
      // made by the copied run, which lists it among its outputs as the source run does
      expect(written.outputs[model.source_run_id!], id).toEqual(source.outputs[model.source_run_id!]);
      expect(written.outputs[model.source_run_id!]).toContainEqual([id, 0]);
    }
    let experimentId = '';
    for await (const exp of new MlrunsSource(store).listExperiments()) if (exp.name === 'registry-exp') experimentId = exp.id;
    // the versions registered from logged models point at the copies, downloaded from their folders
    // (a server's search_model_versions leaves model_id out: the source names the model)
    const fromModels = Object.entries(source.versions).filter(([, v]) => v.source.startsWith('models:/'));
    expect(fromModels.map(([key]) => key).sort()).toEqual(['fraud-classifier/1', 'fraud-classifier/2', 'fraud-classifier/3', 'pyfunc-model/1']);
    for (const [key, version] of fromModels) {
      const copy = written.versions[key]!;
      const model = written.models[copy.model_id!]!;
      expect(copy.model_id).toBe(version.source.slice('models:/'.length));
      expect(copy.source).toBe(`models:/${copy.model_id}`);
      expect(copy.run_id).toBe(model.source_run_id);
      expect(copy.download_uri).toBe(pathToFileURL(join(store, experimentId, 'models', copy.model_id!, 'artifacts')).href);
      // mlflow.register_model's record on the logged model: the versions registered from it here
      const [name, number] = key.split('/');
      expect(JSON.parse(model.tags['mlflow.modelVersions']!)).toEqual([{ name, version: Number(number) }]);
      const loaded = await loadModel(store, name!, number!);
      expect(loaded.source).toBe(`models:/${copy.model_id}`);
      expect(loaded.mlmodel_model_id).toBe(copy.model_id);
      expect(loaded.mlmodel_run_id).toBe(copy.run_id);
      expect(loaded.prediction).toEqual(name === 'pyfunc-model' ? [1, 3, 6, -2] : [0, 1]);
    }

    // again: nothing is written twice
    const again = JSON.parse((await cli(['copy', server.url, `mlruns:${store}`, '--state-dir', newState(), '--json'])).stdout);
    expect(again.copied.loggedModels).toBe(0);
    expect(again.skipped.loggedModels).toBe(sourceModels.length);

    // a copy cut off part way (no trackshift.complete, a file missing) is discarded and written again
    const id = written.versions['fraud-classifier/2']!.model_id!;
    const dir = join(store, experimentId, 'models', id);
    rmSync(join(dir, 'tags', 'trackshift.complete'));
    rmSync(join(dir, 'artifacts', 'model.skops'));
    const redo = await cli(['copy', server.url, `mlruns:${store}`, '--state-dir', newState(), '--json']);
    expect(redo.code, redo.stderr + redo.stdout).toBe(0);
    expect(JSON.parse(redo.stdout).copied.loggedModels).toBe(1);
    expect(existsSync(join(dir, 'tags', 'trackshift.complete'))).toBe(true);
    const after = await dumpModels(`file://${store}`);
    expect(mapValues(after.models, comparable)).toEqual(mapValues(source.models, comparable));
    expect(after.outputs).toEqual(written.outputs);
    expect((await loadModel(store, 'fraud-classifier', '2')).prediction).toEqual([0, 1]);
  });

  it('gives a logged model a new id when its id is taken in the store, and its MLmodel and versions name the new one', async () => {
    const source = await dumpModels(server.url);
    const taken = source.versions['fraud-classifier/1']!.source.slice('models:/'.length);
    // a store that holds another model of that id already (in its Default experiment)
    const store = join(mkdtempSync(join(tmpdir(), 'trackshift-mlruns-w-')), 'mlruns');
    const foreign = join(store, '0', 'models', taken);
    mkdirSync(join(foreign, 'artifacts'), { recursive: true });
    writeFileSync(
      join(store, '0', 'meta.yaml'),
      `artifact_location: ${pathToFileURL(join(store, '0')).href}\ncreation_time: 1700000000000\nexperiment_id: '0'\nlast_update_time: 1700000000000\nlifecycle_stage: active\nname: Default\n`,
    );
    writeFileSync(
      join(foreign, 'meta.yaml'),
      `artifact_location: ${pathToFileURL(join(foreign, 'artifacts')).href}\ncreation_timestamp: 1700000000000\nexperiment_id: '0'\nlast_updated_timestamp: 1700000000000\n` +
        `model_id: ${taken}\nmodel_type: null\nname: someone-else\nsource_run_id: null\nstatus: 2\nstatus_message: null\n`,
    );
    const result = await cli(['copy', server.url, `mlruns:${store}`, '--model', 'fraud-classifier', '--state-dir', newState(), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const written = await dumpModels(`file://${store}`);
    expect(written.models[taken]!.name).toBe('someone-else'); // left as it was
    const version = written.versions['fraud-classifier/1']!;
    expect(version.model_id).not.toBe(taken);
    expect(version.model_id).toMatch(/^m-[0-9a-f]{32}$/);
    expect(comparable(written.models[version.model_id!]!)).toEqual(comparable(source.models[taken]!));
    expect(written.outputs[version.run_id!]).toEqual([[version.model_id, 0]]);
    const loaded = await loadModel(store, 'fraud-classifier', '1');
    expect(loaded.source).toBe(`models:/${version.model_id}`);
    expect(loaded.mlmodel_model_id).toBe(version.model_id);
    expect(loaded.prediction).toEqual([0, 1]);
    // found again by its provenance tag, not taken for the other one
    const again = JSON.parse((await cli(['copy', server.url, `mlruns:${store}`, '--model', 'fraud-classifier', '--state-dir', newState(), '--json'])).stdout);
    expect(again.copied.loggedModels).toBe(0);
  });
});
