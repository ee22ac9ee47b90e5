/** A small source store with the awkward cases the engine must carry. */
import { MemoryStore, type MemoryOptions, memoryRun } from '../../src/connectors/memory/index.js';
import type { MetricPoint, ModelVersion, Run } from '../../src/model/index.js';

let counter = 0;

export function newStore(options?: MemoryOptions): MemoryStore {
  return new MemoryStore(`memory:test-${++counter}`, options);
}

function addRun(store: MemoryStore, run: Partial<Run> & Pick<Run, 'id' | 'experimentId'>, metrics: MetricPoint[] = [], artifacts: Record<string, Buffer> = {}) {
  const full: Run = {
    name: run.id,
    status: 'FINISHED',
    lifecycle: 'active',
    params: {},
    tags: {},
    inputs: [],
    series: [],
    ...run,
  };
  const series = new Map<string, MetricPoint[]>();
  for (const p of metrics) {
    if (!series.has(p.key)) series.set(p.key, []);
    series.get(p.key)!.push(p);
  }
  full.series = [...series.keys()].map((key) => ({ key, type: 'float' as const }));
  store.data.runs.set(full.id, memoryRun({ run: full, metrics: series, artifacts: new Map(Object.entries(artifacts)) }));
}

export function sourceStore(): MemoryStore {
  const store = newStore({ pageSize: 333 });
  store.data.experiments.set('1', { id: '1', name: 'alpha', tags: { 'mlflow.note.content': 'first' }, lifecycle: 'active', creationTime: 1000 });
  store.data.experiments.set('2', { id: '2', name: 'beta', tags: {}, lifecycle: 'active' });
  store.data.experiments.set('3', { id: '3', name: 'gone', tags: {}, lifecycle: 'deleted' });
  const loss: MetricPoint[] = Array.from({ length: 2500 }, (_, i) => ({ key: 'loss', value: 1 / (i + 1), timestamp: 1_600_000_000_000 + i, step: i }));
  loss.push({ key: 'loss', value: NaN, timestamp: 1, step: 3 }, { key: 'loss', value: Infinity, timestamp: 2, step: 3 }, { key: 'loss', value: -Infinity, timestamp: 2, step: 3 });
  const params = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, `v${i}`]));
  params.long = 'x'.repeat(6000);
  // the child is listed before its parent: the plan must reorder
  addRun(store, { id: 'child', experimentId: '1', parentId: 'parent', tags: { 'mlflow.parentRunId': 'parent' }, startTime: 20, endTime: 30, status: 'FAILED' });
  addRun(
    store,
    { id: 'parent', experimentId: '1', startTime: 10, endTime: 40, user: 'ana', params, tags: { team: 'x', 'mlflow.user': 'ana' }, inputs: [{ dataset: { name: 'd', digest: 'abc', sourceType: 'local', source: '{}' }, tags: { 'mlflow.data.context': 'train' } }] },
    [...loss, { key: 'acc', value: 0.5, timestamp: 5, step: 0 }],
    { 'model/weights.bin': Buffer.alloc(70_000, 7), 'empty.txt': Buffer.alloc(0), 'résumé.txt': Buffer.from('é') },
  );
  addRun(store, { id: 'grandchild', experimentId: '1', parentId: 'child', tags: { 'mlflow.parentRunId': 'child' }, startTime: 25, status: 'RUNNING' });
  addRun(store, { id: 'removed', experimentId: '1', lifecycle: 'deleted', startTime: 50, endTime: 60, status: 'KILLED' });
  addRun(store, { id: 'b1', experimentId: '2', startTime: 100, endTime: 200 }, [{ key: 'm', value: 1, timestamp: 1, step: 0 }]);
  addRun(store, { id: 'g1', experimentId: '3', startTime: 100, endTime: 200 });
  return store;
}

export function version(v: string, stage: ModelVersion['stage'], location: ModelVersion['location'], extra: Partial<ModelVersion> = {}): ModelVersion {
  const runId = location.type === 'run' ? location.runId : undefined;
  return {
    modelName: 'fraud',
    version: v,
    source: location.type === 'run' ? `mlflow-artifacts:/1/${location.runId}/artifacts/${location.path}` : location.type === 'uri' ? location.uri : `models:/${location.modelId}`,
    location,
    ...(runId ? { runId } : {}),
    status: 'READY',
    stage,
    description: `version ${v}`,
    tags: { v },
    creationTime: 1000 + Number(v),
    ...extra,
  };
}

/** The engine fixture plus a registered model whose versions point at its runs, with a gap (4). */
export function registrySource(): MemoryStore {
  const store = sourceStore();
  store.data.runs.get('parent')!.artifacts.set('model/MLmodel', Buffer.from('artifact_path: model\nrun_id: parent\nflavors:\n  sklearn: {}\n'));
  store.registry.add({ name: 'fraud', description: 'fraud model', tags: { team: 'risk' }, aliases: { champion: '1', challenger: '2' }, creationTime: 5 }, [
    version('1', 'Production', { type: 'run', runId: 'parent', path: 'model' }),
    version('2', 'Staging', { type: 'run', runId: 'b1', path: 'model' }),
    version('3', 'Archived', { type: 'run', runId: 'child', path: 'model' }),
    version('5', 'None', { type: 'uri', uri: 's3://bucket/fraud/5' }),
  ]);
  return store;
}
