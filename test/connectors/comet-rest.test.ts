/**
 * comet:// — a Comet instance over its REST API, against the Comet-shaped test server
 * (test/harness/comet-server/, no live Comet instance): archives written by the real comet_ml
 * client (OfflineExperiment) are uploaded with the real `comet upload`, and trackshift reads back
 * what the archive holds; comet → comet in one command with a key per side is equal (verify) and a
 * re-run adds nothing; 401, 404, 429 with Retry-After-Custom and 5xx; 50,000 points go
 * archive → server → mlruns → archive whole; a copy killed (SIGKILL) and run again leaves no
 * duplicate experiment.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/connectors/comet/config.js';
import { connectorFor, openSource } from '../../src/connectors/resolve.js';
import type { Source } from '../../src/connectors/types.js';
import { runJob, type JobOptions, type Report } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import type { Run } from '../../src/model/index.js';
import { runVerify } from '../../src/verify/index.js';
import { startCli } from '../cli/run-cli.js';
import { startCometServer, type CometServer } from '../harness/comet-server/index.js';
import { pythonEnv } from '../harness/mlflow-server.js';
import { expectEqual } from '../helpers/jobs.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const SRC_KEY = 'sourceKey0123456789abcdefXYZ';
const DST_KEY = 'destinationKey0123456789abcd';

let tmp: string;
let repo: string;
let venv: string;
let server: CometServer;
let archives: string;
let logged: { key: string; project: string; name: string; tags: string[] };
let states = 0;

/** the client's environment: this server, this key, no ~/.comet.config of the machine */
function clientEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: tmp, PYTHONUNBUFFERED: '1', MPLCONFIGDIR: join(tmp, 'mpl'), COMET_URL_OVERRIDE: server.clientlibUrl, COMET_API_KEY: SRC_KEY, COMET_DISABLE_ANNOUNCEMENT: '1', ...extra };
}

/** trackshift's environment: one key per side, the server's URL for both */
function sides(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: tmp, COMET_URL_OVERRIDE: server.clientlibUrl, TRACKSHIFT_SRC_COMET_API_KEY: SRC_KEY, TRACKSHIFT_DST_COMET_API_KEY: DST_KEY, ...extra };
}

async function python(script: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), [join(ROOT, script), ...args], { cwd: repo, maxBuffer: 200_000_000, env: clientEnv() });
  return stdout.trim().split('\n').at(-1)!;
}

/** `comet upload` for real, with the client's sampling raised so that no point is dropped */
async function upload(zips: string[]): Promise<void> {
  const { stdout, stderr } = await execFileAsync(join(venv, 'bin', 'comet'), ['upload', ...zips], { cwd: tmp, maxBuffer: 50_000_000, env: clientEnv({ COMET_OFFLINE_SAMPLING_SIZE: '100000' }) });
  expect(`${stdout}${stderr}`).not.toMatch(/Traceback/);
}

const zipsIn = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.zip')).map((n) => join(dir, n));

function job(command: JobOptions['command'], source: string, destination: string, env: NodeJS.ProcessEnv = sides(), extra: Partial<JobOptions> = {}): Promise<Report> {
  return runJob({ command, source, destination, selection: emptySelection(), workers: 2, artifactWorkers: 2, dryRun: false, stateDir: join(tmp, `state-${states++}`), env, ...extra });
}

const verify = (source: string, destination: string, env: NodeJS.ProcessEnv = sides()) =>
  runVerify({ source, destination, selection: emptySelection(), workers: 2, artifactWorkers: 2, maxDifferences: 50, env });

/** verify of one experiment (an mlruns store also holds MLflow's empty Default) */
const verifyOnly = (experiment: string, source: string, destination: string) =>
  runVerify({ source, destination, selection: { ...emptySelection(), experiments: [experiment] }, workers: 2, artifactWorkers: 2, maxDifferences: 50, env: sides() });

async function list<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** Everything a source says of its runs: the runs, every series' points, every artifact's bytes. */
async function everything(source: Source): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const exp of await list(source.listExperiments())) {
    for (const run of await list(source.listRuns(exp.id, { includeDeleted: true }))) {
      const series: Record<string, unknown> = {};
      for (const info of run.series) series[info.key] = info.type === 'float' ? (await list(source.readMetric(run, info.key))).flat() : (await list(source.readSeries!(run, info))).flat();
      const artifacts: Record<string, string> = {};
      for (const file of await list(source.listArtifacts(run))) artifacts[file.path] = (await buffer(await source.readArtifact(run, file.path))).toString('base64');
      out[run.id] = { run, series, artifacts };
    }
  }
  return out;
}

