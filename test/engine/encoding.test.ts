/**
 * The capability mapping (engine/encoding.ts): memory → memory where the destination holds less
 * (MemoryOptions.holds), one capability at a time. Each test checks what the destination got
 * natively, and that the destination read back through the decoding wrapper
 * (connectors/encoding/decode.ts) is exactly the source run.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodingSource } from '../../src/connectors/encoding/decode.js';
import { ENCODED_TAG, MANIFEST_PATH } from '../../src/connectors/encoding/format.js';
import { memoryRun, type MemoryRun, type MemoryStore } from '../../src/connectors/memory/index.js';
import { MLFLOW_HOLDS } from '../../src/connectors/mlflow-common/holds.js';
import type { Destination, DestinationHolds, Source } from '../../src/connectors/types.js';
import { fitKey } from '../../src/engine/encoding.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { MetricPoint, Run, TypedPoint } from '../../src/model/index.js';
import { wholeRuns } from '../helpers/whole-run.js';
import { newStore } from './fixture.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'trackshift-encoding-'));

/** One worker: a fork waiting for its parent's copy would wait forever if the plan did not put the parent first. */
async function copy(source: Source, destination: Destination, stateDir = tempDir()) {
  const plan = await planTransfer(source, { ...emptySelection(), includeDeleted: true });
  return transfer(source, destination, plan, { workers: 1, artifactWorkers: 2, dryRun: false, journal: new Journal(stateDir) });
}

const T0 = 1_700_000_000_000;
const float = (key: string, step: number, value: number, extra: Partial<MetricPoint> = {}): MetricPoint => ({ key, step, value, timestamp: T0 + step, ...extra });

function baseRun(id: string, extra: Partial<Run> = {}): Run {
  return { id, experimentId: '1', name: id, status: 'FINISHED', startTime: T0, endTime: T0 + 1000, lifecycle: 'active', params: { lr: '0.1' }, tags: { team: 'x' }, inputs: [], series: [], ...extra };
}

/** A source holding one run (and the parent its fork points at) with what a test puts in it. */
function source(parts: Partial<MemoryRun> & { run: Run }, pageSize = 3): MemoryStore {
  const store = newStore({ pageSize });
  store.data.experiments.set('1', { id: '1', name: 'exp', tags: {}, lifecycle: 'active' });
  store.data.runs.set(parts.run.id, memoryRun(parts));
  return store;
}

function withFloats(run: Run, points: MetricPoint[], system: string[] = []): Partial<MemoryRun> & { run: Run } {
  const metrics = new Map<string, MetricPoint[]>();
  for (const p of points) metrics.set(p.key, [...(metrics.get(p.key) ?? []), p]);
  run.series = [...metrics.keys()].map((key) => (system.includes(key) ? { key, type: 'float', system: true } : { key, type: 'float' }));
  return { run, metrics };
}

const holding = (holds: Partial<DestinationHolds>) => newStore({ holds, pageSize: 4 });
const only = (dst: MemoryStore): MemoryRun => {
  const runs = [...dst.data.runs.values()].filter((r) => r.run.tags['trackshift.source.id'] !== 'parent');
  expect(runs).toHaveLength(1);
  return runs[0]!;
};
const manifestOf = (stored: MemoryRun) => JSON.parse(stored.artifacts.get(MANIFEST_PATH)!.toString('utf8'));

/** Copies, then checks that the decoded destination is the source exactly; returns the copy. */
async function roundTrip(src: MemoryStore, dst: MemoryStore) {
  const result = await copy(src, dst);
  expect(result.failed).toEqual([]);
  expect(await wholeRuns(decodingSource(dst))).toEqual(await wholeRuns(src));
  return result;
}

/** The awkward values of a float series: NaN, ±Infinity, -0 and points at one step. */
const awkward = (key: string) => [float(key, 0, NaN), float(key, 1, Infinity), float(key, 1, -Infinity), float(key, 1, -0), float(key, 2, 0.5), float(key, 2, 0.5)];

