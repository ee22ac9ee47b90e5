/**
 * Neptune 3.x as a destination (`neptune3:DIR?project=WS/PROJ`): what trackshift writes is read
 * back by the pinned neptune-scale client's own code (test/fixtures/neptune3_read_back.py:
 * OperationsRepository, its protobuf classes, its file upload requests, the batching of its
 * `neptune sync`) and compared value by
 * value with what the real client logged; then round trips through a real MLflow server and a
 * bundle with `verify` equal at every hop; Neptune 2.x runs with seed 001's rules; MLflow runs
 * with the neptune-mlflow layout; re-runs that add nothing.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import type { Source } from '../../src/connectors/types.js';
import { memoryRun, memoryStore, type MemoryStore } from '../../src/connectors/memory/index.js';
import { fileDestination, folderComponent, runFolderName } from '../../src/connectors/neptune-common/scale-names.js';
import type { MetricPoint, Run, TypedPoint, TypedValue } from '../../src/model/index.js';
import type { JobOptions } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { runPython, runTool, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { expectEqual as expectEqualRuns, job as runJobIn, verify } from '../helpers/jobs.js';
import { wholeRuns } from '../helpers/whole-run.js';
import { allRuns } from '../helpers/source-runs.js';

const ROOT = join(import.meta.dirname, '../..');

/** verify of one experiment */
const verifyExperiment = (experiment: string, source: string, target: string) =>
  runVerify({ source, destination: target, selection: { ...emptySelection(), experiments: [experiment] }, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} });

type Attribute = { type: string; value: unknown };
interface Point {
  type: string;
  value: unknown;
  step: number | null;
  timestamp: number | null;
}
/** One database as neptune-scale's own code reads it (neptune3_read_back.py). */
interface ReadBack {
  folder: string;
  project: string;
  runId: string;
  schemaAsClient: boolean;
  journalMode: string;
  walLeft: boolean;
  sizesMatch: boolean;
  lastOperationTime: number;
  operationTypes: number[];
  create: { family: string; experiment: string; inheritConfigs: boolean; creationTime?: number; fork?: { parentProject: string; parentRunId: string; step: number } };
  attributes: Record<string, Attribute>;
  series: Record<string, Point[]>;
  uploads: Record<string, { sourceInFolder: boolean; mimeType: string; size: number; temporary: boolean; bytes: string | null }>;
  /** what `neptune sync` would send, batched by its own code */
  syncRequests: Array<{ kind: string; operations: number; fits: boolean; project: string; runId: string }>;
}

let tmp: string;
/** the folder above `.neptune` that the real client wrote */
let fixture: string;
const PROJECT = 'ws/proj';
const destination = (dir: string) => `neptune3:${dir}?project=${PROJECT}`;

const job = (command: JobOptions['command'], source: string, target: string) => runJobIn(tmp, command, source, target);
const expectEqual = (report: VerifyReport, runs?: number) => expectEqualRuns(report, runs);

async function readBack(dir: string): Promise<ReadBack[]> {
  return JSON.parse(await runTool('neptune3', 'python', [join(ROOT, 'test/fixtures/neptune3_read_back.py'), dir])) as ReadBack[];
}

async function list<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** Files' bytes by attribute (assigned) or by series point, as the client would upload them. */
function fileBytes(run: ReadBack, ref: unknown): string | null | undefined {
  return run.uploads[(ref as { path: string }).path]?.bytes;
}

