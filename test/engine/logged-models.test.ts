/** MLflow 3 logged models through the engine, memory → memory: the model, its files, its run's output and a version registered from it. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { MemoryStore } from '../../src/connectors/memory/index.js';
import { newStore, sourceStore, version } from './fixture.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'trackshift-logged-models-'));

async function copy(source: MemoryStore, destination: MemoryStore, stateDir = tempDir()) {
  const plan = await planTransfer(source, emptySelection());
  return transfer(source, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(stateDir) });
}

/** The engine fixture's run `parent` made the logged model m-2d10d1a9005c4e2f at step 7 (an id as long as MLflow's: shorter ones are not replaced inside artifact_path); version 1 of `fraud` was registered from it. */
function loggedModelSource(): MemoryStore {
  const store = sourceStore();
  store.data.runs.get('parent')!.run.modelOutputs = [{ modelId: 'm-2d10d1a9005c4e2f', step: 7 }];
  store.loggedModels.add(
    { id: 'm-2d10d1a9005c4e2f', experimentId: '1', name: 'classifier', sourceRunId: 'parent', modelType: 'sklearn', status: 'LOGGED_MODEL_READY', params: { alpha: '0.5' }, tags: { owner: 'ml' }, creationTime: 1234 },
    { MLmodel: Buffer.from('artifact_path: mlflow-artifacts:/1/models/m-2d10d1a9005c4e2f/artifacts\nmodel_id: m-2d10d1a9005c4e2f\nrun_id: parent\n'), 'model.pkl': Buffer.from([1, 2, 3]) },
  );
  store.registry.add({ name: 'fraud', tags: {}, aliases: {} }, [version('1', 'None', { type: 'logged-model', modelId: 'm-2d10d1a9005c4e2f' }, { runId: 'parent', loggedModelId: 'm-2d10d1a9005c4e2f' })]);
  return store;
}

describe('logged models between memory stores', () => {
  it('copies a logged model with its files, its run output and the version registered from it, all pointing at the copies', async () => {
    const source = loggedModelSource();
    const destination = newStore();
    const result = await copy(source, destination);
    expect(result.failed).toEqual([]);
    expect(result.copied.loggedModels).toBe(1);
    expect(result.copied.versions).toBe(1);

    const runCopy = [...destination.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === 'parent')!.run;
    const [copied, ...others] = destination.loggedModels.models.values();
    expect(others).toEqual([]);
    const model = copied!.model;
    expect(model.id).not.toBe('m-2d10d1a9005c4e2f');
    expect(model).toMatchObject({ experimentId: runCopy.experimentId, name: 'classifier', sourceRunId: runCopy.id, modelType: 'sklearn', status: 'LOGGED_MODEL_READY', params: { alpha: '0.5' } });
    expect(model.tags).toMatchObject({ owner: 'ml', 'trackshift.source.id': 'm-2d10d1a9005c4e2f', 'trackshift.complete': 'true' });
    // the MLmodel file names the copies; other files are the same bytes
    expect(copied!.artifacts.get('MLmodel')!.toString()).toBe(`artifact_path: mlflow-artifacts:/1/models/${model.id}/artifacts\nmodel_id: ${model.id}\nrun_id: ${runCopy.id}\n`);
    expect(copied!.artifacts.get('model.pkl')).toEqual(Buffer.from([1, 2, 3]));
    // the run lists the copy (not the source's model) among its outputs, at the same step
    expect(runCopy.modelOutputs).toEqual([{ modelId: model.id, step: 7 }]);

    const versions = [];
    for await (const v of destination.registry.listVersions('fraud')) versions.push(v);
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({ version: '1', location: { type: 'logged-model', modelId: model.id }, loggedModelId: model.id, runId: runCopy.id });
  });

  it('finds the copy again on a re-run, and redoes one cut off before it was finished', async () => {
    const source = loggedModelSource();
    const destination = newStore();
    await copy(source, destination);
    const again = await copy(source, destination);
    expect(again.failed).toEqual([]);
    expect(again.copied.loggedModels).toBe(0);
    expect(destination.loggedModels.models.size).toBe(1);

    // a copy left pending (no complete tag) is discarded and written again
    const cutOff = newStore();
    const planned = await copy(source, cutOff);
    expect(planned.copied.loggedModels).toBe(1);
    const [first] = cutOff.loggedModels.models.values();
    delete first!.model.tags['trackshift.complete'];
    const redone = await copy(source, cutOff);
    expect(redone.copied.loggedModels).toBe(1);
    expect(cutOff.loggedModels.models.size).toBe(1);
    expect(cutOff.loggedModels.models.has(first!.model.id)).toBe(false);
  });
});