describe('capability mapping into the .trackshift/ encoding', () => {
  it('holds everything: the identity, no manifest and no tag', async () => {
    const src = source(withFloats(baseRun('r', { config: [{ path: ['a'], value: { type: 'int', value: 1 } }], group: 'g' }), [...awkward('loss'), float('loss', 0.5, 1, { timestamp: undefined, epoch: 2, context: 'train' })]));
    const dst = holding({});
    const result = await roundTrip(src, dst);
    expect(result.encoded).toEqual([]);
    const stored = only(dst);
    expect(stored.artifacts.size).toBe(0);
    expect(stored.run.tags[ENCODED_TAG]).toBeUndefined();
    expect(stored.run.config).toEqual([{ path: ['a'], value: { type: 'int', value: 1 } }]);
  });

  it('a series without points: listed natively where the destination lists series, in the manifest where it does not', async () => {
    const run = () => baseRun('r', { series: [{ key: 'loss', type: 'float' }, { key: 'empty', type: 'float' }, { key: 'no lines', type: 'string' }] });
    const points = new Map([['loss', [float('loss', 0, 1)]]]);
    const listing = holding({});
    expect((await roundTrip(source({ run: run(), metrics: points }), listing)).encoded).toEqual([]);
    expect(only(listing).artifacts.size).toBe(0);
    const unlisting = holding({ ...mlflowLike });
    await roundTrip(source({ run: run(), metrics: points }), unlisting);
    expect(manifestOf(only(unlisting)).series).toEqual([{ key: 'loss', type: 'float', native: 'loss' }, { key: 'empty', type: 'float' }, { key: 'no lines', type: 'string', file: 'series/2.jsonl' }]);
  });

  it('an MLflow-shaped run into an MLflow-like destination needs no manifest', async () => {
    const src = source(withFloats(baseRun('r'), [...awkward('loss'), float('system/cpu', 0, 3)], ['system/cpu']));
    const dst = holding({ ...mlflowLike });
    const result = await roundTrip(src, dst);
    expect(result.encoded).toEqual([]);
    expect(only(dst).artifacts.size).toBe(0);
  });

  for (const type of ['string', 'histogram', 'file'] as const) {
    it(`${type} series not held: exact points as a sidecar${type === 'file' ? ', files under .trackshift/files/' : ''}`, async () => {
      const points = [0, 0, 1.5, 2].map((step, i) => ({
        step,
        ...(i === 1 ? {} : { timestamp: T0 + i }),
        ...(i === 2 ? { epoch: 3, context: 'val' } : {}),
        value:
          type === 'string' ? `line ${i}\n"quoted"` : type === 'histogram' ? { edges: [0, 1, Infinity], kind: 'counts' as const, values: [i, NaN] } : { path: `img/${i}.png`, name: `${i}.png`, size: 3, mimeType: 'image/png' },
      })) as TypedPoint[];
      const run = baseRun('r', { series: [{ key: 'other', type: 'float' }, { key: 'typed', type }] });
      const files = new Map(type === 'file' ? points.map((p, i) => [`img/${i}.png`, Buffer.from([i, i, i])]) : []);
      const src = source({ run, metrics: new Map([['other', [float('other', 0, 1)]]]), series: new Map([['typed', points]]), seriesFiles: files });
      const dst = holding({ seriesTypes: ['float'] });
      const result = await roundTrip(src, dst);
      const stored = only(dst);
      expect(stored.series.size).toBe(0);
      expect(stored.run.tags[ENCODED_TAG]).toBe('1');
      expect(stored.artifacts.get('.trackshift/series/1.jsonl')!.toString().trim().split('\n')).toHaveLength(4);
      if (type === 'file') expect([...stored.artifacts.keys()].filter((k) => k.startsWith('.trackshift/files/')).sort()).toEqual(['.trackshift/files/img/0.png', '.trackshift/files/img/1.png', '.trackshift/files/img/2.png', '.trackshift/files/img/3.png']);
      expect(manifestOf(stored).series).toEqual([{ key: 'other', type: 'float', native: 'other' }, { key: 'typed', type, file: 'series/1.jsonl' }]);
      expect(result.encoded).toEqual([{ sourceId: 'r', destinationId: stored.run.id, how: [expect.stringContaining(`${type} series "typed" (4 points) kept as .trackshift/series/1.jsonl`)] }]);
      // the decoded source hides the encoding's files
      const decoded = decodingSource(dst);
      const [listed] = await collect(decoded.listRuns(stored.run.experimentId, { includeDeleted: false }));
      expect(await collect(decoded.listArtifacts(listed!))).toEqual([]);
    });
  }

  it('fractional steps: integer steps written, exact points in a sidecar the reader uses', async () => {
    const src = source(withFloats(baseRun('r'), [...awkward('loss'), float('loss', 2.75, 7), float('loss', -0.5, 8), float('loss', 1e300, 9), float('acc', 1, 1)]));
    const dst = holding({ fractionalSteps: false });
    const result = await roundTrip(src, dst);
    const stored = only(dst);
    expect(stored.metrics.get('loss')!.map((p) => p.step)).toEqual([0, 1, 1, 1, 2, 2, 2, -1, Number.MAX_SAFE_INTEGER]);
    expect(stored.metrics.get('acc')!.map((p) => p.step)).toEqual([1]);
    expect(manifestOf(stored).series).toEqual([{ key: 'loss', type: 'float', native: 'loss', file: 'series/0.jsonl' }, { key: 'acc', type: 'float', native: 'acc' }]);
    expect([...stored.artifacts.keys()].sort()).toEqual([MANIFEST_PATH, '.trackshift/series/0.jsonl']); // no sidecar for a series held exactly
    expect(result.encoded[0]!.how).toEqual([
      '2 fractional steps in "loss": integer steps written, exact steps in the sidecar .trackshift/series/0.jsonl',
      `1 step of "loss" beyond ±${Number.MAX_SAFE_INTEGER}: clamped, exact steps in the sidecar .trackshift/series/0.jsonl`,
    ]);
  });

  it('a long sidecar is read back a page at a time', async () => {
    const points = Array.from({ length: 2500 }, (_, i) => float('loss', i / 2, i));
    const dst = holding({ fractionalSteps: false });
    await roundTrip(source(withFloats(baseRun('r'), points), 1000), dst);
    const decoded = decodingSource(dst);
    const [run] = await collect(decoded.listRuns(only(dst).run.experimentId, { includeDeleted: false }));
    expect((await collect(decoded.readMetric(run!, 'loss'))).map((page) => page.length)).toEqual([1000, 1000, 500]);
  });

  it('points without a timestamp: written at the run start, exact in the sidecar', async () => {
    const src = source(withFloats(baseRun('r'), [float('loss', 0, 1, { timestamp: undefined }), float('loss', 1, 2)]));
    const dst = holding({ pointsWithoutTimestamp: false });
    const result = await roundTrip(src, dst);
    expect(only(dst).metrics.get('loss')!.map((p) => p.timestamp)).toEqual([T0, T0 + 1]);
    expect(result.encoded[0]!.how).toEqual([`1 point of "loss" without a timestamp: written at the run's start time, exact points in the sidecar .trackshift/series/0.jsonl`]);
  });

  it('epochs and contexts: written without them, exact in the sidecar', async () => {
    const src = source(withFloats(baseRun('r'), [float('loss', 0, 1, { epoch: 1 }), float('loss', 1, 2, { context: 'train' }), float('loss', 2, 3, { epoch: 2, context: 'val' })]));
    const dst = holding({ epochs: false, contexts: false });
    const result = await roundTrip(src, dst);
    expect(only(dst).metrics.get('loss')!.every((p) => p.epoch === undefined && p.context === undefined)).toBe(true);
    expect(result.encoded[0]!.how).toEqual([
      '2 points of "loss" with an epoch: written without it, exact points in the sidecar .trackshift/series/0.jsonl',
      '2 points of "loss" with a context: written without it, exact points in the sidecar .trackshift/series/0.jsonl',
    ]);
  });

  it('system series under a prefix; a series whose key only looks like one stays no system series', async () => {
    const src = source(withFloats(baseRun('r'), [float('cpu', 0, 1), float('sys/gpu', 0, 2), float('sys/loss', 0, 3), float('loss', 0, 4)], ['cpu', 'sys/gpu']));
    const dst = holding({ systemSeries: { prefix: 'sys/' } });
    const result = await roundTrip(src, dst);
    const stored = only(dst);
    expect([...stored.metrics.keys()].sort()).toEqual(['loss', 'sys/cpu', 'sys/gpu', 'sys/loss']);
    expect(manifestOf(stored).series).toEqual([
      { key: 'cpu', type: 'float', system: true, native: 'sys/cpu' },
      { key: 'sys/gpu', type: 'float', system: true, native: 'sys/gpu' },
      { key: 'sys/loss', type: 'float', native: 'sys/loss' },
      { key: 'loss', type: 'float', native: 'loss' },
    ]);
    expect(result.encoded[0]!.how).toEqual(['series "cpu" written as "sys/cpu" (a system series)', 'series "sys/loss" is no system series, though its key says so to the destination: marked in .trackshift/run.json']);
  });

  it('system series where the destination marks none: the marking is kept in the manifest', async () => {
    const src = source(withFloats(baseRun('r'), [float('cpu', 0, 1), float('loss', 0, 4)], ['cpu']));
    const dst = holding({ systemSeries: false });
    const result = await roundTrip(src, dst);
    expect(only(dst).run.series.find((s) => s.key === 'cpu')).toEqual({ key: 'cpu', type: 'float' });
    expect(result.encoded[0]!.how).toEqual([`system series "cpu" written as a series (the destination does not mark system series): marked in .trackshift/run.json`]);
  });

  it('a system series whose prefixed key is taken gets a key of its own', async () => {
    const src = source(withFloats(baseRun('r'), [float('cpu', 0, 1), float('sys/cpu', 0, 2)], ['cpu']));
    const dst = holding({ systemSeries: { prefix: 'sys/' } });
    await roundTrip(src, dst);
    const keys = [...only(dst).metrics.keys()];
    expect(keys).toContain('sys/cpu');
    expect(keys.find((k) => k !== 'sys/cpu')).toMatch(/^sys\/cpu~[0-9a-f]{10}$/);
  });

  it('keys longer than the destination takes: cut with a hash, the original in the manifest', async () => {
    const long = 'k'.repeat(40);
    const src = source(withFloats(baseRun('r'), [float(long, 0, 1), float(`${long}2`, 0, 2), float('short', 0, 3)]));
    const dst = holding({ maxKeyLength: 30 });
    const result = await roundTrip(src, dst);
    const keys = [...only(dst).metrics.keys()];
    expect(keys.sort()).toEqual([fitKey(long, 30), fitKey(`${long}2`, 30), 'short'].sort());
    expect(keys.every((k) => k.length <= 30)).toBe(true);
    expect(new Set(keys).size).toBe(3);
    expect(result.encoded[0]!.how[0]).toBe(`series "${long}" written as "${fitKey(long, 30)}" (40 characters; the destination takes 30)`);
  });

  it('typed config: kept in the manifest, shown as string params where that takes no one\'s place', async () => {
    const config: Run['config'] = [
      { path: ['optimizer', 'lr'], value: { type: 'float', value: 0.001 } },
      { path: ['optimizer', 'nan'], value: { type: 'float', value: NaN } },
      { path: ['layers'], value: { type: 'int', value: 3 } },
      { path: ['flags', 'amp'], value: { type: 'bool', value: true } },
      { path: ['started'], value: { type: 'datetime', value: T0 } },
      { path: ['tags'], value: { type: 'stringSet', value: ['a', 'b'] } },
      { path: ['lr'], value: { type: 'string', value: 'already a param' } },
      { path: ['weird|key'], value: { type: 'string', value: 'x' } },
    ];
    const src = source({ run: baseRun('r', { config }) });
    const dst = holding({ typedConfig: false });
    const result = await roundTrip(src, dst);
    const stored = only(dst);
    expect(stored.run.config).toBeUndefined();
    expect(stored.run.params).toEqual({ lr: '0.1', 'optimizer/lr': '0.001', 'optimizer/nan': 'NaN', layers: '3', 'flags/amp': 'true', started: new Date(T0).toISOString(), tags: '["a","b"]' });
    expect(manifestOf(stored).viewParams).toEqual(['optimizer/lr', 'optimizer/nan', 'layers', 'flags/amp', 'started', 'tags']);
    expect(result.encoded[0]!.how).toEqual(['typed config (8 entries; 6 of them also written as a string param for viewing) kept in .trackshift/run.json']);
  });

  it('summary, group and source state: kept in the manifest', async () => {
    const summary: Run['summary'] = [{ path: ['best', 'acc'], value: { type: 'float', value: -Infinity } }];
    const src = source({ run: baseRun('r', { summary, group: 'sweep-1', sourceState: 'idle' }) });
    const dst = holding({ summaries: false, groups: false, sourceStates: false });
    const result = await roundTrip(src, dst);
    const stored = only(dst);
    expect([stored.run.summary, stored.run.group, stored.run.sourceState]).toEqual([undefined, undefined, undefined]);
    expect(manifestOf(stored)).toMatchObject({ summary: [{ path: ['best', 'acc'], value: { type: 'float', value: '-Infinity' } }], group: 'sweep-1', sourceState: 'idle' });
    expect(result.encoded[0]!.how).toEqual(['summary (1 entry) kept in .trackshift/run.json', 'group "sweep-1" kept in .trackshift/run.json', 'source state "idle" kept in .trackshift/run.json']);
  });

  for (const holds of [{ forks: false }, {}] as const) {
    it(`fork, parent copied (${holds.forks === false ? 'kept in the manifest' : 'held natively'}): names the parent's copy`, async () => {
      const src = source({ run: baseRun('child', { fork: { runId: 'parent', step: 2.5 } }) });
      src.data.runs.set('parent', memoryRun({ run: baseRun('parent') })); // listed after its fork: the plan puts it first
      const dst = holding(holds);
      const result = await roundTrip(src, dst);
      const parent = [...dst.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === 'parent')!.run;
      const child = only(dst);
      if (holds.forks === false) {
        expect(child.run.fork).toBeUndefined();
        expect(manifestOf(child).fork).toEqual({ runId: parent.id, step: 2.5 });
      } else {
        expect(child.run.fork).toEqual({ runId: parent.id, step: 2.5 });
        expect(result.encoded).toEqual([]);
      }
      expect(result.warnings).toEqual([]);
    });
  }

  it('fork, parent not copied: keeps the source id, with a warning', async () => {
    const src = source({ run: baseRun('child', { fork: { runId: 'elsewhere' } }) });
    const dst = holding({ forks: false });
    const result = await roundTrip(src, dst);
    expect(manifestOf(only(dst)).fork).toEqual({ runId: 'elsewhere' });
    expect(result.warnings).toEqual([{ object: 'run child', message: expect.stringContaining('the run it was forked from, elsewhere, is not copied') }]);
  });

  it('everything at once into an MLflow-like destination, and a re-run is idempotent', async () => {
    const points = [...awkward('loss'), float('loss', 0.5, 1, { timestamp: undefined, epoch: 1, context: 'c' }), float('cpu', 0, 1), float('k'.repeat(300), 0, 1)];
    const { run, metrics } = withFloats(baseRun('r', { config: [{ path: ['a', 'b'], value: { type: 'int', value: 1 } }], summary: [], group: 'g', sourceState: 's', fork: { runId: 'x', step: 1 } }), points, ['cpu']);
    run.series.push({ key: 'log', type: 'string' });
    const src = source({ run, metrics, series: new Map([['log', [{ step: 0.5, value: 'hello' }]]]), artifacts: new Map([['model/weights.bin', Buffer.from('w')]]) });
    const dst = holding(mlflowLike);
    const state = tempDir();
    const first = await copy(src, dst, state);
    expect(first.failed).toEqual([]);
    expect(await wholeRuns(decodingSource(dst))).toEqual(await wholeRuns(src));
    const artifacts = [...only(dst).artifacts.keys()].sort();
    expect(artifacts).toEqual([MANIFEST_PATH, '.trackshift/series/0.jsonl', '.trackshift/series/3.jsonl', 'model/weights.bin']);
    // again, with and without the journal: skipped, nothing written twice
    for (const again of [state, tempDir()]) {
      const result = await copy(src, dst, again);
      expect(result.skipped.runs).toBe(1);
      expect(result.encoded).toEqual([]);
    }
    expect([...only(dst).artifacts.keys()].sort()).toEqual(artifacts);
    // no temporary sidecar is left behind
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith(`trackshift-sidecar-${process.pid}-`))).toEqual([]);
  });

  it('a run cut off after its sidecars and manifest is redone whole: one set of them', async () => {
    const src = source(withFloats(baseRun('r', { group: 'g' }), [float('loss', 0.5, 1)]));
    let fail = true;
    const dst = newStore({
      holds: mlflowLike,
      beforeWrite: (operation) => {
        if (operation === 'finishRun' && fail) throw new Error('cut off');
      },
    });
    const state = tempDir();
    expect((await copy(src, dst, state)).failed).toHaveLength(1);
    expect(only(dst).run.tags[ENCODED_TAG]).toBe('1'); // set, but the run is not complete: a re-run redoes it
    fail = false;
    const again = await copy(src, dst, state);
    expect(again.failed).toEqual([]);
    expect(again.copied.runs).toBe(1);
    expect([...only(dst).artifacts.keys()].sort()).toEqual([MANIFEST_PATH, '.trackshift/series/0.jsonl']);
    expect(await wholeRuns(decodingSource(dst))).toEqual(await wholeRuns(src));
  });

  it('a malformed manifest fails that run alone, naming the run and the file', async () => {
    const dst = holding(mlflowLike);
    await copy(source({ run: baseRun('r', { group: 'g' }) }), dst);
    const stored = only(dst);
    stored.artifacts.set(MANIFEST_PATH, Buffer.from('{"format":"trackshift-encoded-run","version":1,"series":[{"key":1}]}'));
    const decoded = decodingSource(dst);
    expect(await collect(decoded.listRuns(stored.run.experimentId, { includeDeleted: false }))).toEqual([]);
    expect(decoded.unreadable).toEqual([{ type: 'run', sourceId: stored.run.id, reason: expect.stringMatching(new RegExp(`^run ${stored.run.id}: \\.trackshift/run\\.json: not a valid trackshift encoding manifest`)) }]);
  });

  it('a source artifact in the reserved folder fails the run when a manifest is needed', async () => {
    const src = source({ run: baseRun('r', { group: 'g' }), artifacts: new Map([[MANIFEST_PATH, Buffer.from('{}')]]) });
    const result = await copy(src, holding(mlflowLike));
    expect(result.failed).toEqual([{ type: 'run', sourceId: 'r', name: 'r', reason: expect.stringContaining('is in the reserved folder .trackshift/') }]);
    // a destination that holds everything takes it as it is
    expect((await copy(src, holding({}))).failed).toEqual([]);
  });
});

/** what the MLflow family holds: the destination every encoding rule is written for */
const mlflowLike: Partial<DestinationHolds> = MLFLOW_HOLDS;

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
