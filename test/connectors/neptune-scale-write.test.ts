/**
 * `neptune-scale://WORKSPACE/PROJECT` as a destination, on the Neptune-shaped test server's 3.x
 * API: the rich memory runs (every series type, typed config, a fork at a fractional step, files)
 * copied with the CLI (through a bundle, which the CLI reads) and read back by the real
 * neptune-query 1.8 client value by value; the project created when missing and said to exist
 * when it did; a re-run adds nothing; runs written four at a time; a copy killed with SIGKILL
 * part way and run again leaves each run once, complete, with every point once; 429/503 on
 * ingest, check, signed URLs and storage ridden out; the server's refusals surface as a run's
 * failure (naming the code) or its warning (counted by code).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryRun, memoryStore } from '../../src/connectors/memory/index.js';
import { NeptuneScaleApi } from '../../src/connectors/neptune-scale/api.js';
import type { MetricPoint, Run, TypedPoint } from '../../src/model/index.js';
import { cli, startCli } from '../cli/run-cli.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import { expectEqual, job } from '../helpers/jobs.js';
import { killWhen, killWhileRunInFlight } from '../helpers/kill.js';
import { richStore } from '../helpers/rich-run.js';
import { runTool } from '../harness/mlflow-server.js';
import { startNeptuneServer, type NeptuneServer, type ScaleRun } from '../harness/neptune-server/index.js';

interface ReadRun {
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<[number, unknown, number]> }>;
  files: Record<string, string>;
  fileSeries: Record<string, Array<[number, string]>>;
}
interface ReadBack {
  experiments: string[];
  runs: Record<string, ReadRun>;
}

const T0 = 1_767_000_000_000;
const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-scale-write-'));
const png = (n: number) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64 + n, n)]).toString('hex');

/** `runs` runs of `points` points in 3 metrics and a string series each, and a file: large enough to be cut off part way. */
function manyStore(name: string, runs: number, points: number) {
  const store = memoryStore(name);
  store.data.experiments.set('e', { id: 'e', name: 'many', tags: {}, lifecycle: 'active' });
  for (let r = 1; r <= runs; r++) {
    const run: Run = {
      id: `many-${r}`,
      experimentId: 'e',
      name: `run ${r}`,
      status: 'FINISHED',
      startTime: T0,
      endTime: T0 + points,
      lifecycle: 'active',
      params: { r: String(r) },
      tags: {},
      inputs: [],
      series: [{ key: 'm0', type: 'float' }, { key: 'm1', type: 'float' }, { key: 'm2', type: 'float' }, { key: 'log', type: 'string' }],
    };
    const metrics = new Map<string, MetricPoint[]>();
    for (let m = 0; m < 3; m++) metrics.set(`m${m}`, Array.from({ length: points }, (_, i) => ({ key: `m${m}`, step: i, timestamp: T0 + i, value: r * 1000 + m + i / points })));
    const log: TypedPoint[] = Array.from({ length: points / 10 }, (_, i) => ({ step: i, timestamp: T0 + i, value: `run ${r} line ${i} ${'-'.repeat(200)}` }));
    store.data.runs.set(run.id, memoryRun({ run, metrics, series: new Map([['log', log]]), artifacts: new Map([['out/result.txt', Buffer.from(`result of run ${r}`)]]) }));
  }
  return store;
}

const stringOf = (run: ScaleRun, path: string) => {
  const a = run.attributes.get(path);
  return a?.type === 'string' ? a.value : undefined;
};
const pointsOf = (run: ScaleRun, path: string) => {
  const a = run.attributes.get(path);
  return a && 'points' in a ? a.points : [];
};

