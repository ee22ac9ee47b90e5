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
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCometServer, type CometServer } from '../harness/comet-server/index.js';
import { pythonEnv } from '../harness/mlflow-server.js';

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
  const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), [join(ROOT, script), ...args], { cwd: repo, maxBuffer: 200_000_000, env });
  return stdout.trim().split('\n').at(-1)!;
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

interface Logged {
  key: string;
  workspace: string;
  project: string;
  name: string;
  tags: string[];
  params: Record<string, unknown>;
  loss: Array<{ step: number; epoch: number; value: number | string }>;
}

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
let logged: Logged;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-comet-server-test-'));
  venv = await pythonEnv('comet');
  repo = join(tmp, 'repo');
  archives = join(tmp, 'archives');
  mkdirSync(repo);
  const git = (...args: string[]) => execFileAsync('git', ['-c', 'user.name=fixture', '-c', 'user.email=fixture@example.com', ...args], { cwd: repo });
  await git('init', '-q');
  writeFileSync(join(repo, 'train.txt'), 'one\n');
  await git('add', 'train.txt');
  await git('commit', '-q', '-m', 'first');
  writeFileSync(join(repo, 'train.txt'), 'one\ntwo\n');
  server = await startCometServer();
  logged = JSON.parse(await python('test/fixtures/comet_offline.py', [archives, '3000'])) as Logged;
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