const experimentsIn = (workspace: string, project: string) => {
  const p = server.store.project(workspace, project);
  return p ? server.store.experimentsOf(p.projectId) : [];
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-comet-rest-'));
  venv = await pythonEnv('comet');
  server = await startCometServer({ apiKeys: [SRC_KEY, DST_KEY] });
  repo = join(tmp, 'repo');
  mkdirSync(repo);
  const git = (...args: string[]) => execFileAsync('git', ['-c', 'user.name=fixture', '-c', 'user.email=fixture@example.com', ...args], { cwd: repo });
  await git('init', '-q');
  writeFileSync(join(repo, 'train.txt'), 'one\n');
  await git('add', 'train.txt');
  await git('commit', '-q', '-m', 'first');
  writeFileSync(join(repo, 'train.txt'), 'one\ntwo\n');
  archives = join(tmp, 'archives');
  logged = JSON.parse(await python('test/fixtures/comet_offline.py', [archives, '3000'])) as typeof logged;
  await upload(zipsIn(archives));
  for (const workspace of ['dst', 'dry', 'faults', 'kill']) server.store.workspaces.add(workspace);
}, 180_000);

afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('comet:// reader', () => {
  it('is recognised by its scheme', async () => {
    expect((await connectorFor('comet://ws/proj')).name).toBe('comet');
  });

  it('reads back what comet upload sent: the archive, point for point and byte for byte', async () => {
    const rest = await openSource('comet://ws/proj', sides());
    const archive = await openSource(archives);
    try {
      const fromRest = await everything(rest);
      const fromArchive = await everything(archive);
      expect(Object.keys(fromRest)).toEqual([logged.key]);
      const run = (fromRest[logged.key] as { run: Run }).run;
      expect(run).toMatchObject({ id: logged.key, name: logged.name, experimentId: 'proj', status: 'FINISHED', lifecycle: 'active' });
      expect(Object.keys(run.tags).sort()).toEqual([...logged.tags].sort());
      expect(comparable(fromRest)).toEqual(comparable(fromArchive));
      // what the REST API gives otherwise: the output as one text, the HTML as it ended, the git patch's bytes
      const restRun = fromRest[logged.key] as { series: Record<string, Array<{ value: string }>>; artifacts: Record<string, string> };
      const output = restRun.series.stdout!.map((p) => p.value).join('');
      expect(output).toContain('hello from stdout\n');
      expect(output).toContain('hello from stderr\n');
      expect(JSON.parse(Buffer.from(restRun.artifacts['comet/html.json']!, 'base64').toString())).toEqual([{ html: '<p>replaced</p>' }]);
      const archiveRun = fromArchive[logged.key] as { artifacts: Record<string, string> };
      const patch = Object.entries(archiveRun.artifacts).find(([path]) => path.startsWith('assets/git-patch/'))![1];
      expect(restRun.artifacts['comet/git_patch.zip']).toBe(patch);
    } finally {
      await rest.close?.();
      await archive.close?.();
    }
  });

  it('takes an archive in directly (comet-offline → comet://) and reads it back as the archive', async () => {
    server.store.workspaces.add('direct');
    const report = await job('copy', archives, 'comet://direct/proj');
    expect(report.failed).toEqual([]);
    const rest = await openSource('comet://direct/proj', sides());
    const archive = await openSource(archives);
    try {
      // a new key (the archive's is taken on this server: it was uploaded above) and the provenance tags aside
      const bare = (all: Record<string, unknown>) =>
        Object.values(comparable(all)).map((entry) => {
          const { run, ...rest } = entry as { run: Run };
          const { id: _id, tags, ...fields } = run;
          return { ...rest, run: { ...fields, tags: Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith('trackshift.'))) } };
        });
      expect(bare(await everything(rest))).toEqual(bare(await everything(archive)));
    } finally {
      await rest.close?.();
      await archive.close?.();
    }
    const [copied] = experimentsIn('direct', 'proj');
    expect(copied!.html).toBe('<p>replaced</p>');
    expect(copied!.gitPatch).toBeTruthy();
    expect(server.unhandled).toEqual([]);
  });

  it('pages through the experiments of a project', async () => {
    const rest = await openSource('comet://ws/proj', sides());
    try {
      const before = server.count('/api/rest/v2/experiments');
      expect((await list(rest.listRuns('proj', { includeDeleted: false }))).map((r) => r.id)).toEqual([logged.key]);
      expect(server.count('/api/rest/v2/experiments')).toBe(before + 1);
    } finally {
      await rest.close?.();
    }
  });
});

