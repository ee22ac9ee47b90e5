/**
 * An MLflow 2.x server (from its own pinned environment) at both ends of a copy with a 3.x
 * one: data written by the 2.x client reaches 3.x unchanged, and comes back to a 2.x server.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector, type MlflowStore } from '../../src/connectors/mlflow/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { snapshot } from '../helpers/snapshot.js';

const open = async (url: string, side: 'src' | 'dst') => (await mlflowConnector.openDestination!({ location: url, side, env: {} })) as MlflowStore;

async function copy(from: string, to: string) {
  const [source, destination] = [await open(from, 'src'), await open(to, 'dst')];
  try {
    const plan = await planTransfer(source, { ...emptySelection(), includeDeleted: true });
    const journal = new Journal(mkdtempSync(join(tmpdir(), 'trackshift-mlflow2-')));
    return await transfer(source, destination, plan, { workers: 4, artifactWorkers: 4, dryRun: false, journal });
  } finally {
    await Promise.all([source.close(), destination.close()]);
  }
}

async function snap(url: string) {
  const store = await open(url, 'src');
  try {
    return await snapshot(store);
  } finally {
    await store.close();
  }
}

/** The "doubler" model, with runs named instead of identified. */
async function registry(url: string) {
  const store = await open(url, 'src');
  try {
    const model = (await store.registry.getModel('doubler'))!;
    const versions = [];
    for await (const v of store.registry.listVersions('doubler')) {
      const tags = Object.fromEntries(Object.entries(v.tags).filter(([key]) => !key.startsWith('trackshift.')));
      versions.push({ version: v.version, stage: v.stage, description: v.description, tags, run: v.runId ? (await store.getRun(v.runId))?.name : undefined, kind: v.location.type });
    }
    const modelTags = Object.fromEntries(Object.entries(model.tags).filter(([key]) => !key.startsWith('trackshift.')));
    return { description: model.description, tags: modelTags, aliases: model.aliases, versions };
  } finally {
    await store.close();
  }
}

type Snapshot = Awaited<ReturnType<typeof snapshot>>;
function byName(snap: Snapshot) {
  return Object.fromEntries(
    Object.entries(snap).map(([experiment, { runs, ...rest }]) => {
      const nameOf = (id?: string) => (id ? runs[id]?.name : undefined);
      const named = Object.values(runs).map((run) => [run.name, { ...run, parent: nameOf(run.parent) }]);
      return [experiment, { ...rest, runs: Object.fromEntries(named) }];
    }),
  );
}

describe('MLflow 2.x servers', () => {
  let v2: MlflowServer;
  let v3: MlflowServer;
  let back: MlflowServer;

  beforeAll(async () => {
    [v2, v3, back] = await Promise.all([startMlflowServer({ mlflow: 2 }), startMlflowServer(), startMlflowServer({ mlflow: 2 })]);
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: v2.url }, 2);
    await runPython('test/fixtures/registry_fixture_mlflow2.py', [], { MLFLOW_TRACKING_URI: v2.url }, 2);
  });
  afterAll(async () => {
    await Promise.all([v2?.stop(), v3?.stop(), back?.stop()]);
  });

  it('copies 2.x → 3.x → 2.x field by field, registered models included', async () => {
    const there = await copy(v2.url, v3.url);
    expect(there.failed).toEqual([]);
    expect(there.copied.runs).toBe(9 + 5);
    expect(there.copied.versions).toBe(3);
    const onThree = await snap(v3.url);
    expect(onThree).toEqual(await snap(v2.url));
    const registryOnTwo = await registry(v2.url);
    expect(registryOnTwo).toMatchObject({
      aliases: { prod: '3' },
      versions: [{ version: '1', stage: 'Archived' }, { version: '3', stage: 'Production', description: 'times four' }, { version: '4', stage: 'Staging', run: 'factor-5' }],
    });
    expect(await registry(v3.url)).toEqual(registryOnTwo);
    // the model registered by a 2.x client loads from the 3.x server, and names its copied run
    const loaded = JSON.parse((await runPython('test/fixtures/load_model.py', [v3.url, 'doubler', '3'])).trim().split('\n').pop()!);
    expect(loaded.prediction).toEqual([2, 6, 12, -4]);
    expect(loaded.mlmodel_run_id).toBe(loaded.run_id);

    const home = await copy(v3.url, back.url);
    expect(home.failed).toEqual([]);
    // after two hops the ids differ from the original's: compare by run name (unique here)
    expect(byName(await snap(back.url))).toEqual(byName(onThree));
    expect(await registry(back.url)).toEqual(registryOnTwo);
  });
});
