/**
 * The mlruns writer: a store trackshift writes is opened by the real mlflow client (file store
 * enabled) and shows exactly what the source server shows: experiments, runs with their times,
 * every metric point, params, tags, inputs, nesting, deleted objects and artifacts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonFloat } from '../../src/connectors/mlruns/write.js';
import { MlrunsSource } from '../../src/connectors/mlruns/read.js';
import { parsePythonFloat } from '../../src/connectors/mlruns/format.js';
import { cli } from '../cli/run-cli.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';

type Dump = Record<string, { tags: Record<string, string>; lifecycle: string; creation_time: number; runs: Record<string, unknown> }>;

const dump = async (uri: string): Promise<Dump> =>
  JSON.parse((await runPython('test/fixtures/dump_store.py', [uri], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!) as Dump;

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
});
