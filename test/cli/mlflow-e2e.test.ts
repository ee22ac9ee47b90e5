/**
 * The verbs end to end against real MLflow servers started here, with source data written by
 * the real mlflow client: server → server, server → bundle → server, mlruns → server, re-runs,
 * a copy killed part way, and bad input.
 */
import { mkdtempSync, readFileSync, existsSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import { startMlflowServer, runPython, type MlflowServer } from '../harness/mlflow-server.js';
import { killWhileRunInFlight } from '../helpers/kill.js';
import { snapshot } from '../helpers/snapshot.js';
import { cli, startCli } from './run-cli.js';

const FIXTURE = 'test/fixtures/write_rich_fixture.py';
const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-e2e-'));

async function snap(uri: string) {
  const source = await openSource(uri);
  try {
    return await snapshot(source);
  } finally {
    await source.close?.();
  }
}

/** Every run that a copy made, by source id: each must be there once, complete. */
async function copiesBySource(uri: string): Promise<Map<string, number>> {
  const source = await openSource(uri);
  const counts = new Map<string, number>();
  for await (const experiment of source.listExperiments()) {
    for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) {
      const origin = run.tags['trackshift.source.id'];
      if (!origin) continue;
      expect(run.tags['trackshift.complete'], `run ${run.id} (copy of ${origin}) is complete`).toBe('true');
      counts.set(origin, (counts.get(origin) ?? 0) + 1);
    }
  }
  await source.close?.();
  return counts;
}

