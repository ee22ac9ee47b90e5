/**
 * Both Neptune clients write into `./.neptune` by default, so one folder often holds runs of
 * both: the 2.x client's operation logs (`offline/`) and neptune-scale's databases. Given that
 * folder, or the folder above it, trackshift reads every run of either kind — written here by
 * the real clients — and copies them all; `verify` finds the copy equal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleConnector, openSource } from '../../src/connectors/resolve.js';
import { runJob } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import { runTool } from '../harness/mlflow-server.js';
import { cli } from '../cli/run-cli.js';

let tmp: string;
let project: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune-folder-'));
  project = join(tmp, 'project');
  const logs = join(project, '.neptune');
  await Promise.all([
    runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', join(tmp, 'work'), join(tmp, 'logged2.json')], { NEPTUNE_MODE: 'offline', NEPTUNE_DATA_DIRECTORY: logs }),
    runTool('neptune3', 'python', ['test/fixtures/neptune3_offline.py', logs, '50']),
  ]);
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a .neptune folder holding both clients\' runs', () => {
  it('is read whole, from the folder or the one above it, and listed by ls', async () => {
    for (const location of [project, join(project, '.neptune')]) {
      const source = await openSource(location, {});
      try {
        const runs: string[] = [];
        for await (const experiment of source.listExperiments()) for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) runs.push(`${experiment.name}/${run.name}`);
        // the 2.x runs (their folder records no project: experiment "neptune") and both 3.x runs
        expect(runs.filter((r) => r.startsWith('neptune/')).length).toBeGreaterThanOrEqual(2);
        expect(runs.filter((r) => !r.startsWith('neptune/')).length).toBe(2);
      } finally {
        await source.close?.();
      }
    }
    const ls = await cli(['ls', project, '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const listed = JSON.parse(ls.stdout) as { experiments: Array<{ name: string; runs: number }> };
    expect(listed.experiments.reduce((n, e) => n + e.runs, 0)).toBeGreaterThanOrEqual(4);
  });

  it('is copied whole into a bundle, verify equal', async () => {
    const bundle = join(tmp, 'bundle');
    const report = await runJob({
      command: 'export',
      source: project,
      destination: bundle,
      selection: emptySelection(),
      workers: 2,
      artifactWorkers: 2,
      dryRun: false,
      stateDir: join(tmp, 'state'),
      newFolderFormat: bundleConnector,
      env: {},
    });
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBeGreaterThanOrEqual(4);
    const verify = await runVerify({ source: project, destination: `bundle:${bundle}`, selection: emptySelection(), workers: 2, artifactWorkers: 2, maxDifferences: 20, env: {} });
    expect(verify.objects).toEqual([]);
    expect(verify.equal).toBe(true);
  });
});
