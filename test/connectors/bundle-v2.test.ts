/**
 * Bundle format version 2 through the real engine: a run holding every part of the model (every
 * series type, non-finite values, fractional, negative and duplicate steps, points without
 * timestamp, epochs, contexts, system series, series files, typed nested config, summary, fork,
 * group, source state) goes memory → bundle → memory and comes back field by field, point by
 * point, byte by byte. Version 1 bundles (test/fixtures/bundle-v1, exported from sample/mlruns by
 * the version 1 code) still read, and take new runs. Re-running skips, a cut-off run is redone,
 * and a long string series streams through with flat memory.
 */
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleConnector, openBundleDestination, openBundleSource } from '../../src/connectors/bundle/index.js';
import { memoryRun, memoryStore, type MemoryStore } from '../../src/connectors/memory/index.js';
import type { Source } from '../../src/connectors/types.js';
import { emptySelection } from '../../src/engine/plan.js';
import { peakHeapGrowth } from '../helpers/heap.js';
import { runJob, type JobOptions } from '../../src/engine/job.js';
import { runVerify } from '../../src/verify/index.js';
import { SOURCE_TAGS, SOURCE_TAG_PREFIX, type ConfigEntry, type MetricPoint, type Run, type SeriesInfo, type Tags, type TypedPoint } from '../../src/model/index.js';

const T0 = 1_700_000_000_000;
const V1_FIXTURE = 'test/fixtures/bundle-v1';

let tmp: string;
let jobs = 0;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trackshift-bundle-v2-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function job(command: JobOptions['command'], source: string, destination: string, includeDeleted = true) {
  return runJob({
    command,
    source,
    destination,
    selection: { ...emptySelection(), includeDeleted },
    workers: 4,
    artifactWorkers: 4,
    dryRun: false,
    // a fresh journal every time, so that resuming relies on what the bundle itself says
    stateDir: join(tmp, `state-${jobs++}`),
    newFolderFormat: command === 'export' ? bundleConnector : undefined,
    env: {},
  });
}

// ---- a run holding everything ----

const float = (key: string, parts: Array<Omit<MetricPoint, 'key'>>): MetricPoint[] => parts.map((p) => ({ key, ...p }));

const loss = float('loss', [
  { value: NaN, timestamp: T0, step: 0 },
  { value: Infinity, timestamp: T0 + 1, step: 0.5 },
  { value: -Infinity, step: -3 }, // no timestamp, negative step
  { value: -0, timestamp: T0 + 2, step: 1e-6, epoch: 1, context: 'train' },
  // a duplicate step and timestamp, then an exact duplicate: both kept as they are
  { value: 0.25, timestamp: T0 + 2, step: 1e-6, epoch: 1, context: 'train' },
  { value: 0.25, timestamp: T0 + 2, step: 1e-6, epoch: 1, context: 'train' },
  { value: 5e-324, step: 123456.789012, context: 'validate é' },
  { value: 1e300, timestamp: T0 + 3, step: -0.5, epoch: 0 },
  // enough to cross the reader's pages (10,000 points)
  ...Array.from({ length: 12_345 }, (_, i) => ({ value: Math.sin(i), timestamp: T0 + i, step: i / 4 })),
]);
const gpu = float('gpu/util %', [
  { value: 97.5, timestamp: T0, step: 0 },
  { value: 98, step: 1 },
]);

const stdout: TypedPoint[] = [
  { step: 0, timestamp: T0, value: '' },
  { step: 0, timestamp: T0, value: 'line with\nnewline, "quotes", \\ and é 数据' },
  { step: 0.25, value: 'x'.repeat(10_000), epoch: 3, context: 'test' },
  { step: -1, timestamp: T0 + 5, value: '\u0000 nul \u2028 separator' },
];

const fileBytes = new Map<string, Buffer>([
  ['images/0.png', Buffer.from([137, 80, 78, 71])],
  ['images/sub dir/é 数据.bin', Buffer.alloc(0)],
  ['audio/clip', Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) % 256))],
]);
const images: TypedPoint[] = [
  { step: 0, timestamp: T0, value: { path: 'images/0.png', name: '0.png', size: 4, mimeType: 'image/png' } },
  { step: 1.5, value: { path: 'images/sub dir/é 数据.bin', size: 0 }, epoch: 2 },
  // no size known: the reader cannot check it, the writer stores what comes
  { step: 2, timestamp: T0 + 2, value: { path: 'audio/clip', name: 'clip.wav', mimeType: 'audio/wav' }, context: 'eval' },
];

