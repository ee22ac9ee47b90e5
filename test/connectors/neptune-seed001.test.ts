/**
 * Seed 001 end to end through the servers: `trackshift copy neptune://legacy-ws/proj
 * neptune-scale://new-ws/proj` on the Neptune-shaped test server (no live Neptune exists here),
 * with a token for each side. The legacy project is written by the real neptune 1.14 client
 * (async mode); the 3.x copy is read back by the real neptune-query 1.8 client. Every rule of the
 * seed is checked value by value — run id = custom run id else `sys/id`, `sys/name` → experiment,
 * `monitoring/` → `runtime/`, `sys` → `legacy_sys/` but for description, name, custom_run_id, tags
 * and group tags, `running_time`/`monitoring_time` as float seconds, `size` as int bytes — and what
 * the seed leaves out is there: files, file sets' files and file series copied, the source's
 * timestamps (not the copy's clock), the project created when missing (and said so), both runs'
 * web pages for every run. A re-run adds nothing.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import type { Source } from '../../src/connectors/types.js';
import type { Run, TypedValue } from '../../src/model/index.js';
import { cli } from '../cli/run-cli.js';
import { runTool } from '../harness/mlflow-server.js';
import { startNeptuneServer, type NeptuneServer } from '../harness/neptune-server/index.js';
import { allRuns } from '../helpers/source-runs.js';

/** what neptune_scale_read_back.py prints of one run */
interface ReadRun {
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<[number, unknown, number]> }>;
  files: Record<string, string>;
  fileSeries: Record<string, Array<[number, string]>>;
}
interface Logged {
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<[number, unknown, number]> }>;
  files: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  fileSeries: Record<string, Array<{ step: number; hex: string }>>;
}

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-seed001-'));

/** A 2.x attribute as neptune-query shows the same value of a 3.x run. */
function asQueried(value: TypedValue): { type: string; value: unknown } {
  switch (value.type) {
    case 'stringSet':
      return { type: 'string_set', value: [...value.value].sort() };
    default:
      return { type: value.type, value: value.value };
  }
}

