/**
 * The mlruns reader against file stores written by the real mlflow client (pinned env): what the
 * fixture script reports it logged must be exactly what the reader reads.
 */
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlrunsConnector, MlrunsSource, storeRoot } from '../../src/connectors/mlruns/index.js';
import type { Source } from '../../src/connectors/types.js';
import type { Run } from '../../src/model/index.js';
import { InvalidInputError } from '../../src/util/errors.js';
import { runPython } from '../harness/mlflow-server.js';

interface Summary {
  experiments: Array<{ id: string; name: string; lifecycle: string; tags: Record<string, string>; creationTime: number; lastUpdateTime: number }>;
  runs: Array<{
    id: string;
    experimentId: string;
    name: string;
    status: string;
    startTime: number;
    endTime: number;
    lifecycle: string;
    parentId: string | null;
    params: Record<string, string>;
    tags: Record<string, string>;
    metrics: Array<{ key: string; value: number | string; timestamp: number; step: number }>;
    artifacts: Record<string, string>;
    inputs: Array<{ name: string; digest: string; sourceType: string; source: string; schema: string | null; profile: string | null; tags: Record<string, string> }>;
  }>;
}

const decode = (v: number | string): number => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : (v as number));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function errorOf(work: () => Promise<unknown>): Promise<Error> {
  try {
    await work();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

async function readEverything(src: Source): Promise<void> {
  for await (const exp of src.listExperiments()) {
    for await (const run of src.listRuns(exp.id, { includeDeleted: true })) {
      for (const key of run.series.map((s) => s.key)) await collect(src.readMetric(run, key));
      for await (const file of src.listArtifacts(run)) await buffer(await src.readArtifact(run, file.path));
    }
  }
  // a malformed meta.yaml is left out and recorded (the rest is read): the first, as the error
  const [first] = src.unreadable ?? [];
  if (first) throw new InvalidInputError(first.sourceId, first.reason);
}

let tmp: string;
let store: string;
let summary: Summary;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trackshift-mlruns-'));
  store = join(tmp, 'project', 'mlruns');
  const out = await runPython('test/fixtures/mlruns-write.py', [], {
    MLFLOW_ALLOW_FILE_STORE: 'true',
    MLFLOW_TRACKING_URI: `file://${store}`,
  });
  summary = JSON.parse(out.trim().split('\n').pop()!) as Summary;
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mlruns reader, against a store written by mlflow', () => {
  it('detects the store, and a project folder holding one', async () => {
    expect(await mlrunsConnector.detect(store)).toBe(true);
    expect(await storeRoot(join(tmp, 'project'))).toBe(store);
    expect(await mlrunsConnector.detect(tmp)).toBe(false);
    expect(await mlrunsConnector.detect(join(tmp, 'missing'))).toBe(false);
    expect(await mlrunsConnector.detect(join(store, '0', 'meta.yaml'))).toBe(false);
  });

  it('reads every experiment, deleted ones included, with tags and times', async () => {
    const src = (await mlrunsConnector.openSource!({ location: join(tmp, 'project'), side: 'src', env: {} })) as MlrunsSource;
    expect(src.uri).toBe(resolve(store));
    const exps = await collect(src.listExperiments());
    expect(exps.map((e) => e.id).sort()).toEqual(summary.experiments.map((e) => e.id).sort());
    for (const expected of summary.experiments) {
      const got = exps.find((e) => e.id === expected.id)!;
      expect(got).toMatchObject({
        name: expected.name,
        lifecycle: expected.lifecycle,
        tags: expected.tags,
        creationTime: expected.creationTime,
        lastUpdateTime: expected.lastUpdateTime,
      });
      expect(got.artifactLocation).toMatch(/^file:\/\//);
    }
  });

  it('reads every run field by field, and skips deleted runs unless asked', async () => {
    const src = new MlrunsSource(store);
    const exps = await collect(src.listExperiments());
    const runs: Run[] = [];
    for (const exp of exps) runs.push(...(await collect(src.listRuns(exp.id, { includeDeleted: true }))));
    expect(runs.map((r) => r.id).sort()).toEqual(summary.runs.map((r) => r.id).sort());
    for (const expected of summary.runs) {
      const got = runs.find((r) => r.id === expected.id)!;
      expect(got.experimentId).toBe(expected.experimentId);
      expect(got.name).toBe(expected.name);
      expect(got.status).toBe(expected.status);
      expect(got.startTime).toBe(expected.startTime);
      expect(got.endTime).toBe(expected.endTime);
      // runs of a deleted experiment are deleted with it
      const expDeleted = summary.experiments.find((e) => e.id === expected.experimentId)!.lifecycle === 'deleted';
      expect(got.lifecycle).toBe(expDeleted ? 'deleted' : expected.lifecycle);
      expect(got.parentId).toBe(expected.parentId ?? undefined);
      expect(got.params).toEqual(expected.params);
      expect(got.tags).toEqual(expected.tags);
      expect(got.series.map((s) => s.key)).toEqual([...new Set(expected.metrics.map((m) => m.key))].sort());
      expect(got.inputs).toEqual(
        expected.inputs.map((i) => ({
          dataset: { name: i.name, digest: i.digest, sourceType: i.sourceType, source: i.source, schema: i.schema ?? undefined, profile: i.profile ?? undefined },
          tags: i.tags,
        })),
      );
      expect(await src.getRun(expected.id)).toEqual(got);
    }
    const parent = runs.find((r) => r.name === 'parent')!;
    expect(parent.user).toBe('ana');
    expect(parent.params.long).toHaveLength(6000);
    expect(parent.tags['mlflow.note.content']).toBe('A run description\nwith two lines');
    expect(parent.inputs).toHaveLength(1);

    const vision = exps.find((e) => e.name === 'vision')!;
    const active = await collect(src.listRuns(vision.id, { includeDeleted: false }));
    expect(active.map((r) => r.name).sort()).toEqual(['child', 'failed', 'parent']);
    expect(await src.getRun('nope')).toBeUndefined();
  });

  it('reads every metric point exactly, NaN, ±inf and duplicates included', async () => {
    const src = new MlrunsSource(store);
    for (const expected of summary.runs) {
      const run = (await src.getRun(expected.id))!;
      for (const key of run.series.map((s) => s.key)) {
        const got = (await collect(src.readMetric(run, key))).flat();
        const want = expected.metrics.filter((m) => m.key === key);
        expect(got.length).toBe(want.length);
        got.forEach((p, i) => {
          const w = want[i]!;
          expect([p.key, p.timestamp, p.step]).toEqual([key, w.timestamp, w.step]);
          expect(Object.is(p.value, decode(w.value))).toBe(true);
        });
      }
    }
  });

  it('lists and reads artifacts byte for byte', async () => {
    const src = new MlrunsSource(store);
    for (const expected of summary.runs) {
      const run = (await src.getRun(expected.id))!;
      const files = await collect(src.listArtifacts(run));
      expect(files.map((f) => f.path).sort()).toEqual(Object.keys(expected.artifacts).sort());
      for (const f of files) {
        const bytes = await buffer(await src.readArtifact(run, f.path));
        expect(bytes.toString('hex')).toBe(expected.artifacts[f.path]);
        expect(f.size).toBe(bytes.length);
      }
    }
    const parent = (await src.getRun(summary.runs[0]!.id))!;
    await expect(src.readArtifact(parent, '../meta.yaml')).rejects.toThrow(InvalidInputError);
  });

  it('finds artifacts in the run folder when the store was moved and artifact_uri points at the old place', async () => {
    const moved = join(tmp, 'moved', 'mlruns');
    await mkdir(join(tmp, 'moved'));
    await cp(store, moved, { recursive: true });
    const hidden = join(tmp, 'hidden');
    await rename(join(tmp, 'project'), hidden); // the absolute file:// URIs in meta.yaml now lead nowhere
    try {
      const src = new MlrunsSource(moved);
      const expected = summary.runs.find((r) => r.name === 'parent')!;
      const run = (await src.getRun(expected.id))!;
      const files = await collect(src.listArtifacts(run));
      expect(files.map((f) => f.path).sort()).toEqual(Object.keys(expected.artifacts).sort());
      const bytes = await buffer(await src.readArtifact(run, 'model/weights.bin'));
      expect(bytes.toString('hex')).toBe(expected.artifacts['model/weights.bin']);
    } finally {
      await rename(hidden, join(tmp, 'project'));
    }
  });
});

describe('mlruns reader, on damaged stores', () => {
  async function damagedCopy(name: string): Promise<{ root: string; runDir: string; run: Summary['runs'][number] }> {
    const root = join(tmp, name, 'mlruns');
    await cp(store, root, { recursive: true });
    const run = summary.runs.find((r) => r.name === 'parent')!;
    return { root, runDir: join(root, run.experimentId, run.id), run };
  }

  it('names the file for bad YAML and wrong types', async () => {
    const a = await damagedCopy('badyaml');
    await writeFile(join(a.runDir, 'meta.yaml'), 'run_id: [unclosed\n');
    let err = await errorOf(() => readEverything(new MlrunsSource(a.root)));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(join(a.runDir, 'meta.yaml'));
    expect(err.message).toContain('YAML');

    const b = await damagedCopy('badtypes');
    const meta = await readFile(join(b.runDir, 'meta.yaml'), 'utf8');
    await writeFile(join(b.runDir, 'meta.yaml'), meta.replace(/^status: 3$/m, 'status: 9').replace(/^start_time: .*$/m, 'start_time: soon'));
    err = await errorOf(() => readEverything(new MlrunsSource(b.root)));
    expect(err.message).toContain(join(b.runDir, 'meta.yaml'));
    expect(err.message).toContain('status');
    expect(err.message).toContain('start_time');
  });

  it('names the file and line of a malformed metric line', async () => {
    const c = await damagedCopy('badmetric');
    await writeFile(join(c.runDir, 'metrics', 'loss'), '1700000000000 0.5 0\n1700000000001 lots 1\n');
    const err = await errorOf(() => readEverything(new MlrunsSource(c.root)));
    expect(err.message).toContain(`${join(c.runDir, 'metrics', 'loss')}:2`);
    expect(err.message).toContain('bad value');
  });

  it('refuses a remote artifact_uri clearly instead of reading no artifacts', async () => {
    const d = await damagedCopy('remote');
    const meta = await readFile(join(d.runDir, 'meta.yaml'), 'utf8');
    await writeFile(join(d.runDir, 'meta.yaml'), meta.replace(/^artifact_uri: .*$/m, 'artifact_uri: s3://bucket/path/artifacts'));
    const src = new MlrunsSource(d.root);
    const run = (await src.getRun(d.run.id))!;
    const err = await errorOf(() => collect(src.listArtifacts(run)));
    expect(err.message).toMatch(/s3:\/\/bucket.*local artifacts only/);
  });

  it('reads metric lines without a step (older MLflow) as step 0, and leaves the store untouched', async () => {
    const e = await damagedCopy('nostep');
    await writeFile(join(e.runDir, 'metrics', 'loss'), '1700000000000 0.5\n1700000000001 -0.0 3 train-set 066351ab\n');
    const src = new MlrunsSource(e.root);
    const run = (await src.getRun(e.run.id))!;
    const points = (await collect(src.readMetric(run, 'loss'))).flat();
    expect(points[0]).toEqual({ key: 'loss', timestamp: 1700000000000, value: 0.5, step: 0 });
    expect(Object.is(points[1]!.value, -0)).toBe(true);
    expect(points[1]!.step).toBe(3);
    expect(await readFile(join(e.runDir, 'metrics', 'loss'), 'utf8')).toContain('066351ab');
  });
});

describe('the committed sample', () => {
  const sample = resolve('sample/mlruns');
  it.skipIf(!existsSync(sample))('is a readable mlruns store with metrics and artifacts', async () => {
    expect(await mlrunsConnector.detect(sample)).toBe(true);
    const src = new MlrunsSource(sample);
    const exps = await collect(src.listExperiments());
    expect(exps.length).toBeGreaterThanOrEqual(3);
    let runs = 0;
    let artifacts = 0;
    let points = 0;
    let failed = 0;
    let nested = 0;
    for (const exp of exps) {
      for await (const run of src.listRuns(exp.id, { includeDeleted: true })) {
        runs++;
        if (run.status === 'FAILED') failed++;
        if (run.parentId) nested++;
        for (const key of run.series.map((s) => s.key)) points += (await collect(src.readMetric(run, key))).flat().length;
        for await (const file of src.listArtifacts(run)) {
          artifacts++;
          expect((await buffer(await src.readArtifact(run, file.path))).length).toBe(file.size);
        }
      }
    }
    expect(runs).toBeGreaterThanOrEqual(5);
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(nested).toBeGreaterThanOrEqual(1);
    expect(artifacts).toBeGreaterThanOrEqual(2);
    expect(points).toBeGreaterThan(500);
  });
});
