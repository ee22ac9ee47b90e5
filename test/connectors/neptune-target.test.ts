/**
 * The mapping every Neptune writer shares (neptune-common/target.ts): the seeds' namespace rules
 * for runs read from Neptune, and the neptune-mlflow layout for runs from elsewhere, which the
 * Neptune readers' mapping (neptune-common/run.ts) gives back.
 */
import { describe, expect, it } from 'vitest';
import type { Run } from '../../src/model/index.js';
import { toModelRun, type NeptuneRun } from '../../src/connectors/neptune-common/run.js';
import { EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute, INPUTS_ATTRIBUTE, inputsAttribute, neptuneTarget } from '../../src/connectors/neptune-common/target.js';
import { experimentTagsOf } from '../../src/connectors/neptune-common/run.js';

const legacyRun: Run = {
  id: 'SAN-7',
  experimentId: 'ws/legacy',
  name: 'baseline',
  status: 'FINISHED',
  lifecycle: 'active',
  params: {},
  tags: { best: '' },
  inputs: [],
  series: [{ key: 'monitoring/abc/cpu', type: 'float', system: true }, { key: 'train/loss', type: 'float' }],
  config: [
    { path: ['sys', 'id'], value: { type: 'string', value: 'SAN-7' } },
    { path: ['sys', 'name'], value: { type: 'string', value: 'baseline' } },
    { path: ['sys', 'description'], value: { type: 'string', value: 'first try' } },
    { path: ['sys', 'state'], value: { type: 'string', value: 'idle' } },
    { path: ['sys', 'tags'], value: { type: 'stringSet', value: ['best'] } },
    { path: ['sys', 'creation_time'], value: { type: 'datetime', value: 1_700_000_000_123 } },
    { path: ['sys', 'running_time'], value: { type: 'int', value: 42 } },
    { path: ['sys', 'size'], value: { type: 'float', value: 1024.0 } },
    { path: ['sys', 'owner'], value: { type: 'string', value: 'ada' } },
    { path: ['monitoring', 'abc', 'hostname'], value: { type: 'string', value: 'gpu-1' } },
    { path: ['parameters', 'lr'], value: { type: 'float', value: 0.001 } },
  ],
  sourceState: 'idle',
};

const attributes = (run: Run, generation: 2 | 3) => Object.fromEntries(neptuneTarget(run, run.experimentId, generation).attributes);

