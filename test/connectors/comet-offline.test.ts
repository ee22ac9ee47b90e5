/**
 * Comet offline archives, written during the test by the real comet_ml client (pinned in
 * python/requirements-comet.txt) from test/fixtures/comet_offline.py, which prints what it logged:
 * the reader gives back every value; archives trackshift writes pass comet_ml's own schema
 * validation (test/fixtures/comet_validate.py) and read back equal — from the client's archive,
 * through a bundle, from a real MLflow server and from the rich memory run; a re-run adds
 * nothing, a copy killed part way (kill -9) leaves no archive and is redone; 50,000 points are
 * read in flat memory.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFor } from '../../src/connectors/comet-offline/write.js';
import { connectorFor, openSource } from '../../src/connectors/resolve.js';
import type { Source } from '../../src/connectors/types.js';
import type { Histogram, MetricPoint, Run, TypedPoint } from '../../src/model/index.js';
import { runJob, type JobOptions } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { startCli } from '../cli/run-cli.js';
import { pythonEnv, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { expectEqual as expectEqualRuns, job as runJobIn, verify } from '../helpers/jobs.js';
import { richStore } from '../helpers/rich-run.js';
import { memoryStore } from '../../src/connectors/memory/index.js';
import { peakHeapGrowth } from '../helpers/heap.js';
import { collect, configAt, fixtureOutput, gitRepoWithChange, list, type OfflineLogged } from '../helpers/comet.js';


/** What comet_ml's own validation (test/fixtures/comet_validate.py) says of the archives in `dir`. */
async function validated(dir: string, only?: string[]): Promise<{ archives: number; messages: number; types: Record<string, number>; errors: string[] }> {
  const zips = (only ?? readdirSync(dir).filter((n) => n.endsWith('.zip'))).map((n) => join(dir, n));
  return JSON.parse(await python('test/fixtures/comet_validate.py', zips)) as { archives: number; messages: number; types: Record<string, number>; errors: string[] };
}

async function python(script: string, args: string[]): Promise<string> {
  const env = { ...process.env, PYTHONUNBUFFERED: '1', MPLCONFIGDIR: join(tmp, 'mpl') };
  return fixtureOutput(await pythonEnv('comet'), script, args, repo, env);
}

/** JSON numbers as the fixture prints them: NaN and ±Infinity as strings */
const num = (v: number | string): number => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : (v as number));

let tmp: string;
/** a git repository with an uncommitted change, where the fixture runs: the client logs its git metadata and patch */
let repo: string;
let archives: string;
let logged: OfflineLogged;

const job = (command: JobOptions['command'], source: string, destination: string) => runJobIn(tmp, command, source, destination);
const expectEqual = (report: VerifyReport) => expectEqualRuns(report, 1);