const runFolders = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
/** what a run folder holds and when it was written (a reader's -shm and -wal files aside: SQLite's own) */
const mtimes = (dir: string) =>
  runFolders(dir).flatMap((f) =>
    readdirSync(join(dir, f))
      .filter((n) => !/-(shm|wal)$/.test(n))
      .map((n) => `${f}/${n}@${statSync(join(dir, f, n)).mtimeMs}`),
  );

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune3-write-'));
  fixture = join(tmp, 'client');
  await runTool('neptune3', 'python', [join(ROOT, 'test/fixtures/neptune3_offline.py'), join(fixture, '.neptune'), '500']);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('neptune3 destination, read back by neptune-scale itself', () => {
  it('writes the databases the client writes, with every value, and a re-run adds nothing', async () => {
    const out = join(tmp, 'out');
    const copied = await job('copy', `neptune3:${fixture}`, destination(out));
    expect(copied.copied.runs).toBe(2);
    // read before anything else opens the copies (a reader's connection leaves -wal and -shm files)
    const [original, written] = [await readBack(join(fixture, '.neptune')), await readBack(out)];
    // trackshift's own reader gives back every value, NaN and ±Infinity included
    expectEqual(await verify(`neptune3:${fixture}`, destination(out)), 2);

    expect(written.map((r) => r.runId).sort()).toEqual(original.map((r) => r.runId).sort());
    for (const source of original) {
      const copy = written.find((r) => r.runId === source.runId)!;
      // the client's layout: folder name, schema word for word, WAL checkpointed, metadata, CreateRun first
      expect(copy.folder).toMatch(new RegExp(`^ws_proj_${source.runId}_\\d{19}$`));
      expect(copy).toMatchObject({ project: PROJECT, schemaAsClient: true, journalMode: 'wal', walLeft: false, sizesMatch: true });
      expect(source.schemaAsClient).toBe(true);
      expect(copy.operationTypes[0]).toBe(1);
      expect(copy.operationTypes.slice(1).every((t) => t === 0)).toBe(true);
      expect(copy.create).toEqual(source.create);
      // `neptune sync` sends CreateRun, then every snapshot in batches that fit its requests
      expect(copy.syncRequests[0]).toEqual({ kind: 'create', operations: 1, fits: true, project: PROJECT, runId: source.runId });
      expect(copy.syncRequests.slice(1).every((r) => r.kind === 'update_batch' && r.fits && r.runId === source.runId)).toBe(true);
      expect(copy.syncRequests.reduce((n, r) => n + r.operations, 0)).toBe(copy.operationTypes.length);
      // the source's end (its last operation) is the copy's, not the time of the copy
      expect(copy.lastOperationTime).toBe(source.lastOperationTime);

      // every attribute of the source, with its type; the copy adds only its provenance and the encoding's tag
      const files = (r: ReadBack) => Object.entries(r.attributes).filter(([, a]) => a.type === 'file');
      const plain = (r: ReadBack) => Object.fromEntries(Object.entries(r.attributes).filter(([k, a]) => a.type !== 'file' && !k.startsWith('run_data/tags/trackshift.')));
      expect(plain(copy)).toEqual(plain(source));
      expect(Object.keys(copy.attributes).filter((k) => k.startsWith('run_data/tags/')).sort()).toEqual(
        expect.arrayContaining(['run_data/tags/trackshift.source.id', 'run_data/tags/trackshift.source.uri']),
      );
      for (const [path, ref] of files(source)) {
        const mine = copy.attributes[path];
        expect(mine?.type, path).toBe('file');
        expect(fileBytes(copy, mine!.value)).toBe(fileBytes(source, ref.value));
      }

      // every series point with its step and timestamp; NaN and ±Infinity, which Neptune's server
      // refuses, are left out of the native series (kept in the encoding, see verify above)
      for (const [key, points] of Object.entries(source.series)) {
        const expected = points.filter((p) => !(p.type === 'float' && typeof p.value === 'string'));
        const mine = copy.series[key]!;
        expect(mine.map(({ value, ...p }) => ({ ...p, value: p.type === 'file' ? fileBytes(copy, value) : value })), key).toEqual(
          expected.map(({ value, ...p }) => ({ ...p, value: p.type === 'file' ? fileBytes(source, value) : value })),
        );
        // file series keep the client's own remote paths
        if (points[0]?.type === 'file') expect(mine.map((p) => (p.value as { path: string }).path)).toEqual(points.map((p) => (p.value as { path: string }).path));
      }
      expect(Object.keys(copy.series).sort()).toEqual(Object.keys(source.series).sort());
      for (const upload of Object.values(copy.uploads)) expect(upload).toMatchObject({ sourceInFolder: true, temporary: true });
    }
    const parent = written.find((r) => r.runId === 'parent-run')!;
    expect(parent.attributes['run_data/tags/trackshift.encoded']).toEqual({ type: 'string', value: '1' });

    // a re-run finds every copy: nothing new, nothing rewritten
    const before = mtimes(out);
    const again = await job('copy', `neptune3:${fixture}`, destination(out));
    expect(again.copied.runs).toBe(0);
    expect(again.skipped.runs).toBe(2);
    expect(mtimes(out)).toEqual(before);
  }, 300_000);
});

