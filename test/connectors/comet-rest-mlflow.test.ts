/**
 * comet:// with MLflow on the other side, against the Comet-shaped test server (no live Comet):
 * the bundled sample (an mlruns folder the mlflow client wrote: nested runs, a failed run, tags
 * with values, notes, dataset inputs, artifacts) goes MLflow → Comet → bundle with `verify` equal
 * at each hop — nothing Comet has no place for is lost or doubled, nothing Comet answers for an
 * empty experiment (system details of nulls) shows up as data — and the selection flags pick runs
 * out of a Comet source as they do out of any other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleConnector } from '../../src/connectors/resolve.js';
import { runJob, type JobOptions } from '../../src/engine/job.js';
import { emptySelection, type Selection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import { cli } from '../cli/run-cli.js';
import { startCometServer, type CometServer } from '../harness/comet-server/index.js';
import { expectEqual } from '../helpers/jobs.js';

const SAMPLE = fileURLToPath(new URL('../../sample/mlruns', import.meta.url));
/** the sample's experiments that hold runs (an empty experiment's tags travel with its runs, so MLflow's empty Default is left out) */
const EXPERIMENTS = ['mnist-classifier', 'text-embeddings'];
const KEY = 'mlflowSideKey0123456789abcdef';

let tmp: string;
let server: CometServer;
let states = 0;

/** one server for both sides, reached only through these variables (no ~/.comet.config of the machine) */
const env = (): NodeJS.ProcessEnv => ({ HOME: tmp, COMET_URL_OVERRIDE: server.clientlibUrl, COMET_API_KEY: KEY });
const only = (experiments: string[]): Selection => ({ ...emptySelection(), experiments });

function job(command: JobOptions['command'], source: string, destination: string) {
  return runJob({
    command,
    source,
    destination,
    selection: only(EXPERIMENTS),
    workers: 2,
    artifactWorkers: 2,
    dryRun: false,
    stateDir: join(tmp, `state-${states++}`),
    newFolderFormat: command === 'export' ? bundleConnector : undefined,
    env: env(),
  });
}

const verify = (source: string, destination: string) =>
  runVerify({ source, destination, selection: only(EXPERIMENTS), workers: 2, artifactWorkers: 2, maxDifferences: 50, env: env() });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-comet-mlflow-'));
  server = await startCometServer({ apiKeys: [KEY] });
  server.store.workspaces.add('team');
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('comet:// and MLflow', () => {
  it('MLflow → Comet → bundle: verify equal at each hop, a re-run adds nothing, every call answered', async () => {
    const copied = await job('copy', SAMPLE, 'comet://team');
    expect(copied.failed).toEqual([]);
    expectEqual(await verify(SAMPLE, 'comet://team'), 5);
    expect(server.store.experimentsOf(server.store.project('team', 'mnist-classifier')!.projectId)).toHaveLength(3);

    const again = await job('copy', SAMPLE, 'comet://team');
    expect(again.failed).toEqual([]);
    expect(server.store.experimentsOf(server.store.project('team', 'mnist-classifier')!.projectId)).toHaveLength(3);

    const bundle = join(tmp, 'bundle');
    expect((await job('export', 'comet://team', bundle)).failed).toEqual([]);
    expectEqual(await verify('comet://team', `bundle:${bundle}`), 5);
    expectEqual(await verify(SAMPLE, `bundle:${bundle}`), 5);
    expect(server.unhandled).toEqual([]);
  }, 300_000);

  it('selects runs of a Comet source by experiment, run id, tag, status, start time and name', async () => {
    const planned = async (...flags: string[]): Promise<number> => {
      const result = await cli(['copy', 'comet://team', `mlruns:${join(tmp, 'never-written')}`, '--dry-run', '--state-dir', join(tmp, `state-${states++}`), ...flags], env());
      expect(result.code, result.stderr).toBe(0);
      return Number(/planned (\d+) run/.exec(result.stdout + result.stderr)?.[1]);
    };
    expect(await planned()).toBe(5);
    expect(await planned('--experiment', 'text-embeddings')).toBe(2);
    expect(await planned('--run-id', '428474c15e9e4ba7a6a86bd5a7550d23')).toBe(1);
    expect(await planned('--tag', 'stage=candidate')).toBe(1);
    expect(await planned('--status', 'FAILED')).toBe(1);
    expect(await planned('--start-after', '2024-06-01T00:06:00Z')).toBe(3);
    expect(await planned('--run-name', 'lr=*')).toBe(2);
    expect(await planned('--run-name', 'minilm-finetune', '--run-name', 'lr-sweep')).toBe(2);
  }, 300_000);
});