async function onlyRun(source: Source): Promise<Run> {
  const [exp] = await list(source.listExperiments());
  const runs = await list(source.listRuns(exp!.id, { includeDeleted: true }));
  expect(runs).toHaveLength(1);
  return runs[0]!;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-comet-'));
  archives = join(tmp, 'archives');
  repo = join(tmp, 'repo');
  await gitRepoWithChange(repo);
  logged = JSON.parse(await python('test/fixtures/comet_offline.py', [archives, '3000'])) as OfflineLogged;
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('comet-offline reader', () => {
  it('is detected from the archive or its folder; forced with comet-offline:', async () => {
    const zip = join(archives, readdirSync(archives)[0]!);
    for (const location of [archives, zip, `comet-offline:${archives}`]) expect((await connectorFor(location)).name).toBe('comet-offline');
  });

  it('gives back every value the client logged', async () => {
    const source = await openSource(archives);
    try {
      expect(source.unreadable).toEqual([]);
      expect(source.warnings).toEqual([]);
      expect(await list(source.listExperiments())).toEqual([{ id: logged.project, name: logged.project, tags: { 'comet.workspace': logged.workspace }, lifecycle: 'active' }]);
      const run = await onlyRun(source);
      expect(run).toMatchObject({ id: logged.key, name: logged.name, experimentId: logged.project, status: 'FINISHED' });
      expect(run.endTime).toBeGreaterThan(run.startTime!);
      expect(Object.entries(run.tags).sort()).toEqual(logged.tags.map((t) => [t, '']).sort());

      // parameters typed, nested ones rebuilt from `|`; those the client logs itself under their source
      expect(configAt(run.config, 'lr')).toEqual({ type: 'float', value: 0.001 });
      expect(configAt(run.config, 'epochs')).toEqual({ type: 'int', value: 12 });
      expect(configAt(run.config, 'use_bn')).toEqual({ type: 'bool', value: true });
      expect(configAt(run.config, 'optimizer')).toEqual({ type: 'string', value: 'adam' });
      expect(configAt(run.config, 'model/dropout/p')).toEqual({ type: 'float', value: 0.25 });
      expect(configAt(run.config, 'model/name')).toEqual({ type: 'string', value: 'resnet' });
      expect(['int', 'float']).toContain(configAt(run.config, 'auto-logged/curr_step')?.type);
      expect(configAt(run.config, 'cli/run_arg_0')).toEqual({ type: 'string', value: archives });
      // others: the summary
      expect(configAt(run.summary, 'dataset')).toEqual({ type: 'string', value: 'mnist' });
      expect(configAt(run.summary, 'seed')).toEqual({ type: 'int', value: 42 });
      expect(configAt(run.summary, 'hasNestedParams')).toEqual({ type: 'bool', value: true });

      const series = new Map(run.series.map((s) => [s.key, s]));
      expect(series.get('loss')).toEqual({ key: 'loss', type: 'float' });
      expect(series.get('sys.ram.total')).toEqual({ key: 'sys.ram.total', type: 'float', system: true });
      for (const key of ['stdout', 'stderr', 'text']) expect(series.get(key)?.type).toBe('string');
      expect(series.get('histogram3d/weights')?.type).toBe('histogram');
      expect(series.get('visualization/dot.png')?.type).toBe('file');

      // the float series point by point: fractional steps, epochs, NaN and ±Infinity, two points at one step
      const loss: MetricPoint[] = await collect(source.readMetric(run, 'loss'));
      expect(loss).toHaveLength(logged.loss.length);
      loss.forEach((point, i) => {
        const want = logged.loss[i]!;
        expect([point.step, point.epoch]).toEqual([want.step, want.epoch]);
        expect(Object.is(point.value, num(want.value)) || point.value === num(want.value)).toBe(true);
        expect(point.timestamp).toBeGreaterThanOrEqual(run.startTime!);
      });
      const acc = await collect(source.readMetric(run, 'acc'));
      expect(acc.map((p) => [p.step, p.value, p.context])).toEqual([
        [0, 0.5, 'train'],
        [1, 0.6, 'train'],
        [2, 0.7, 'train'],
      ]);

      const texts = await collect(source.readSeries!(run, { key: 'text', type: 'string' }));
      expect(texts.map((t) => ({ step: t.step, value: t.value }))).toEqual(logged.texts);
      const stdout = await collect(source.readSeries!(run, { key: 'stdout', type: 'string' }));
      expect(stdout.map((p) => p.value).join('')).toContain('hello from stdout\n');
      expect(stdout.every((p) => typeof p.timestamp === 'number')).toBe(true);
      const stderr = await collect(source.readSeries!(run, { key: 'stderr', type: 'string' }));
      expect(stderr.map((p) => p.value).join('')).toContain('hello from stderr\n');

      // histograms: Comet's buckets; each value counted in the bucket that holds it
      const histograms = await collect(source.readSeries!(run, { key: 'histogram3d/weights', type: 'histogram' }));
      expect(histograms.map((h) => h.step)).toEqual(logged.histograms.map((h) => h.step));
      histograms.forEach((point, i) => {
        const h = point.value as Histogram;
        const values = logged.histograms[i]!.values;
        expect(h.values.reduce((a, b) => a + b, 0)).toBe(values.length);
        for (const v of new Set(values)) {
          const bucket = h.edges.findIndex((edge, j) => j < h.values.length && (v === 0 ? edge <= v && v < h.edges[j + 1]! : edge < v && v <= h.edges[j + 1]!));
          expect(h.values[bucket]).toBe(values.filter((x) => x === v).length);
        }
      });

      // a stepped image: a file series
      const images = (await collect(source.readSeries!(run, { key: 'visualization/dot.png', type: 'file' }))) as Array<TypedPoint & { value: { path: string; name?: string } }>;
      expect(images.map((p) => [p.step, p.value.name])).toEqual([
        [0, 'dot.png'],
        [1, 'dot.png'],
      ]);
      expect((await buffer(await source.readSeriesFile!(run, images[1]!.value.path))).subarray(1, 4).toString()).toBe('PNG');

      // assets and the other messages: artifacts
      const artifacts = new Map((await list(source.listArtifacts(run))).map((a) => [a.path, a]));
      expect([...artifacts.keys()]).toEqual(
        expect.arrayContaining([
          'assets/asset/notes.txt',
          'assets/asset/data.json',
          'assets/curve/roc',
          'assets/source_code/train.py',
          'comet/assets.json',
          'comet/html.json',
          'comet/htmlOverride.json',
          'comet/installed_packages.json',
          'comet/os_packages.json',
          'comet/file_name.json',
          'comet/git_metadata.json',
          'comet/graph.json',
          'comet/log_dependency.json',
          'comet/system_info.json',
          'comet/remote_file.json',
        ]),
      );
      const patch = [...artifacts.keys()].find((path) => path.startsWith('assets/git-patch/'))!;
      expect((await buffer(await source.readArtifact(run, patch))).subarray(0, 2).toString()).toBe('PK'); // the client zips the patch
      expect(JSON.parse((await buffer(await source.readArtifact(run, 'comet/graph.json'))).toString())).toEqual([{ graph: 'Sequential(Linear(4, 2))' }]);
      expect(JSON.parse((await buffer(await source.readArtifact(run, 'comet/remote_file.json'))).toString())).toEqual([expect.objectContaining({ remote_uri: 's3://bucket/data.csv' })]);
      expect((await buffer(await source.readArtifact(run, 'assets/asset/notes.txt'))).toString()).toBe('hello asset\n');
      expect(JSON.parse((await buffer(await source.readArtifact(run, 'comet/html.json'))).toString())).toEqual([{ html: '<h1>report</h1>' }]);
      const manifest = JSON.parse((await buffer(await source.readArtifact(run, 'comet/assets.json'))).toString()) as Array<{ path: string; metadata: unknown; additional_params: { step: number; epoch?: number } }>;
      expect(manifest.find((m) => m.path === 'assets/asset/data.json')?.additional_params).toMatchObject({ step: 3, epoch: 1 });
      expect(manifest.find((m) => m.path === 'assets/asset/notes.txt')?.metadata).toEqual({ kind: 'notes' });
    } finally {
      await source.close?.();
    }
  });
});

describe('comet-offline reads what it can, archive by archive', () => {
  it('leaves out a zip that is no archive (failed alone) and the lines Comet\'s uploader would skip (warned)', async () => {
    const folder = join(tmp, 'spoiled');
    mkdirSync(folder);
    const original = join(archives, `${logged.key}.zip`);
    const spoiledKey = 'b'.repeat(32);
    await python('test/fixtures/comet_spoil.py', [original, join(folder, `${spoiledKey}.zip`), spoiledKey]);
    writeFileSync(join(folder, 'broken.zip'), 'not a zip');
    const source = await openSource(folder);
    try {
      expect(source.unreadable).toEqual([{ type: 'run', sourceId: 'broken', reason: expect.stringMatching(/broken\.zip: is not a readable zip archive/) }]);
      const run = await onlyRun(source);
      expect(run.id).toBe(spoiledKey);
      expect(source.warnings!.map((w) => w.message)).toEqual([
        expect.stringMatching(/messages\.json:6: not JSON: skipped/),
        expect.stringMatching(/messages\.json:7: a metric without a name: skipped/),
        expect.stringMatching(/messages\.json:8: its file "tmpmissing" is not in the archive: skipped/),
      ]);
      expect(await collect(source.readMetric(run, 'loss'))).toHaveLength(logged.loss.length);
    } finally {
      await source.close?.();
    }
    // comet_ml's own checks find the same three lines (so they can fail on what trackshift writes)
    const checked = await validated(folder, [`${spoiledKey}.zip`]);
    expect(checked.errors).toEqual([
      expect.stringMatching(/:6: unreadable/),
      expect.stringMatching(/:7: metric_msg: 'metricName' is a required property/),
      expect.stringMatching(/:7: metric_msg: 'step' is a required property/),
      expect.stringMatching(/:8: file_upload: 'tmpmissing' is not in the archive/),
    ]);
  });
});

describe('comet-offline writer', () => {
  it('keeps a valid Comet key, and derives one from any other id as the SDK does (sha1)', () => {
    expect(keyFor('a0f8ef4f1b7a423f93c36344dbe3049a')).toBe('a0f8ef4f1b7a423f93c36344dbe3049a');
    expect(keyFor('run-1')).toBe(createHash('sha1').update('run-1').digest('hex'));
    expect(keyFor('short1')).toMatch(/^[0-9a-f]{40}$/);
  });

  it('archive → bundle → archive with verify equal at each hop; comet_ml\'s own schemas pass; a re-run adds nothing', async () => {
    const bundle = join(tmp, 'bundle-w');
    await job('export', archives, bundle);
    expectEqual(await verify(archives, `bundle:${bundle}`));

    const out = join(tmp, 'written');
    await job('copy', `bundle:${bundle}`, `comet-offline:${out}?workspace=ws`);
    expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toEqual([`${logged.key}.zip`]);
    expectEqual(await verify(`bundle:${bundle}`, `comet-offline:${out}`));
    expectEqual(await verify(archives, `comet-offline:${out}`));

    const checked = await validated(out);
    expect(checked.errors).toEqual([]);
    expect(checked.types).toMatchObject({ metric_msg: expect.any(Number), parameter_msg: expect.any(Number), log_other: expect.any(Number), file_upload: expect.any(Number), standard_output: expect.any(Number), html: 1, installed_packages: 1 });
    expect(checked.types.metric_msg).toBe((await validated(archives)).types.metric_msg);

    // a re-run finds the archive complete and adds nothing
    const before = statSync(join(out, `${logged.key}.zip`)).mtimeMs;
    expect((await job('copy', `bundle:${bundle}`, `comet-offline:${out}`)).copied.runs).toBe(0);
    expect(statSync(join(out, `${logged.key}.zip`)).mtimeMs).toBe(before);

    // a copy killed part way leaves only its staging folder, which the next run discards and redoes
    rmSync(join(out, `${logged.key}.zip`));
    const staging = join(out, '.trackshift-staging', logged.key);
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'messages.json'), '{"type": "metric_msg", "payload": {');
    expect((await job('copy', `bundle:${bundle}`, `comet-offline:${out}`)).copied.runs).toBe(1);
    expect(readdirSync(join(out, '.trackshift-staging'))).toEqual([]);
    expectEqual(await verify(archives, `comet-offline:${out}`));
  }, 600_000);
});

