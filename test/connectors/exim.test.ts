/**
 * The mlflow-export-import reader on the older file versions the tools wrote (hand-made here in
 * their shapes; the current version is tested against the real tool in test/interop/), and on
 * the MLflow 3 logged models mlflow/mlflow-export-import writes since 2025 (not in a release the
 * tests can install: hand-made from its export code and samples, the model's files saved by mlflow).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EximSource, looksLikeExim } from '../../src/connectors/exim/read.js';
import { parsePythonJson } from '../../src/connectors/exim/format.js';
import type { MetricPoint } from '../../src/model/index.js';
import { cli } from '../cli/run-cli.js';
import { runPython } from '../harness/mlflow-server.js';

const RUN = '0cca4c956d9d4ca29b3b7612eb16bf20';

function write(root: string, path: string, content: unknown | string) {
  const file = join(root, path);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
}

async function points(source: EximSource, key: string): Promise<MetricPoint[]> {
  const run = (await source.getRun(RUN))!;
  const out: MetricPoint[] = [];
  for await (const page of source.readMetric(run, key)) out.push(...page);
  return out;
}

describe('mlflow-export-import files of every version', () => {
  it('reads Python JSON with bare NaN and Infinity, never inside strings', () => {
    expect(parsePythonJson('{"a": NaN, "b": -Infinity, "c": "NaN Infinity", "d": [Infinity]}')).toEqual({
      a: '__trackshift_NaN__',
      b: '__trackshift_-Inf__',
      c: 'NaN Infinity',
      d: ['__trackshift_Inf__'],
    });
  });

  it('reads the current envelope (system/mlflow) with histories, NaN and list-shaped tags', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-'));
    write(root, 'experiment.json', { system: { package_version: '1.2.0', export_file_version: '2' }, info: { num_total_runs: 1 }, mlflow: { experiment: { experiment_id: '7', name: 'wine', lifecycle_stage: 'active', tags: [{ key: 'team', value: 'x' }], creation_time: 1 }, runs: [RUN] } });
    write(
      root,
      `${RUN}/run.json`,
      `{"system": {"script": "export_run.py"}, "mlflow": {"info": {"run_id": "${RUN}", "experiment_id": "7", "status": "FAILED", "start_time": 100, "end_time": 200, "lifecycle_stage": "active", "run_name": "r"},
        "params": {"alpha": "0.5"}, "metrics": {"loss": [{"value": NaN, "timestamp": 150, "step": 0}, {"value": Infinity, "timestamp": 160, "step": 1}, {"value": 0.25, "timestamp": 170, "step": 1}]},
        "tags": {"mlflow.runName": "r", "mlflow.user": "ana"}, "inputs": []}}`,
    );
    write(root, `${RUN}/artifacts/model/MLmodel`, 'run_id: x\n');
    expect(await looksLikeExim(root)).toBe(true);
    const source = new EximSource(root);
    const [experiment] = await collect(source.listExperiments());
    expect(experiment).toMatchObject({ id: '7', name: 'wine', tags: { team: 'x' } });
    const run = (await source.getRun(RUN))!;
    expect(run).toMatchObject({ name: 'r', status: 'FAILED', startTime: 100, endTime: 200, user: 'ana', params: { alpha: '0.5' }, series: [{ key: 'loss', type: 'float' }] });
    expect((await points(source, 'loss')).map((p) => p.value)).toEqual([NaN, Infinity, 0.25]);
    expect((await collect(source.listArtifacts(run))).map((f) => f.path)).toEqual(['model/MLmodel']);
  });

  it('reads the 2022 shape (export_info at the top, no envelope) and the oldest one (latest values only)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-'));
    write(root, 'experiment.json', { export_info: { mlflow_version: '2.0.1' }, experiment: { experiment_id: '13', name: '/Users/a/exp', lifecycle_stage: 'active', tags: {} }, runs: [RUN] });
    write(root, `${RUN}/run.json`, {
      export_info: { mlflow_version: '2.0.1' },
      info: { run_uuid: RUN, experiment_id: '13', user_id: '', status: 'FINISHED', start_time: 10, end_time: 20, lifecycle_stage: 'active' },
      params: { max_depth: '1' },
      metrics: { rmse: [{ value: 0.79, timestamp: 15, step: 0 }], r2: 0.15 },
      tags: { 'mlflow.runName': 'sk', 'mlflow_export_import.metadata.experiment_name': '/Users/a/exp' },
    });
    const source = new EximSource(root);
    expect((await source.getRun(RUN))!).toMatchObject({ name: 'sk', experimentId: '13' });
    expect(await points(source, 'rmse')).toEqual([{ key: 'rmse', value: 0.79, timestamp: 15, step: 0 }]);
    // the oldest exports kept the last value only: one point at the run's end
    expect(await points(source, 'r2')).toEqual([{ key: 'r2', value: 0.15, timestamp: 20, step: 0 }]);
  });

  it('reads a model export and a model-version export (version.json beside run/)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-'));
    write(root, 'model.json', { mlflow: { registered_model: { name: 'cat.sch.m', description: 'd', tags: [{ key: 't', value: 'v' }], aliases: [] } } });
    write(root, 'version.json', { mlflow: { model_version: { name: 'cat.sch.m', version: '15', current_stage: 'None', source: `dbfs:/databricks/mlflow-tracking/1/${RUN}/artifacts/model`, run_id: RUN, status: 'READY', tags: { k: 'v' }, aliases: ['white'] } } });
    write(root, 'run/run.json', { mlflow: { info: { run_id: RUN, experiment_id: '1', status: 'FINISHED', lifecycle_stage: 'active' }, params: {}, metrics: {}, tags: {} } });
    const source = new EximSource(root);
    expect(await source.registry.getModel('cat.sch.m')).toMatchObject({ description: 'd', tags: { t: 'v' }, aliases: { white: '15' } });
    const [version] = await collect(source.registry.listVersions('cat.sch.m'));
    expect(version).toMatchObject({ version: '15', runId: RUN, location: { type: 'run', runId: RUN, path: 'model' }, tags: { k: 'v' } });
    expect((await source.getRun(RUN))!.experimentId).toBe('1');
  });

  it('names the file and the problem for a broken export', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-'));
    write(root, 'experiment.json', '{"mlflow": {"experiment": {"experiment_id": "1", "name": "x", "tags": {"a": "1\n"}}}}');
    // a broken file is left out and recorded (Source.unreadable); the rest of the export is read
    let source = new EximSource(root);
    expect(await collect(source.listExperiments())).toEqual([]);
    expect(source.unreadable).toEqual([{ type: 'experiment', sourceId: basename(root), reason: expect.stringMatching(/experiment\.json: not a readable JSON export file/) }]);
    write(root, 'experiment.json', { mlflow: { experiment: { name: 3 } } });
    source = new EximSource(root);
    expect(await collect(source.listExperiments())).toEqual([]);
    expect(source.unreadable[0]!.reason).toMatch(/experiment\.json: unexpected content .*experiment\.experiment_id/);
  });
});

const MODEL = 'm-8c1b3e0f4a2d4e6fb7a9c0d1e2f3a4b5';
const system = (script: string) => ({
  package_version: '1.2.0',
  script,
  export_file_version: '2',
  export_time: 1761770287,
  _export_time: '2025-10-29 20:38:07',
  mlflow_version: '3.5.0',
  mlflow_tracking_uri: 'http://127.0.0.1:5020',
  platform: { python_version: '3.11.13', system: 'Darwin', processor: 'arm' },
  user: 'andre',
});

/**
 * A bulk export by mlflow/mlflow-export-import's master (export-all): experiment 1 with one run
 * that logged model MODEL (experiments/1/runs/<run>/, experiments/1/logged_models/<id>/), and
 * model "wine" whose version 1 was registered from it (models/wine/model.json, with the
 * version's run and logged model again under models/wine/, as export_models writes them).
 */
