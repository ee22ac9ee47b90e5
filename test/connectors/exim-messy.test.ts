/**
 * Real mlflow-export-import exports are messy (issue 14, item 9): a run whose info.run_name
 * disagrees with its mlflow.runName tag, a single-run export folder renamed by its user, the
 * same run in two folders. Each imports, into a real MLflow server and into an mlruns store.
 * (A malformed file among good ones is in ./hostile-input.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eximExperiment, eximRun, json, put } from '../helpers/craft.js';
import { cli } from '../cli/run-cli.js';
import { startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';

const RUN = '0123456789abcdef0123456789abcdef';
const OTHER = 'fedcba9876543210fedcba9876543210';

let tmp: string;
let server: MlflowServer;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trackshift-messy-'));
  server = await startMlflowServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

interface Report {
  failed: Array<{ sourceId: string; reason: string }>;
  warnings: Array<{ object: string; message: string }>;
  copied: { runs: number };
}

async function searchRuns(experimentName: string): Promise<Array<{ info: { run_id: string; run_name: string }; data: { tags?: Array<{ key: string; value: string }> } }>> {
  const exp = (await (await fetch(`${server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(experimentName)}`)).json()) as { experiment: { experiment_id: string } };
  const found = (await (await fetch(`${server.url}/api/2.0/mlflow/runs/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ experiment_ids: [exp.experiment.experiment_id] }) })).json()) as { runs?: never[] };
  return found.runs ?? [];
}

describe('messy mlflow-export-import exports', () => {
  it('a run_name that disagrees with the mlflow.runName tag: the tag names the run, the other is kept in a tag, the server takes it', async () => {
    const dir = join(tmp, 'names');
    await put(join(dir, 'experiment.json'), json(eximExperiment('5', 'names', [RUN])));
    await put(join(dir, RUN, 'run.json'), json(eximRun(RUN, '5', { info: { run_name: 'old-name' }, tags: { 'mlflow.runName': 'new-name' } })));
    const result = await cli(['import', dir, server.url, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const [run, ...more] = await searchRuns('names');
    expect(more).toEqual([]);
    expect(run!.info.run_name).toBe('new-name');
    const tags = Object.fromEntries((run!.data.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags['mlflow.runName']).toBe('new-name');
    expect(tags['trackshift.source.run_name']).toBe('old-name');
  }, 120_000);

  it('a single-run export in a folder its user renamed: the id in run.json is the run', async () => {
    const dir = join(tmp, 'my renamed run');
    await put(join(dir, 'run.json'), json(eximRun(RUN, '5')));
    await put(join(dir, 'artifacts', 'notes.txt'), 'hello');
    const dst = join(tmp, 'renamed-dst');
    const result = await cli(['import', dir, `mlruns:${dst}`, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as Report).copied.runs).toBe(1);
  });

  it('the same run in two folders: imported once, with a warning naming both', async () => {
    const dir = join(tmp, 'twice');
    await put(join(dir, 'experiment.json'), json(eximExperiment('5', 'twice', [RUN, OTHER])));
    await put(join(dir, RUN, 'run.json'), json(eximRun(RUN, '5')));
    await put(join(dir, 'copy of the run', 'run.json'), json(eximRun(RUN, '5')));
    await put(join(dir, OTHER, 'run.json'), json(eximRun(OTHER, '5')));
    const dst = join(tmp, 'twice-dst');
    const result = await cli(['import', dir, `mlruns:${dst}`, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.copied.runs).toBe(2);
    expect(report.warnings).toEqual([{ object: `run ${RUN}`, message: expect.stringMatching(/found twice, in .*copy of the run.* imported once/) }]);
  });
});