describe('copy, export and import between real MLflow servers', () => {
  const servers: MlflowServer[] = [];
  let source: MlflowServer;
  const start = async () => {
    const server = await startMlflowServer();
    servers.push(server);
    return server;
  };

  beforeAll(async () => {
    source = await start();
    await runPython(FIXTURE, [], { MLFLOW_TRACKING_URI: source.url });
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('copies server to server field by field, and a second copy adds nothing', async () => {
    const destination = await start();
    const state = temp();
    const report = join(temp(), 'report.json');
    const first = await cli(['copy', source.url, destination.url, '--include-deleted', '--state-dir', state, '--report', report]);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(await snap(destination.url)).toEqual(await snap(source.url));
    const written = JSON.parse(readFileSync(report, 'utf8'));
    expect(written.failed).toEqual([]);
    expect(written.source).toBe(source.url);
    expect(Object.keys(written.idMap.runs).length).toBe(written.copied.runs);
    // each run's page in both servers' web app
    const [sourceRun, copiedRun] = Object.entries(written.idMap.runs as Record<string, string>)[0]!;
    const urls = (written.runUrls as Array<{ source: string; sourceUrl: string; destinationUrl: string }>).find((u) => u.source === sourceRun)!;
    expect(urls.sourceUrl).toMatch(new RegExp(`^${source.url}/#/experiments/\\d+/runs/${sourceRun}$`));
    expect(urls.destinationUrl).toMatch(new RegExp(`^${destination.url}/#/experiments/\\d+/runs/${copiedRun}$`));

    const again = await cli(['copy', source.url, destination.url, '--include-deleted', '--json']); // a fresh state folder: found by tag
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).copied.runs).toBe(0);
    for (const [, count] of await copiesBySource(destination.url)) expect(count).toBe(1);
  });

  it('exports to a bundle and imports it into another server', async () => {
    const destination = await start();
    const out = join(temp(), 'out');
    const exported = await cli(['export', source.url, out, '--include-deleted']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(await snap(out)).toEqual(await snap(source.url));
    const imported = await cli(['import', out, destination.url, '--include-deleted']);
    expect(imported.code, imported.stderr).toBe(0);
    expect(await snap(destination.url)).toEqual(await snap(source.url));
  });

  it('copies an mlruns folder written by the mlflow client to a server', async () => {
    const destination = await start();
    const mlruns = join(temp(), 'mlruns');
    await runPython(FIXTURE, [], { MLFLOW_TRACKING_URI: `file://${mlruns}`, MLFLOW_ALLOW_FILE_STORE: 'true' });
    const result = await cli(['copy', mlruns, destination.url, '--include-deleted']);
    expect(result.code, result.stderr).toBe(0);
    expect(await snap(destination.url)).toEqual(await snap(mlruns));
  });

  it('redoes a copy killed part way and ends with every run complete and single', async () => {
    const destination = await start();
    const state = temp();
    const args = ['copy', source.url, destination.url, '--include-deleted', '--workers', '1', '--state-dir', state];
    const { child, done } = startCli(args);
    // kill it while a run is half written: started, not done, after at least one finished
    await killWhileRunInFlight(state, child, done);
    expect((await done).signal).toBe('SIGKILL');
    const rerun = await cli(args);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/skipped [1-9]/);
    const counts = await copiesBySource(destination.url);
    const sourceRuns = Object.values(await snap(source.url)).reduce((n, e) => n + Object.keys(e.runs).length, 0);
    expect(counts.size).toBe(sourceRuns);
    for (const [, count] of counts) expect(count).toBe(1);
    expect(await snap(destination.url)).toEqual(await snap(source.url));
  });

  it('selects with --filter, --run-id, --include-nested, --status, renames, and writes nothing on --dry-run', async () => {
    const out = join(temp(), 'out');
    const dry = await cli(['export', source.url, out, '--experiment', 'second', '--filter', "params.i = '1'", '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run: nothing was written/);
    expect(dry.stdout).toMatch(/copy\s+second \/ plain-1/);
    expect(dry.stdout).not.toMatch(/plain-0/);
    expect(existsSync(out)).toBe(false);

    const parentId = (await snap(source.url)).rich!.runs;
    const parent = Object.entries(parentId).find(([, r]) => r.name === 'parent')![0];
    const nested = await cli(['export', source.url, out, '--run-id', parent, '--include-nested', '--dst-experiment', 'renamed', '--json']);
    expect(nested.code, nested.stderr).toBe(0);
    const copied = await snap(out);
    expect(Object.keys(copied)).toEqual(['renamed']);
    expect(Object.values(copied.renamed!.runs).map((r) => r.name).sort()).toEqual(['child', 'grandchild', 'parent']);

    const failed = await cli(['ls', source.url]);
    expect(failed.stdout).toMatch(/rich/);
    const statuses = await cli(['export', source.url, join(temp(), 'o2'), '--experiment', 'rich', '--status', 'FAILED,KILLED', '--json']);
    expect(JSON.parse(statuses.stdout).copied.runs).toBe(2);
  });

  it('gives one clear error for an unreachable server, an unknown experiment; a tampered experiment file fails its experiment alone', async () => {
    const unreachable = await cli(['copy', 'http://127.0.0.1:9', join(temp(), 'x')]);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);

    const unknown = await cli(['export', source.url, join(temp(), 'x'), '--experiment', 'no-such-experiment']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/experiment "no-such-experiment" is not in/);

    const out = join(temp(), 'out');
    expect((await cli(['export', source.url, out, '--experiment', 'rich'])).code).toBe(0);
    const experiments = readdirSync(join(out, 'experiments'));
    const expFile = join(out, 'experiments', experiments[0]!, 'experiment.json');
    writeFileSync(expFile, '{ not json');
    const destination = await start();
    // one bad file fails its own object (exit 1, the file named in the summary), not the import
    const tampered = await cli(['import', out, destination.url]);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(/failed experiment .*experiment\.json/);
    expect(tampered.stdout + tampered.stderr).not.toMatch(/\n\s+at /);
  });

  it('never prints a secret', async () => {
    const destination = await start();
    const secret = 'sk-very-secret-token-123';
    const report = join(temp(), 'report.json');
    const result = await cli(['copy', source.url, destination.url, '--report', report, '--experiment', 'rich'], {
      TRACKSHIFT_SRC_MLFLOW_TRACKING_TOKEN: secret,
      MLFLOW_TRACKING_PASSWORD: secret,
      MLFLOW_TRACKING_USERNAME: 'someone',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout + result.stderr + readFileSync(report, 'utf8')).not.toContain(secret);
  });
});