async function writeUpstreamExport(root: string): Promise<void> {
  const experiment = {
    experiment_id: '1',
    name: 'sklearn-wine',
    artifact_location: 'mlflow-artifacts:/1',
    lifecycle_stage: 'active',
    tags: { team: 'wine' },
    creation_time: 1761770000000,
    last_update_time: 1761770000000,
    _creation_time: '2025-10-29 20:33:20',
    _last_update_time: '2025-10-29 20:33:20',
  };
  write(root, 'experiments/1/experiment.json', {
    system: system('export_experiment.py'),
    info: { num_total_runs: 1, num_ok_runs: 1, num_failed_runs: 0, failed_runs: [], ok_logged_models: 1, failed_logged_models: 0 },
    mlflow: { experiment, runs: [RUN], logged_models: [MODEL] },
  });
  const run = {
    system: system('export_run.py'),
    mlflow: {
      info: {
        run_uuid: RUN,
        run_id: RUN,
        experiment_id: '1',
        user_id: 'andre',
        status: 'FINISHED',
        start_time: 1761770100000,
        end_time: 1761770110000,
        lifecycle_stage: 'active',
        artifact_uri: `mlflow-artifacts:/1/${RUN}/artifacts`,
        run_name: 'train',
        _start_time: '2025-10-29 20:35:00',
        _end_time: '2025-10-29 20:35:10',
      },
      params: { C: '1.0' },
      metrics: { accuracy: [{ value: 1.0, timestamp: 1761770105000, step: 0 }] },
      tags: { 'mlflow.runName': 'train', 'mlflow.user': 'andre', 'mlflow.source.type': 'LOCAL' },
      inputs: { dataset_inputs: [], model_inputs: [] },
      outputs: { model_outputs: [{ model_id: MODEL, step: 0 }] },
    },
  };
  const loggedModel = {
    system: system('export_logged_model.py'),
    mlflow: {
      experiment_id: '1',
      model_id: MODEL,
      name: 'model',
      artifact_location: `mlflow-artifacts:/1/models/${MODEL}/artifacts`,
      creation_time: 1761770106000,
      last_updated_timestamp: 1761770108000,
      model_type: '',
      source_run_id: RUN,
      status: 'READY',
      status_message: '',
      tags: { 'mlflow.user': 'andre', 'mlflow.source.type': 'LOCAL', 'mlflow.modelVersions': '[{"name": "wine", "version": 1}]' },
      params: { C: '1.0' },
      metrics: [{ key: 'accuracy', value: 1.0, timestamp: 1761770105000, step: 0, model_id: MODEL, dataset_name: null, dataset_digest: null, run_id: RUN }],
      model_uri: `models:/${MODEL}`,
      dataset_inputs: [],
    },
  };
  const version = {
    name: 'wine',
    version: '1',
    creation_timestamp: 1761770109000,
    last_updated_timestamp: 1761770109000,
    current_stage: 'Production',
    description: 'from a logged model',
    source: `models:/${MODEL}`,
    run_id: RUN,
    run_link: '',
    status: 'READY',
    status_message: '',
    tags: { validated: 'yes' },
    user_id: '',
    model_id: MODEL,
    aliases: [],
    _run_artifact_uri: `mlflow-artifacts:/1/${RUN}/artifacts`,
    _experiment_name: 'sklearn-wine',
  };
  write(root, `experiments/1/runs/${RUN}/run.json`, run);
  write(root, 'experiments/1/logged_models/logged_models.json', {
    system: system('export_logged_models.py'),
    info: { num_total_logged_models: 1, num_ok_logged_models: 1, num_failed_logged_models: 0, failed_logged_models: [] },
    mlflow: { experiments: [{ id: '1', name: 'sklearn-wine', logged_models: [MODEL] }] },
  });
  write(root, `experiments/1/logged_models/${MODEL}/logged_model.json`, loggedModel);
  write(root, 'experiments/experiments.json', {
    system: system('export_experiments.py'),
    info: { num_total_experiments: 1, num_ok_experiments: 1, num_failed_experiments: 0 },
    mlflow: { experiments: [{ id: '1', name: 'sklearn-wine', ok_runs: 1, failed_runs: 0, duration: 0.1 }] },
  });
  write(root, 'models/wine/model.json', {
    system: system('export_model.py'),
    info: { num_target_stages: 0, num_target_versions: 0, num_src_versions: 1, num_dst_versions: 1, num_failed_versions: 0 },
    mlflow: { registered_model: { name: 'wine', creation_timestamp: 1761770109000, last_updated_timestamp: 1761770109000, description: 'wine quality', aliases: [], tags: { team: 'wine' }, versions: [version] } },
  });
  write(root, `models/wine/${RUN}/run.json`, run);
  write(root, `models/wine/${MODEL}/logged_model.json`, loggedModel);
  write(root, 'models/models.json', { system: system('export_models.py'), info: { num_models: 1 }, mlflow: { models: ['wine'] } });
  write(root, 'manifest.json', { system: system('export_all.py'), info: {}, mlflow: {} });
  // the model's files, as download_artifacts puts them: <model dir>/artifacts/
  await runPython('test/fixtures/save_model.py', [join(root, 'experiments/1/logged_models', MODEL, 'artifacts'), MODEL, RUN]);
  await runPython('test/fixtures/save_model.py', [join(root, 'models/wine', MODEL, 'artifacts'), MODEL, RUN]);
}