const weights: TypedPoint[] = [
  { step: 0, timestamp: T0, value: { edges: [-Infinity, 0, 1, Infinity], kind: 'counts', values: [1, 0, 3] } },
  { step: 0.5, value: { edges: [0, 0.5, 1], kind: 'densities', values: [0.25, NaN] } },
  { step: 0.5, value: { edges: [-0, 1], kind: 'densities', values: [-0] }, epoch: 1, context: 'x' },
];

const config: ConfigEntry[] = [
  { path: ['model', 'name'], value: { type: 'string', value: 'resnet é' } },
  { path: ['model', 'layers'], value: { type: 'int', value: 50 } },
  { path: ['optimizer', 'lr'], value: { type: 'float', value: 0.001 } },
  { path: ['optimizer', 'eps'], value: { type: 'float', value: NaN } },
  { path: ['optimizer', 'clip'], value: { type: 'float', value: -0 } },
  { path: ['optimizer', 'max'], value: { type: 'float', value: -Infinity } },
  { path: ['flags', 'amp'], value: { type: 'bool', value: false } },
  { path: ['started'], value: { type: 'datetime', value: T0 } },
  { path: ['labels'], value: { type: 'stringSet', value: ['b', 'a é', ''] } },
  { path: ['a|b', 'c/d', '1'], value: { type: 'string', value: '' } },
];
const summary: ConfigEntry[] = [
  { path: ['best', 'acc'], value: { type: 'float', value: 0.97 } },
  { path: ['epochs'], value: { type: 'int', value: 12 } },
  { path: ['best', 'loss'], value: { type: 'float', value: Infinity } },
];

/** The source's order, types interleaved: a bundle lists them in this order. */
const everySeries: SeriesInfo[] = [
  { key: 'loss', type: 'float' },
  { key: 'stdout', type: 'string' },
  { key: 'gpu/util %', type: 'float', system: true },
  { key: 'images', type: 'file' },
  { key: 'weights', type: 'histogram' },
];

function baseRun(id: string, extra: Partial<Run> = {}): Run {
  return { id, experimentId: '1', name: `run ${id}`, status: 'FINISHED', startTime: T0, endTime: T0 + 10_000, user: 'ana', lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [], ...extra };
}

function everythingSource(name: string): MemoryStore {
  const store = memoryStore(name, { pageSize: 777 });
  store.data.experiments.set('1', { id: '1', name: 'everything', tags: { team: 'x' }, lifecycle: 'active', creationTime: T0 - 1 });
  // the fork's parent, in the same copy
  const parent = baseRun('parent', { series: [{ key: 'loss', type: 'float' }] });
  store.data.runs.set('parent', memoryRun({ run: parent, metrics: new Map([['loss', float('loss', [{ value: 1, timestamp: T0, step: 0 }])]]) }));
  const forked = baseRun('forked', {
    status: 'KILLED',
    endTime: undefined,
    params: { lr: '0.001', long: 'p'.repeat(7000) },
    tags: { 'mlflow.runName': 'run forked', note: 'é' },
    inputs: [{ dataset: { name: 'd', digest: 'abc', sourceType: 'local', source: '{}' }, tags: { 'mlflow.data.context': 'train' } }],
    series: everySeries,
    config,
    summary,
    fork: { runId: 'parent', step: 2.5 },
    group: 'sweep-7',
    sourceState: 'idle',
  });
  store.data.runs.set(
    'forked',
    memoryRun({
      run: forked,
      metrics: new Map([
        ['loss', loss],
        ['gpu/util %', gpu],
      ]),
      series: new Map([
        ['stdout', stdout],
        ['images', images],
        ['weights', weights],
      ]),
      seriesFiles: fileBytes,
      artifacts: new Map([
        ['model/weights.bin', Buffer.alloc(70_000, 7)],
        ['empty.txt', Buffer.alloc(0)],
      ]),
    }),
  );
  return store;
}

// ---- comparing two stores exactly ----

/** numbers as tagged strings, so that NaN, -0 and ±Infinity compare exactly and never equal a string */
function exactly(value: unknown): unknown {
  if (typeof value === 'number') return `number:${Object.is(value, -0) ? '-0' : String(value)}`;
  if (Array.isArray(value)) return value.map(exactly);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, exactly(v)]));
  return value;
}

const withoutProvenance = (tags: Tags): Tags => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(SOURCE_TAG_PREFIX)));
const base64 = (files: Map<string, Buffer>) => Object.fromEntries([...files].map(([path, bytes]) => [path, bytes.toString('base64')]));

