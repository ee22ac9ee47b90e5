/**
 * The Neptune-shaped test server against the real neptune 1.14 client: the client writes the
 * rich run of the offline tests in async mode (every attribute type, series with fractional
 * steps, files, a file set, an image series, clears and deletions) and a small one; the server
 * holds exactly what the client logged; the client reads both back through the API (runs table
 * with an NQL query, each run read-only, every attribute fetched and downloaded) and gets what it
 * logged. Injected 429 and 503 answers are retried by the client without loss.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from './mlflow-server.js';
import { startNeptuneServer, type NeptuneServer } from './neptune-server/index.js';

interface Logged {
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<[number, unknown, number]> }>;
  files: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  fileSeries: Record<string, Array<{ hex: string }>>;
  second: { attributes: Logged['attributes']; series: Logged['series'] };
}
interface Read {
  table: string[];
  states: Record<string, string>;
  runs: Record<string, { attributes: Logged['attributes']; series: Logged['series']; files: Record<string, string>; fileSets: Record<string, Record<string, string>>; fileSeries: Record<string, string[]> }>;
}

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-server-'));

describe('Neptune-shaped test server, with the real neptune 1.14 client', () => {
  let server: NeptuneServer;
  let logged: Logged;

  beforeAll(async () => {
    server = await startNeptuneServer({ projects: [['ws', 'proj', 'PROJ']] });
    // faults the client must ride out: a rate limit on its operations, a 503 on a run's creation
    server.failNext('executeOperations', { status: 429, retryAfter: 1 });
    server.failNext('createExperiment', { status: 503 });
    const work = temp();
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', work, join(work, 'logged.json')], { ...server.clientEnv(), NEPTUNE_MODE: 'async', NEPTUNE_PROJECT: 'ws/proj' });
    logged = JSON.parse(readFileSync(join(work, 'logged.json'), 'utf8')) as Logged;
  }, 240_000);
  afterAll(() => server?.close());

  it('holds what the client logged', () => {
    expect(server.unhandled).toEqual([]);
    expect(server.calls.get('executeOperations')).toBeGreaterThan(1);
    const [rich, small] = server.store.runs(server.store.project('ws/proj')!);
    expect(rich!.shortId).toBe('PROJ-1');
    for (const [path, { type, value }] of Object.entries(logged.attributes)) {
      const a = rich!.attributes.get(path);
      expect(a?.type, path).toBe(type);
      expect(a && 'value' in a ? a.value : a && 'values' in a ? a.values : undefined, path).toEqual(value);
    }
    for (const [path, { points }] of Object.entries(logged.series)) {
      const a = rich!.attributes.get(path);
      expect(a?.type === 'floatSeries' || a?.type === 'stringSeries' ? a.points.map((p) => [p.step, p.value, p.timestampMillis]) : a?.type, path).toEqual(points);
    }
    expect(small!.attributes.get('score')).toEqual({ type: 'float', value: 0.5 });
  });

  it('answers the client’s reads with what it logged: runs table with NQL, every attribute, every download', async () => {
    const work = temp();
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_api_read.py', 'ws/proj', join(work, 'all.json'), work], server.clientEnv());
    const all = JSON.parse(readFileSync(join(work, 'all.json'), 'utf8')) as Read;
    expect(all.table).toEqual(['PROJ-1', 'PROJ-2']);
    const rich = all.runs['PROJ-1']!;
    for (const [path, attribute] of Object.entries(logged.attributes)) expect(rich.attributes[path], path).toEqual(attribute);
    for (const [path, series] of Object.entries(logged.series)) expect(rich.series[path], path).toEqual(series);
    for (const [path, hex] of Object.entries(logged.files)) expect(rich.files[path], path).toBe(hex);
    expect(rich.fileSets['files/set']).toEqual(logged.fileSets['files/set']);
    expect(rich.fileSeries['images/samples']).toEqual(logged.fileSeries['images/samples']!.map((i) => i.hex));
    expect(all.runs['PROJ-2']!.series.curve).toEqual(logged.second.series.curve);

    const queried = JSON.parse(
      readFileSync(
        await (async () => {
          const out = join(work, 'query.json');
          await runTool('neptune2', 'python', ['test/fixtures/neptune2_api_read.py', 'ws/proj', out, join(work, 'q'), '`score`:float > 0.1 OR `sys/name`:string = "nothing"'], server.clientEnv());
          return out;
        })(),
        'utf8',
      ),
    ) as Read;
    expect(queried.table).toEqual(['PROJ-2']);
    expect(server.unhandled).toEqual([]);
  }, 240_000);
});