async function list<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('seed 001 through the servers: neptune:// (2.x) → neptune-scale:// (3.x)', () => {
  let server: NeptuneServer;
  let logged: Logged;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startNeptuneServer({ workspaces: ['legacy-ws', 'new-ws'], projects: [['legacy-ws', 'proj', 'LEG']] });
    const work = temp();
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', work, join(work, 'logged.json')], { ...server.clientEnv(), NEPTUNE_MODE: 'async', NEPTUNE_PROJECT: 'legacy-ws/proj' });
    logged = JSON.parse(readFileSync(join(work, 'logged.json'), 'utf8')) as Logged;
    // one token per side, as the seed's --legacy-token and --new-token
    env = { TRACKSHIFT_SRC_NEPTUNE_API_TOKEN: server.newToken(), TRACKSHIFT_DST_NEPTUNE_API_TOKEN: server.newToken(), OAUTHLIB_INSECURE_TRANSPORT: '1' };
  }, 300_000);
  afterAll(() => server?.close());

  const readBack = async (project: string): Promise<Record<string, ReadRun>> => {
    const work = temp();
    await runTool('neptune-query', 'python', ['test/fixtures/neptune_scale_read_back.py', project, join(work, 'read.json'), work], server.scaleEnv());
    return (JSON.parse(readFileSync(join(work, 'read.json'), 'utf8')) as { runs: Record<string, ReadRun> }).runs;
  };

  it('copies every run with the seed’s rules and none of its gaps, as neptune-query reads it', async () => {
    const state = temp();
    const reportFile = join(state, 'report.json');
    const copied = await cli(['copy', 'neptune://legacy-ws/proj', 'neptune-scale://new-ws/proj', '--workers', '2', '--state-dir', state, '--report', reportFile], env);
    const output = copied.stdout + copied.stderr;
    expect(copied.code, output).toBe(0);
    for (const token of [env.TRACKSHIFT_SRC_NEPTUNE_API_TOKEN!, env.TRACKSHIFT_DST_NEPTUNE_API_TOKEN!]) expect(output).not.toContain(token);
    // the project did not exist: made, and said so (the seed fails silently when it cannot)
    expect(output).toMatch(/neptune-scale:\/\/new-ws\/proj: .*created/);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { runUrls: Array<{ sourceUrl?: string; destinationUrl?: string }>; notes?: Array<{ message: string }> };
    expect(report.notes?.some((n) => n.message.includes('created'))).toBe(true);
    // both runs' pages for every run, as the seed's log has them
    expect(report.runUrls).toHaveLength(2);
    for (const urls of report.runUrls) {
      expect(urls.sourceUrl).toMatch(new RegExp(`^${server.url}/legacy-ws/proj/e/LEG-\\d$`));
      expect(urls.destinationUrl).toContain('new-ws/proj');
    }

    const source: Source = await openSource('neptune://legacy-ws/proj', env);
    const copies = await readBack('new-ws/proj');
    try {
      const runs: Run[] = await allRuns(source);
      const sysOf = (run: Run) => new Map((run.config ?? []).filter((e) => e.path[0] === 'sys').map((e) => [e.path.slice(1).join('/'), e.value]));
      // the run id is the custom run id, else sys/id
      expect(Object.keys(copies).sort()).toEqual(runs.map((r) => String(sysOf(r).get('custom_run_id')?.value ?? sysOf(r).get('id')!.value)).sort());
      for (const run of runs) {
        const sys = sysOf(run);
        const copy = copies[String(sys.get('custom_run_id')?.value ?? sys.get('id')!.value)]!;
        // sys/name is the experiment's name; description, tags and group tags stay in sys
        expect(copy.attributes['sys/name']?.value, 'sys/name').toBe(sys.get('name')?.value);
        for (const [name, value] of sys) {
          // the run's identity (its id, the experiment) and its state, which the seed leaves out too;
          // the creation time is the copy's own (below), where the seed can only keep it in legacy_sys/
          if (['custom_run_id', 'name', 'state', 'creation_time'].includes(name)) continue;
          if (['description', 'tags', 'group_tags'].includes(name)) {
            if (value.type === 'stringSet' && value.value.length === 0) continue;
            expect(copy.attributes[`sys/${name}`], `sys/${name}`).toEqual(asQueried(value));
            continue;
          }
          const expected = name === 'running_time' || name === 'monitoring_time' ? { type: 'float', value: Number(value.value) } : name === 'size' ? { type: 'int', value: Math.round(Number(value.value)) } : asQueried(value);
          expect(copy.attributes[`legacy_sys/${name}`], `legacy_sys/${name}`).toEqual(expected);
        }
        // the copy is created at the source's creation time (the seed's runs are created at copy time)
        expect(copy.attributes['sys/creation_time']?.value, 'sys/creation_time').toBe(sys.get('creation_time')?.value);
        expect(Object.keys(copy.attributes).some((k) => k.startsWith('monitoring/'))).toBe(false);
        expect(Object.keys(copy.series).some((k) => k.startsWith('monitoring/'))).toBe(false);
        // every series point with the source's step and timestamp, monitoring/ under runtime/
        for (const series of run.series) {
          const key = series.key.replace(/^monitoring\//, 'runtime/');
          const points = series.type === 'float' ? (await list(source.readMetric(run, series.key))).flat() : (await list(source.readSeries!(run, series))).flat();
          if (series.type === 'file') {
            const bytes = await Promise.all(points.map(async (p) => Buffer.concat(await list(await source.readSeriesFile!(run, (p.value as { path: string }).path))).toString('hex')));
            expect(copy.fileSeries[key], key).toEqual(points.map((p, i) => [p.step, bytes[i]]));
          } else {
            expect(copy.series[key]?.points.map(([step, , ms]) => [step, ms]), key).toEqual(points.map((p) => [p.step, p.timestamp]));
          }
        }
        // files and file sets' files: the seed skips file sets and artifacts
        for await (const artifact of source.listArtifacts(run)) {
          const bytes = Buffer.concat(await list(await source.readArtifact(run, artifact.path))).toString('hex');
          expect(copy.files[artifact.path], artifact.path).toBe(bytes);
        }
      }

      // and against what the client logged, for the rich run
      const rich = Object.values(copies).find((r) => r.attributes['sys/name']?.value === 'rich run')!;
      for (const [path, series] of Object.entries(logged.series)) {
        expect(rich.series[path]?.points.map(([step, value, ms]) => [step, value, ms]), path).toEqual(series.points.map(([step, value, ms]) => [step, value, ms]));
      }
      for (const [path, hex] of Object.entries(logged.files)) expect(rich.files[path], path).toBe(hex);
      for (const [name, hex] of Object.entries(logged.fileSets['files/set']!)) expect(rich.files[`files/set/${name}`], name).toBe(hex);
      expect(rich.fileSeries['images/samples']).toEqual(logged.fileSeries['images/samples']!.map((i) => [i.step, i.hex]));
      expect(Object.keys(rich.series).some((k) => k.startsWith('runtime/'))).toBe(true);
    } finally {
      await source.close?.();
    }
    expect(server.scale.refusals()).toEqual([]);
    expect(server.unhandled).toEqual([]);

    // a re-run (a new state folder: copies found on the server, not in the journal) adds nothing
    const before = server.scale.runs('new-ws/proj').map((r) => [r.runId, r.modified]);
    const again = await cli(['copy', 'neptune://legacy-ws/proj', 'neptune-scale://new-ws/proj', '--state-dir', temp()], env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/skipped run LEG-1: already in the destination/);
    expect(again.stdout + again.stderr).not.toMatch(/created/);
    expect(server.scale.runs('new-ws/proj').map((r) => [r.runId, r.modified])).toEqual(before);
  }, 300_000);
});