describe('comet-offline from elsewhere', () => {
  it('memory (every series type, fractional steps, forks, typed config, summary) → archives → bundle, verify equal; schemas pass', async () => {
    const src = richStore(memoryStore(`rich-comet-${process.pid}`)).uri;
    const out = join(tmp, 'from-memory');
    await job('copy', src, `comet-offline:${out}?workspace=team`);
    expectEqualRuns(await verify(src, `comet-offline:${out}`), 2);
    const checked = await validated(out);
    expect(checked.errors).toEqual([]);
    expect(checked.archives).toBe(2);
    // a copy of the copy names the archives' runs as its source: each step of the chain is compared
    const bundle = join(tmp, 'bundle-from-comet');
    await job('export', `comet-offline:${out}`, bundle);
    expectEqualRuns(await verify(`comet-offline:${out}`, `bundle:${bundle}`), 2);
  }, 300_000);
});

describe('comet-offline ↔ MLflow server', () => {
  let server: MlflowServer | undefined;
  afterAll(async () => server?.stop());

  it('archive → MLflow → archive with verify equal at each hop; a re-run copies nothing', async () => {
    server = await startMlflowServer();
    await job('copy', archives, server.url);
    expectEqual(await verify(archives, server.url));
    expect((await job('copy', archives, server.url)).copied.runs).toBe(0);

    // and back: MLflow's run (string params, tags with values, its own run id as the key) into an
    // archive; only experiment "proj": MLflow's empty Default experiment has no archive to be
    const out = join(tmp, 'from-mlflow');
    const selection = { ...emptySelection(), experiments: [logged.project] };
    const copy = async () => {
      const report = await runJob({ command: 'copy', source: server!.url, destination: `comet-offline:${out}`, selection, workers: 2, artifactWorkers: 2, dryRun: false, stateDir: join(tmp, `state-mlflow-${Date.now()}`), env: {} });
      expect(report.failed).toEqual([]);
      return report;
    };
    expect((await copy()).copied.runs).toBe(1);
    const mlflow = await openSource(server.url);
    try {
      const proj = (await list(mlflow.listExperiments())).find((e) => e.name === logged.project)!;
      const [run] = await list(mlflow.listRuns(proj.id, { includeDeleted: false }));
      // an MLflow run id (32 hex digits) is a valid Comet key: the archive is named after it
      expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toEqual([`${run!.id}.zip`]);
    } finally {
      await mlflow.close?.();
    }
    expectEqual(await runVerify({ source: server.url, destination: `comet-offline:${out}`, selection, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} }));
    expect((await validated(out)).errors).toEqual([]);
    expect((await copy()).copied.runs).toBe(0);
  }, 600_000);
});

