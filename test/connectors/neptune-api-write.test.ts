/**
 * Seed 000 through the API: `trackshift copy neptune://ws/proj-a neptune://ws/proj-b` on the
 * Neptune-shaped test server, the source written by the real neptune 1.14 client (the offline
 * tests' rich run and a small one, in async mode), the copy read back by that client through the
 * API: every parameter with its type, tags and group tags, series point by point with the
 * source's fractional steps and timestamps (not the copy's time), files, the file set's files as
 * file attributes under the set's namespace, the image series; seed 000's `sys` rules (name,
 * description, tags kept in `sys`; the rest, `sys/id` and the creation time included, in
 * `old_sys/`); a re-run adds nothing.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/connectors/memory/index.js';
import { runJob } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import { cli, startCli } from '../cli/run-cli.js';
import { expectEqual } from '../helpers/jobs.js';
import { killWhileRunInFlight } from '../helpers/kill.js';
import { richStore } from '../helpers/rich-run.js';
import { runTool } from '../harness/mlflow-server.js';
import { startNeptuneServer, type NeptuneServer } from '../harness/neptune-server/index.js';

interface Logged {
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<[number, unknown, number]> }>;
  files: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  fileSeries: Record<string, Array<{ hex: string }>>;
  second: { attributes: Logged['attributes']; series: Logged['series'] };
}
interface ReadRun {
  attributes: Logged['attributes'];
  series: Logged['series'];
  files: Record<string, string>;
  fileSeries: Record<string, string[]>;
}

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-api-write-'));

describe('neptune:// as a destination: seed 000, project → project', () => {
  let server: NeptuneServer;
  let logged: Logged;

  beforeAll(async () => {
    server = await startNeptuneServer({ projects: [['ws', 'proj-a', 'PRA'], ['ws', 'proj-b', 'PRB'], ['ws', 'proj-c', 'PRC'], ['ws', 'proj-d', 'PRD'], ['ws', 'many', 'MANY'], ['ws', 'killed', 'KIL'], ['ws', 'rich', 'RICH']] });
    const work = temp();
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', work, join(work, 'logged.json')], { ...server.clientEnv(), NEPTUNE_MODE: 'async', NEPTUNE_PROJECT: 'ws/proj-a' });
    logged = JSON.parse(readFileSync(join(work, 'logged.json'), 'utf8')) as Logged;
  }, 240_000);
  afterAll(() => server?.close());

  const readBack = async (project: string): Promise<Record<string, ReadRun>> => {
    const work = temp();
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_api_read.py', project, join(work, 'read.json'), work], server.clientEnv());
    return (JSON.parse(readFileSync(join(work, 'read.json'), 'utf8')) as { runs: Record<string, ReadRun> }).runs;
  };

  it('copies every run as the client reads it back, with seed 000’s rules', async () => {
    const state = temp();
    const reportFile = join(state, 'report.json');
    const copied = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/proj-b', '--state-dir', state, '--report', reportFile], server.clientEnv());
    expect(copied.code, copied.stdout + copied.stderr).toBe(0);
    expect(copied.stdout + copied.stderr).not.toContain(server.token);
    // both runs' web pages for every run, as seed 001's log has them: in the output and the report
    expect(copied.stdout + copied.stderr).toContain(`${server.url}/ws/proj-a/e/PRA-1 → ${server.url}/ws/proj-b/e/PRB-`);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { runUrls: Array<{ source: string; sourceUrl: string; destinationUrl: string }> };
    expect(report.runUrls.map((u) => u.sourceUrl).sort()).toEqual([`${server.url}/ws/proj-a/e/PRA-1`, `${server.url}/ws/proj-a/e/PRA-2`]);
    expect(report.runUrls.every((u) => u.destinationUrl.startsWith(`${server.url}/ws/proj-b/e/PRB-`))).toBe(true);

    const source = await readBack('ws/proj-a');
    const copies = await readBack('ws/proj-b');
    expect(Object.keys(copies).sort()).toEqual(['PRB-1', 'PRB-2']);
    const rich = Object.values(copies).find((r) => r.attributes['sys/name']?.value === 'rich run')!;
    const original = source['PRA-1']!;

    // every attribute the client set, with its type; sys/name, description and tags stay in sys
    for (const [path, attribute] of Object.entries(logged.attributes)) expect(rich.attributes[path], path).toEqual(attribute);
    expect(rich.attributes['sys/description']).toEqual({ type: 'string', value: 'a run with everything' });
    // the other sys attributes of the source in old_sys/, its id and creation time among them
    expect(rich.attributes['old_sys/id']).toEqual({ type: 'string', value: 'PRA-1' });
    expect(rich.attributes['old_sys/creation_time']).toEqual(original.attributes['sys/creation_time']);
    expect(rich.attributes['old_sys/owner']).toEqual(original.attributes['sys/owner']);
    // series with the source's steps and timestamps
    for (const [path, series] of Object.entries(logged.series)) expect(rich.series[path], path).toEqual(series);
    // files, and the file set's files as file attributes under its namespace
    for (const [path, hex] of Object.entries(logged.files)) expect(rich.files[path], path).toBe(hex);
    for (const [name, hex] of Object.entries(logged.fileSets['files/set']!)) expect(rich.files[`files/set/${name}`], name).toBe(hex);
    expect(rich.fileSeries['images/samples']).toEqual(logged.fileSeries['images/samples']!.map((i) => i.hex));
    const small = Object.values(copies).find((r) => r !== rich)!;
    expect(small.series.curve).toEqual(logged.second.series.curve);
    expect(server.unhandled).toEqual([]);

    // a re-run (a new state folder: found by provenance, not by the journal) adds nothing
    const again = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/proj-b', '--state-dir', temp()], server.clientEnv());
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/skipped run PRA-1: already in the destination/);
    expect(server.store.runs(server.store.project('ws/proj-b')!)).toHaveLength(2);
  }, 240_000);

  it('redoes a run that failed part way in place, and ends with each run once', async () => {
    // the first file upload is refused (not retried): that run fails after it was created
    server.failNext('fileAtomUpload', { status: 400 });
    const state = temp();
    const failed = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/proj-c', '--state-dir', state], server.clientEnv());
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    expect(failed.stdout + failed.stderr).toMatch(/FAILED run PRA-\d: .*upload failed with 400/);
    const rerun = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/proj-c', '--state-dir', state], server.clientEnv());
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
    const runs = server.store.runs(server.store.project('ws/proj-c')!);
    expect(runs).toHaveLength(2);
    for (const run of runs) expect(run.attributes.get('run_data/tags/trackshift.complete')).toEqual({ type: 'string', value: 'true' });
    const copies = await readBack('ws/proj-c');
    const rich = Object.values(copies).find((r) => r.attributes['sys/name']?.value === 'rich run')!;
    for (const [path, series] of Object.entries(logged.series)) expect(rich.series[path], path).toEqual(series);
    for (const [path, hex] of Object.entries(logged.files)) expect(rich.files[path], path).toBe(hex);
    expect(rich.attributes['sys/tags']).toEqual(logged.attributes['sys/tags']);
  }, 240_000);

  it('creates the destination project when missing (never in a dry run), as the management API does', async () => {
    const dry = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/made-here', '--dry-run', '--state-dir', temp()], server.clientEnv());
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(server.store.project('ws/made-here')).toBeUndefined();
    const copied = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/made-here', '--state-dir', temp()], server.clientEnv());
    expect(copied.code, copied.stdout + copied.stderr).toBe(0);
    expect(copied.stdout + copied.stderr).toContain('neptune://ws/made-here: the project did not exist: created it (key ');
    expect(server.calls.get('createProject')).toBe(1);
    // the real client finds the project and both runs in it
    expect(Object.keys(await readBack('ws/made-here'))).toHaveLength(2);
    const again = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/made-here', '--state-dir', temp()], server.clientEnv());
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout + again.stderr).not.toContain('did not exist');
    expect(server.calls.get('createProject')).toBe(1);
    const noWorkspace = await cli(['copy', 'neptune://ws/proj-a', 'neptune://elsewhere/proj', '--state-dir', temp()], server.clientEnv());
    expect(noWorkspace.code).toBe(1);
    expect(noWorkspace.stdout + noWorkspace.stderr).toContain('the token sees no workspace "elsewhere"');
  }, 240_000);

  it('rides out rate limits and server errors while writing', async () => {
    server.failNext('executeOperations', { status: 429, retryAfter: 0, times: 2 });
    server.failNext('fileAtomUpload', { status: 503 });
    // a creation is repeated after a 429 (not taken); after a 5xx only with a custom run id
    server.failNext('createExperiment', { status: 429, retryAfter: 0 });
    const copied = await cli(['copy', 'neptune://ws/proj-a', 'neptune://ws/proj-d', '--state-dir', temp()], server.clientEnv());
    expect(copied.code, copied.stdout + copied.stderr).toBe(0);
    const copies = await readBack('ws/proj-d');
    expect(Object.keys(copies)).toHaveLength(2);
    const rich = Object.values(copies).find((r) => r.attributes['sys/name']?.value === 'rich run')!;
    for (const [path, series] of Object.entries(logged.series)) expect(rich.series[path], path).toEqual(series);
    for (const [path, hex] of Object.entries(logged.files)) expect(rich.files[path], path).toBe(hex);
  }, 240_000);

  it('leaves each run once when a copy is killed with SIGKILL mid-way and run again', async () => {
    await runTool('neptune2', 'python', ['test/fixtures/neptune2_api_fill.py', 'ws/many', '6', '3', '3000', '5', '64', temp()], server.clientEnv());
    const state = temp();
    const args = ['copy', 'neptune://ws/many', 'neptune://ws/killed', '--workers', '1', '--state-dir', state];
    const { child, done } = startCli(args, server.clientEnv());
    await killWhileRunInFlight(state, child, done);
    expect((await done).signal).toBe('SIGKILL');
    const rerun = await cli(args, server.clientEnv());
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
    const copies = server.store.runs(server.store.project('ws/killed')!);
    const provenance = copies.map((r) => (r.attributes.get('run_data/tags/trackshift.source.id') as { value?: string } | undefined)?.value);
    expect(provenance.sort()).toEqual(['MANY-1', 'MANY-2', 'MANY-3', 'MANY-4', 'MANY-5', 'MANY-6']);
    for (const run of copies) {
      expect(run.attributes.get('run_data/tags/trackshift.complete')).toEqual({ type: 'string', value: 'true' });
      for (let m = 0; m < 3; m++) expect((run.attributes.get(`metrics/m${m}`) as { points: unknown[] }).points).toHaveLength(3000);
    }
  }, 240_000);

  it('keeps what Neptune cannot hold (NaN, ±Infinity, long strings) in trackshift/exact and reads it back: verify equal', async () => {
    richStore(memoryStore('neptune-api-rich'));
    const env = server.clientEnv();
    const common = { source: 'memory:neptune-api-rich', destination: 'neptune://ws/rich', selection: emptySelection(), workers: 2, artifactWorkers: 2, env };
    const report = await runJob({ ...common, command: 'copy', dryRun: false, stateDir: temp() });
    expect(report.failed).toEqual([]);
    expect(report.warnings.some((w) => w.message.includes('trackshift/exact'))).toBe(true);
    expectEqual(await runVerify({ ...common, maxDifferences: 50 }), 2);
  }, 240_000);
});