describe('MLflow 3 logged models in mlflow-export-import directories', () => {
  it('reads them where mlflow-export-import writes them: logged_model.json, its artifacts/, the run outputs, versions registered from them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-lm-'));
    await writeUpstreamExport(root);
    expect(await looksLikeExim(root)).toBe(true);
    const source = new EximSource(root);
    const [model, ...others] = await collect(source.loggedModels.listLoggedModels('1'));
    expect(others).toEqual([]); // the copy under models/wine/ is the same model
    expect(model).toEqual({
      id: MODEL,
      experimentId: '1',
      name: 'model',
      sourceRunId: RUN,
      status: 'LOGGED_MODEL_READY',
      params: { C: '1.0' },
      tags: { 'mlflow.user': 'andre', 'mlflow.source.type': 'LOCAL', 'mlflow.modelVersions': '[{"name": "wine", "version": 1}]' },
      creationTime: 1761770106000,
      lastUpdatedTime: 1761770108000,
    });
    const files = (await collect(source.loggedModels.listLoggedModelArtifacts(model!))).map((f) => f.path);
    expect(files).toContain('MLmodel');
    expect(files).toContain('model.skops');
    expect((await source.getRun(RUN))!).toMatchObject({ name: 'train', inputs: [], modelOutputs: [{ modelId: MODEL, step: 0 }] });
    const [version] = await collect(source.registry.listVersions('wine'));
    expect(version).toMatchObject({ version: '1', stage: 'Production', location: { type: 'logged-model', modelId: MODEL }, loggedModelId: MODEL, runId: RUN });
  });

  it('writes them back in the same layout, resumably: a logged model cut off part way is written again', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-lm-'));
    await writeUpstreamExport(root);
    const out = join(mkdtempSync(join(tmpdir(), 'trackshift-exim-lm-')), 'out');
    const exported = await cli(['export', root, out, '--format', 'mlflow-export-import', '--state-dir', mkdtempSync(join(tmpdir(), 'trackshift-state-')), '--json']);
    expect(exported.code, exported.stderr + exported.stdout).toBe(0);
    expect(JSON.parse(exported.stdout).copied).toMatchObject({ runs: 1, loggedModels: 1, versions: 1 });
    const file = join(out, 'experiments', '1', 'logged_models', MODEL, 'logged_model.json');
    const written = parsePythonJson(readFileSync(file, 'utf8')) as { mlflow: Record<string, unknown> };
    expect(written.mlflow).toMatchObject({ experiment_id: '1', model_id: MODEL, name: 'model', source_run_id: RUN, status: 'READY', params: { C: '1.0' }, creation_time: 1761770106000, metrics: [], model_uri: `models:/${MODEL}` });
    const listed = parsePythonJson(readFileSync(join(out, 'experiments', '1', 'experiment.json'), 'utf8')) as { mlflow: { logged_models: string[] } };
    expect(listed.mlflow.logged_models).toEqual([MODEL]);
    const original = new EximSource(root);
    const back = new EximSource(out);
    const strip = (tags: Record<string, string>) => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith('trackshift.') && k !== 'mlflow.modelVersions'));
    const [model] = await collect(back.loggedModels.listLoggedModels('1'));
    const [source] = await collect(original.loggedModels.listLoggedModels('1'));
    expect({ ...model!, tags: strip(model!.tags) }).toEqual({ ...source!, tags: strip(source!.tags) });
    // the run: its outputs, and none of the files linked into it for the Python importers
    expect((await back.getRun(RUN))!.modelOutputs).toEqual([{ modelId: MODEL, step: 0 }]);
    expect(await collect(back.listArtifacts((await back.getRun(RUN))!))).toEqual([]);
    expect(readdirSync(join(out, 'experiments', '1', RUN, 'artifacts', 'model'))).toContain('MLmodel');
    const [version] = await collect(back.registry.listVersions('wine'));
    expect(version).toMatchObject({ source: `mlflow-artifacts:/1/${RUN}/artifacts/model`, location: { type: 'logged-model', modelId: MODEL }, runId: RUN });

    rmSync(file);
    const again = await cli(['export', root, out, '--format', 'mlflow-export-import', '--state-dir', mkdtempSync(join(tmpdir(), 'trackshift-state-')), '--json']);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(JSON.parse(again.stdout).copied).toMatchObject({ runs: 0, loggedModels: 1 });
    expect(existsSync(file)).toBe(true);
    // the version (complete already) keeps its run's links, now to the new files
    const rewritten = new EximSource(out);
    expect(await collect(rewritten.listArtifacts((await rewritten.getRun(RUN))!))).toEqual([]);
  });

  it('imports them into an mlruns store that mlflow loads the version from', async () => {
    const root = mkdtempSync(join(tmpdir(), 'trackshift-exim-lm-'));
    await writeUpstreamExport(root);
    const store = join(mkdtempSync(join(tmpdir(), 'trackshift-exim-lm-')), 'mlruns');
    const result = await cli(['import', root, `mlruns:${store}`, '--state-dir', mkdtempSync(join(tmpdir(), 'trackshift-state-')), '--json']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(JSON.parse(result.stdout).copied).toMatchObject({ runs: 1, loggedModels: 1, versions: 1 });
    const dumped = JSON.parse((await runPython('test/fixtures/dump_logged_models.py', [`file://${store}`], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!);
    expect(dumped.models[MODEL]).toMatchObject({ experiment: 'sklearn-wine', name: 'model', status: 'READY', source_run_id: RUN, params: { C: '1.0' }, creation_timestamp: 1761770106000 });
    expect(dumped.models[MODEL].tags).toMatchObject({ 'mlflow.user': 'andre', 'mlflow.modelVersions': '[{"name": "wine", "version": 1}]' });
    expect(dumped.outputs[RUN]).toEqual([[MODEL, 0]]);
    expect(dumped.versions['wine/1']).toMatchObject({ source: `models:/${MODEL}`, model_id: MODEL, run_id: RUN });
    const loaded = JSON.parse((await runPython('test/fixtures/load_model.py', [`file://${store}`, 'wine', '1'], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!);
    expect(loaded).toMatchObject({ mlmodel_model_id: MODEL, mlmodel_run_id: RUN, prediction: [0, 1] });
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