describe('Neptune 3.x offline → MLflow server → neptune3: → bundle, and MLflow runs into neptune3:', () => {
  let server: MlflowServer | undefined;
  afterAll(async () => server?.stop());

  it('copies with verify equal at every hop', async () => {
    server = await startMlflowServer();
    const src = `neptune3:${fixture}`;
    await job('copy', src, server.url);
    expectEqual(await verify(src, server.url), 2);

    // the server's empty Default experiment has no runs, which is all a 3.x experiment is
    const out = join(tmp, 'via-mlflow');
    const copied = await job('copy', server.url, destination(out));
    expect(copied.copied.runs).toBe(2);
    expectEqual(await verifyExperiment('exp-scale', server.url, destination(out)), 2);
    // the fork of the copy names the copy of its parent, at the same step
    const back = await openSource(destination(out));
    try {
      const child = (await allRuns(back)).find((r) => r.id === 'child-run')!;
      expect(child.fork).toEqual({ runId: 'parent-run', step: 100.5 });
    } finally {
      await back.close?.();
    }

    const bundle = join(tmp, 'bundle-from-neptune3');
    await job('export', destination(out), bundle);
    expectEqual(await verify(destination(out), `bundle:${bundle}`), 2);
    expectEqual(await verify(src, `bundle:${bundle}`), 2);
  }, 600_000);

  it("writes an MLflow run's params, tags, metrics with steps and timestamps, and artifacts as files; a re-run adds nothing", async () => {
    server ??= await startMlflowServer();
    const printed = await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: server.url });
    const ids = JSON.parse(printed.trim().split('\n').pop()!) as Record<string, string>;
    const out = join(tmp, 'from-mlflow');
    const report = await runJobIn(tmp, 'copy', server.url, destination(out), true);
    expect(report.failed).toEqual([]);

    const source = await openSource(server.url);
    const copies = await openSource(destination(out));
    try {
      const parent = (await allRuns(source)).find((r) => r.id === ids.parent)!;
      const copy = (await allRuns(copies)).find((r) => r.id === ids.parent)!;
      expect(copy).toMatchObject({ name: parent.name, status: parent.status, startTime: parent.startTime, endTime: parent.endTime, user: parent.user, params: parent.params });
      const { 'trackshift.source.id': sourceId, ...tags } = copy.tags;
      expect(sourceId).toBe(ids.parent);
      expect(Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith('trackshift.')))).toEqual(parent.tags);
      for (const key of ['loss', 'special', 'dup', 'nested/metric key']) {
        const points = async (s: Source, r: Run) => (await list(s.readMetric(r, key))).flat();
        expect(await points(copies, copy), key).toEqual(await points(source, parent));
      }
      const artifacts = async (s: Source, r: Run) => (await list(s.listArtifacts(r))).map((a) => a.path).sort();
      expect(await artifacts(copies, copy)).toEqual(await artifacts(source, parent));
      expect(copy.inputs).toEqual(parent.inputs);
      // verify equal, but for the experiment without runs Neptune 3.x cannot hold (MLflow's Default)
      const compared = await verify(server.url, destination(out));
      const notHeld = (o: VerifyReport['objects'][number]) => o.type === 'experiment' && o.state === 'missing-in-destination' && o.name === 'Default';
      expect(compared.objects.filter((o) => !notHeld(o)).map((o) => [o.path, o.differences.slice(0, 3)])).toEqual([]);
      expect(compared.summary.run.equal).toBe(compared.summary.run.compared);
    } finally {
      await source.close?.();
      await copies.close?.();
    }

    // NaN and the points at one step are left out of the native series only
    const written = (await readBack(out)).find((r) => r.runId === ids.parent)!;
    // (the server keeps ±Infinity as ±Number.MAX_VALUE, which is finite)
    expect(written.series.special!.map((p) => p.value)).toEqual([Number.MAX_VALUE, -Number.MAX_VALUE, 0, -0.5]);
    expect(written.series.dup!.map((p) => [p.step, p.value])).toEqual([[5, 1], [6, 4]]);
    expect(written.attributes['run_data/params/lr']).toEqual({ type: 'string', value: '0.001' });
    expect(written.attributes['model/weights.bin']?.type).toBe('file');

    const before = mtimes(out);
    const again = await runJobIn(tmp, 'copy', server.url, destination(out), true);
    expect(again.copied.runs).toBe(0);
    expect(mtimes(out)).toEqual(before);
  }, 600_000);
});

