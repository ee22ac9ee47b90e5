/**
 * verify on what trackers other than MLflow hold: a copy of a run with every series type,
 * fractional steps, epochs and contexts, points without timestamps, a system series, typed
 * nested config, a summary, a fork, a group and a source state compares equal; each kind of
 * change to the copy is found, named by its path, with both values, and nothing else is.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryRun, type MemoryRun, type MemoryStore } from '../../src/connectors/memory/index.js';
import type { ConfigEntry, FilePoint, HistogramPoint, MetricPoint, Run, StringPoint } from '../../src/model/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import { verifySources } from '../../src/verify/compare.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { verifySummary } from '../../src/verify/text.js';
import { reportHtml } from '../../src/verify/html.js';
import { newStore } from '../engine/fixture.js';

const T0 = 1_700_000_000_000;

const run = (id: string, extra: Partial<Run> = {}): Run => ({ id, experimentId: '1', name: id, status: 'FINISHED', startTime: T0, endTime: T0 + 10, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [], ...extra });

const config: ConfigEntry[] = [
  { path: ['optimizer', 'lr'], value: { type: 'float', value: 0.001 } },
  { path: ['optimizer', 'name'], value: { type: 'string', value: 'adam' } },
  { path: ['epochs'], value: { type: 'int', value: 10 } },
  { path: ['debug'], value: { type: 'bool', value: true } },
  { path: ['started'], value: { type: 'datetime', value: T0 } },
  { path: ['tags'], value: { type: 'stringSet', value: ['b', 'a'] } },
  { path: ['missing'], value: { type: 'float', value: NaN } },
  { path: ['offset'], value: { type: 'float', value: -0 } },
];
const summary: ConfigEntry[] = [
  { path: ['loss', 'min'], value: { type: 'float', value: 0.125 } },
  { path: ['loss', 'last'], value: { type: 'float', value: NaN } },
];

const loss: MetricPoint[] = [
  { key: 'loss', step: 0, timestamp: T0, value: 1 },
  { key: 'loss', step: 0.5, timestamp: T0 + 1, value: 0.5 },
  { key: 'loss', step: 1, timestamp: T0 + 2, value: 0.25, epoch: 1, context: 'train' },
  { key: 'loss', step: 1, timestamp: T0 + 2, value: 0.25, epoch: 1, context: 'train' },
  { key: 'loss', step: 2, value: NaN },
];
const cpu: MetricPoint[] = [{ key: 'cpu', step: 0, timestamp: T0, value: 12.5 }];
const log: StringPoint[] = [
  { step: 1, timestamp: T0, value: 'starting' },
  { step: 3, timestamp: T0 + 3, value: 'a', context: 'train' },
  { step: 3, timestamp: T0 + 3, value: 'a', context: 'train' },
  { step: 3.25, value: 'no timestamp' },
];
const weights: HistogramPoint[] = [
  { step: 0, timestamp: T0, value: { edges: [0, 1, 2], kind: 'counts', values: [3, 4] } },
  { step: 1, timestamp: T0 + 1, value: { edges: [-1, 0, 1], kind: 'densities', values: [0.5, NaN] } },
];
const images: FilePoint[] = [0, 1, 2].map((step) => ({ step, timestamp: T0 + step, value: { path: `images/${step}.png`, name: `${step}.png`, size: 4, mimeType: 'image/png' } }));

function source(): MemoryStore {
  const store = newStore({ pageSize: 2 });
  store.data.experiments.set('1', { id: '1', name: 'typed', tags: {}, lifecycle: 'active' });
  store.data.runs.set('base', memoryRun({ run: run('base', { startTime: T0 - 100 }) }));
  store.data.runs.set('other', memoryRun({ run: run('other', { startTime: T0 - 50 }) }));
  const forked = run('forked', {
    fork: { runId: 'base', step: 2.5 },
    group: 'sweep-1',
    sourceState: 'idle',
    config,
    summary,
    series: [
      { key: 'loss', type: 'float' },
      { key: 'cpu', type: 'float', system: true },
      { key: 'log', type: 'string' },
      { key: 'weights', type: 'histogram' },
      { key: 'images', type: 'file' },
    ],
  });
  store.data.runs.set(
    'forked',
    memoryRun({
      run: forked,
      metrics: new Map([['loss', loss], ['cpu', cpu]]),
      series: new Map<string, Array<StringPoint | HistogramPoint | FilePoint>>([['log', log], ['weights', weights], ['images', images]]),
      seriesFiles: new Map(images.map((p, i) => [p.value.path, Buffer.from([i, i, i, i])])),
    }),
  );
  return store;
}

async function copied(): Promise<{ source: MemoryStore; destination: MemoryStore }> {
  const src = source();
  const destination = newStore({ pageSize: 3 });
  const plan = await planTransfer(src, emptySelection());
  const result = await transfer(src, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(mkdtempSync(join(tmpdir(), 'trackshift-verify-typed-'))) });
  expect(result.failed).toEqual([]);
  return { source: src, destination };
}

const verify = (source: MemoryStore, destination: MemoryStore) => verifySources(source, destination, { selection: emptySelection(), workers: 2, artifactWorkers: 2, maxDifferences: 50 });

/** the destination's copy of source run `id` */
const copyOf = (destination: MemoryStore, id: string): MemoryRun => [...destination.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === id)!;

