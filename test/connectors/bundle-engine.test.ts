/**
 * The bundle and mlruns connectors driven by the real engine: an mlruns store written by mlflow
 * is exported to a bundle, and the bundle read back must hold exactly what the store holds.
 * Also: re-running skips everything, and a run cut off part way is redone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleConnector } from '../../src/connectors/bundle/index.js';
import { memoryStore, type MemoryStore } from '../../src/connectors/memory/index.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runJob, type JobOptions } from '../../src/engine/job.js';
import { SOURCE_TAG_PREFIX, type Tags } from '../../src/model/index.js';
import { runPython } from '../harness/mlflow-server.js';

const withoutProvenance = (tags: Tags): Tags => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(SOURCE_TAG_PREFIX)));

/** values as strings, so NaN, -0 and ±Infinity compare exactly */
const exact = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

/** What a memory store holds, without ids and trackshift's own provenance tags. */
function comparable(store: MemoryStore) {
  const experimentName = new Map([...store.data.experiments.values()].map((e) => [e.id, e.name]));
  // runs are keyed by their source id, which both copies carry
  const sourceId = new Map([...store.data.runs.values()].map(({ run }) => [run.id, run.tags['trackshift.source.id']]));
  const experiments = [...store.data.experiments.values()]
    .map((e) => ({ name: e.name, lifecycle: e.lifecycle, tags: withoutProvenance(e.tags), creationTime: e.creationTime }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const runs = [...store.data.runs.values()]
    .map(({ run, metrics, artifacts }) => ({
      sourceId: run.tags['trackshift.source.id'],
      experiment: experimentName.get(run.experimentId),
      name: run.name,
      status: run.status,
      startTime: run.startTime,
      endTime: run.endTime,
      user: run.user,
      lifecycle: run.lifecycle,
      parent: run.parentId ? sourceId.get(run.parentId) : undefined,
      params: run.params,
      tags: withoutProvenance({ ...run.tags, 'mlflow.parentRunId': '' }),
      inputs: run.inputs,
      metrics: Object.fromEntries([...metrics].map(([key, points]) => [key, points.map((p) => `${p.timestamp} ${p.step} ${exact(p.value)}`)])),
      artifacts: Object.fromEntries([...artifacts].map(([path, bytes]) => [path, bytes.toString('base64')])),
    }))
    .sort((a, b) => String(a.sourceId).localeCompare(String(b.sourceId)));
  return { experiments, runs };
}

let tmp: string;
let store: string;
let bundle: string;
let jobs = 0;

function job(command: JobOptions['command'], source: string, destination: string): Promise<Awaited<ReturnType<typeof runJob>>> {
  return runJob({
    command,
    source,
    destination,
    selection: { ...emptySelection(), includeDeleted: true },
    workers: 4,
    artifactWorkers: 4,
    dryRun: false,
    // a fresh journal every time, so that resuming relies on what the bundle itself says
    stateDir: join(tmp, `state-${jobs++}`),
    newFolderFormat: command === 'export' ? bundleConnector : undefined,
    env: {},
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trackshift-bundle-engine-'));
  store = join(tmp, 'mlruns');
  await runPython('test/fixtures/mlruns-write.py', [], { MLFLOW_ALLOW_FILE_STORE: 'true', MLFLOW_TRACKING_URI: `file://${store}` });
  bundle = join(tmp, 'bundle');
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mlruns → bundle → anywhere, through the engine', () => {
  let direct: MemoryStore;
  let viaBundle: MemoryStore;

  it('exports everything, deleted runs and experiments included', async () => {
    const report = await job('export', store, bundle);
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(5);
    expect(report.copied.artifacts).toBe(4);
  });

  it('holds exactly what the store holds', async () => {
    await job('copy', store, 'memory:bundle-engine-direct');
    await job('copy', bundle, 'memory:bundle-engine-via');
    direct = memoryStore('bundle-engine-direct');
    viaBundle = memoryStore('bundle-engine-via');
    expect(comparable(viaBundle)).toEqual(comparable(direct));
    expect(comparable(direct).runs.length).toBe(5);
    const parent = comparable(direct).runs.find((r) => r.name === 'parent')!;
    expect(parent.metrics.special).toEqual(['1700000000001 0 NaN', '1700000000002 1 Infinity', '1700000000003 2 -Infinity', '1700000000004 3 -0.5']);
    expect(Object.keys(parent.artifacts).sort()).toEqual(['a/b/c/config.json', 'empty.txt', 'model/weights.bin', 'résumé 数据.txt']);
    expect(parent.inputs).toHaveLength(1);
  });

  it('skips everything on a second export', async () => {
    const report = await job('export', store, bundle);
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(0);
    expect(report.skipped.runs).toBe(5);
  });

  it('redoes a run whose export was cut off (no run.json), and only that one', async () => {
    const src = await bundleConnector.openSource!({ location: bundle, side: 'src', env: {} });
    let victim: { exp: string; run: string } | undefined;
    for await (const exp of src.listExperiments()) {
      for await (const run of src.listRuns(exp.id, { includeDeleted: false })) if (run.name === 'parent') victim = { exp: exp.id, run: run.id };
    }
    const runJson = join(bundle, 'experiments', victim!.exp, 'runs', victim!.run, 'run.json');
    await rm(runJson); // what a kill before the final rename leaves behind
    const report = await job('export', store, bundle);
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(1);
    expect(report.skipped.runs).toBe(4);
    await job('copy', bundle, 'memory:bundle-engine-again');
    expect(comparable(memoryStore('bundle-engine-again'))).toEqual(comparable(direct));
  });
});