describe('Neptune 2.x → neptune3: with seed 001', () => {
  it('moves sys to legacy_sys, monitoring/ to runtime/, keeps the id, files and the source times', async () => {
    const data = join(tmp, 'n2', '.neptune');
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', join(tmp, 'n2work'), join(tmp, 'n2.json')], { NEPTUNE_MODE: 'offline', NEPTUNE_DATA_DIRECTORY: data });
    const out = join(tmp, 'from-neptune2');
    const report = await job('copy', `neptune2:${data}`, destination(out));
    expect(report.copied.runs).toBe(2);

    const source = await openSource(`neptune2:${data}`);
    const written = await readBack(out);
    try {
      const runs = await allRuns(source);
      expect(written.map((r) => r.runId).sort()).toEqual(runs.map((r) => r.id).sort());
      for (const run of runs) {
        const copy = written.find((r) => r.runId === run.id)!;
        const sys = new Map((run.config ?? []).filter((e) => e.path[0] === 'sys').map((e) => [e.path[1]!, e.value]));
        // the run id is the custom run id, else sys/id; the experiment is sys/name
        expect(copy.runId).toBe(sys.get('custom_run_id')?.value ?? sys.get('id')?.value ?? run.id);
        expect(copy.create.experiment).toBe(sys.get('name')?.value);
        if (sys.has('creation_time')) expect(copy.create.creationTime).toBe(sys.get('creation_time')!.value);
        for (const [name, value] of sys) {
          if (['custom_run_id', 'name', 'creation_time', 'family', 'state'].includes(name)) continue;
          const at = ['description', 'tags', 'group_tags'].includes(name) ? `sys/${name}` : `legacy_sys/${name}`;
          const expected = name === 'running_time' || name === 'monitoring_time' ? { type: 'float', value: value.value } : name === 'size' ? { type: 'int', value: Math.round(value.value as number) } : value;
          expect(copy.attributes[at], at).toEqual(value.type === 'stringSet' ? { type: 'stringSet', value: [...(value.value as string[])].sort() } : expected);
        }
        // every other attribute at its path, monitoring/ moved to runtime/
        for (const entry of run.config ?? []) {
          if (entry.path[0] === 'sys') continue;
          const path = entry.path.join('/').replace(/^monitoring\//, 'runtime/');
          expect(copy.attributes[path], path).toBeDefined();
        }
        expect(Object.keys(copy.attributes).some((k) => k.startsWith('monitoring/'))).toBe(false);
        // every series point with the source's step and timestamp, under runtime/ for monitoring/
        for (const series of run.series) {
          const key = series.key.replace(/^monitoring\//, 'runtime/');
          const points = series.type === 'float' ? (await list(source.readMetric(run, series.key))).flat() : (await list(source.readSeries!(run, series))).flat();
          expect(copy.series[key]?.map((p) => [p.step, p.timestamp]), key).toEqual(points.map((p) => [p.step, p.timestamp]));
          if (series.type === 'file') {
            for (const [i, point] of points.entries()) {
              const bytes = Buffer.concat(await list(await source.readSeriesFile!(run, (point.value as { path: string }).path)));
              expect(fileBytes(copy, copy.series[key]![i]!.value)).toBe(bytes.toString('base64'));
            }
          }
        }
        expect(Object.keys(copy.series).some((k) => k.startsWith('monitoring/'))).toBe(false);
        // files (and file sets' files) become file attributes with their bytes
        for await (const artifact of source.listArtifacts(run)) {
          const bytes = Buffer.concat(await list(await source.readArtifact(run, artifact.path)));
          const attribute = copy.attributes[artifact.path];
          expect(attribute?.type, artifact.path).toBe('file');
          expect(fileBytes(copy, attribute!.value)).toBe(bytes.toString('base64'));
        }
      }
      const rich = runs.find((r) => r.name === 'rich run')!;
      expect(rich.series.some((s) => s.key.startsWith('monitoring/'))).toBe(true);
    } finally {
      await source.close?.();
    }
  }, 300_000);
});

describe('what Neptune 3.x cannot hold, through the encoding', () => {
  const T0 = 1_700_000_000_000;
  const float = (key: string, step: number, value: number, extra: Partial<MetricPoint> = {}): MetricPoint => ({ key, step, value, timestamp: T0 + Math.round(step * 1000), ...extra });

  function awkwardStore(): MemoryStore {
    const store = memoryStore(`neptune3-awkward-${process.pid}`);
    store.data.experiments.set('1', { id: '1', name: 'exp', tags: {}, lifecycle: 'active' });
    const base = { experimentId: '1', status: 'FINISHED' as const, startTime: T0, endTime: T0 + 60_000, lifecycle: 'active' as const, inputs: [] };
    const metrics = [
      float('loss', 0, NaN), float('loss', 1, Infinity), float('loss', 1, -Infinity), float('loss', 1, -0), float('loss', 2, 0.5), float('loss', 2, 0.5), float('loss', 1.5, 0.25),
      float('range', -1, 1), float('range', 0.000001, 2), float('range', 1 / 3, 4), float('range', 1e12, 3),
      float('untimed', 1, 1, { timestamp: undefined }), float('comet', 2, 2, { epoch: 3, context: 'train' }),
    ];
    const byKey = new Map<string, MetricPoint[]>();
    for (const p of metrics) byKey.set(p.key, [...(byKey.get(p.key) ?? []), p]);
    const log: TypedPoint[] = [{ step: 0, timestamp: T0, value: 'first ✓' }, { step: 0, timestamp: T0 + 1, value: 'same step' }];
    const hist: TypedPoint[] = [{ step: 1, timestamp: T0, value: { edges: [0, 1, 2], kind: 'counts', values: [3, 4] } }, { step: 2, timestamp: T0 + 5, value: { edges: [-1, 0], kind: 'densities', values: [0.5] } }];
    // the third point's step goes back: left out natively, its file still kept
    const samples: TypedPoint[] = [0.5, 1.5, 1].map((step, i) => ({ step, timestamp: T0 + i, value: { path: `samples/${i}.txt`, name: `${i}.txt`, size: 7, mimeType: 'text/plain' } }));
    const run: Run = {
      ...base,
      id: 'awkward',
      name: 'awkward run',
      user: 'ada',
      params: { lr: '0.1' },
      tags: { team: 'x', reviewed: '' },
      series: [...[...byKey.keys()].map((key) => ({ key, type: 'float' as const })), { key: 'log', type: 'string' }, { key: 'hist', type: 'histogram' }, { key: 'samples', type: 'file' }, { key: 'system/cpu', type: 'float', system: true }],
      // in path order: Neptune's attributes are a map, read back sorted
      config: [
        { path: ['betas', 'b1'], value: { type: 'float', value: 0.9 } },
        { path: ['epochs'], value: { type: 'int', value: 10 } },
        { path: ['labels'], value: { type: 'stringSet', value: ['a', 'b'] } },
        { path: ['optimizer', 'name'], value: { type: 'string', value: 'adam' } },
        { path: ['use_bn'], value: { type: 'bool', value: true } },
        { path: ['when'], value: { type: 'datetime', value: T0 + 5 } },
      ],
      summary: [{ path: ['best', 'loss'], value: { type: 'float', value: NaN } }],
      group: 'sweep-7',
      sourceState: 'exit 3',
    };
    byKey.set('system/cpu', [float('system/cpu', 0, 12.5)]);
    store.data.runs.set('awkward', memoryRun({
      run,
      metrics: byKey,
      series: new Map([['log', log], ['hist', hist], ['samples', samples]]),
      seriesFiles: new Map([['samples/0.txt', Buffer.from('zero 0\n')], ['samples/1.txt', Buffer.from('one  1\n')], ['samples/2.txt', Buffer.from('two  2\n')]]),
      artifacts: new Map([['model/w.bin', Buffer.from([0, 1, 2, 255])], ['notes.txt', Buffer.from('notes')]]),
    }));
    const fork: Run = { ...base, id: 'forked', name: 'forked', params: {}, tags: {}, series: [{ key: 'loss', type: 'float' }], fork: { runId: 'awkward', step: 2.5 } };
    store.data.runs.set('forked', memoryRun({ run: fork, metrics: new Map([['loss', [float('loss', 3, 0.1)]]]) }));
    return store;
  }

  it('keeps every value of a run from elsewhere: the neptune3 source gives back exactly what was copied', async () => {
    const src = awkwardStore();
    const out = join(tmp, 'awkward');
    const report = await job('copy', src.uri, destination(out));
    expect(report.copied.runs).toBe(2);
    expect(report.encoded.map((e) => e.sourceId)).toEqual(['awkward']);
    const back = await openSource(destination(out));
    try {
      expect(await wholeRuns(back)).toEqual(await wholeRuns(src));
    } finally {
      await back.close?.();
    }
    // what Neptune's own code sees: only points its server takes
    const written = (await readBack(out)).find((r) => r.runId === 'awkward')!;
    expect(written.series.loss!.map((p) => [p.step, p.value])).toEqual([[1, -0], [2, 0.5]]);
    expect(written.series.range!.map((p) => p.step)).toEqual([0.000001]);
    expect(written.series.samples!.map((p) => p.step)).toEqual([0.5, 1.5]);
    expect(Object.keys(written.uploads).filter((path) => path.startsWith('awkward-') && path.includes('/samples/'))).toHaveLength(3);
    expect(written.attributes['epochs']).toEqual({ type: 'int', value: 10 });
    expect(written.attributes['run_info/source_state']).toEqual({ type: 'string', value: 'exit 3' });
    expect(written.attributes['sys/group_tags']).toEqual({ type: 'stringSet', value: ['sweep-7'] });
  }, 120_000);

  it("marks a run's system series outside Neptune's namespaces without needing the encoding", async () => {
    const store = memoryStore(`neptune3-system-${process.pid}`);
    store.data.experiments.set('1', { id: '1', name: 'exp', tags: {}, lifecycle: 'active' });
    const run: Run = { id: 'sys', experimentId: '1', name: 'sys', status: 'FINISHED', startTime: T0, endTime: T0 + 10, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [{ key: 'system/cpu', type: 'float', system: true }, { key: 'loss', type: 'float' }] };
    store.data.runs.set('sys', memoryRun({ run, metrics: new Map([['system/cpu', [float('system/cpu', 0, 1)]], ['loss', [float('loss', 0, 2)]]]) }));
    const out = join(tmp, 'system');
    const report = await job('copy', store.uri, destination(out));
    expect(report.encoded).toEqual([]);
    const back = await openSource(destination(out));
    try {
      expect(await wholeRuns(back)).toEqual(await wholeRuns(store));
    } finally {
      await back.close?.();
    }
  }, 120_000);

  it('applies seed 001 to a Neptune 2.x run: legacy_sys with float running and monitoring time and an int size', async () => {
    const store = memoryStore(`neptune3-legacy-${process.pid}`);
    store.data.experiments.set('ws/legacy', { id: 'ws/legacy', name: 'ws/legacy', tags: {}, lifecycle: 'active' });
    const sys = (name: string, value: TypedValue) => ({ path: ['sys', name], value });
    const run: Run = {
      id: 'SAN-7', experimentId: 'ws/legacy', name: 'baseline', status: 'FINISHED', startTime: T0, endTime: T0 + 9000, lifecycle: 'active', params: {}, tags: { best: '' }, inputs: [], sourceState: 'idle',
      series: [{ key: 'monitoring/abc/cpu', type: 'float', system: true }],
      config: [
        sys('id', { type: 'string', value: 'SAN-7' }), sys('name', { type: 'string', value: 'baseline' }), sys('state', { type: 'string', value: 'idle' }),
        sys('creation_time', { type: 'datetime', value: T0 - 5 }), sys('running_time', { type: 'int', value: 42 }), sys('monitoring_time', { type: 'int', value: 7 }),
        sys('size', { type: 'float', value: 1024 }), sys('owner', { type: 'string', value: 'ada' }), sys('tags', { type: 'stringSet', value: ['best'] }),
        { path: ['monitoring', 'abc', 'hostname'], value: { type: 'string', value: 'gpu-1' } },
      ],
    };
    store.data.runs.set('SAN-7', memoryRun({ run, metrics: new Map([['monitoring/abc/cpu', [float('monitoring/abc/cpu', 0, 3.5), float('monitoring/abc/cpu', 1, 4.5)]]]) }));
    const out = join(tmp, 'legacy');
    await job('copy', store.uri, destination(out));
    const [written] = await readBack(out);
    expect(written!.runId).toBe('SAN-7');
    expect(written!.create).toMatchObject({ experiment: 'baseline', creationTime: T0 - 5, family: 'SAN-7' });
    expect(written!.attributes).toMatchObject({
      'legacy_sys/id': { type: 'string', value: 'SAN-7' },
      'legacy_sys/running_time': { type: 'float', value: 42 },
      'legacy_sys/monitoring_time': { type: 'float', value: 7 },
      'legacy_sys/size': { type: 'int', value: 1024 },
      'legacy_sys/owner': { type: 'string', value: 'ada' },
      'sys/tags': { type: 'stringSet', value: ['best'] },
      'runtime/abc/hostname': { type: 'string', value: 'gpu-1' },
    });
    expect(Object.keys(written!.attributes).filter((k) => /state|^monitoring\//.test(k))).toEqual([]);
    expect(written!.series['runtime/abc/cpu']!.map((p) => [p.step, p.value, p.timestamp])).toEqual([[0, 3.5, T0], [1, 4.5, T0 + 1000]]);
    expect(written!.lastOperationTime).toBe(T0 + 9000);
  }, 120_000);
});

describe('a copy cut off part way', () => {
  it('never looks complete: readers skip it, the next copy discards it and writes the run again', async () => {
    const store = memoryStore(`neptune3-cut-${process.pid}`);
    store.data.experiments.set('1', { id: '1', name: 'exp', tags: {}, lifecycle: 'active' });
    const point: TypedPoint = { step: 1, timestamp: 1_700_000_000_000, value: { path: 'a.txt', name: 'a.txt', size: 2 } };
    const run: Run = { id: 'cut', experimentId: '1', name: 'cut', status: 'FINISHED', startTime: 1_700_000_000_000, lifecycle: 'active', params: { p: '1' }, tags: {}, inputs: [], series: [{ key: 'files', type: 'file' }] };
    // the file of the series' point is not there yet: the run fails after it was created
    store.data.runs.set('cut', memoryRun({ run, series: new Map([['files', [point]]]) }));
    const out = join(tmp, 'cut');
    const first = await runJobIn(tmp, 'copy', store.uri, destination(out), true);
    expect(first.failed.map((f) => f.sourceId)).toEqual(['cut']);
    const partial = readdirSync(out).filter((n) => n.startsWith('.trackshift-partial-'));
    expect(partial).toHaveLength(1);
    expect(runFolders(out)).toEqual([]);
    await expect(openSource(destination(out))).rejects.toThrow(/holds no neptune-scale offline run/);

    store.data.runs.get('cut')!.seriesFiles.set('a.txt', Buffer.from('ok'));
    const second = await runJobIn(tmp, 'copy', store.uri, destination(out), true);
    expect(second.failed).toEqual([]);
    expect(second.copied.runs).toBe(1);
    expect(readdirSync(out).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(runFolders(out)).toEqual([expect.stringMatching(/^ws_proj_cut_\d{19}$/)]);
    const [written] = await readBack(out);
    expect(Object.values(written!.uploads).map((u) => Buffer.from(u.bytes!, 'base64').toString())).toEqual(['ok']);
  }, 120_000);

  it('says what is missing when no project is given', async () => {
    await expect(runJobIn(tmp, 'copy', `neptune3:${fixture}`, `neptune3:${join(tmp, 'no-project')}`)).rejects.toThrow(/\?project=WORKSPACE\/PROJECT or set NEPTUNE_PROJECT/);
  });
});

describe("the client's names", () => {
  it('gives run folders and file paths exactly as neptune-scale computes them', async () => {
    const cases: Array<[string, string, string, number | null]> = [
      ['parent-run', 'files/readme', 'readme', null],
      ['SAN-7', 'model/weights.bin', 'weights.bin', null],
      ['run.with/odd chars ✓', 'a/b.c/d', 'résumé 数据.tar.gz', 1000.5],
      ['x'.repeat(400), `${'ns/'.repeat(120)}leaf`, `${'n'.repeat(300)}.${'e'.repeat(30)}`, 0.000001],
      ['r', 'samples', '.hidden', 999_999_999_999.5],
    ];
    const script = [
      'import json, sys',
      'from neptune_scale.sync.files import generate_destination',
      'from neptune_scale.api.run import _sanitize_path_component',
      'cases = json.loads(sys.argv[1])',
      'print(json.dumps([[generate_destination(r, a, f, s), _sanitize_path_component("ws/proj"), _sanitize_path_component(r)] for r, a, f, s in cases]))',
    ].join('\n');
    const expected = JSON.parse(await runTool('neptune3', 'python', ['-c', script, JSON.stringify(cases)])) as Array<[string, string, string]>;
    const mine = cases.map(([r, a, f, s]) => [fileDestination(r, a, f, s ?? undefined), folderComponent('ws/proj'), folderComponent(r)]);
    expect(mine).toEqual(expected);
    expect(runFolderName('ws/proj', 'parent-run', 1772366400000000000n)).toBe('ws_proj_parent-run_1772366400000000000');
  });
});
