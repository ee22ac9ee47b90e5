/**
 * `neptune://WORKSPACE/PROJECT` read through the 2.x API, from the Neptune-shaped test server into
 * which the real neptune 1.14 client wrote the offline tests' rich run and a small one in async
 * mode: what trackshift reads equals what the client logged — attributes with their types,
 * series point by point (fractional steps, timestamps), files, the file set, the image series;
 * `--filter` is NQL passed through; `copy` into a bundle and `verify` agree; a token that is
 * refused, or a project that does not exist, is an error a user can act on.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { neptuneApiConnector } from '../../src/connectors/neptune-api/index.js';
import type { Source } from '../../src/connectors/types.js';
import type { Run, SeriesFile, TypedPoint } from '../../src/model/index.js';
import { cli } from '../cli/run-cli.js';
import { runTool } from '../harness/mlflow-server.js';
import { startNeptuneServer, type NeptuneServer } from '../harness/neptune-server/index.js';

interface Logged {
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<[number, unknown, number]> }>;
  files: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  fileSeries: Record<string, Array<{ step: number; timestamp: number; name: string; hex: string }>>;
  runName: string;
}

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-api-'));
const bytesOf = async (body: AsyncIterable<unknown>) => {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('hex');
};

describe('neptune:// (Neptune 2.x API) as a source', () => {
  let server: NeptuneServer;
  let logged: Logged;
  let work: string;
  const open = (env: NodeJS.ProcessEnv = server.clientEnv()) => neptuneApiConnector.openSource!({ location: 'neptune://ws/proj', side: 'src', env });

  beforeAll(async () => {
    server = await startNeptuneServer({ projects: [['ws', 'proj', 'PROJ']] });
    work = temp();
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', work, join(work, 'logged.json')], { ...server.clientEnv(), NEPTUNE_MODE: 'async', NEPTUNE_PROJECT: 'ws/proj' });
    logged = JSON.parse(readFileSync(join(work, 'logged.json'), 'utf8')) as Logged;
  }, 240_000);
  afterAll(() => server?.close());

  async function runsOf(source: Source, filter?: string): Promise<Run[]> {
    const runs: Run[] = [];
    for await (const e of source.listExperiments()) for await (const r of source.listRuns(e.id, { includeDeleted: true, ...(filter ? { filter } : {}) })) runs.push(r);
    return runs;
  }

  it('reads what the client logged, value by value', async () => {
    const source = await open();
    try {
      const experiments = [];
      for await (const e of source.listExperiments()) experiments.push(e.name);
      expect(experiments).toEqual(['ws/proj']);
      const runs = await runsOf(source);
      expect(runs.map((r) => r.id).sort()).toEqual(['PROJ-1', 'PROJ-2']);
      const rich = runs.find((r) => r.id === 'PROJ-1')!;
      expect(rich.name).toBe(logged.runName);
      expect(rich.tags).toEqual({ alpha: '', delta: '', gamma: '' });
      expect(rich.group).toBe('group-a,group-b');
      // every attribute the client set, with its type, in the typed configuration
      const config = new Map(rich.config!.map((c) => [c.path.join('/'), c.value]));
      for (const [path, { type, value }] of Object.entries(logged.attributes)) expect(config.get(path), path).toEqual({ type, value });
      // series point by point
      for (const [key, { type, points }] of Object.entries(logged.series)) {
        const got: Array<[number, unknown, number | undefined]> = [];
        if (type === 'float') for await (const page of source.readMetric(rich, key)) for (const p of page) got.push([p.step, p.value, p.timestamp]);
        else for await (const page of source.readSeries!(rich, { key, type: 'string' })) for (const p of page) got.push([p.step, p.value, p.timestamp]);
        expect(got, key).toEqual(points);
      }
      // the image series: steps, times, names and bytes
      const images: TypedPoint[] = [];
      for await (const page of source.readSeries!(rich, { key: 'images/samples', type: 'file' })) images.push(...page);
      expect(images.map((p) => [p.step, p.timestamp, (p.value as SeriesFile).name])).toEqual(logged.fileSeries['images/samples']!.map((i) => [i.step, i.timestamp, i.name]));
      for (const [i, p] of images.entries()) expect(await bytesOf(await source.readSeriesFile!(rich, (p.value as SeriesFile).path))).toBe(logged.fileSeries['images/samples']![i]!.hex);
      // files and the file set as artifacts
      const artifacts: Record<string, string> = {};
      for await (const f of source.listArtifacts(rich)) artifacts[f.path] = await bytesOf(await source.readArtifact(rich, f.path));
      for (const [path, hex] of Object.entries(logged.files)) expect(artifacts[path], path).toBe(hex);
      for (const [name, hex] of Object.entries(logged.fileSets['files/set']!)) expect(artifacts[`files/set/${name}`], name).toBe(hex);
      expect(Object.keys(artifacts).some((p) => p.startsWith('source_code/files/'))).toBe(true);
    } finally {
      await source.close?.();
    }
  });

  it('rides out rate limits and server errors', async () => {
    server.failNext('searchLeaderboardEntries', { status: 429, retryAfter: 0 });
    server.failNext('getFloatSeriesValues', { status: 503, times: 2 });
    server.failNext('exchangeApiToken', { status: 502 });
    const before = server.calls.get('getFloatSeriesValues') ?? 0;
    const source = await open();
    try {
      const rich = (await runsOf(source)).find((r) => r.id === 'PROJ-1')!;
      const points = [];
      for await (const page of source.readMetric(rich, 'train/acc')) points.push(...page);
      expect(points.map((p) => p.value)).toEqual(logged.series['train/acc']!.points.map((p) => p[1]));
      expect((server.calls.get('getFloatSeriesValues') ?? 0) - before).toBe(3);
    } finally {
      await source.close?.();
    }
  });

  it('passes --filter through as NQL', async () => {
    const source = await open();
    try {
      expect((await runsOf(source, '`score`:float > 0.1')).map((r) => r.id)).toEqual(['PROJ-2']);
      expect((await runsOf(source, '`sys/name`:string = "rich run"')).map((r) => r.id)).toEqual(['PROJ-1']);
    } finally {
      await source.close?.();
    }
  });

  it('copies into a bundle that verify finds equal, and says what is wrong with a bad token or project', async () => {
    const bundle = join(temp(), 'bundle');
    const env = server.clientEnv();
    const copied = await cli(['export', 'neptune://ws/proj', bundle, '--state-dir', temp()], env);
    expect(copied.code, copied.stderr).toBe(0);
    const verified = await cli(['verify', 'neptune://ws/proj', bundle], env);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    // nothing printed holds the token
    for (const out of [copied.stdout, copied.stderr, verified.stdout, verified.stderr]) expect(out).not.toContain(server.token);
    expect(sha(server.token)).not.toBe('');

    const refused = await cli(['ls', 'neptune://ws/proj'], { ...env, NEPTUNE_API_TOKEN: Buffer.from(JSON.stringify({ api_address: server.url })).toString('base64') });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/401|refused|token/i);
    const missing = await cli(['ls', 'neptune://ws/nothing'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('has no project ws/nothing');
    expect(server.unhandled).toEqual([]);
  }, 120_000);
});