/** What a store holds, by source run id: every field, every point, every byte. */
function holdings(store: MemoryStore) {
  const sourceId = (id: string) => store.data.runs.get(id)?.run.tags[SOURCE_TAGS.id] ?? id;
  const experimentName = (id: string) => store.data.experiments.get(id)?.name;
  const runs = [...store.data.runs.values()].map(({ run, metrics, series, seriesFiles, artifacts }) => [
    sourceId(run.id),
    exactly({
      experiment: experimentName(run.experimentId),
      name: run.name,
      status: run.status,
      startTime: run.startTime,
      endTime: run.endTime,
      user: run.user,
      lifecycle: run.lifecycle,
      parent: run.parentId && sourceId(run.parentId),
      params: run.params,
      // the parent's id in this store is in `parent`
      tags: withoutProvenance({ ...run.tags, ...(run.tags['mlflow.parentRunId'] ? { 'mlflow.parentRunId': '(parent)' } : {}) }),
      inputs: run.inputs,
      // a destination lists series in the order they were written; the bundle's own order is checked apart
      series: [...run.series].sort((a, b) => a.key.localeCompare(b.key)),
      config: run.config,
      summary: run.summary,
      // the parent's id, as the source knows it (a bundle keeps ids, so both name the same run)
      fork: run.fork && { ...run.fork, runId: sourceId(run.fork.runId) },
      group: run.group,
      sourceState: run.sourceState,
      points: Object.fromEntries([...metrics, ...series]),
      seriesFiles: base64(seriesFiles),
      artifacts: base64(artifacts),
    }),
  ]);
  return Object.fromEntries(runs.sort(([a], [b]) => String(a).localeCompare(String(b))));
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('memory → bundle → memory, through the engine', () => {
  let source: MemoryStore;
  let bundle: string;

  beforeAll(() => {
    source = everythingSource(`v2-source-${process.pid}`);
    bundle = join(tmp, 'everything');
  });

  it('exports every part of the run into a version 2 bundle', async () => {
    const report = await job('export', source.uri, bundle);
    expect(report.failed).toEqual([]);
    expect(report.warnings ?? []).toEqual([]);
    expect(report.copied.runs).toBe(2);
    const root = JSON.parse(await readFile(join(bundle, 'trackshift-bundle.json'), 'utf8'));
    expect(root.version).toBe(2);
    const runDir = join(bundle, 'experiments', '1', 'runs', 'forked');
    expect((await readdir(runDir)).sort()).toEqual(['artifacts', 'run.json', 'series', 'series-files']);
    expect(await readdir(join(runDir, 'series-files', 'images', 'sub dir'))).toEqual(['é 数据.bin']);
    const runJson = JSON.parse(await readFile(join(runDir, 'run.json'), 'utf8'));
    expect(runJson.metrics).toBeUndefined();
    expect(runJson.series.map((s: { key: string; type: string; points: number }) => [s.key, s.type, s.points])).toEqual([
      ['loss', 'float', loss.length],
      ['stdout', 'string', stdout.length],
      ['gpu/util %', 'float', gpu.length],
      ['images', 'file', images.length],
      ['weights', 'histogram', weights.length],
    ]);
    // the JSON form of config is the model's codec: non-finite floats as strings
    expect(runJson.config).toContainEqual({ path: ['optimizer', 'eps'], value: { type: 'float', value: 'NaN' } });
    expect(runJson).toMatchObject({ fork: { runId: 'parent', step: 2.5 }, group: 'sweep-7', sourceState: 'idle' });
  });

  it('reads the run back from the bundle as the source holds it, series in the source order', async () => {
    const reader = await openBundleSource(bundle);
    const run = (await reader.getRun('forked'))!;
    expect(run.series).toStrictEqual(everySeries);
    expect(exactly({ config: run.config, summary: run.summary, fork: run.fork, group: run.group, sourceState: run.sourceState })).toEqual(
      exactly({ config, summary, fork: { runId: 'parent', step: 2.5 }, group: 'sweep-7', sourceState: 'idle' }),
    );
    // pages of at most 10,000 points
    const pages = await collect(reader.readMetric(run, 'loss'));
    expect(pages.map((p) => p.length)).toEqual([10_000, loss.length - 10_000]);
    const typed = await collect(reader.readSeries!(run, { key: 'weights', type: 'histogram' }));
    expect(exactly(typed.flat())).toEqual(exactly(weights));
    await expect(collect(reader.readSeries!(run, { key: 'weights', type: 'string' }))).rejects.toThrow(/is a histogram series, not a string series/);
  });

  it('comes back into memory equal field by field, point by point, byte by byte', async () => {
    const report = await job('import', bundle, `memory:v2-back-${process.pid}`);
    expect(report.failed).toEqual([]);
    const back = memoryStore(`v2-back-${process.pid}`);
    expect(holdings(back)).toEqual(holdings(source));
    // the comparison sees what matters: a changed point or byte is a difference
    const changed = structuredClone(holdings(source)) as Record<string, { points: Record<string, unknown[]> }>;
    changed.forked!.points.loss![3] = exactly({ key: 'loss', value: 0, timestamp: T0 + 2, step: 1e-6, epoch: 1, context: 'train' });
    expect(holdings(back)).not.toEqual(changed);
    expect([...back.data.experiments.values()].map((e) => [e.name, e.creationTime])).toEqual([['everything', T0 - 1]]);
  });

  it('skips every complete run when the export runs again', async () => {
    const report = await job('export', source.uri, bundle);
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(0);
    expect(report.skipped.runs).toBe(2);
  });

  it('redoes a run whose export was cut off, and only that one', async () => {
    // what a kill before the final rename leaves: no run.json, series and their files part written
    const runDir = join(bundle, 'experiments', '1', 'runs', 'forked');
    await rm(join(runDir, 'run.json'));
    await rm(join(runDir, 'series-files', 'audio', 'clip'));
    const report = await job('export', source.uri, bundle);
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(1);
    expect(report.skipped.runs).toBe(1);
    await job('import', bundle, `memory:v2-again-${process.pid}`);
    expect(holdings(memoryStore(`v2-again-${process.pid}`))).toEqual(holdings(source));
  });
});

describe('version 1 bundles', () => {
  /** runs by source id: what a store holds of the MLflow-shaped parts a version 1 bundle has */
  const mlflowParts = (store: MemoryStore) => {
    const all = holdings(store) as Record<string, Record<string, unknown>>;
    return Object.fromEntries(Object.entries(all).map(([id, run]) => [id, { ...run, tags: undefined, experiment: undefined }]));
  };

  it('read as they did: the v1 fixture gives what sample/mlruns gives', async () => {
    const fromV1 = `v1-read-${process.pid}`;
    const direct = `v1-direct-${process.pid}`;
    expect((await job('import', V1_FIXTURE, `memory:${fromV1}`)).failed).toEqual([]);
    // the fixture was exported without --include-deleted
    expect((await job('copy', 'sample/mlruns', `memory:${direct}`, false)).failed).toEqual([]);
    const read = mlflowParts(memoryStore(fromV1));
    expect(Object.keys(read)).toHaveLength(5);
    expect(read).toEqual(mlflowParts(memoryStore(direct)));
    // float series only, none of them system series
    const reader = await openBundleSource(V1_FIXTURE);
    const run = (await reader.getRun('428474c15e9e4ba7a6a86bd5a7550d23'))!;
    expect(run.series).toStrictEqual([
      { key: 'eval/ndcg 10', type: 'float' },
      { key: 'loss', type: 'float' },
    ]);
    expect(run.config).toBeUndefined();
    expect(run.fork).toBeUndefined();
  });

  it('take version 2 runs beside their version 1 runs, and say version 2 from then on', async () => {
    const dir = join(tmp, 'upgraded');
    await cp(V1_FIXTURE, dir, { recursive: true });
    const before = holdings(await importInto(dir, 'v1-before'));
    const report = await job('export', everythingSource(`v2-into-v1-${process.pid}`).uri, dir);
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(2);
    expect(JSON.parse(await readFile(join(dir, 'trackshift-bundle.json'), 'utf8')).version).toBe(2);
    const after = holdings(await importInto(dir, 'v1-after'));
    expect(Object.keys(after)).toHaveLength(7);
    for (const [id, run] of Object.entries(before)) expect(after[id]).toEqual(run);
    expect(after.forked).toEqual(holdings(everythingSource(`v2-into-v1-${process.pid}`)).forked);
  });

  async function importInto(dir: string, name: string): Promise<MemoryStore> {
    const store = `${name}-${process.pid}`;
    expect((await job('import', dir, `memory:${store}`)).failed).toEqual([]);
    return memoryStore(store);
  }
});

describe('a long string series', () => {
  const LINE = 1000;

  /**
   * A source that makes its points page by page (a store would hold them), written into a bundle
   * and read back as the engine does, page by page: only the bundle's memory is measured.
   */
  function generated(points: number): Source {
    const run = baseRun('long', { series: [{ key: 'log', type: 'string' }] });
    return {
      uri: `generated:${points}`,
      kind: 'generated',
      async *listExperiments() {
        yield { id: '1', name: 'long', tags: {}, lifecycle: 'active' };
      },
      async *listRuns() {
        yield structuredClone(run);
      },
      async *readMetric() {},
      async *readSeries() {
        for (let start = 0; start < points; start += 500) {
          yield Array.from({ length: Math.min(500, points - start) }, (_, i) => ({ step: start + i, value: `${start + i} `.padEnd(LINE, 'x') }));
        }
      },
      async *listArtifacts() {},
      readArtifact: async () => Readable.from([]),
    };
  }

  /** The most heap held (after a collection) while the series is written and read back, every 4 pages. */
  async function heldHeap(points: number): Promise<number> {
    const dir = join(tmp, `long-${points}`);
    const { peak } = await peakHeapGrowth((measure) => writeAndReadBack(dir, points, measure));
    await rm(dir, { recursive: true });
    return peak;
  }

  async function writeAndReadBack(dir: string, points: number, measure: () => void): Promise<void> {
    const source = generated(points);
    const destination = await openBundleDestination(dir);
    const expId = await destination.ensureExperiment({ id: '1', name: 'long', tags: {}, lifecycle: 'active' }, 'long');
    const run = (await collect(source.listRuns('1', { includeDeleted: false })))[0]!;
    const series = run.series[0]!;
    const id = await destination.createRun(expId, run);
    for await (const page of source.readSeries!(run, series)) {
      await destination.writeSeries(id, series, page);
      measure();
    }
    await destination.finishRun(id, run);
    const reader = await openBundleSource(dir);
    let count = 0;
    for await (const page of reader.readSeries!((await reader.getRun('long'))!, series)) {
      for (const point of page) {
        if (point.value !== `${count} `.padEnd(LINE, 'x') || point.step !== count) throw new Error(`point ${count} differs`);
        count++;
      }
      measure();
    }
    expect(count).toBe(points);
  }

  it('is written and read with memory that does not grow with its length', async () => {
    const small = await heldHeap(10_000);
    const large = await heldHeap(100_000);
    console.log(`heap held: ${(small / 2 ** 20).toFixed(1)} MB for 10,000 lines of ${LINE} characters, ${(large / 2 ** 20).toFixed(1)} MB for 100,000`);
    // holding 100,000 such points would take over 100 MB; a page is at most about 4 MB
    expect(large).toBeLessThan(Math.max(small, 0) + 16 * 1024 * 1024);
    expect(large).toBeLessThan(32 * 1024 * 1024);
  });
});

describe('a series without points', () => {
  it('stays listed: memory → bundle → memory, verify equal, no encoding', async () => {
    const name = `v2-empty-${process.pid}`;
    const store = memoryStore(name);
    store.data.experiments.set('1', { id: '1', name: 'empty series', tags: {}, lifecycle: 'active' });
    const series: SeriesInfo[] = [{ key: 'loss', type: 'float' }, { key: 'never logged', type: 'float' }, { key: 'quiet log', type: 'string' }];
    const run: Run = { id: 'r', experimentId: '1', name: 'r', status: 'FINISHED', startTime: T0, endTime: T0 + 10, lifecycle: 'active', params: {}, tags: {}, inputs: [], series };
    store.data.runs.set('r', memoryRun({ run, metrics: new Map([['loss', [{ key: 'loss', step: 0, value: 1, timestamp: T0 }]]]) }));
    const out = join(tmp, 'empty-series');
    const report = await job('export', `memory:${name}`, out);
    expect(report.failed).toEqual([]);
    expect(report.encoded).toEqual([]);
    const runJson = JSON.parse(await readFile(join(out, 'experiments', '1', 'runs', 'r', 'run.json'), 'utf8'));
    expect(runJson.series.map((s: { key: string; points: number }) => [s.key, s.points])).toEqual([['loss', 1], ['never logged', 0], ['quiet log', 0]]);
    expect((await (await openBundleSource(out)).getRun('r'))!.series).toEqual(series);
    const verified = await runVerify({ source: `memory:${name}`, destination: out, selection: emptySelection(), workers: 1, artifactWorkers: 1, maxDifferences: 10, env: {} });
    expect(verified.objects).toEqual([]);
    const back = `v2-empty-back-${process.pid}`;
    expect((await job('import', out, `memory:${back}`)).failed).toEqual([]);
    expect([...memoryStore(back).data.runs.values()][0]!.run.series).toEqual(series);
  });
});
