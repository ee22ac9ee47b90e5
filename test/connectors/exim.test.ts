/**
 * The mlflow-export-import reader on the older file versions the tools wrote (hand-made here in
 * their shapes; the current version is tested against the real tool in test/interop/).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EximSource, looksLikeExim } from '../../src/connectors/exim/read.js';
import { parsePythonJson } from '../../src/connectors/exim/format.js';
import type { MetricPoint } from '../../src/model/index.js';

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
    expect(run).toMatchObject({ name: 'r', status: 'FAILED', startTime: 100, endTime: 200, user: 'ana', params: { alpha: '0.5' }, metricKeys: ['loss'] });
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
    await expect(collect(new EximSource(root).listExperiments())).rejects.toThrow(/experiment\.json: not a readable JSON export file/);
    write(root, 'experiment.json', { mlflow: { experiment: { name: 3 } } });
    await expect(collect(new EximSource(root).listExperiments())).rejects.toThrow(/experiment\.json: unexpected content .*experiment\.experiment_id/);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
