/**
 * The Neptune 2.x destination (neptune2:DIR): what trackshift writes is read back by the
 * `neptune` client's own code (test/fixtures/neptune2_read_back.py: its folder discovery,
 * DiskQueue, Operation.from_dict, and its in-memory backend applying the operations as
 * `neptune sync` applies them to a server) and by trackshift's own reader, value by value:
 * a rich run from memory, a 2.x run of the real client copied 2.x → 2.x under seed 000's rules,
 * and the MLflow sample. Re-runs add nothing; a run cut off part way is never seen as a run.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/connectors/memory/index.js';
import { Neptune2Destination } from '../../src/connectors/neptune2/write.js';
import { OperationLog, PyFloat, pythonFloatRepr, pythonJson, secondsOf } from '../../src/connectors/neptune2/log-writer.js';
import { Paths, artifactAttributes } from '../../src/connectors/neptune-common/attribute-paths.js';
import { openSource } from '../../src/connectors/resolve.js';
import type { Run, TypedValue } from '../../src/model/index.js';
import { SOURCE_TAGS } from '../../src/model/index.js';
import { runTool } from '../harness/mlflow-server.js';
import { expectEqual, job as runJobIn, verify } from '../helpers/jobs.js';
import { richStore } from '../helpers/rich-run.js';
import { allRuns as runsOf } from '../helpers/source-runs.js';

interface ReadBack {
  runs: Array<{
    containerId: string;
    folders: string[];
    synced: boolean;
    metadata: Array<Record<string, unknown>>;
    errors: string[];
    operations: number;
    attributes: Record<string, { type: string; value: unknown }>;
    files: Record<string, { ext: string; hex: string }>;
    seriesValues: Record<string, { type: string; values: unknown[] }>;
    points: Record<string, Array<[number, number | string, number]>>;
    images: Record<string, Array<{ step: number; timestamp: number; name: string | null }>>;
  }>;
  offlineFolders: string[];
  /** what `neptune sync` itself (SyncRunner, in-memory backend) made of the folder */
  sync: { runs: Uploaded[]; filesLeft: string[] };
}
type ReadRun = ReadBack['runs'][number];
/** a run as a backend holds it (file bytes aside) */
type Uploaded = { attributes: ReadRun['attributes']; seriesValues: Record<string, { type: string; values: unknown }>; files: Record<string, { ext: string }> };

interface Logged {
  attributes: Record<string, TypedValue>;
  series: Record<string, { type: 'float' | 'string'; points: Array<[number, number | string, number]> }>;
  files: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  fileSeries: Record<string, Array<{ step: number; timestamp: number; name: string; hex: string }>>;
  missing: string[];
}

/** what the in-memory backend sets itself on every run it creates, as a server does */
const SET_BY_BACKEND = ['sys/id', 'sys/state', 'sys/owner', 'sys/size', 'sys/creation_time', 'sys/modification_time'];
const FOLDER = /^run__([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})__\d+__[a-z0-9]{8}$/;

let tmp: string;
let neptuneData: string;
let logged: Logged;
let reads = 0;

const job = (command: 'copy' | 'export' | 'import', source: string, destination: string) => runJobIn(tmp, command, source, destination);

async function readBack(dir: string): Promise<ReadBack> {
  const out = join(tmp, `read-back-${reads++}.json`);
  await runTool('neptune2', 'python', ['test/fixtures/neptune2_read_back.py', dir, out]);
  return JSON.parse(readFileSync(out, 'utf8')) as ReadBack;
}

const named = (back: ReadBack, name: string): ReadRun => {
  const run = back.runs.find((r) => r.attributes['sys/name']?.value === name);
  expect(run, `a run named ${name}`).toBeDefined();
  return run!;
};

/**
 * What the client's code found in every folder: well named, unsynced, no operation refused; and
 * `neptune sync` uploaded each run (the same attributes, series and files), leaving no file behind.
 */
