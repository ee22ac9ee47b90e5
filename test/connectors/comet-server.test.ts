/**
 * The Comet-shaped test server (test/harness/comet-server/) checked with the real, pinned
 * comet_ml client: offline archives written by comet_ml's OfflineExperiment and by trackshift's
 * comet-offline destination are uploaded with the real `comet upload` with nothing skipped and no
 * call the server did not answer; a re-upload adds nothing; a metric longer than 15,000 points
 * arrives whole when the client's own sampling is raised (and is cut to 15,000 by the client by
 * default); the real comet_ml.API reads back what was logged; a bad key gets 401 (and the
 * client's InvalidAPIKey); the online Experiment honours a 429 with Retry-After-Custom; the
 * sender retries 5xx.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCometServer, type CometServer } from '../harness/comet-server/index.js';
import { pythonEnv } from '../harness/mlflow-server.js';
import { fixtureOutput, gitRepoWithChange, type OfflineLogged } from '../helpers/comet.js';
import { job } from '../helpers/jobs.js';
import { richStore } from '../helpers/rich-run.js';
import { memoryStore } from '../../src/connectors/memory/index.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');

let tmp: string;
let repo: string;
let venv: string;
let server: CometServer;

/** the client's environment: this server, this key, no ~/.comet.config of the machine */
function cometEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: tmp,
    PYTHONUNBUFFERED: '1',
    MPLCONFIGDIR: join(tmp, 'mpl'),
    COMET_URL_OVERRIDE: server.clientlibUrl,
    COMET_API_KEY: server.apiKey,
    COMET_DISABLE_ANNOUNCEMENT: '1',
    ...extra,
  };
}

async function python(script: string, args: string[], env: NodeJS.ProcessEnv = cometEnv()): Promise<string> {
  return fixtureOutput(venv, script, args, repo, env);
}

/** `comet upload` run for real; its whole output (the client logs to stderr) */
async function upload(zips: string[], extra: Record<string, string> = {}): Promise<{ code: number; log: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(join(venv, 'bin', 'comet'), ['upload', ...zips], { cwd: tmp, maxBuffer: 50_000_000, env: cometEnv(extra) });
    return { code: 0, log: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, log: e.stdout + e.stderr };
  }
}

/** what the client says when it skips or fails something */
const complaints = (log: string): string[] =>
  log
    .split('\n')
    .filter((l) => /error|skipp|invalid|fail|warning/i.test(l))
    // the client's own sampler notes that it cannot rank NaN/±Infinity: the points are still sent
    .filter((l) => !/is not a valid number \(float or int\), so the (min|max) sampling operation has been skipped/.test(l));

/** JSON numbers as the fixture prints them and the REST values: NaN and ±Infinity as strings */
const num = (v: number | string): number => (typeof v === 'number' ? v : Number(v));

const zipsIn = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.zip')).map((n) => join(dir, n));

interface ReadBack {
  workspaces: string[];
  projects: string[];
  project: Record<string, unknown>;
  experiments: Array<{
    key: string;
    name: string;
    metadata: Record<string, unknown>;
    tags: string[];
    params: Record<string, string>;
    others: Record<string, string>;
    metricsSummary: Record<string, string>;
    metrics: Record<string, Array<{ value: string; step: number | null; epoch: number | null; timestamp: number; context: string | null }>>;
    metricNames: string[];
    oneMetric: number;
    assets: Array<{ remote: boolean; link: string | null; fileName: string; type: string; step: number | null; epoch: number | null; context: string | null; metadata: string | null; size: number; sha256: string }>;
    html: string;
    output: string;
    systemDetails: Record<string, unknown>;
    installedPackages: string[];
    gitMetadata: Record<string, unknown>;
    hasGitPatch: boolean;
    graph: string | null;
  }>;
}

const readBack = async (workspace: string, project: string): Promise<ReadBack> => JSON.parse(await python('test/fixtures/comet_read_back.py', [workspace, project])) as ReadBack;

let archives: string;
let logged: OfflineLogged;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-comet-server-test-'));
  venv = await pythonEnv('comet');
  repo = join(tmp, 'repo');
  archives = join(tmp, 'archives');
  await gitRepoWithChange(repo);
  server = await startCometServer();
  logged = JSON.parse(await python('test/fixtures/comet_offline.py', [archives, '3000'])) as OfflineLogged;
}, 180_000);

afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('comet upload into the Comet-shaped server', () => {
  it("uploads the client's own archive with nothing skipped and every call answered", async () => {
    const { code, log } = await upload(zipsIn(archives));
    expect(code, log).toBe(0);
    expect(complaints(log), log).toEqual([]);
    expect(server.unhandled).toEqual([]);
    expect([...server.store.experiments.keys()]).toEqual([logged.key]);
  });

  it('comet_ml.API reads back what the client logged', async () => {
    const back = await readBack(logged.workspace, logged.project);
    expect(back.workspaces).toContain(logged.workspace);
    expect(back.projects).toEqual([logged.project]);
    expect(back.experiments).toHaveLength(1);
    const e = back.experiments[0]!;
    expect(e).toMatchObject({ key: logged.key, name: logged.name, graph: 'Sequential(Linear(4, 2))', html: '<p>replaced</p>', hasGitPatch: true });
    expect(e.metadata).toMatchObject({ experimentKey: logged.key, experimentName: logged.name, projectName: logged.project, workspaceName: logged.workspace, running: false, archived: false });
    expect(e.metadata.endTimeMillis as number).toBeGreaterThan(e.metadata.startTimeMillis as number);
    expect([...e.tags].sort()).toEqual([...logged.tags].sort());
    expect(e.params).toMatchObject({ lr: '0.001', epochs: '12', use_bn: 'true', optimizer: 'adam', 'model|dropout|p': '0.25', 'model|name': 'resnet' });
    expect(e.others).toMatchObject({ dataset: 'mnist', seed: '42', Name: logged.name });
    // every point, in whatever order the client's sampler sent them
    const key = (p: { step: number | null; epoch: number | null; value: string | number }) => `${p.step}|${p.epoch}|${String(num(p.value))}`;
    expect(e.metrics.loss!.map(key).sort()).toEqual(logged.loss.map(key).sort());
    expect(e.oneMetric).toBe(logged.loss.length);
    expect(e.metrics.acc!.map((p) => [p.step, p.value, p.context]).sort()).toEqual([[0, '0.5', 'train'], [1, '0.6', 'train'], [2, '0.7', 'train']]);
    expect(e.metricsSummary.acc).toBe('0.7');
    const assets = e.assets.map((a) => `${a.type} ${a.fileName} step=${a.step} epoch=${a.epoch}`).sort();
    expect(assets).toEqual([
      'asset data.csv step=1 epoch=null',
      'asset data.json step=3 epoch=1',
      'asset notes.txt step=2 epoch=null',
      'curve roc step=3 epoch=1',
      'histogram3d weights step=0 epoch=1',
      'histogram3d weights step=1 epoch=1',
      'image dot.png step=0 epoch=null',
      'image dot.png step=1 epoch=null',
      `source_code ${join(ROOT, 'test/fixtures/comet_offline.py')} step=null epoch=null`,
      'source_code train.py step=1 epoch=1',
      'text-sample auto-generated-in-the-backend step=0 epoch=0',
      'text-sample auto-generated-in-the-backend step=1 epoch=0',
      'text-sample auto-generated-in-the-backend step=2 epoch=0',
    ]);
    expect(e.assets.find((a) => a.fileName === 'data.csv')).toMatchObject({ remote: true, link: 's3://bucket/data.csv' });
    const notes = e.assets.find((a) => a.fileName === 'notes.txt')!;
    expect(notes).toMatchObject({ type: 'asset', metadata: '{"kind":"notes"}', sha256: createHash('sha256').update('hello asset\n').digest('hex') });
    expect(e.output).toContain('hello from stdout');
    expect(e.output).toContain('hello from stderr');
    expect(e.installedPackages).toContain('comet_ml==3.58.8');
    expect(e.gitMetadata.root).toBeTruthy();
    expect(server.unhandled).toEqual([]);
  });
});

