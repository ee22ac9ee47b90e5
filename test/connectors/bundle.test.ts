import { mkdtemp, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleConnector, openBundleDestination, openBundleSource } from '../../src/connectors/bundle/index.js';
import type { Destination, Source } from '../../src/connectors/types.js';
import type { DatasetInput, Experiment, MetricPoint, Run } from '../../src/model/index.js';
import { SOURCE_TAGS } from '../../src/model/index.js';
import { InvalidInputError, UsageError } from '../../src/util/errors.js';

const T0 = 1_700_000_000_000;
const SRC = 'http://source.example:5000';

const experiment: Experiment = {
  id: '17',
  name: 'vision é',
  tags: { team: 'cv', 'mlflow.note.content': 'about', [SOURCE_TAGS.id]: '17', [SOURCE_TAGS.uri]: SRC },
  lifecycle: 'active',
  creationTime: T0 - 5,
  lastUpdateTime: T0 - 1,
  artifactLocation: 'file:///somewhere',
};

const inputs: DatasetInput[] = [
  { dataset: { name: 'train', digest: 'abc', sourceType: 's3', source: '{"uri":"s3://b/x"}', schema: '{}', profile: '{"rows":3}' }, tags: { 'mlflow.data.context': 'training' } },
];

function makeRun(id: string, extra: Partial<Run> = {}): Run {
  return {
    id,
    experimentId: '17',
    name: `run ${id}`,
    status: 'FINISHED',
    startTime: T0,
    endTime: T0 + 1000,
    user: 'ana',
    lifecycle: 'active',
    params: { lr: '0.01', long: 'p'.repeat(6000), empty: '', unicode: 'données ✓' },
    tags: { 'mlflow.runName': `run ${id}`, 'stage/phase': 'train', [SOURCE_TAGS.id]: id, [SOURCE_TAGS.uri]: SRC },
    inputs: [],
    series: [],
    ...extra,
  };
}

const points: Record<string, MetricPoint[]> = {
  loss: Array.from({ length: 25_001 }, (_, i) => ({ key: 'loss', value: 1 / (i + 1), timestamp: T0 + i, step: i })),
  special: [NaN, Infinity, -Infinity, -0, 0, 1e300, 5e-324].map((value, i) => ({ key: 'special', value, timestamp: T0 + i, step: i })),
  // duplicate (step, timestamp) points survive as they were
  dup: [1, 2, 1].map((value) => ({ key: 'dup', value, timestamp: T0, step: 5 })),
  'train/accuracy é/数据': [{ key: 'train/accuracy é/数据', value: 0.5, timestamp: T0, step: 1.5 }],
  '1': [{ key: '1', value: 1, timestamp: T0, step: 0 }],
};

const artifacts: Record<string, Buffer> = {
  'model/weights.bin': Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251)),
  'empty.txt': Buffer.alloc(0),
  'résumé 数据.txt': Buffer.from('unicode ✓\n'),
  'a/b/c/config.json': Buffer.from('{"layers":3}'),
};

