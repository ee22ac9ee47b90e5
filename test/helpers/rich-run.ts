/**
 * A memory store holding what the widened model can hold, in one experiment: a run with every
 * series type (float points with NaN, ±Infinity, -0, duplicate, negative and fractional steps,
 * no timestamp, epochs and contexts; string; file with bytes; histogram with counts and with
 * densities), system series, typed nested config of every type, a summary, a group, a source
 * state; and a second run forked from the first at a fractional step.
 */
import { MemoryStore, memoryRun } from '../../src/connectors/memory/index.js';
import type { ConfigEntry, MetricPoint, Run, SeriesInfo, TypedPoint } from '../../src/model/index.js';

const T0 = 1_767_000_000_000;

const float = (key: string, points: Array<Omit<MetricPoint, 'key'>>): MetricPoint[] => points.map((p) => ({ key, ...p }));

const CONFIG: ConfigEntry[] = [
  { path: ['optimizer', 'name'], value: { type: 'string', value: 'adamw' } },
  { path: ['optimizer', 'lr'], value: { type: 'float', value: 0.0003 } },
  { path: ['optimizer', 'betas', '0'], value: { type: 'float', value: 0.9 } },
  { path: ['batch_size'], value: { type: 'int', value: 64 } },
  { path: ['use_amp'], value: { type: 'bool', value: true } },
  { path: ['started'], value: { type: 'datetime', value: T0 - 5_000 } },
  { path: ['datasets'], value: { type: 'stringSet', value: ['train-v2', 'valid-v2'] } },
  { path: ['weird', 'not a number'], value: { type: 'float', value: NaN } },
  { path: ['weird', 'a|b/c'], value: { type: 'string', value: 'x'.repeat(300) } },
];

const SUMMARY: ConfigEntry[] = [
  { path: ['loss', 'min'], value: { type: 'float', value: 0.125 } },
  { path: ['loss', 'last'], value: { type: 'float', value: -0 } },
  { path: ['epochs'], value: { type: 'int', value: 3 } },
];

function richSeries(): { info: SeriesInfo[]; metrics: Map<string, MetricPoint[]>; typed: Map<string, TypedPoint[]>; files: Map<string, Buffer> } {
  const metrics = new Map<string, MetricPoint[]>([
    [
      'train/loss',
      float('train/loss', [
        { step: 0, timestamp: T0, value: 2.5 },
        { step: 0.5, timestamp: T0 + 10, value: 1.25, epoch: 0, context: 'train' },
        { step: 0.5, timestamp: T0 + 11, value: 1.25, epoch: 0, context: 'train' },
        { step: 1, timestamp: T0 + 20, value: NaN },
        { step: 1.000001, timestamp: T0 + 21, value: Infinity },
        { step: 2, value: -Infinity },
        { step: -3, timestamp: T0 + 30, value: -0 },
        { step: 123456789.123456, timestamp: T0 + 40, value: 1e-300 },
      ]),
    ],
    ['accuracy', float('accuracy', Array.from({ length: 1200 }, (_, i) => ({ step: i, timestamp: T0 + i, value: i / 1200 })))],
    ['monitoring/cpu', float('monitoring/cpu', [{ step: 0, timestamp: T0, value: 12.5 }, { step: 1, timestamp: T0 + 1000, value: 50 }])],
    ['system/gpu_utilization_percentage', float('system/gpu_utilization_percentage', [{ step: 0, timestamp: T0, value: 99 }])],
  ]);
  const png = (n: number) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64 + n, n)]);
  const files = new Map<string, Buffer>([
    ['images/predictions/step_0.png', png(0)],
    ['images/predictions/step_0_5.png', png(1)],
    ['images/predictions/step_7.png', png(2)],
  ]);
  const typed = new Map<string, TypedPoint[]>([
    [
      'runtime/stdout',
      [
        { step: 0, timestamp: T0, value: 'epoch 1/3' },
        { step: 1, timestamp: T0 + 1, value: 'héllo\twörld\nsecond line' },
        { step: 1, timestamp: T0 + 2, value: '' },
        { step: 2.25, value: 'no timestamp, fractional step' },
      ],
    ],
    [
      'images/predictions',
      [
        { step: 0, timestamp: T0, value: { path: 'images/predictions/step_0.png', name: 'pred.png', size: files.get('images/predictions/step_0.png')!.length, mimeType: 'image/png' } },
        { step: 0.5, timestamp: T0 + 5, value: { path: 'images/predictions/step_0_5.png', name: 'pred.png', size: files.get('images/predictions/step_0_5.png')!.length, mimeType: 'image/png' } },
        { step: 7, value: { path: 'images/predictions/step_7.png', name: 'pred.png', mimeType: 'image/png' } },
      ],
    ],
    [
      'weights/hist',
      [
        { step: 0, timestamp: T0, value: { edges: [-1, 0, 1], kind: 'counts', values: [3, 5] } },
        { step: 1.5, timestamp: T0 + 3, epoch: 1, context: 'eval', value: { edges: [-Infinity, 0, 0.5, Infinity], kind: 'densities', values: [0.25, NaN, 0.75] } },
      ],
    ],
  ]);
  const info: SeriesInfo[] = [
    { key: 'train/loss', type: 'float' },
    { key: 'accuracy', type: 'float' },
    { key: 'monitoring/cpu', type: 'float', system: true },
    { key: 'system/gpu_utilization_percentage', type: 'float', system: true },
    { key: 'runtime/stdout', type: 'string', system: true },
    { key: 'images/predictions', type: 'file' },
    { key: 'weights/hist', type: 'histogram' },
  ];
  return { info, metrics, typed, files };
}

/** A store named `name` (memory:NAME for the CLI's library entry points) holding the rich runs. */
export function richStore(store: MemoryStore): MemoryStore {
  store.data.experiments.set('e1', { id: 'e1', name: 'rich-experiment', tags: { team: 'vision' }, lifecycle: 'active', creationTime: T0 - 100_000 });
  const { info, metrics, typed, files } = richSeries();
  const main: Run = {
    id: 'run-main',
    experimentId: 'e1',
    name: 'everything',
    status: 'FINISHED',
    startTime: T0 - 10_000,
    endTime: T0 + 100_000,
    user: 'ana',
    lifecycle: 'active',
    params: { plain: 'string param' },
    tags: { 'mlflow.runName': 'everything', team: 'vision' },
    inputs: [],
    series: info,
    config: CONFIG,
    summary: SUMMARY,
    group: 'sweep-7',
    sourceState: 'idle',
  };
  store.data.runs.set(main.id, memoryRun({ run: main, metrics, series: typed, seriesFiles: files, artifacts: new Map([['notes/readme.txt', Buffer.from('artifact bytes')]]) }));
  const forked: Run = {
    id: 'run-fork',
    experimentId: 'e1',
    name: 'forked',
    status: 'RUNNING',
    startTime: T0 + 200_000,
    lifecycle: 'active',
    params: {},
    tags: { 'mlflow.runName': 'forked' },
    inputs: [],
    series: [{ key: 'train/loss', type: 'float' }],
    fork: { runId: 'run-main', step: 0.5 },
  };
  store.data.runs.set(forked.id, memoryRun({ run: forked, metrics: new Map([['train/loss', float('train/loss', [{ step: 0.75, timestamp: T0 + 200_001, value: 0.5 }])]]) }));
  return store;
}