describe('comet upload: re-uploads and long metrics', () => {
  it('a re-upload of the same archive adds no experiment and no point', async () => {
    const before = server.store.experiments.get(logged.key)!;
    const points = before.metrics.get('loss')!.length;
    const { log } = await upload(zipsIn(archives));
    expect(log).toMatch(/already/i);
    expect([...server.store.experiments.keys()]).toEqual([logged.key]);
    expect(server.store.experiments.get(logged.key)!.metrics.get('loss')).toHaveLength(points);
    expect(server.unhandled).toEqual([]);
  });

  it('keeps every point of a 20,000-point metric when the client samples no lower; the client cuts to 15,000 by default', async () => {
    const dirs = [join(tmp, 'many-default'), join(tmp, 'many-raised')];
    const [byDefault, raised] = await Promise.all(dirs.map(async (d) => (JSON.parse(await python('test/fixtures/comet_many_points.py', [d, '20000'])) as { key: string }).key));
    expect((await upload(zipsIn(dirs[0]!))).code).toBe(0);
    expect((await upload(zipsIn(dirs[1]!), { COMET_OFFLINE_SAMPLING_SIZE: '50000' })).code).toBe(0);
    const steps = (key: string) => server.store.experiments.get(key)!.metrics.get('long')!.map((p) => p.step);
    expect(steps(byDefault!)).toHaveLength(15_000);
    expect(steps(raised!).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
    // and the REST read gives all of them back
    const res = await fetch(`${server.url}/api/rest/v2/experiment/metrics/get-metric?experimentKey=${raised}&metricName=long`, { headers: { Authorization: server.apiKey } });
    expect(((await res.json()) as { metrics: unknown[] }).metrics).toHaveLength(20_000);
    expect(server.unhandled).toEqual([]);
  });

  it('uploads the archives trackshift writes with nothing skipped, and once only', async () => {
    const out = join(tmp, 'trackshift-archives');
    const src = richStore(memoryStore(`rich-comet-server-${process.pid}`)).uri;
    await job(tmp, 'copy', src, `comet-offline:${out}?workspace=team`);
    const zips = zipsIn(out);
    expect(zips.length).toBeGreaterThan(0);
    const { code, log } = await upload(zips);
    expect(code, log).toBe(0);
    expect(complaints(log), log).toEqual([]);
    expect(log).toContain(`Number of uploaded experiments: ${zips.length}`);
    const keys = zips.map((z) => basename(z, '.zip').split('-')[0]!);
    for (const key of keys) expect(server.store.experiments.has(key), key).toBe(true);
    // uploaded again: the keys are taken, nothing is added
    const points = (key: string) => [...server.store.experiments.get(key)!.metrics.values()].reduce((n, p) => n + p.length, 0);
    const before = keys.map(points);
    const size = server.store.experiments.size;
    expect((await upload(zips)).log).toMatch(/already/i);
    expect(server.store.experiments.size).toBe(size);
    expect(keys.map(points)).toEqual(before);
    expect(server.unhandled).toEqual([]);
  });

  it('retries the 5xx the server answers: every point arrives', async () => {
    const dir = join(tmp, 'many-5xx');
    const { key } = JSON.parse(await python('test/fixtures/comet_many_points.py', [dir, '3000'])) as { key: string };
    server.failNext('batch/logger/experiment/metric', { status: 503, times: 2 });
    const { code, log } = await upload(zipsIn(dir));
    expect(code, log).toBe(0);
    expect(server.injected.filter((i) => i.endsWith('metric 503'))).toHaveLength(2);
    expect(server.store.experiments.get(key)!.metrics.get('long')).toHaveLength(3000);
  });
});

describe('REST v2 writes and reads through comet_ml.API', () => {
  it('creates a project with notes and an experiment, logs everything, reads it back', async () => {
    const file = join(tmp, 'model.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 3, 255]));
    const back = JSON.parse(await python('test/fixtures/comet_rest_write.py', ['ws', 'restproj', file])) as Record<string, unknown>;
    expect(back).toMatchObject({
      project: { projectName: 'restproj', projectDescription: 'made by REST', workspaceName: 'ws' },
      notes: '# notes\nfrom REST',
      name: 'rest run',
      params: { lr: '0.01', layers: '3' },
      others: { dataset: 'cifar', Name: 'rest run' },
      html: '<b>one</b><i>two</i>',
      code: "print('hi')\n",
      graph: 'Net()',
      output: 'out line\nerr line\n',
      git: { user: 'me', root: '/repo', branch: 'main', parent: 'abc123', origin: 'git@example.com:r.git' },
      patch: true,
      os: 'Linux',
      hostname: 'box',
      installed: ['numpy==2.0'],
      additional: [{ key: 'accelerator', value: 'none' }],
      asset: { fileName: 'model.bin', type: 'model-element', step: 4, metadata: '{"k":"v"}', fileSize: 5 },
      assetSha256: createHash('sha256').update(Buffer.from([0, 1, 2, 3, 255])).digest('hex'),
    });
    expect(back.metadata).toMatchObject({ startTimeMillis: 1700000000000, endTimeMillis: 1700000600000, experimentName: 'rest run', projectName: 'restproj' });
    expect([...(back.tags as string[])].sort()).toEqual(['api', 'rest']);
    expect(back.loss).toEqual([
      [0, 0, '1', 1700000000000],
      [1, 0, '0.5', 1700000001000],
      [2, 1, '0.3333333333333333', 1700000002000],
      [3, 1, '0.25', 1700000003000],
      [4, 2, '0.2', 1700000004000],
      [5, null, 'NaN', expect.any(Number)],
    ]);
    const chart = (back.chart as Record<string, { metrics: Array<{ metricName: string; values: unknown[]; steps: number[] }> }>)[back.key as string]!;
    expect(chart.metrics[0]).toMatchObject({ metricName: 'loss', steps: [0, 1, 2, 3, 4, 5], values: [1, 0.5, 0.3333333333333333, 0.25, 0.2, 'NaN'] });
    expect(server.unhandled).toEqual([]);
  });

  it('pages experiments as page/size ask, sorted as sortBy/sortOrder ask', async () => {
    const get = async (query: string) => {
      const res = await fetch(`${server.url}/api/rest/v2/experiments?workspaceName=ws&projectName=proj&${query}`, { headers: { Authorization: server.apiKey } });
      return ((await res.json()) as { experiments: Array<{ experimentKey: string }> }).experiments.map((e) => e.experimentKey);
    };
    expect(await get('')).toEqual([logged.key]);
    expect(await get('page=1&size=1&sortBy=startTime&sortOrder=asc')).toEqual([logged.key]);
    expect(await get('page=2&size=1')).toEqual([]);
  });
});

describe('faults as Comet answers them', () => {
  it('a wrong or missing key: 401 in Comet error shape; comet_ml raises; comet upload creates nothing', async () => {
    for (const headers of [{ Authorization: 'wrong' }, {} as Record<string, string>]) {
      const res = await fetch(`${server.url}/api/rest/v2/workspaces`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 401, msg: expect.any(String) });
    }
    const count = server.store.experiments.size;
    const dir = join(tmp, 'bad-key');
    await python('test/fixtures/comet_many_points.py', [dir, '10']);
    const { log } = await upload(zipsIn(dir), { COMET_API_KEY: 'wrongKey' });
    expect(log).toMatch(/invalid.*api key|api key.*invalid/i);
    expect(server.store.experiments.size).toBe(count);
    const script = 'import comet_ml\ntry:\n    comet_ml.API().get_workspaces()\n    print("no error")\nexcept Exception as e:\n    print(type(e).__name__)';
    const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), ['-c', script], { env: cometEnv({ COMET_API_KEY: 'wrongKey' }) });
    expect(stdout.trim().split('\n').at(-1)).toBe('Unauthorized');
  });

  it('an unknown experiment or project: 404 in Comet error shape', async () => {
    const auth = { headers: { Authorization: server.apiKey } };
    for (const path of ['experiment/metadata?experimentKey=0123456789abcdef0123456789abcdef', 'project?workspaceName=ws&projectName=nope', 'experiments?workspaceName=ws&projectName=nope']) {
      const res = await fetch(`${server.url}/api/rest/v2/${path}`, auth);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ code: 404, msg: expect.any(String) });
    }
  });

  it('the online Experiment with a chosen key honours a 429 with Retry-After-Custom', async () => {
    const key = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';
    const since = server.history.length;
    server.failNext('batch/logger/experiment/metric', { status: 429, retryAfterCustom: 1 });
    const out = JSON.parse(await python('test/fixtures/comet_online.py', ['ws', 'online', key, '50'])) as { key: string };
    expect(out.key).toBe(key);
    const e = server.store.experiments.get(key)!;
    expect(e.metrics.get('m')!.map((p) => p.step).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(e).toMatchObject({ name: 'online run', tags: ['online'], running: false });
    expect(e.params.get('lr')!.at(-1)!.value).toBe('0.1');
    expect(e.others.get('phase')!.at(-1)!.value).toBe('one');
    // the batch the 429 held back arrives after later ones: order by step
    expect(e.metrics.get('odd')!.map((p) => [p.step, p.metricValue]).sort()).toEqual([[0, 'NaN'], [1, 'Infinity']]);
    expect(e.others.get('ratio')!.at(-1)!.value).toBe('NaN');
    const calls = server.history.slice(since).filter((h) => h.call.endsWith('batch/logger/experiment/metric'));
    expect(calls[0]!.status).toBe(429);
    const retried = calls.find((c, i) => i > 0 && c.status === 200)!;
    // the client waits Retry-After-Custom (1 s) plus its half second before sending again
    expect(retried.at - calls[0]!.at).toBeGreaterThanOrEqual(1400);
    expect(server.unhandled).toEqual([]);
  });
});