/** A client's names for the parameters it logs by itself (auto-logged, cli): REST gives no parameter's source. */
const CLIENT_PARAM = /^(curr_step|curr_epoch|run_arg_\d+)$/;

/**
 * What REST can carry of a run, to compare with the archive: without the client's own bookkeeping
 * that Comet's answers do not hold (local times of uploads, stdout and stderr apart, parameter
 * sources, upload parameters, message payloads), checked apart above.
 */
function comparable(all: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [id, entry] of Object.entries(all)) {
    const { run, series, artifacts } = entry as { run: Run; series: Record<string, Array<Record<string, unknown>>>; artifacts: Record<string, string> };
    const kept: Record<string, unknown> = {};
    for (const [key, points] of Object.entries(series)) {
      if (key === 'stdout' || key === 'stderr') continue;
      const float = run.series.find((s) => s.key === key)?.type === 'float';
      kept[key] = float
        ? [...points].sort((a, b) => (a.step as number) - (b.step as number) || (a.timestamp as number) - (b.timestamp as number) || String(a.value).localeCompare(String(b.value)))
        : points.map(({ timestamp: _t, ...rest }) => rest);
    }
    out[id] = {
      run: {
        ...run,
        series: run.series.filter((s) => s.key !== 'stdout' && s.key !== 'stderr').sort((a, b) => a.key.localeCompare(b.key)),
        config: run.config?.filter((e) => !CLIENT_PARAM.test(e.path.at(-1)!)),
      },
      series: kept,
      artifacts: Object.fromEntries(Object.entries(artifacts).filter(([path]) => path.startsWith('assets/') && !path.startsWith('assets/git-patch/'))),
    };
  }
  return out;
}