describe('what a Neptune writer writes for a model run', () => {
  it('applies seed 001 for a 2.x run going to 3.x', () => {
    const target = neptuneTarget(legacyRun, 'ws/legacy', 3);
    expect(target).toMatchObject({ runId: 'SAN-7', name: 'baseline', creationTime: 1_700_000_000_123 });
    expect(attributes(legacyRun, 3)).toEqual({
      'sys/description': { type: 'string', value: 'first try' },
      'sys/tags': { type: 'stringSet', value: ['best'] },
      'legacy_sys/id': { type: 'string', value: 'SAN-7' },
      'legacy_sys/running_time': { type: 'float', value: 42 },
      'legacy_sys/size': { type: 'int', value: 1024 },
      'legacy_sys/owner': { type: 'string', value: 'ada' },
      'runtime/abc/hostname': { type: 'string', value: 'gpu-1' },
      'parameters/lr': { type: 'float', value: 0.001 },
    });
    expect(target.seriesPath('monitoring/abc/cpu')).toBe('runtime/abc/cpu');
    expect(target.seriesPath('train/loss')).toBe('train/loss');
  });

  it('takes the custom run id as the 3.x run id when there is one', () => {
    const run = { ...legacyRun, config: [...legacyRun.config!, { path: ['sys', 'custom_run_id'], value: { type: 'string' as const, value: 'exp-2024-01' } }] };
    expect(neptuneTarget(run, 'ws/legacy', 3).runId).toBe('exp-2024-01');
    expect(attributes(run, 3)['legacy_sys/custom_run_id']).toBeUndefined();
  });

  it('applies seed 000 for a 2.x run going to 2.x', () => {
    const target = neptuneTarget(legacyRun, 'ws/legacy', 2);
    expect(target.runId).toBeUndefined();
    expect(target.name).toBe('baseline');
    expect(attributes(legacyRun, 2)).toEqual({
      'sys/name': { type: 'string', value: 'baseline' },
      'sys/description': { type: 'string', value: 'first try' },
      'sys/tags': { type: 'stringSet', value: ['best'] },
      'old_sys/id': { type: 'string', value: 'SAN-7' },
      'old_sys/creation_time': { type: 'datetime', value: 1_700_000_000_123 },
      'old_sys/running_time': { type: 'int', value: 42 },
      'old_sys/size': { type: 'float', value: 1024 },
      'old_sys/owner': { type: 'string', value: 'ada' },
      'monitoring/abc/hostname': { type: 'string', value: 'gpu-1' },
      'parameters/lr': { type: 'float', value: 0.001 },
    });
    expect(target.seriesPath('monitoring/abc/cpu')).toBe('monitoring/abc/cpu');
  });

  const mlflowRun: Run = {
    id: '0f3a9c1e5b7d4e2f8a6b1c3d5e7f9a0b',
    experimentId: '7',
    name: 'lr-sweep',
    status: 'FAILED',
    startTime: 1_700_000_000_000,
    endTime: 1_700_000_360_000,
    user: 'ada',
    lifecycle: 'deleted',
    parentId: 'parent-1',
    params: { lr: '0.01', 'model/depth': '6' },
    tags: { 'mlflow.source.name': 'train.py', reviewed: '', 'trackshift.source.id': 'abc' },
    inputs: [],
    series: [{ key: 'loss', type: 'float' }],
  };

  it.each([2, 3] as const)('lays out a run from MLflow as neptune-mlflow does, and reads it back (%s.x)', (generation) => {
    const target = neptuneTarget(mlflowRun, 'sweeps', generation);
    const written = new Map(target.attributes);
    // what the reader sees: the attributes, plus what the run's creation holds (3.x)
    if (target.runId && generation === 3) written.set('sys/custom_run_id', { type: 'string', value: target.runId });
    if (target.name) written.set('sys/name', { type: 'string', value: target.name });
    if (target.creationTime !== undefined) written.set('sys/creation_time', { type: 'datetime', value: target.creationTime });
    const neptune: NeptuneRun = { id: mlflowRun.id, generation, attributes: written, series: mlflowRun.series };
    const back = toModelRun(neptune, 'sweeps');
    expect(written.get('run_data/params/model/depth')).toEqual({ type: 'string', value: '6' });
    expect(back).toMatchObject({
      id: mlflowRun.id,
      name: 'lr-sweep',
      status: 'FAILED',
      startTime: mlflowRun.startTime,
      endTime: mlflowRun.endTime,
      user: 'ada',
      lifecycle: 'deleted',
      parentId: 'parent-1',
      params: mlflowRun.params,
      tags: mlflowRun.tags,
    });
    // the sys/ attributes a Neptune client and server set on a run from elsewhere are no config of its own
    expect(back.config).toBeUndefined();
    expect(target.runId).toBe(mlflowRun.id); // 32 characters: a 2.x custom run id too
  });

  it("keeps what Neptune has no place for in trackshift's run_info/ attributes, and reads it back", () => {
    const run: Run = {
      ...mlflowRun,
      lifecycle: 'active',
      sourceState: 'exit 3',
      inputs: [{ dataset: { name: 'train', digest: 'abc', sourceType: 'local', source: '/data' }, tags: { 'mlflow.data.context': 'training' } }],
      series: [{ key: 'system/cpu', type: 'float', system: true }, { key: 'loss', type: 'float' }],
    };
    const target = neptuneTarget(run, 'sweeps', 3);
    const written = new Map(target.attributes);
    written.set(INPUTS_ATTRIBUTE, inputsAttribute(run.inputs));
    written.set(EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute({ team: 'vision' }));
    const neptune: NeptuneRun = { id: run.id, generation: 3, attributes: written, series: [{ key: 'system/cpu', type: 'float' }, { key: 'loss', type: 'float' }] };
    const back = toModelRun(neptune, 'sweeps');
    expect(back).toMatchObject({ sourceState: 'exit 3', inputs: run.inputs, series: run.series });
    expect(back.config).toBeUndefined();
    expect(experimentTagsOf(neptune)).toEqual({ team: 'vision' });
  });
});