describe('comet-offline memory and long histories', () => {
  /** An archive of `points` loss points written by the real client, and the heap the reader grows by while reading them all. */
  async function peakHeapReading(points: number): Promise<{ dir: string; peak: number; read: number; maxPage: number }> {
    const dir = join(tmp, `big-${points}`);
    await python('test/fixtures/comet_offline.py', [dir, String(points)]);
    const { result, peak } = await peakHeapGrowth(async (measure) => {
      const source = await openSource(dir);
      let read = 0;
      let maxPage = 0;
      try {
        const run = await onlyRun(source);
        for await (const page of source.readMetric(run, 'loss')) {
          read += page.length;
          maxPage = Math.max(maxPage, page.length);
          measure();
        }
      } finally {
        await source.close?.();
      }
      return { read, maxPage };
    });
    return { dir, peak, ...result };
  }

  it('reads 50,000 points page by page in flat memory, and copies every one into an archive', async () => {
    const small = await peakHeapReading(5_000);
    const large = await peakHeapReading(50_000);
    // every point, and the one logged twice at step 7
    expect([small.read, large.read]).toEqual([5_001, 50_001]);
    expect(large.maxPage).toBeLessThanOrEqual(1000);
    console.log(`comet-offline: peak live heap growth ${(small.peak / 2 ** 20).toFixed(1)} MB for 5,000 points, ${(large.peak / 2 ** 20).toFixed(1)} MB for 50,000`);
    // messages.json of 50,000 points is ~36 MB of text: it is never held
    expect(large.peak).toBeLessThan(Math.max(small.peak, 0) + 16 * 1024 * 1024);

    const out = join(tmp, 'big-written');
    await job('copy', large.dir, `comet-offline:${out}`);
    expectEqual(await verify(large.dir, `comet-offline:${out}`));
    expect((await validated(out)).errors).toEqual([]);

    // kill -9 while the archive is being written: no archive at all, and a re-run writes it whole
    const killed = join(tmp, 'big-killed');
    const { child, done } = startCli(['copy', large.dir, `comet-offline:${killed}`, '--state-dir', join(tmp, 'state-killed')]);
    const staging = join(killed, '.trackshift-staging');
    for (let waited = 0; !existsSync(staging) || readdirSync(staging).length === 0; waited += 10) {
      if (waited > 60_000) throw new Error('the copy never started writing');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    expect(readdirSync(killed).filter((n) => n.endsWith('.zip'))).toEqual([]);
    expect((await job('copy', large.dir, `comet-offline:${killed}`)).copied.runs).toBe(1);
    expect(readdirSync(staging)).toEqual([]);
    expectEqual(await verify(large.dir, `comet-offline:${killed}`));
  }, 600_000);
});