describe('the online Experiment with its own auto-logging on', () => {
  it('finds every endpoint it calls (environment, git, code, output, system metrics)', async () => {
    const key = 'b'.repeat(8) + '0123456789abcdef0123456789abcdef';
    await python('test/fixtures/comet_online.py', ['ws', 'auto', key, '20', '--auto']);
    const e = server.store.experiments.get(key)!;
    expect(e.metrics.get('m')).toHaveLength(20);
    expect(e.output.map((l) => l.output).join('')).toContain('COMET');
    expect(e.systemDetails).toMatchObject({ hostname: expect.any(String), installedPackages: expect.arrayContaining(['comet_ml==3.58.8']) });
    expect(e.gitMetadata).toMatchObject({ root: expect.any(String) });
    expect(e.gitPatch).not.toBeNull();
    expect(server.unhandled).toEqual([]);
  });
});

describe("cometx, Comet's own migration tools, against the server", () => {
  it('cometx download gives the layout it documents; cometx copy uploads it again; every call answered', async () => {
    const cometx = join(await pythonEnv('cometx'), 'bin', 'cometx');
    const out = join(tmp, 'cometx-download');
    const run = (args: string[], cwd = tmp) => execFileAsync(cometx, args, { cwd, maxBuffer: 50_000_000, env: cometEnv() });
    await run(['download', `${logged.workspace}/${logged.project}`, '--output', out]);
    const exp = join(out, logged.workspace, logged.project, logged.key);
    const files = readdirSync(exp, { recursive: true }).map(String);
    expect(files).toEqual(
      expect.arrayContaining(['metadata.json', 'metrics.jsonl', 'parameters.json', 'others.jsonl', 'system_details.json', join('assets', 'assets_metadata.jsonl'), join('assets', 'asset', 'notes.txt'), join('run', 'git_diff.patch'), join('run', 'output.txt'), join('run', 'graph_definition.txt')]),
    );
    expect(readdirSync(join(out, logged.workspace, logged.project))).toContain('project_metadata.json');
    const points = readFileSync(join(exp, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { metricName: string });
    expect(points.filter((p) => p.metricName === 'loss')).toHaveLength(logged.loss.length);
    expect(server.unhandled).toEqual([]);
    await run(['copy', `${logged.workspace}/${logged.project}`, 'ws/copied'], out);
    const copied = server.store.project('ws', 'copied');
    expect(copied).toBeDefined();
    const [e] = server.store.experimentsOf(copied!.projectId);
    // cometx makes a new key (the source's is lost, as comet-facts.md §2 says); the points all arrive
    expect(e!.key).not.toBe(logged.key);
    expect(e!.name).toBe(logged.name);
    expect(e!.metrics.get('loss')).toHaveLength(logged.loss.length);
    expect(server.unhandled).toEqual([]);
  });
});
