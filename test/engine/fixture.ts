/** A small source store with the awkward cases the engine must carry. */
import { MemoryStore, type MemoryOptions } from '../../src/connectors/memory/index.js';
import type { MetricPoint, Run } from '../../src/model/index.js';

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
    metricKeys: [],
    ...run,
  };
  const series = new Map<string, MetricPoint[]>();
  for (const p of metrics) {
    if (!series.has(p.key)) series.set(p.key, []);
    series.get(p.key)!.push(p);
  }
  full.metricKeys = [...series.keys()];
  store.data.runs.set(full.id, { run: full, metrics: series, artifacts: new Map(Object.entries(artifacts)) });
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