describe('neptune-scale:// as a destination', () => {
  let server: NeptuneServer;
  let env: NodeJS.ProcessEnv;
  /** the rich memory runs, exported to a bundle that the CLI reads */
  let rich: string;
  /** what neptune-query read of the first copy, compared with later ones */
  let first: ReadBack;

  beforeAll(async () => {
    // each request is "not processed yet" at its first check, as a busy server answers: the writer polls again
    server = await startNeptuneServer({ workspaces: ['ws'], projects: [['ws', 'existing', 'EX']], pendingChecks: 1 });
    env = { NEPTUNE_API_TOKEN: server.token };
    richStore(memoryStore('scale-rich'));
    rich = join(temp(), 'rich');
    await job(temp(), 'export', 'memory:scale-rich', rich);
  }, 300_000);
  afterAll(() => server?.close());

  /** A whole project as neptune-query reads it. */
  const readBack = async (project: string): Promise<ReadBack> => {
    const out = join(temp(), 'read.json');
    await runTool('neptune-query', 'python', ['test/fixtures/neptune_scale_read_back.py', project, out, temp()], server.scaleEnv());
    return JSON.parse(readFileSync(out, 'utf8')) as ReadBack;
  };

  const verifyCopy = (source: string, destination: string) => runVerify({ source, destination, selection: emptySelection(), workers: 2, artifactWorkers: 2, maxDifferences: 50, env });

  it('copies the rich runs as neptune-query reads them back, creating the project; a re-run adds nothing', async () => {
    const state = temp();
    const reportFile = join(state, 'report.json');
    const copied = await cli(['copy', rich, 'neptune-scale://ws/fresh', '--state-dir', state, '--report', reportFile], env);
    const output = copied.stdout + copied.stderr;
    expect(copied.code, output).toBe(0);
    expect(output).not.toContain(server.token);
    expect(output).toContain('neptune-scale://ws/fresh: the project did not exist: created it (private)');
    expect(server.store.project('ws/fresh')).toBeDefined();
    // each run's page as neptune-scale's get_run_url() builds it
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { runUrls: Array<{ source: string; destinationUrl: string }> };
    expect(report.runUrls.map((u) => u.destinationUrl).sort()).toEqual([`${server.url}/ws/fresh/-/run/?customId=run-fork`, `${server.url}/ws/fresh/-/run/?customId=run-main`]);
    expect(output).toContain(`${server.url}/ws/fresh/-/run/?customId=run-main`);

    first = await readBack('ws/fresh');
    expect(first.experiments).toEqual(['rich-experiment']);
    expect(Object.keys(first.runs).sort()).toEqual(['run-fork', 'run-main']);
    const main = first.runs['run-main']!;
    const attribute = (name: string) => main.attributes[name];
    // typed config with its types; the neptune-mlflow layout for a run from elsewhere
    expect(attribute('optimizer/name')).toEqual({ type: 'string', value: 'adamw' });
    expect(attribute('optimizer/lr')).toEqual({ type: 'float', value: 0.0003 });
    expect(attribute('optimizer/betas/0')).toEqual({ type: 'float', value: 0.9 });
    expect(attribute('batch_size')).toEqual({ type: 'int', value: 64 });
    expect(attribute('use_amp')).toEqual({ type: 'bool', value: true });
    expect(attribute('started')).toEqual({ type: 'datetime', value: T0 - 5_000 });
    expect(attribute('datasets')).toEqual({ type: 'string_set', value: ['train-v2', 'valid-v2'] });
    expect(attribute('weird/not a number')).toEqual({ type: 'float', value: 'NaN' });
    expect(attribute('weird/a|b/c')).toEqual({ type: 'string', value: 'x'.repeat(300) });
    expect(attribute('run_data/params/plain')).toEqual({ type: 'string', value: 'string param' });
    expect(attribute('run_data/tags/team')).toEqual({ type: 'string', value: 'vision' });
    expect(attribute('run_info/status')).toEqual({ type: 'string', value: 'FINISHED' });
    expect(attribute('run_info/user_id')).toEqual({ type: 'string', value: 'ana' });
    expect(attribute('run_info/end_time')).toEqual({ type: 'datetime', value: T0 + 100_000 });
    expect(attribute('run_info/source_state')).toEqual({ type: 'string', value: 'idle' });
    expect(attribute('run_info/experiment_tags')).toEqual({ type: 'string', value: '{"team":"vision"}' });
    expect(attribute('sys/group_tags')).toEqual({ type: 'string_set', value: ['sweep-7'] });
    // CreateRun: the run id, the experiment, the source's start as the creation time
    expect(attribute('sys/custom_run_id')).toEqual({ type: 'string', value: 'run-main' });
    expect(attribute('sys/name')).toEqual({ type: 'string', value: 'rich-experiment' });
    expect(attribute('sys/creation_time')).toEqual({ type: 'datetime', value: T0 - 10_000 });
    // provenance, and the mark of a complete copy
    expect(attribute('run_data/tags/trackshift.source.id')).toEqual({ type: 'string', value: 'run-main' });
    expect(attribute('run_data/tags/trackshift.complete')).toEqual({ type: 'string', value: 'true' });

    // series with the source's steps and times; what Neptune refuses is in the .trackshift/ sidecars instead
    expect(main.series.accuracy!.points).toEqual(Array.from({ length: 1200 }, (_, i) => [i, i / 1200, T0 + i]));
    expect(main.series['train/loss']).toEqual({ type: 'float_series', points: [[0, 2.5, T0], [0.5, 1.25, T0 + 10], [123456789.123456, 1e-300, T0 + 40]] });
    // seed 001's monitoring/ → runtime/ is for runs from Neptune: a run from elsewhere keeps its paths
    expect(main.series['monitoring/cpu']!.points).toEqual([[0, 12.5, T0], [1, 50, T0 + 1000]]);
    expect(main.series['system/gpu_utilization_percentage']!.points).toEqual([[0, 99, T0]]);
    expect(main.series['runtime/stdout']).toEqual({ type: 'string_series', points: [[0, 'epoch 1/3', T0], [1, 'héllo\twörld\nsecond line', T0 + 1]] });
    expect(main.series['weights/hist']).toEqual({
      type: 'histogram_series',
      points: [
        [0, { type: 'COUNTING', edges: [-1, 0, 1], values: [3, 5] }, T0],
        [1.5, { type: 'DENSITY', edges: ['-Infinity', 0, 0.5, 'Infinity'], values: [0.25, 'NaN', 0.75] }, T0 + 3],
      ],
    });
    // a file series' files under the run's folder and their own paths, as the readers give them back
    expect(main.series['images/predictions']!.points.map(([step, ref]) => [step, ref])).toEqual([
      [0, { path: 'run-main-e4684cba4136f052/images/predictions/step_0.png', size: 72, mimeType: 'image/png' }],
      [0.5, { path: 'run-main-e4684cba4136f052/images/predictions/step_0_5.png', size: 73, mimeType: 'image/png' }],
    ]);
    expect(main.fileSeries['images/predictions']).toEqual([[0, png(0)], [0.5, png(1)]]);
    // the artifact as a file attribute at its path, its bytes downloaded
    expect(main.files['notes/readme.txt']).toBe(Buffer.from('artifact bytes').toString('hex'));
    expect(Object.keys(main.files).filter((k) => k.startsWith('.trackshift/')).sort()).toEqual(['.trackshift/run.json', '.trackshift/series/0.jsonl', '.trackshift/series/4.jsonl', '.trackshift/series/5.jsonl', '.trackshift/series/6.jsonl']);

    // the fork: created from run-main at step 0.5, its own point after it (neptune-query follows the lineage)
    const fork = first.runs['run-fork']!;
    expect(fork.series['train/loss']!.points).toEqual([[0, 2.5, T0], [0.5, 1.25, T0 + 10], [0.75, 0.5, T0 + 200_001]]);
    expect(fork.attributes['sys/creation_time']).toEqual({ type: 'datetime', value: T0 + 200_000 });
    expect(server.scale.run('ws/fresh', 'run-fork')!.fork).toMatchObject({ parent: { runId: 'run-main' }, step: 0.5 });
    // nothing refused, nothing unanswered
    expect(server.scale.refusals()).toEqual([]);
    expect(server.unhandled).toEqual([]);
    // trackshift's own reader gives back every value, what Neptune refuses included, and the config whose key
    // holds "/" (which Neptune's paths cannot tell from a namespace) from the .trackshift/ encoding
    expectEqual(await verifyCopy(rich, 'neptune-scale://ws/fresh'));

    // a re-run (a new state folder: found by provenance, not by the journal) adds nothing
    const ingests = server.calls.get('ingest');
    const again = await cli(['copy', rich, 'neptune-scale://ws/fresh', '--state-dir', temp()], env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/skipped run run-main: already in the destination/);
    expect(again.stdout + again.stderr).toContain('neptune-scale://ws/fresh: the project existed: the runs are added to it');
    expect(server.calls.get('ingest')).toBe(ingests);
    expect(server.scale.runs('ws/fresh')).toHaveLength(2);
  }, 300_000);

  it('rides out 429 and 503 on ingest, status checks, signed URLs and storage, into a project that existed', async () => {
    server.failNext('ingest', { status: 429, retryAfter: 0, times: 2 });
    server.failNext('ingest', { status: 503 });
    server.failNext('checkStatus', { status: 503, times: 2 });
    server.failNext('signedUrl', { status: 429, retryAfter: 0 });
    server.failNext('storagePut', { status: 503 });
    const copied = await cli(['copy', rich, 'neptune-scale://ws/existing', '--state-dir', temp()], env);
    const output = copied.stdout + copied.stderr;
    expect(copied.code, output).toBe(0);
    expect(output).toContain('neptune-scale://ws/existing: the project existed: the runs are added to it');
    expect(output).toMatch(/destination: retried .*HTTP 429/);
    const read = await readBack('ws/existing');
    expect(Object.keys(read.runs).sort()).toEqual(['run-fork', 'run-main']);
    // the same runs as the copy without faults: every series and file
    for (const id of ['run-main', 'run-fork']) {
      expect(read.runs[id]!.series).toEqual(first.runs[id]!.series);
      expect(read.runs[id]!.files).toEqual(first.runs[id]!.files);
      expect(read.runs[id]!.fileSeries).toEqual(first.runs[id]!.fileSeries);
    }
    expect(server.scale.refusals()).toEqual([]);
  }, 300_000);

  it('writes runs four at a time, and a copy killed with SIGKILL part way and run again leaves each run once, every point once', async () => {
    manyStore('scale-many', 6, 20_000);
    const many = join(temp(), 'many');
    await job(temp(), 'export', 'memory:scale-many', many);
    const expectComplete = (project: string) => {
      const runs = server.scale.runs(project);
      expect(runs.map((r) => stringOf(r, 'run_data/tags/trackshift.source.id')).sort()).toEqual(['many-1', 'many-2', 'many-3', 'many-4', 'many-5', 'many-6']);
      for (const run of runs) {
        const r = Number(run.runId.split('-')[1]);
        expect(stringOf(run, 'run_data/tags/trackshift.complete'), run.runId).toBe('true');
        for (let m = 0; m < 3; m++) expect(pointsOf(run, `m${m}`).map((p) => [p.step, p.value]), `${run.runId} m${m}`).toEqual(Array.from({ length: 20_000 }, (_, i) => [i, r * 1000 + m + i / 20_000]));
        expect(pointsOf(run, 'log').map((p) => p.step)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
      }
    };

    const parallel = await cli(['copy', many, 'neptune-scale://ws/parallel', '--workers', '4', '--state-dir', temp()], env);
    expect(parallel.code, parallel.stdout + parallel.stderr).toBe(0);
    expectComplete('ws/parallel');

    const state = temp();
    const args = ['copy', many, 'neptune-scale://ws/killed', '--workers', '1', '--state-dir', state];
    const { child, done } = startCli(args, env);
    // killed once a run is there with some of its points but not all: a copy cut off part way
    await killWhen(() => server.scale.runs('ws/killed').some((r) => stringOf(r, 'run_data/tags/trackshift.complete') === undefined && pointsOf(r, 'm0').length > 0), child, done);
    expect((await done).signal).toBe('SIGKILL');
    const cut = server.scale.runs('ws/killed').find((r) => stringOf(r, 'run_data/tags/trackshift.complete') === undefined)!;
    const held = pointsOf(cut, 'm0').length;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(20_000);

    const rerun = await cli(args, env);
    const output = rerun.stdout + rerun.stderr;
    expect(rerun.code, output).toBe(0);
    // the cut-off run resumed in place (Neptune 3.x cannot empty it), only what it lacked sent
    expect(output).toMatch(new RegExp(`run ${cut.runId}: resumed the copy cut off before \\(Neptune 3.x runs cannot be emptied\\): [1-9]\\d* point\\(s\\) it held already were not sent again`));
    expectComplete('ws/killed');
    expect(server.scale.runs('ws/killed')).toHaveLength(6);
    expectEqual(await verifyCopy(many, 'neptune-scale://ws/killed'), 6);
    expect(server.scale.refusals().filter((r) => r.runId !== cut.runId)).toEqual([]);

    // killed just after a run was created (the shared kill helper), two at a time: a run cut off before its
    // attributes is created again (RUN_DUPLICATE, written into), one cut off after them is resumed
    const refusedBefore = server.scale.refusals().length;
    const early = ['copy', many, 'neptune-scale://ws/killed-early', '--workers', '2', '--state-dir', temp()];
    const second = startCli(early, env);
    await killWhileRunInFlight(early[early.length - 1]!, second.child, second.done);
    expect((await second.done).signal).toBe('SIGKILL');
    const again = await cli(early, env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/resumed the copy cut off before|created the same way \(RUN_DUPLICATE/);
    expectComplete('ws/killed-early');
    expectEqual(await verifyCopy(many, 'neptune-scale://ws/killed-early'), 6);
    expect(server.scale.refusals().slice(refusedBefore).filter((r) => r.code !== 'RUN_DUPLICATE')).toEqual([]);
  }, 600_000);

  it('says what the server refused: a fork whose parent is not there fails its run, naming the code; refused values are counted in a warning', async () => {
    // the fork alone: its parent is not in the project, which the server says (RUN_FORK_PARENT_NOT_FOUND)
    const alone = await cli(['copy', rich, 'neptune-scale://ws/forks', '--run-id', 'run-fork', '--state-dir', temp()], env);
    expect(alone.code, alone.stdout + alone.stderr).toBe(1);
    expect(alone.stdout + alone.stderr).toMatch(/FAILED run run-fork: .*Neptune refused run "run-fork" in ws\/forks \(RUN_FORK_PARENT_NOT_FOUND\): the run it is forked from is not in the project; copy that run too/);
    expect(server.scale.runs('ws/forks')).toEqual([]);

    // a server that refuses NaN (older Neptune backends): the config's NaN is refused, and said so
    const strict = await startNeptuneServer({ workspaces: ['ws'], refuseNanInf: true });
    try {
      const copied = await cli(['copy', rich, 'neptune-scale://ws/strict', '--state-dir', temp()], { NEPTUNE_API_TOKEN: strict.token });
      expect(copied.code, copied.stdout + copied.stderr).toBe(0);
      expect(copied.stdout + copied.stderr).toMatch(/run run-main: the Neptune server refused \d+ × FLOAT_VALUE_NAN_INF_UNSUPPORTED of this run's values; they are not in the copy/);
      expect(stringOf(strict.scale.run('ws/strict', 'run-main')!, 'run_data/tags/trackshift.complete')).toBe('true');
    } finally {
      await strict.close();
    }
  }, 300_000);

  it('writes into a run of the same id created the same way (RUN_DUPLICATE), and refuses one created otherwise (RUN_CONFLICTING)', async () => {
    // runs made before the copy, as another client (or a copy cut off before its first attributes) makes them
    const api = new NeptuneScaleApi({ token: server.token, origin: 'the test', side: 'destination' });
    try {
      expect(await api.createProject('ws', 'taken')).toBe('created');
      expect(await api.createProject('ws', 'taken')).toBe('existed');
      await api.ingest({ project: 'ws/taken', runId: 'run-main', operation: { case: 'create', value: { family: 'run-main' } } });
      await api.ingest({ project: 'ws/taken', runId: 'run-fork', operation: { case: 'create', value: { family: 'run-fork' } } });
    } finally {
      await api.close();
    }
    const copied = await cli(['copy', rich, 'neptune-scale://ws/taken', '--state-dir', temp()], env);
    const output = copied.stdout + copied.stderr;
    expect(copied.code, output).toBe(1);
    expect(output).toMatch(/run run-main: the project already had the run "run-main", created the same way \(RUN_DUPLICATE/);
    expect(output).toMatch(/FAILED run run-fork: Neptune refused run "run-fork" in ws\/taken \(RUN_CONFLICTING\): the project already has a run with this id, created otherwise/);
    expect(stringOf(server.scale.run('ws/taken', 'run-main')!, 'run_data/tags/trackshift.complete')).toBe('true');
    // nothing of the copy went into the run it does not own
    expect([...server.scale.run('ws/taken', 'run-fork')!.attributes.keys()].filter((k) => !k.startsWith('sys/'))).toEqual([]);
  }, 300_000);

  it('names the workspace when it does not exist, and creates nothing in a dry run', async () => {
    const missing = await cli(['copy', rich, 'neptune-scale://nowhere/proj', '--state-dir', temp()], env);
    expect(missing.code, missing.stdout + missing.stderr).toBe(1);
    expect(missing.stdout + missing.stderr).toMatch(/FAILED run run-main: .*the Neptune server at \S+ has no workspace nowhere \(or the token cannot see it\); create it in Neptune first/);
    expect(server.store.project('nowhere/proj')).toBeUndefined();
    const dry = await cli(['copy', rich, 'neptune-scale://ws/dry', '--dry-run', '--state-dir', temp()], env);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(server.store.project('ws/dry')).toBeUndefined();
  }, 300_000);
});