/** every difference found, by path, as [source, destination]; and that only the forked run differs */
function differences(report: VerifyReport): Record<string, [string | undefined, string | undefined]> {
  expect(report.incomplete).toEqual([]);
  expect(report.objects.map((o) => o.path)).toEqual(['typed/forked']);
  return Object.fromEntries(report.objects[0]!.differences.map((d) => [d.path.replace('typed/forked/', ''), [d.source, d.destination]]));
}

/** Changes the copy of the forked run, verifies, and returns what was found. */
async function changed(change: (copy: MemoryRun, destination: MemoryStore) => void) {
  const { source, destination } = await copied();
  change(copyOf(destination, 'forked'), destination);
  return differences(await verify(source, destination));
}

describe('verify typed data', () => {
  it('finds a copy of every series type, config, summary, fork, group and state equal, counting each type', async () => {
    const { source, destination } = await copied();
    const report = await verify(source, destination);
    expect(report.objects).toEqual([]);
    expect(report.incomplete).toEqual([]);
    expect(report.equal).toBe(true);
    expect(report.compared).toEqual({ metricPoints: 6, seriesPoints: { string: 4, file: 3, histogram: 2 }, seriesFiles: 3, seriesFileBytes: 12, artifacts: 0, artifactBytes: 0 });
    expect(verifySummary(report)).toContain('compared 6 metric points, 4 string points, 2 histogram points, 3 file points (3 files, 12 bytes), 0 artifact files (0 bytes)');
  });

  it('finds a fork that points at the copy of its parent equal, and one that points at another run different', async () => {
    const { source, destination } = await copied();
    const copy = copyOf(destination, 'forked');
    copy.run.fork = { runId: copyOf(destination, 'base').run.id, step: 2.5 };
    expect((await verify(source, destination)).equal).toBe(true);
    const other = copyOf(destination, 'other').run.id;
    copy.run.fork = { runId: other, step: 2.5 };
    expect(differences(await verify(source, destination))).toEqual({ fork: ['run base at step 2.5', `run ${other} (the copy of other) at step 2.5`] });
  });

  it('names a changed fork step', async () => {
    // the engine gives the copy its parent's copy (m2 here) as fork parent
    expect(await changed((copy) => (copy.run.fork = { ...copy.run.fork!, step: 3 }))).toEqual({ fork: ['run base at step 2.5', 'run m2 (the copy of base) at step 3'] });
  });

  it('names a changed string point', async () => {
    const found = await changed((copy) => (copy.series.get('log')![0] = { ...log[0]!, value: 'Starting' }));
    expect(found).toEqual({ 'series:log@1': [`"starting" (timestamp ${T0})`, `"Starting" (timestamp ${T0})`] });
  });

  it('names a string point whose context changed (its duplicate still matches)', async () => {
    const found = await changed((copy) => {
      const points = copy.series.get('log')!;
      points.splice(2, 1, { ...log[2]!, context: 'eval' });
    });
    expect(found).toEqual({ 'series:log@3': [`"a" (timestamp ${T0 + 3}, context "train")`, `"a" (timestamp ${T0 + 3}, context "eval")`] });
  });

  it('names a changed histogram bin', async () => {
    const found = await changed((copy) => (copy.series.get('weights')![1] = { ...weights[1]!, value: { ...weights[1]!.value, values: [0.5, 0] } }));
    expect(found).toEqual({ 'series:weights@1': [`densities [0.5, NaN] over edges [-1, 0, 1] (timestamp ${T0 + 1})`, `densities [0.5, 0] over edges [-1, 0, 1] (timestamp ${T0 + 1})`] });
  });

  it("names a file whose bytes changed but not its size", async () => {
    const found = await changed((copy) => copy.seriesFiles.set('images/1.png', Buffer.from([9, 9, 9, 9])));
    expect(found).toEqual({ 'series:images@1': [expect.stringMatching(/^images\/1\.png: 4 bytes, sha256 [0-9a-f]{16}$/), expect.stringMatching(/^images\/1\.png: 4 bytes, sha256 [0-9a-f]{16}$/)] });
    expect(found['series:images@1']![0]).not.toBe(found['series:images@1']![1]);
  });

  it('names a file point missing in the copy', async () => {
    const found = await changed((copy) => {
      copy.series.get('images')!.splice(2, 1);
      copy.seriesFiles.delete('images/2.png');
    });
    expect(found).toEqual({ 'series:images@2': [`file images/2.png (name "2.png", 4 bytes, image/png) (timestamp ${T0 + 2})`, undefined] });
  });

  it('leaves the run incomplete when a file point is there but its bytes cannot be read', async () => {
    const { source, destination } = await copied();
    copyOf(destination, 'forked').seriesFiles.delete('images/0.png');
    const report = await verify(source, destination);
    expect(report.incomplete).toEqual([{ path: 'typed/forked', reason: expect.stringContaining('no series file images/0.png') }]);
  });

  it('names a changed fractional step', async () => {
    const found = await changed((copy) => (copy.metrics.get('loss')![1] = { ...loss[1]!, step: 0.25 }));
    expect(found).toEqual({ 'metric:loss@0.25': [undefined, `0.5 (timestamp ${T0 + 1})`], 'metric:loss@0.5': [`0.5 (timestamp ${T0 + 1})`, undefined] });
  });

  it('names a changed epoch', async () => {
    const found = await changed((copy) => (copy.metrics.get('loss')![3] = { ...loss[3]!, epoch: 2 }));
    expect(found).toEqual({ 'metric:loss@1': [`0.25 (timestamp ${T0 + 2}, epoch 1, context "train")`, `0.25 (timestamp ${T0 + 2}, epoch 2, context "train")`] });
  });

  it('names a point that lost its timestamp', async () => {
    const found = await changed((copy) => (copy.metrics.get('loss')![0] = { key: 'loss', step: 0, value: 1 }));
    expect(found).toEqual({ 'metric:loss@0': [`1 (timestamp ${T0})`, '1 (no timestamp)'] });
  });

  it('names a series on one side only', async () => {
    const found = await changed((copy) => {
      copy.run.series = copy.run.series.filter((s) => s.key !== 'weights');
      copy.series.delete('weights');
    });
    expect(found).toEqual({ 'series:weights': ['2 point(s)', undefined] });
  });

  it('names a series whose type changed', async () => {
    const found = await changed((copy) => (copy.run.series.find((s) => s.key === 'log')!.type = 'histogram'));
    expect(found).toEqual({ 'series:log/type': ['string', 'histogram'] });
  });

  it('names a series no longer marked system', async () => {
    const found = await changed((copy) => delete copy.run.series.find((s) => s.key === 'cpu')!.system);
    expect(found).toEqual({ 'metric:cpu/system': ['true', 'false'] });
  });

  it('names config values changed, of another type, missing, and -0 against 0 (NaN equals NaN, a set ignores order)', async () => {
    const found = await changed((copy) => {
      const entries = copy.run.config!;
      const at = (path: string) => entries.findIndex((e) => e.path.join('/') === path);
      entries[at('optimizer/lr')] = { path: ['optimizer', 'lr'], value: { type: 'float', value: 0.002 } };
      entries[at('epochs')] = { path: ['epochs'], value: { type: 'float', value: 10 } };
      entries[at('offset')] = { path: ['offset'], value: { type: 'float', value: 0 } };
      entries[at('tags')] = { path: ['tags'], value: { type: 'stringSet', value: ['a', 'b'] } };
      entries.splice(at('debug'), 1);
    });
    expect(found).toEqual({
      'config:optimizer/lr': ['float 0.001', 'float 0.002'],
      'config:epochs': ['int 10', 'float 10'],
      'config:offset': ['float -0', 'float 0'],
      'config:debug': ['bool true', undefined],
    });
  });

  it('names a changed summary value', async () => {
    const found = await changed((copy) => (copy.run.summary![0] = { path: ['loss', 'min'], value: { type: 'float', value: 0.25 } }));
    expect(found).toEqual({ 'summary:loss/min': ['float 0.125', 'float 0.25'] });
  });

  it('names a changed group and source state', async () => {
    expect(await changed((copy) => (copy.run.group = 'sweep-2'))).toEqual({ group: ['sweep-1', 'sweep-2'] });
    expect(await changed((copy) => delete copy.run.sourceState)).toEqual({ source_state: ['idle', undefined] });
  });

  it('shows the new differences in the text and HTML reports', async () => {
    const { source, destination } = await copied();
    const copy = copyOf(destination, 'forked');
    copy.series.get('log')![0] = { ...log[0]!, value: '<b>' };
    copy.run.group = 'other';
    const report = await verify(source, destination);
    const text = verifySummary(report);
    expect(text).toContain('typed/forked/series:log@1\n      source:      "starting"');
    expect(text).toContain('typed/forked/group\n      source:      sweep-1\n      destination: other');
    const html = reportHtml(report);
    expect(html).toContain('<td class="path">typed/forked/series:log@1</td>');
    expect(html).toContain('&#34;&#60;b&#62;&#34;');
  });
});