async function writeRun(dst: Destination, expId: string, run: Run, withData: boolean): Promise<string> {
  const id = await dst.createRun(expId, run);
  const params = Object.entries(run.params).map(([key, value]) => ({ key, value }));
  await dst.writeBatch(id, { params, tags: [{ key: 'late', value: 'tag' }], metrics: [] });
  if (withData) {
    // interleaved keys and several batches, as the engine may send them
    const all = Object.values(points).flat();
    for (let i = 0; i < all.length; i += 999) await dst.writeBatch(id, { params: [], tags: [], metrics: all.slice(i, i + 999) });
    await dst.writeInputs(id, inputs);
    for (const [path, bytes] of Object.entries(artifacts)) await dst.writeArtifact(id, { path, size: bytes.length }, Readable.from([bytes]));
  }
  await dst.finishRun(id, run);
  return id;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function history(src: Source, run: Run, key: string): Promise<{ points: MetricPoint[]; pages: number }> {
  const pages = await collect(src.readMetric(run, key));
  return { points: pages.flat(), pages: pages.length };
}

async function errorOf(work: () => Promise<unknown>): Promise<Error> {
  try {
    await work();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trackshift-bundle-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('bundle round trip', () => {
  let dir: string;
  let expId: string;
  const main = makeRun('r-main', { series: Object.keys(points).map((key) => ({ key, type: 'float' as const })), inputs });
  const child = makeRun('r-child', { parentId: 'r-main', status: 'FAILED', endTime: undefined, tags: { ...makeRun('r-child').tags, 'mlflow.parentRunId': 'r-main' } });
  const deleted = makeRun('r-deleted', { lifecycle: 'deleted', status: 'KILLED' });

  beforeAll(async () => {
    dir = join(tmp, 'round');
    expect(await bundleConnector.detect(dir)).toBe(false);
    const dst = await openBundleDestination(dir);
    expect(await bundleConnector.detect(dir)).toBe(true);
    expId = await dst.ensureExperiment(experiment, 'renamed é');
    await writeRun(dst, expId, main, true);
    await writeRun(dst, expId, child, false);
    await writeRun(dst, expId, deleted, false);
    await dst.finishExperiment(expId, { ...experiment, lifecycle: 'deleted' });
    await dst.close?.();
  });

  it('keeps the source ids, the new name, and records the source', async () => {
    expect(expId).toBe('17');
    const root = JSON.parse(await readFile(join(dir, 'trackshift-bundle.json'), 'utf8'));
    expect(root).toMatchObject({ format: 'trackshift-bundle', version: 2, sources: [SRC] });
    const src = await openBundleSource(dir);
    const [exp, ...more] = await collect(src.listExperiments());
    expect(more).toEqual([]);
    expect(exp).toEqual({ ...experiment, name: 'renamed é', lifecycle: 'deleted' });
  });

  it('reads runs back field by field; deleted ones only when asked', async () => {
    const src = await openBundleSource(dir);
    const active = await collect(src.listRuns(expId, { includeDeleted: false }));
    expect(active.map((r) => r.id).sort()).toEqual(['r-child', 'r-main']);
    const all = await collect(src.listRuns(expId, { includeDeleted: true }));
    expect(all.map((r) => r.id).sort()).toEqual(['r-child', 'r-deleted', 'r-main']);
    const read = all.find((r) => r.id === 'r-main')!;
    expect(read).toEqual({
      ...main,
      experimentId: expId,
      params: main.params,
      tags: { ...main.tags, late: 'tag', [SOURCE_TAGS.complete]: 'true' },
      inputs,
      series: Object.keys(points).map((key) => ({ key, type: 'float' as const })),
    });
    const readChild = all.find((r) => r.id === 'r-child')!;
    expect(readChild.parentId).toBe('r-main');
    expect(readChild.status).toBe('FAILED');
    expect(readChild.endTime).toBeUndefined();
    expect(readChild.series.map((s) => s.key)).toEqual([]);
    expect(all.find((r) => r.id === 'r-deleted')).toMatchObject({ lifecycle: 'deleted', status: 'KILLED' });
    expect(await src.getRun('r-deleted')).toMatchObject({ id: 'r-deleted', lifecycle: 'deleted' });
    expect(await src.getRun('nope')).toBeUndefined();
  });

  it('streams every metric point back exactly, in pages', async () => {
    const src = await openBundleSource(dir);
    const run = (await src.getRun('r-main'))!;
    for (const [key, expected] of Object.entries(points)) {
      const { points: got, pages } = await history(src, run, key);
      expect(got.length).toBe(expected.length);
      got.forEach((p, i) => {
        const e = expected[i]!;
        expect(p.key).toBe(key);
        expect(Object.is(p.value, e.value)).toBe(true);
        expect(p.timestamp).toBe(e.timestamp);
        expect(p.step).toBe(e.step);
      });
      if (key === 'loss') expect(pages).toBe(3);
    }
    // series files are portable names, one per key
    const files = await readdir(join(dir, 'experiments', '17', 'runs', 'r-main', 'series'));
    expect(files.length).toBe(Object.keys(points).length);
    for (const f of files) expect(f).toMatch(/^[A-Za-z0-9._-]+$/);
  });

  it('lists and reads artifacts byte for byte', async () => {
    const src = await openBundleSource(dir);
    const run = (await src.getRun('r-main'))!;
    const listed = await collect(src.listArtifacts(run));
    expect(listed.map((f) => f.path).sort()).toEqual(Object.keys(artifacts).sort());
    for (const file of listed) {
      expect(file.size).toBe(artifacts[file.path]!.length);
      expect((await buffer(await src.readArtifact(run, file.path))).equals(artifacts[file.path]!)).toBe(true);
    }
    expect(await collect(src.listArtifacts((await src.getRun('r-child'))!))).toEqual([]);
    const runJson = JSON.parse(await readFile(join(dir, 'experiments', '17', 'runs', 'r-main', 'run.json'), 'utf8'));
    const bytes = Object.values(artifacts).reduce((n, b) => n + b.length, 0);
    expect(runJson.artifacts).toEqual({ files: Object.keys(artifacts).length, bytes });
    expect(await readdir(join(dir, 'experiments', '17', 'runs', 'r-main'))).not.toContain('run.partial.json');
  });

  it('refuses artifact paths that escape the run', async () => {
    const src = await openBundleSource(dir);
    const run = (await src.getRun('r-main'))!;
    await expect(src.readArtifact(run, '../run.json')).rejects.toThrow(InvalidInputError);
    const dst = await openBundleDestination(dir);
    const id = await dst.createRun(expId, makeRun('r-escape'));
    await expect(dst.writeArtifact(id, { path: '../../../../evil.txt' }, Readable.from([Buffer.from('x')]))).rejects.toThrow(/unsafe path/);
    await dst.discardRun(id);
  });

  it('reports a complete run as complete, with its lifecycle', async () => {
    const dst = await openBundleDestination(dir);
    expect(await dst.findExperiment('renamed é')).toEqual({ id: '17', lifecycle: 'deleted' });
    expect(await dst.findRun(expId, 'r-main')).toEqual({ id: 'r-main', complete: true, lifecycle: 'active' });
    expect(await dst.findRun(expId, 'r-deleted')).toEqual({ id: 'r-deleted', complete: true, lifecycle: 'deleted' });
    expect(await dst.findRun(expId, 'nope')).toBeUndefined();
  });
});

describe('bundle partial runs and resume', () => {
  it('skips a partial run, reports it incomplete, and discards it', async () => {
    const dir = join(tmp, 'partial');
    const dst = await openBundleDestination(dir);
    const expId = await dst.ensureExperiment(experiment, experiment.name);
    await writeRun(dst, expId, makeRun('done'), false);
    const partial = await dst.createRun(expId, makeRun('cut'));
    await dst.writeBatch(partial, { params: [], tags: [], metrics: points.dup! });
    // a second process (a resumed command) sees the first one's state on disk
    const again = await openBundleDestination(dir);
    expect(await again.findRun(expId, 'cut')).toEqual({ id: 'cut', complete: false });
    const src = await openBundleSource(dir);
    expect((await collect(src.listRuns(expId, { includeDeleted: true }))).map((r) => r.id)).toEqual(['done']);
    expect(await src.getRun('cut')).toBeUndefined();
    await again.discardRun('cut');
    expect(await again.findRun(expId, 'cut')).toBeUndefined();
    // and it can be written again in full
    await writeRun(again, expId, makeRun('cut'), true);
    expect(await again.findRun(expId, 'cut')).toMatchObject({ complete: true });
    await dst.close?.();
  });

  it('finishes an already complete run again when its lifecycle changes', async () => {
    const dir = join(tmp, 'refinish');
    const dst = await openBundleDestination(dir);
    const expId = await dst.ensureExperiment(experiment, 'x');
    await writeRun(dst, expId, makeRun('r'), false);
    const later = await openBundleDestination(dir);
    expect(await later.findRun(expId, 'r')).toMatchObject({ lifecycle: 'active' });
    await later.finishRun('r', makeRun('r', { lifecycle: 'deleted' }));
    expect(await later.findRun(expId, 'r')).toMatchObject({ complete: true, lifecycle: 'deleted' });
  });

  it('reuses an experiment by name, and gives a clashing id a new one', async () => {
    const dir = join(tmp, 'names');
    const dst = await openBundleDestination(dir);
    expect(await dst.ensureExperiment(experiment, 'a')).toBe('17');
    expect(await dst.ensureExperiment({ ...experiment, id: '99', tags: { more: '1' } }, 'a')).toBe('17');
    expect(await dst.ensureExperiment(experiment, 'b')).toBe('17-2');
    const src = await openBundleSource(dir);
    const exps = await collect(src.listExperiments());
    expect(exps.map((e) => [e.id, e.name])).toEqual([
      ['17', 'a'],
      ['17-2', 'b'],
    ]);
    expect(exps[0]!.tags).toMatchObject({ team: 'cv', more: '1' });
  });
});

describe('bundle folders and tampered bundles', () => {
  it('creates a bundle in an empty folder, refuses a non-empty folder that is not one', async () => {
    const empty = join(tmp, 'empty');
    await mkdir(empty);
    await openBundleDestination(empty);
    expect(await bundleConnector.detect(empty)).toBe(true);
    const other = join(tmp, 'other');
    await mkdir(other);
    await writeFile(join(other, 'notes.txt'), 'mine');
    const err = await errorOf(() => openBundleDestination(other));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('not empty');
    expect(await readdir(other)).toEqual(['notes.txt']);
    await expect(openBundleSource(other)).rejects.toThrow(UsageError);
  });

  async function freshBundle(name: string): Promise<{ dir: string; runDir: string }> {
    const dir = join(tmp, name);
    const dst = await openBundleDestination(dir);
    const expId = await dst.ensureExperiment(experiment, 'e');
    await writeRun(dst, expId, makeRun('r', { series: Object.keys(points).map((key) => ({ key, type: 'float' as const })) }), true);
    return { dir, runDir: join(dir, 'experiments', '17', 'runs', 'r') };
  }

  async function editRunJson(runDir: string, edit: (json: any) => void): Promise<void> {
    const file = join(runDir, 'run.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    edit(json);
    await writeFile(file, JSON.stringify(json));
  }

  async function readAll(dir: string): Promise<void> {
    const src = await openBundleSource(dir);
    for await (const exp of src.listExperiments()) {
      for await (const run of src.listRuns(exp.id, { includeDeleted: true })) {
        for (const key of run.series.map((s) => s.key)) await collect(src.readMetric(run, key));
        for await (const file of src.listArtifacts(run)) await buffer(await src.readArtifact(run, file.path));
      }
    }
    // a malformed experiment.json or run.json is left out and recorded (the rest is read): the first, as the error
    const [first] = src.unreadable;
    if (first) throw new InvalidInputError(first.sourceId, first.reason);
  }

  it('refuses a newer format version with a clear message', async () => {
    const { dir } = await freshBundle('newer');
    const file = join(dir, 'trackshift-bundle.json');
    await writeFile(file, JSON.stringify({ format: 'trackshift-bundle', version: 3, created: 'x', future: true }));
    const err = await errorOf(() => openBundleSource(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/version 3, newer than the version 2.*upgrade trackshift/);
    await expect(openBundleDestination(dir)).rejects.toThrow(/newer/);
  });

  it('names the file for bad JSON and wrong types', async () => {
    const { dir, runDir } = await freshBundle('badjson');
    await writeFile(join(runDir, 'run.json'), '{"id": "r",');
    let err = await errorOf(() => readAll(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(join(runDir, 'run.json'));
    expect(err.message).toContain('not valid JSON');

    const typed = await freshBundle('badtypes');
    await editRunJson(typed.runDir, (j) => {
      j.startTime = 'yesterday';
      j.status = 'DONE';
    });
    err = await errorOf(() => readAll(typed.dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(join(typed.runDir, 'run.json'));
    expect(err.message).toContain('startTime');
    expect(err.message).toContain('status');

    const exp = await freshBundle('badexp');
    await writeFile(join(exp.dir, 'experiments', '17', 'experiment.json'), JSON.stringify({ id: '17', name: 3 }));
    err = await errorOf(() => readAll(exp.dir));
    expect(err.message).toContain('experiment.json');
    expect(err.message).toContain('name');
  });

  it('refuses a metric file that escapes the run folder, or is missing, or cut short', async () => {
    const escape = await freshBundle('metricescape');
    await editRunJson(escape.runDir, (j) => (j.series[0].file = '../../../../../etc/passwd'));
    let err = await errorOf(() => readAll(escape.dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/run\.json.*unsafe path.*\.\./);

    const outside = await freshBundle('metricoutside');
    await editRunJson(outside.runDir, (j) => (j.series[0].file = 'artifacts/empty.txt'));
    err = await errorOf(() => readAll(outside.dir));
    expect(err.message).toMatch(/outside series\//);

    const missing = await freshBundle('metricmissing');
    const fileOf = async (runDir: string, key: string): Promise<string> =>
      (JSON.parse(await readFile(join(runDir, 'run.json'), 'utf8')) as any).series.find((m: any) => m.key === key).file;
    const name = await fileOf(missing.runDir, 'special');
    await rm(join(missing.runDir, name));
    err = await errorOf(() => readAll(missing.dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain('special');
    expect(err.message).toContain(name);

    const cut = await freshBundle('metriccut');
    const dupFile = await fileOf(cut.runDir, 'dup');
    const lines = (await readFile(join(cut.runDir, dupFile), 'utf8')).split('\n');
    await writeFile(join(cut.runDir, dupFile), lines.slice(0, 2).join('\n') + '\n');
    err = await errorOf(() => readAll(cut.dir));
    expect(err.message).toMatch(/holds 2 points, but run\.json says 3/);

    const badLine = await freshBundle('metricline');
    await writeFile(join(badLine.runDir, dupFile), '{"t":1,"s":0,"v":"lots"}\n{"t":1,"s":0,"v":1}\n{"t":1,"s":0,"v":1}\n');
    err = await errorOf(() => readAll(badLine.dir));
    expect(err.message).toContain(`${dupFile}:1`);
  });

  it('refuses symbolic links among artifacts', async () => {
    const { dir, runDir } = await freshBundle('symlink');
    await symlink('/etc/passwd', join(runDir, 'artifacts', 'passwd'));
    const err = await errorOf(() => readAll(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain('symbolic link');
  });

  it('leaves the bundle unchanged when reading it', async () => {
    const { dir, runDir } = await freshBundle('untouched');
    const before = await readFile(join(runDir, 'run.json'));
    await readAll(dir);
    expect((await readFile(join(runDir, 'run.json'))).equals(before)).toBe(true);
  });
});