function expectClientReads(back: ReadBack): void {
  expect(back.runs.length).toBeGreaterThan(0);
  // nothing left of the runs (trackshift's own list of what it wrote stays, outside offline/)
  expect(back.sync.filesLeft.filter((f) => f !== '.trackshift-written.jsonl')).toEqual([]);
  const shape = (run: Uploaded) => ({
    attributes: Object.fromEntries(Object.entries(run.attributes).filter(([path]) => !SET_BY_BACKEND.includes(path))),
    series: Object.fromEntries(Object.entries(run.seriesValues).map(([path, s]) => [path, Array.isArray(s.values) ? s.values.length : s.values])),
    files: Object.fromEntries(Object.entries(run.files).map(([path, f]) => [path, f.ext])),
  });
  const byName = (runs: Uploaded[]) => runs.map(shape).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  expect(byName(back.sync.runs)).toEqual(byName(back.runs));
  for (const run of back.runs) {
    expect(run.errors).toEqual([]);
    expect(run.synced).toBe(false);
    expect(run.folders).toHaveLength(1);
    expect(FOLDER.exec(run.folders[0]!)?.[1]).toBe(run.containerId);
    expect(run.metadata[0]).toMatchObject({ mode: 'offline', containerId: run.containerId, containerType: 'run', structureVersion: 3 });
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune2-write-'));
  neptuneData = join(tmp, 'source', '.neptune');
  const out = join(tmp, 'logged.json');
  await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', join(tmp, 'work'), out], { NEPTUNE_MODE: 'offline', NEPTUNE_DATA_DIRECTORY: neptuneData });
  logged = JSON.parse(readFileSync(out, 'utf8')) as Logged;
}, 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('neptune2: a destination the neptune client reads back', () => {
  it('a rich run: the client applies every operation; trackshift reads back what it was given', async () => {
    const store = richStore(memoryStore('neptune2-write-rich'));
    const dst = join(tmp, 'rich', '.neptune');
    const report = await job('copy', 'memory:neptune2-write-rich', `neptune2:${dst}`);
    expect(report.copied.runs).toBe(2);
    // NaN and ±Infinity are kept beside the run, and the report says so
    expect(report.warnings.some((w) => w.object === 'run run-main' && w.message.includes('trackshift/exact'))).toBe(true);
    expectEqual(await verify('memory:neptune2-write-rich', `neptune2:${dst}`), 2);

    const back = await readBack(dst);
    expectClientReads(back);
    const main = named(back, 'everything');
    const source = store.data.runs.get('run-main')!;
    // the neptune-mlflow layout of a run from elsewhere
    expect(main.attributes).toMatchObject({
      'run_info/run_name': { type: 'string', value: 'everything' },
      'run_info/status': { type: 'string', value: 'FINISHED' },
      'run_info/start_time': { type: 'datetime', value: source.run.startTime },
      'run_info/end_time': { type: 'datetime', value: source.run.endTime },
      'run_info/user_id': { type: 'string', value: 'ana' },
      'run_info/experiment_name': { type: 'string', value: 'rich-experiment' },
      'run_data/params/plain': { type: 'string', value: 'string param' },
      'run_data/tags/team': { type: 'string', value: 'vision' },
      [`run_data/tags/${SOURCE_TAGS.id}`]: { type: 'string', value: 'run-main' },
      'sys/group_tags': { type: 'stringSet', value: ['sweep-7'] },
      'sys/failed': { type: 'bool', value: false },
      // typed config at its paths, with its types
      'optimizer/lr': { type: 'float', value: 0.0003 },
      'batch_size': { type: 'int', value: 64 },
      'use_amp': { type: 'bool', value: true },
      'started': { type: 'datetime', value: source.run.config!.find((c) => c.path[0] === 'started')!.value.value },
      'datasets': { type: 'stringSet', value: ['train-v2', 'valid-v2'] },
    });
    // NaN is no value Neptune takes: not assigned, kept in trackshift/exact
    expect(main.attributes['weird/not a number']).toBeUndefined();
    expect(main.files['trackshift/exact']?.ext).toBe('jsonl');
    // float series: finite points with their fractional steps and exact ms timestamps
    const loss = source.metrics.get('train/loss')!.filter((p) => Number.isFinite(p.value) && p.timestamp !== undefined);
    expect(main.points['train/loss']).toEqual(loss.map((p) => [p.step, Object.is(p.value, -0) ? -0 : p.value, p.timestamp]));
    expect(main.seriesValues['accuracy']!.values).toEqual(source.metrics.get('accuracy')!.map((p) => p.value));
    expect(main.points['accuracy']!.map(([step, , ts]) => [step, ts])).toEqual(source.metrics.get('accuracy')!.map((p) => [p.step, p.timestamp]));
    // a system series keeps Neptune's monitoring/ namespace; images are image series with their bytes
    expect(main.points['monitoring/cpu']).toHaveLength(2);
    expect(main.seriesValues['images/predictions']).toEqual({ type: 'file', values: [...source.seriesFiles.values()].map((b) => b.toString('hex')) });
    expect(main.images['images/predictions']!.map((i) => i.name)).toEqual(['pred.png', 'pred.png', 'pred.png']);
    // an artifact is a file attribute named by its path, the extension apart
    expect(main.files['notes/readme']).toEqual({ ext: 'txt', hex: Buffer.from('artifact bytes').toString('hex') });
    // histograms are no 2.x type: the engine's encoding, whose files are file attributes too
    expect(Object.keys(main.files).some((p) => p.startsWith('.trackshift/series/'))).toBe(true);
  }, 240_000);

  it('Neptune 2.x → 2.x: seed 000 rules, the source timestamps, everything the client logged; a re-run adds nothing', async () => {
    const dst = join(tmp, 'copy', '.neptune');
    const report = await job('copy', neptuneData, `neptune2:${dst}`);
    expect(report.copied.runs).toBe(2);
    expect(report.warnings.some((w) => w.message.includes(logged.missing[0]!))).toBe(true);

    // trackshift's reader: equal but for sys/hostname, which seed 000 moves to old_sys/
    const compared = await verify(neptuneData, `neptune2:${dst}`);
    const differences = compared.objects.flatMap((o) => o.differences.map((d) => ({ ...d, path: d.path.split('/config:')[1] })));
    expect(compared.objects.map((o) => o.name)).toEqual(['rich run']);
    expect(differences.map((d) => [d.path, d.source, d.destination])).toEqual([
      ['old_sys/hostname', undefined, 'string "vm"'],
      ['sys/hostname', 'string "vm"', undefined],
    ]);
    // start and end times are compared by verify: the source's are kept

    const back = await readBack(dst);
    expectClientReads(back);
    const rich = named(back, 'rich run');
    const attributes = Object.fromEntries(Object.entries(rich.attributes).filter(([path]) => !SET_BY_BACKEND.includes(path)));
    for (const [path, value] of Object.entries(logged.attributes)) expect(attributes[path], path).toEqual(value);
    expect(attributes).toMatchObject({
      'sys/name': { type: 'string', value: 'rich run' },
      'sys/description': { type: 'string', value: 'a run with everything' },
      'sys/tags': { type: 'stringSet', value: ['alpha', 'delta', 'gamma'] },
      'sys/group_tags': { type: 'stringSet', value: ['group-a', 'group-b'] },
      'sys/failed': { type: 'bool', value: false },
      'old_sys/hostname': { type: 'string', value: expect.any(String) },
    });
    expect(attributes['sys/hostname']).toBeUndefined();
    for (const [key, { points }] of Object.entries(logged.series)) expect(rich.points[key], key).toEqual(points);
    expect(rich.images['images/samples']).toEqual(logged.fileSeries['images/samples']!.map(({ step, timestamp, name }) => ({ step, timestamp, name })));
    expect(rich.seriesValues['images/samples']!.values).toEqual(logged.fileSeries['images/samples']!.map((i) => i.hex));
    // files from content and path: file attributes at their path, with their extension
    for (const [path, hex] of Object.entries(logged.files)) {
      const dot = path.lastIndexOf('.');
      expect(rich.files[path.slice(0, dot)], path).toEqual({ ext: path.slice(dot + 1), hex });
    }
    // file-set files: each a file attribute under its set's namespace (seed 000 prefixes them with it), named as in the set
    for (const [key, set] of Object.entries(logged.fileSets)) {
      for (const [name, hex] of Object.entries(set)) expect(rich.files[`${key}/${name.slice(0, name.lastIndexOf('.'))}`], name).toEqual({ ext: name.slice(name.lastIndexOf('.') + 1), hex });
    }

    // a re-run (a new journal: the copies are found by their provenance) adds nothing
    const folders = readdirSync(join(dst, 'offline')).sort();
    const again = await job('copy', neptuneData, `neptune2:${dst}`);
    expect(again.copied.runs).toBe(0);
    expect(again.skipped.runs).toBe(2);
    expect(readdirSync(join(dst, 'offline')).sort()).toEqual(folders);

    // once `neptune sync` has uploaded and deleted the folders, a copy into the same folder still adds nothing
    for (const folder of folders) rmSync(join(dst, 'offline', folder), { recursive: true });
    const afterSync = await job('copy', neptuneData, `neptune2:${dst}`);
    expect(afterSync.skipped.runs).toBe(2);
    expect(readdirSync(join(dst, 'offline'))).toEqual([]);
  }, 240_000);

  it('a Neptune run with a custom run id: kept as old_sys/custom_run_id, which an offline run cannot set', async () => {
    const store = memoryStore('neptune2-write-custom');
    store.data.experiments.set('p', { id: 'p', name: 'ws/proj', tags: {}, lifecycle: 'active' });
    const run: Run = {
      id: 'SAN-7',
      experimentId: 'p',
      name: 'baseline',
      status: 'FINISHED',
      startTime: 1_700_000_000_000,
      endTime: 1_700_000_100_000,
      lifecycle: 'active',
      params: {},
      tags: { best: '' },
      inputs: [],
      series: [],
      config: [
        { path: ['sys', 'id'], value: { type: 'string', value: 'SAN-7' } },
        { path: ['sys', 'name'], value: { type: 'string', value: 'baseline' } },
        { path: ['sys', 'custom_run_id'], value: { type: 'string', value: 'exp-2024-01' } },
        { path: ['sys', 'creation_time'], value: { type: 'datetime', value: 1_700_000_000_000 } },
        { path: ['sys', 'tags'], value: { type: 'stringSet', value: ['best'] } },
        { path: ['parameters', 'lr'], value: { type: 'float', value: 0.001 } },
      ],
    };
    store.data.runs.set(run.id, { run, metrics: new Map(), series: new Map(), seriesFiles: new Map(), artifacts: new Map(), declared: new Map() });
    const dst = join(tmp, 'custom');
    const report = await job('copy', 'memory:neptune2-write-custom', `neptune2:${dst}`);
    expect(report.warnings.some((w) => w.message.includes('old_sys/custom_run_id'))).toBe(true);
    const back = await readBack(dst);
    expectClientReads(back);
    expect(named(back, 'baseline').attributes).toMatchObject({
      'old_sys/custom_run_id': { type: 'string', value: 'exp-2024-01' },
      'old_sys/id': { type: 'string', value: 'SAN-7' },
      'old_sys/creation_time': { type: 'datetime', value: 1_700_000_000_000 },
      'sys/tags': { type: 'stringSet', value: ['best'] },
      'parameters/lr': { type: 'float', value: 0.001 },
      'run_info/experiment_name': { type: 'string', value: 'ws/proj' },
    });
    // trackshift finds it in its experiment again
    const [copy] = await runsOf(await openSource(`neptune2:${dst}`));
    expect(copy).toMatchObject({ experimentId: 'ws/proj', name: 'baseline', startTime: run.startTime, endTime: run.endTime });
  }, 120_000);

  it('the MLflow sample: params, tags, metrics with steps and timestamps, artifacts as files, read back equal', async () => {
    const dst = join(tmp, 'mlflow', '.neptune');
    const report = await job('copy', 'sample/mlruns', `neptune2:${dst}`);
    expect(report.copied.runs).toBeGreaterThan(0);
    const compared = await verify('sample/mlruns', `neptune2:${dst}`);
    // every run equal; only MLflow's empty Default experiment has nothing to be a run folder of
    expect(compared.summary.run.equal).toBe(compared.summary.run.compared);
    expect(compared.objects.map((o) => [o.path, o.state])).toEqual([['Default', 'missing-in-destination']]);

    const back = await readBack(dst);
    expectClientReads(back);
    const source = await openSource('sample/mlruns');
    for (const run of await runsOf(source)) {
      const copy = back.runs.find((r) => r.attributes[`run_data/tags/${SOURCE_TAGS.id}`]?.value === run.id);
      if (run.lifecycle === 'deleted') continue;
      expect(copy, run.id).toBeDefined();
      for (const [key, value] of Object.entries(run.params)) expect(copy!.attributes[`run_data/params/${key}`]).toEqual({ type: 'string', value });
      for (const series of run.series) {
        const points: Array<[number, number, number]> = [];
        for await (const page of source.readMetric(run, series.key)) for (const p of page) if (Number.isFinite(p.value)) points.push([p.step, p.value, p.timestamp!]);
        expect(copy!.points[series.key] ?? [], series.key).toEqual(points);
      }
      for await (const file of source.listArtifacts(run)) {
        const dot = file.path.lastIndexOf('.');
        const held = copy!.files[file.path.slice(0, dot)] ?? copy!.files[file.path];
        expect(held?.hex, file.path).toBe((await buffer(await source.readArtifact(run, file.path))).toString('hex'));
      }
    }
  }, 240_000);

  it('a run cut off part way is no run: not in offline/, found as partial, discarded', async () => {
    const dst = join(tmp, 'cut');
    const first = await Neptune2Destination.open(dst);
    const experimentId = await first.ensureExperiment({ id: 'e', name: 'cut', tags: {}, lifecycle: 'active' }, 'cut');
    const run: Run = { id: 'src-1', experimentId: 'e', name: 'cut off', status: 'RUNNING', startTime: 1_700_000_000_000, lifecycle: 'active', params: {}, tags: { [SOURCE_TAGS.id]: 'src-1' }, inputs: [], series: [{ key: 'loss', type: 'float' }] };
    const id = await first.createRun(experimentId, run);
    await first.writeBatch(id, { params: [], tags: [], metrics: [{ key: 'loss', step: 0.5, timestamp: 1_700_000_000_001, value: 1 }] });
    // the process dies here: nothing is finished
    expect(readdirSync(join(dst, 'offline'))).toEqual([]);
    const back = await readBack(dst);
    expect(back.runs).toEqual([]);
    // neptune sync uploads nothing of it and leaves it be
    expect(back.sync.runs).toEqual([]);
    expect(back.sync.filesLeft.every((f) => f.startsWith('.trackshift-partial/'))).toBe(true);
    expect(back.sync.filesLeft.length).toBeGreaterThan(0);
    const second = await Neptune2Destination.open(dst);
    expect(await second.findRun('cut', 'src-1')).toEqual({ id, complete: false, lifecycle: 'active' });
    await second.discardRun(id);
    expect(readdirSync(join(dst, '.trackshift-partial'))).toEqual([]);
    expect(await (await Neptune2Destination.open(dst)).findRun('cut', 'src-1')).toBeUndefined();
  }, 120_000);

  it('a file series point that is no image is left out with a warning: 2.x image series hold images only', async () => {
    const dst = join(tmp, 'not-image');
    const destination = await Neptune2Destination.open(dst);
    const series = { key: 'samples', type: 'file' as const };
    const run: Run = { id: 'src-2', experimentId: 'e', name: 'files', status: 'FINISHED', startTime: 1_700_000_000_000, endTime: 1_700_000_000_500, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [series] };
    const id = await destination.createRun(await destination.ensureExperiment({ id: 'e', name: 'e', tags: {}, lifecycle: 'active' }, 'e'), run);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(16, 1)]);
    await destination.writeSeriesFile(id, { path: 'samples/0.png' }, Readable.from([png]));
    await destination.writeSeriesFile(id, { path: 'samples/notes.txt' }, Readable.from([Buffer.from('plain text')]));
    await destination.writeSeries(id, series, [
      { step: 0, timestamp: 1_700_000_000_001, value: { path: 'samples/0.png', mimeType: 'image/png', size: png.length } },
      { step: 1, timestamp: 1_700_000_000_002, value: { path: 'samples/notes.txt' } },
    ]);
    const result = await destination.finishRun(id, run);
    expect(result.warnings).toEqual([expect.stringContaining('1 point(s) of file series "samples" are not written: Neptune 2.x file series hold images')]);
    const back = await readBack(dst);
    expectClientReads(back);
    expect(back.runs[0]!.seriesValues['samples']).toEqual({ type: 'file', values: [png.toString('hex')] });
    expect(back.runs[0]!.images['samples']).toEqual([{ step: 0, timestamp: 1_700_000_000_001, name: null }]);
  }, 120_000);

  it('the log: Python\'s json.dumps text, ms timestamps the client reads back exactly, a new data-<N>.log past the size limit', async () => {
    for (const [v, text] of [[2, '2.0'], [0.1, '0.1'], [1e-5, '1e-05'], [1.5e-7, '1.5e-07'], [1e16, '1e+16'], [123456789.123456, '123456789.123456'], [-0, '-0.0'], [1e300, '1e+300']] as const) {
      expect(pythonFloatRepr(v)).toBe(text);
    }
    expect(pythonJson({ a: [1, new PyFloat(2), 'é ✓ "\n'], b: null, c: true })).toBe('{"a": [1, 2.0, "\\u00e9 \\u2713 \\"\\n"], "b": null, "c": true}');
    for (let ms = 1_700_000_000_000; ms < 1_700_000_002_000; ms++) expect(Math.trunc(secondsOf(ms) * 1000)).toBe(ms);

    const id = '0b0e6b5a-95a1-4e5c-9a59-3a7b7b2a1f01';
    const root = join(tmp, 'rolled');
    const dir = join(root, 'offline', `run__${id}__1__abcd1234`);
    mkdirSync(join(dir, 'upload_path'), { recursive: true });
    writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ mode: 'offline', containerId: id, containerType: 'run', structureVersion: 3, createdAt: '2023-11-14T22:13:20.000000+00:00' }));
    const log = new OperationLog(dir, 4096);
    log.put({ type: 'AssignString', path: ['sys', 'name'], value: 'rolled' }, 1_700_000_000);
    const points: Array<[number, number, number]> = [];
    for (let i = 0; i < 300; i++) {
      const point: [number, number, number] = [i / 4, i / 7, 1_700_000_000_000 + i];
      points.push(point);
      log.put({ type: 'LogFloats', path: ['loss'], values: [{ value: new PyFloat(point[1]), step: new PyFloat(point[0]), ts: new PyFloat(secondsOf(point[2])) }] }, 1_700_000_000);
    }
    log.close();
    const files = readdirSync(dir).filter((n) => n.startsWith('data-'));
    expect(files.length).toBeGreaterThan(3);
    for (const name of files) {
      const text = readFileSync(join(dir, name), 'utf8');
      expect(text.length).toBeLessThanOrEqual(4096);
      expect(name).toBe(`data-${(JSON.parse(text.split('\n')[0]!) as { version: number }).version}.log`);
    }
    expect(readFileSync(join(dir, 'last_put_version'), 'utf8')).toBe('301');
    expect(readFileSync(join(dir, 'last_ack_version'), 'utf8')).toBe('');
    const back = await readBack(root);
    expectClientReads(back);
    expect(back.runs[0]!.points['loss']).toEqual(points);
    const [run] = await runsOf(await openSource(`neptune2:${root}`));
    const read: Array<[number, number, number]> = [];
    for await (const page of (await openSource(`neptune2:${root}`)).readMetric(run!, 'loss')) for (const p of page) read.push([p.step, p.value, p.timestamp!]);
    expect(read).toEqual(points);
  }, 120_000);

  it('artifacts become file attributes named by their path, the extension apart, unless that name is taken', () => {
    const paths = new Paths();
    paths.claim('loss', 'float series');
    const artifacts = ['a.txt', 'a/b.txt', 'x.txt', 'x.csv', 'noext', '.hidden', 'dir/.env', 'model.tar.gz', 'loss.png', 'plots/roc.png'];
    expect(artifactAttributes(artifacts, paths)).toEqual([
      { attribute: 'a.txt', ext: '' }, // a/ is a folder of artifacts
      { attribute: 'a/b', ext: 'txt' },
      { attribute: 'x.txt', ext: '' }, // x.txt and x.csv would both be x
      { attribute: 'x.csv', ext: '' },
      { attribute: 'noext', ext: '' },
      { attribute: '.hidden', ext: '' },
      { attribute: 'dir/.env', ext: '' },
      { attribute: 'model.tar', ext: 'gz' },
      { attribute: 'loss.png', ext: '' }, // loss is a series
      { attribute: 'plots/roc', ext: 'png' },
    ]);
  });
});