describe('comet:// → comet:// in one command', () => {
  it('copies into another workspace with its own key; verify finds them equal; a re-run adds nothing', async () => {
    const source = server.store.project('ws', 'proj')!;
    source.notes = '# notes\nof the project';
    source.projectDescription = 'what the project is';
    const report = await job('copy', 'comet://ws/proj', 'comet://dst/proj');
    expect(report.failed).toEqual([]);
    // the project is made with its description and notes
    expect(server.store.project('dst', 'proj')).toMatchObject({ notes: '# notes\nof the project', projectDescription: 'what the project is' });
    expect(experimentsIn('dst', 'proj')).toHaveLength(1);
    // a copy within one instance cannot take the source's key: the next deterministic one
    expect(experimentsIn('dst', 'proj')[0]!.key).not.toBe(logged.key);
    expectEqual(await verify('comet://ws/proj', 'comet://dst/proj'), 1);
    const writes = server.count('batch/logger/experiment/metric') + server.count('asset/upload') + server.count('logger/add/run');
    const again = await job('copy', 'comet://ws/proj', 'comet://dst/proj');
    expect(again.failed).toEqual([]);
    expect(experimentsIn('dst', 'proj')).toHaveLength(1);
    expect(server.count('batch/logger/experiment/metric') + server.count('asset/upload') + server.count('logger/add/run')).toBe(writes);
    expect(server.unhandled).toEqual([]);
    // neither key in what trackshift reports
    for (const key of [SRC_KEY, DST_KEY]) expect(JSON.stringify([report, again])).not.toContain(key);
  });

  it('between two instances (a URL and a key per side) keeps the source experiment key', async () => {
    const other = await startCometServer({ apiKeys: [DST_KEY] });
    try {
      const env = sides({ TRACKSHIFT_SRC_COMET_URL_OVERRIDE: server.clientlibUrl, TRACKSHIFT_DST_COMET_URL_OVERRIDE: other.clientlibUrl, COMET_URL_OVERRIDE: 'http://127.0.0.1:9/clientlib/' });
      // the destination refuses the source's key: the message names the destination's variable
      const refused = await job('copy', 'comet://ws/proj', 'comet://ws/proj', { ...env, TRACKSHIFT_DST_COMET_API_KEY: SRC_KEY }).then(
        (report) => JSON.stringify(report.failed),
        (e: Error) => e.message,
      );
      expect(refused).toMatch(/refused the Comet API key from TRACKSHIFT_DST_COMET_API_KEY/);
      expect(refused).not.toContain(SRC_KEY);
      expect(other.store.experiments.size).toBe(0);
      // the destination holds trackshift to a rate, as Comet's per-minute limits do: 429s with Retry-After-Custom, waited out
      other.limit('batch/logger/experiment/metric', { max: 2, windowMs: 1000 });
      const copied = await job('copy', 'comet://ws/proj', 'comet://ws/proj', env);
      expect(copied.failed).toEqual([]);
      expect(other.injected.filter((i) => i.endsWith(' 429')).length).toBeGreaterThan(0);
      expect(copied.retries.retries.find((r) => r.side === 'destination' && r.kind === 'HTTP 429')).toMatchObject({ retryAfter: expect.any(Number) });
      const p = other.store.project('ws', 'proj')!;
      expect(other.store.experimentsOf(p.projectId).map((e) => e.key)).toEqual([logged.key]);
      expectEqual(await verify('comet://ws/proj', 'comet://ws/proj', env), 1);
      expect(other.unhandled).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('through a cometx download folder and back (comet:// → cometx: → comet://) is equal', async () => {
    server.store.workspaces.add('viacometx');
    const folder = join(tmp, 'cometx');
    expect((await job('copy', 'comet://ws/proj', `cometx:${folder}?workspace=ws&project=proj`)).failed).toEqual([]);
    expect((await job('copy', `cometx:${folder}`, 'comet://viacometx/proj')).failed).toEqual([]);
    expectEqual(await verify('comet://ws/proj', 'comet://viacometx/proj'), 1);
  });

  it('names the experiment key with --run-id and plans without writing under --dry-run', async () => {
    const report = await job('copy', 'comet://ws/proj', 'comet://dry/proj', sides(), { dryRun: true, selection: { ...emptySelection(), runIds: [logged.key] } });
    expect(report.failed).toEqual([]);
    expect(server.store.project('dry', 'proj')).toBeUndefined();
    // the same from the command line
    const { done } = startCli(['copy', 'comet://ws/proj', 'comet://dry/proj', '--dry-run', '--run-id', logged.key, '--state-dir', join(tmp, 'dry-state')], { ...sides(), PATH: process.env.PATH! });
    const result = await done;
    expect(result.code, result.stderr).toBe(0);
    expect(`${result.stdout}${result.stderr}`).toContain('comet://dry/proj');
    expect(`${result.stdout}${result.stderr}`).not.toContain(SRC_KEY);
    expect(server.store.project('dry', 'proj')).toBeUndefined();
  });
});

describe('comet:// errors and limits', () => {
  it('a refused key names the variable to set, never the key', async () => {
    const bad = 'notTheRightKey0123456789abc';
    const source = await openSource('comet://ws/proj', sides({ TRACKSHIFT_SRC_COMET_API_KEY: bad }));
    const err = await list(source.listExperiments()).then(
      () => undefined,
      (e: Error) => e,
    );
    await source.close?.();
    expect(err?.message).toMatch(/refused the Comet API key from TRACKSHIFT_SRC_COMET_API_KEY \(401/);
    expect(err?.message).not.toContain(bad);
  });

  it('a missing workspace or project is named', async () => {
    for (const [location, what] of [
      ['comet://ws/nope', /no project "nope"/],
      ['comet://nows/proj', /no workspace "nows"/],
    ] as const) {
      const source = await openSource(location, sides());
      await expect(list(source.listExperiments())).rejects.toThrow(what);
      await source.close?.();
    }
  });

  it('waits as a 429 asks (Retry-After-Custom) and rides out 5xx', async () => {
    const source = await openSource('comet://ws/proj', sides());
    try {
      const [run] = await list(source.listRuns('proj', { includeDeleted: false }));
      server.failNext('experiment/metrics/get-metric', { status: 429, retryAfterCustom: 1 });
      const started = Date.now();
      const points = (await list(source.readMetric(run!, 'acc'))).flat();
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect(points).toHaveLength(3);
      server.failNext('experiment/metrics/get-metric', { status: 503, times: 2 });
      expect((await list(source.readMetric(run!, 'acc'))).flat()).toEqual(points);
    } finally {
      await source.close?.();
    }
    server.failNext('batch/logger/experiment/metric', { status: 502, times: 2 });
    server.failNext('write/experiment/log-other', { status: 500 });
    server.failNext('batch/logger/experiment/parameter', { status: 429, retryAfterCustom: 1 });
    const injected = server.injected.length;
    expect((await job('copy', 'comet://ws/proj', 'comet://faults/proj')).failed).toEqual([]);
    expect(server.injected.length - injected).toBe(4);
    expectEqual(await verify('comet://ws/proj', 'comet://faults/proj'), 1);
  });
});

describe('comet:// long histories', () => {
  it('50,000 points: archive → server → mlruns → archive, every point, verify equal', async () => {
    const dir = join(tmp, 'big');
    const big = JSON.parse(await python('test/fixtures/comet_points.py', [dir, '50000', 'big'])) as { key: string };
    await upload(zipsIn(dir));
    const mlruns = join(tmp, 'mlruns-big');
    expect((await job('copy', 'comet://ws/big', `mlruns:${mlruns}`)).failed).toEqual([]);
    expectEqual(await verify('comet://ws/big', `mlruns:${mlruns}`), 1);
    const back = join(tmp, 'back');
    expect((await job('copy', `mlruns:${mlruns}`, `comet-offline:${back}?workspace=ws&project=big`)).failed).toEqual([]);
    expectEqual(await verifyOnly('big', `mlruns:${mlruns}`, back), 1);
    const source = await openSource(back);
    try {
      const [run] = await list(source.listRuns('big', { includeDeleted: false }));
      const points = (await list(source.readMetric(run!, 'loss'))).flat();
      expect(points).toHaveLength(50_000);
      expect(Number.isNaN(points[7]!.value)).toBe(true);
    } finally {
      await source.close?.();
    }
    expect(big.key).toHaveLength(32);
  }, 300_000);

  it('a copy killed (SIGKILL) part way and run again leaves one experiment, complete', async () => {
    const before = server.count('batch/logger/experiment/metric');
    const { child, done } = startCli(['copy', 'comet://ws/big', 'comet://kill/big', '--state-dir', join(tmp, 'kill-state')], { ...sides(), PATH: process.env.PATH! });
    for (let i = 0; i < 600 && server.count('batch/logger/experiment/metric') < before + 5; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const partial = experimentsIn('kill', 'big');
    expect(partial).toHaveLength(1);
    // killed before its completion marker: partial, and taken for partial
    expect(partial[0]!.others.has('trackshift.run')).toBe(false);
    expect(`${killed.stdout}${killed.stderr}`).not.toContain(DST_KEY);
    const report = await job('copy', 'comet://ws/big', 'comet://kill/big', sides(), { stateDir: join(tmp, 'kill-state') });
    expect(report.failed).toEqual([]);
    const active = experimentsIn('kill', 'big').filter((e) => !e.archived);
    expect(active).toHaveLength(1);
    // the partial one is archived (discarded), never left looking complete
    expect(experimentsIn('kill', 'big').filter((e) => e.archived).map((e) => e.key)).toEqual([partial[0]!.key]);
    expectEqual(await verify('comet://ws/big', 'comet://kill/big'), 1);
  }, 300_000);
});

describe('comet credentials', () => {
  const target = (env: NodeJS.ProcessEnv, side: 'src' | 'dst' = 'src') => ({ location: 'comet://ws', side, env: { HOME: join(tmp, 'no-home'), ...env } });

  it('per side, then the plain names, then the config files; a smart key carries its server', () => {
    expect(resolveConfig(target({ COMET_API_KEY: 'plainKey0123', TRACKSHIFT_SRC_COMET_API_KEY: 'sideKey0123', COMET_URL_OVERRIDE: 'http://127.0.0.1:9/clientlib/' }))).toMatchObject({
      apiKey: 'sideKey0123',
      root: 'http://127.0.0.1:9',
      keyOrigin: 'TRACKSHIFT_SRC_COMET_API_KEY',
    });
    expect(resolveConfig(target({ COMET_API_KEY: 'plainKey0123' }, 'dst'))).toMatchObject({ apiKey: 'plainKey0123', root: 'https://www.comet.com', clientlib: 'https://www.comet.com/clientlib/' });
    const smart = `abcKey0123*${Buffer.from(JSON.stringify({ baseUrl: 'http://127.0.0.1:7' })).toString('base64').replace(/=+$/, '')}`;
    expect(resolveConfig(target({ COMET_API_KEY: smart }))).toMatchObject({ apiKey: smart, root: 'http://127.0.0.1:7', clientlib: 'http://127.0.0.1:7/clientlib/' });
    const ini = join(tmp, 'side.config');
    writeFileSync(ini, '[comet]\napi_key = fileKey0123\nurl_override = http://127.0.0.1:8/clientlib/\n');
    expect(resolveConfig(target({ TRACKSHIFT_DST_COMET_CONFIG: ini }, 'dst'))).toMatchObject({ apiKey: 'fileKey0123', root: 'http://127.0.0.1:8', keyOrigin: ini });
    const home = join(tmp, 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, '.comet.config'), '[comet]\napi_key = homeKey0123\n');
    expect(resolveConfig({ location: 'comet://ws', side: 'src', env: { HOME: home } })).toMatchObject({ apiKey: 'homeKey0123' });
    expect(() => resolveConfig(target({}))).toThrow(/TRACKSHIFT_SRC_COMET_API_KEY/);
  });
});
