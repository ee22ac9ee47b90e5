/**
 * A memory source with the run every encoding test copies: every series type, fractional steps,
 * points without timestamps, epochs and contexts, a system series, typed nested config, a
 * summary, a group, a source state, and a fork from another run of the same experiment.
 */
import { memoryRun, MemoryStore } from '../../src/connectors/memory/index.js';
import type { MetricPoint, Run, TypedPoint } from '../../src/model/index.js';

export const T0 = 1_700_000_000_000;

export function typedSource(): MemoryStore {
  const store = new MemoryStore('memory:typed', { pageSize: 7 });
  store.data.experiments.set('1', { id: '1', name: 'typed', tags: {}, lifecycle: 'active' });
  const base = (id: string, extra: Partial<Run>): Run => ({ id, experimentId: '1', name: id, status: 'FINISHED', startTime: T0, endTime: T0 + 5000, user: 'ana', lifecycle: 'active', params: { seed: '7' }, tags: { team: 'x' }, inputs: [], series: [], ...extra });
  const loss: MetricPoint[] = Array.from({ length: 40 }, (_, i) => ({ key: 'loss', step: i / 4, value: 1 / (i + 1), timestamp: T0 + i }));
  loss.push({ key: 'loss', step: 3, value: NaN, timestamp: T0 }, { key: 'loss', step: 3, value: -0, timestamp: T0 }, { key: 'loss', step: 4, value: Infinity });
  const cpu: MetricPoint[] = [0, 1, 2].map((step) => ({ key: 'cpu', step, value: 50 + step, timestamp: T0 + step }));
  const text: TypedPoint[] = [0, 0.5, 1].map((step, i) => ({ step, timestamp: T0 + i, value: `epoch ${i}: ok\n` }));
  const images: TypedPoint[] = [0, 1].map((step) => ({ step, timestamp: T0 + step, value: { path: `images/sample/${step}.png`, name: `${step}.png`, size: 4, mimeType: 'image/png' } }));
  const hist: TypedPoint[] = [{ step: 2.5, epoch: 1, context: 'train', value: { edges: [-1, 0, 1], kind: 'densities', values: [0.25, 0.75] } }];
  const child = base('forkedrun', {
    series: [
      { key: 'loss', type: 'float' },
      { key: 'cpu', type: 'float', system: true },
      { key: 'stdout', type: 'string' },
      { key: 'samples', type: 'file' },
      { key: 'weights', type: 'histogram' },
    ],
    config: [
      { path: ['optimizer', 'name'], value: { type: 'string', value: 'adam' } },
      { path: ['optimizer', 'betas', 'b1'], value: { type: 'float', value: 0.9 } },
      { path: ['epochs'], value: { type: 'int', value: 10 } },
      { path: ['amp'], value: { type: 'bool', value: false } },
      { path: ['when'], value: { type: 'datetime', value: T0 } },
      { path: ['labels'], value: { type: 'stringSet', value: ['cat', 'dog'] } },
    ],
    summary: [{ path: ['best', 'loss'], value: { type: 'float', value: 0.025 } }],
    fork: { runId: 'parentrun', step: 5.5 },
    group: 'sweep-7',
    sourceState: 'idle',
  });
  store.data.runs.set(
    'forkedrun',
    memoryRun({
      run: child,
      metrics: new Map([['loss', loss], ['cpu', cpu]]),
      series: new Map([['stdout', text], ['samples', images], ['weights', hist]]),
      seriesFiles: new Map(images.map((p, i) => [`images/sample/${p.step}.png`, Buffer.from([137, 80, 78, i])])),
      artifacts: new Map([['model/weights.bin', Buffer.alloc(1000, 3)]]),
    }),
  );
  store.data.runs.set('parentrun', memoryRun({ run: base('parentrun', { series: [{ key: 'acc', type: 'float' }] }), metrics: new Map([['acc', [{ key: 'acc', step: 0, value: 0.5, timestamp: T0 }]]]) }));
  return store;
}

/** What the encoding restores, and the run's times and status, by run (of wholeRuns). */
export const typedFields = (runs: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(runs).map(([id, r]) => {
      const { series, seriesFiles, artifacts, params, config, summary, fork, group, sourceState, startTime, endTime, status } = r as Record<string, unknown>;
      return [id, { series, seriesFiles, artifacts, params, config, summary, fork, group, sourceState, startTime, endTime, status }];
    }),
  );
