import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MemoryStore } from '../../src/connectors/memory/index.js';
import { Journal } from '../../src/engine/journal.js';
import { rewriteMlmodel } from '../../src/connectors/mlflow-common/mlmodel.js';
import { chooseVersions, emptySelection, planTransfer, type Selection } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { ModelVersion } from '../../src/model/index.js';
import { newStore, registrySource, version } from './fixture.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'trackshift-models-'));

async function copy(source: MemoryStore, destination: MemoryStore, selection: Partial<Selection>, stateDir = tempDir()) {
  const plan = await planTransfer(source, { ...emptySelection(), ...selection });
  return transfer(source, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(stateDir) });
}

const versionsOf = async (store: MemoryStore, name: string) => {
  const out: ModelVersion[] = [];
  for await (const v of store.registry.listVersions(name)) out.push(v);
  return out;
};

const runCopyOf = (store: MemoryStore, sourceId: string) => [...store.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === sourceId)?.run;

describe('registered models between memory stores', () => {
  it('copies a model with the runs its versions need, keeping numbers, stages, aliases and times as tags', async () => {
    const source = registrySource();
    const destination = newStore();
    const result = await copy(source, destination, { models: ['fraud'] });
    expect(result.failed).toEqual([]);
    // the versions' runs, and the parent of the nested one, and nothing else
    expect(result.copied.runs).toBe(3);
    expect(result.copied.versions).toBe(4);
    const versions = await versionsOf(destination, 'fraud');
    expect(versions.map((v) => [v.version, v.stage, v.description, v.tags.v])).toEqual([
      ['1', 'Production', 'version 1', '1'],
      ['2', 'Staging', 'version 2', '2'],
      ['3', 'Archived', 'version 3', '3'],
      ['5', 'None', 'version 5', '5'],
    ]);
    const parentCopy = runCopyOf(destination, 'parent')!;
    expect(versions[0]!.location).toEqual({ type: 'run', runId: parentCopy.id, path: 'model' });
    expect(versions[0]!.runId).toBe(parentCopy.id);
    expect(versions[2]!.runId).toBe(runCopyOf(destination, 'child')!.id);
    // nesting of the version's run survives, since its parent came along
    expect(runCopyOf(destination, 'child')!.tags['mlflow.parentRunId']).toBe(parentCopy.id);
    // a version whose files are outside any run keeps pointing there, and the report says so
    expect(versions[3]!.location).toEqual({ type: 'uri', uri: 's3://bucket/fraud/5' });
    expect(result.warnings.some((w) => /version\(s\) 5 point at the source's files/.test(w.message))).toBe(true);
    const model = (await destination.registry.getModel('fraud'))!;
    expect(model.aliases).toEqual({ champion: '1', challenger: '2' });
    expect(model.description).toBe('fraud model');
    expect(model.tags).toMatchObject({ team: 'risk', 'trackshift.source.id': 'fraud', 'trackshift.source.creation_time': '5' });
    expect(versions[0]!.tags['trackshift.source.creation_time']).toBe('1001');
    // the MLmodel file names the copied run
    const mlmodel = destination.data.runs.get(parentCopy.id)!.artifacts.get('model/MLmodel')!.toString();
    expect(mlmodel).toBe(`artifact_path: model\nrun_id: ${parentCopy.id}\nflavors:\n  sklearn: {}\n`);
    expect(result.models).toEqual([{ model: 'fraud', destinationModel: 'fraud', versions: { '1': '1', '2': '2', '3': '3', '5': '5' }, shallow: ['5'] }]);
  });

  it('copies nothing twice when run again, with or without the journal', async () => {
    const source = registrySource();
    const destination = newStore();
    const state = tempDir();
    await copy(source, destination, { models: ['fraud'] }, state);
    const again = await copy(source, destination, { models: ['fraud'] }, state);
    expect(again.copied.versions).toBe(0);
    expect(again.skipped.versions).toBe(4);
    const fresh = await copy(source, destination, { models: ['fraud'] });
    expect(fresh.copied.versions).toBe(0);
    expect((await versionsOf(destination, 'fraud')).map((v) => v.version)).toEqual(['1', '2', '3', '5']);
    expect(destination.data.runs.size).toBe(3);
  });

  it('does not take versions copied from another registry for copies of this one', async () => {
    const destination = newStore();
    await copy(registrySource(), destination, { models: ['fraud'], scope: 'models' });
    // another registry with a model of the same name and numbers, created at other times
    const other = registrySource();
    for (const v of other.registry.models.get('fraud')!.versions.values()) v.creationTime = 9000 + Number(v.version);
    const result = await copy(other, destination, { models: ['fraud'], scope: 'models', dstModel: 'fraud' });
    expect(result.copied.versions).toBe(4);
    expect(result.models[0]!.versions).toEqual({ '1': '6', '2': '7', '3': '8', '5': '9' });
  });

  it('finishes a version cut off part way, without a duplicate and with the same number', async () => {
    const source = registrySource();
    const destination = newStore();
    const registry = destination.registry;
    const setTag = registry.setVersionTag.bind(registry);
    let failOnce = true;
    registry.setVersionTag = async (name, number, key, value) => {
      if (number === '2' && failOnce) {
        failOnce = false;
        throw new Error('connection lost');
      }
      return setTag(name, number, key, value);
    };
    const first = await copy(source, destination, { models: ['fraud'] });
    expect(first.failed).toEqual([expect.objectContaining({ type: 'version', sourceId: 'fraud/2' })]);
    const second = await copy(source, destination, { models: ['fraud'] });
    expect(second.failed).toEqual([]);
    const versions = await versionsOf(destination, 'fraud');
    expect(versions.map((v) => [v.version, v.tags['trackshift.source.id'], v.stage])).toEqual([
      ['1', 'fraud/1', 'Production'],
      ['2', 'fraud/2', 'Staging'],
      ['3', 'fraud/3', 'Archived'],
      ['5', 'fraud/5', 'None'],
    ]);
  });

  it('fails the versions of a run that failed, with its reason, instead of copying them shallow', async () => {
    const source = registrySource();
    // run b1 (version 2's) cannot be written: its failure is the version's
    const destination = newStore();
    const createRun = destination.createRun.bind(destination);
    destination.createRun = async (experimentId, run) => {
      if (run.tags['trackshift.source.id'] === 'b1') throw new Error('POST runs/create failed with 503: Service Unavailable');
      return createRun(experimentId, run);
    };
    const result = await copy(source, destination, { models: ['fraud'] });
    expect(result.failed).toEqual([
      expect.objectContaining({ type: 'run', sourceId: 'b1' }),
      expect.objectContaining({ type: 'version', sourceId: 'fraud/2', reason: 'its run b1 was not copied: POST runs/create failed with 503: Service Unavailable' }),
    ]);
    // version 5 is shallow in the source already (files on s3://); version 2 is not made so
    expect(result.warnings.filter((w) => /shallow/.test(w.message)).map((w) => w.message)).toEqual([expect.stringMatching(/^version\(s\) 5 point/)]);
    expect((await versionsOf(destination, 'fraud')).map((v) => v.tags['trackshift.source.id'])).not.toContain('fraud/2');
  });

  it('maps numbers in a model that already held versions, and says how', async () => {
    const source = registrySource();
    const destination = newStore();
    destination.registry.add({ name: 'fraud', tags: {}, aliases: {} }, [version('1', 'None', { type: 'uri', uri: 's3://other' }, { tags: {} })]);
    const result = await copy(source, destination, { models: ['fraud'], versions: ['1', '2'] });
    expect(result.models[0]!.versions).toEqual({ '1': '2', '2': '3' });
    expect(result.warnings.some((w) => w.message.includes('version numbers differ') && w.message.includes('1 → 2, 2 → 3'))).toBe(true);
    expect((await destination.registry.getModel('fraud'))!.aliases).toEqual({ champion: '2', challenger: '3' });
  });

  it('archives the destination\'s other versions in a stage only when asked', async () => {
    for (const archiveExisting of [false, true]) {
      const destination = newStore();
      destination.registry.add({ name: 'fraud', tags: {}, aliases: {} }, [version('1', 'Production', { type: 'uri', uri: 's3://other' }, { tags: {} })]);
      const plan = await planTransfer(registrySource(), { ...emptySelection(), models: ['fraud'], versions: ['1'], scope: 'models' });
      await transfer(registrySource(), destination, plan, { workers: 1, artifactWorkers: 1, dryRun: false, journal: new Journal(tempDir()), archiveExisting });
      expect((await versionsOf(destination, 'fraud')).map((v) => v.stage)).toEqual([archiveExisting ? 'Archived' : 'Production', 'Production']);
    }
  });

  it('turns stages into aliases for a registry without stages, and reports it', async () => {
    const destination = newStore({ stages: false });
    const result = await copy(registrySource(), destination, { models: ['fraud'], dstModel: 'main.risk.fraud' });
    expect(result.failed).toEqual([]);
    const model = (await destination.registry.getModel('main.risk.fraud'))!;
    expect(model.aliases).toEqual({ champion: '1', challenger: '2', production: '1', staging: '2', archived: '3' });
    expect(result.warnings.some((w) => /has no stages; stages became aliases/.test(w.message))).toBe(true);
  });

  it('--models-only copies no run: every version points at the source', async () => {
    const destination = newStore();
    const result = await copy(registrySource(), destination, { models: ['fraud'], scope: 'models' });
    expect(result.copied.runs).toBe(0);
    expect(destination.data.runs.size).toBe(0);
    expect(result.models[0]!.shallow).toEqual(['1', '2', '3', '5']);
  });

  it('selects versions by number, stage and newest per stage', async () => {
    const all = [...(await versionsOf(registrySource(), 'fraud')), version('6', 'Production', { type: 'uri', uri: 'x' })];
    const pick = (s: Partial<Selection>) => chooseVersions(all, { ...emptySelection(), ...s }, 'fraud', 'memory:').map((v) => v.version);
    expect(pick({ versions: ['3', '1'] })).toEqual(['1', '3']);
    expect(pick({ stages: ['Production', 'Staging'] })).toEqual(['1', '2', '6']);
    expect(pick({ latestVersions: true })).toEqual(['2', '3', '5', '6']);
    expect(pick({ stages: ['Production'], latestVersions: true })).toEqual(['6']);
    expect(() => pick({ versions: ['9'] })).toThrow(/has no version 9/);
  });

  it('copies one version deep into a named experiment, with lineage tags', async () => {
    const destination = newStore();
    const plan = await planTransfer(registrySource(), { ...emptySelection(), models: ['fraud'], versions: ['2'], dstModel: 'fraud-prod', dstExperiment: 'prod' });
    const result = await transfer(registrySource(), destination, plan, { workers: 1, artifactWorkers: 1, dryRun: false, journal: new Journal(tempDir()), lineageTags: true });
    expect(result.failed).toEqual([]);
    const [copied] = await versionsOf(destination, 'fraud-prod');
    const run = runCopyOf(destination, 'b1')!;
    expect(destination.data.experiments.get(run.experimentId)!.name).toBe('prod');
    expect(copied!.runId).toBe(run.id);
    expect(copied!.version).toBe('2');
    expect(copied!.tags).toMatchObject({ 'trackshift.lineage.model': 'fraud', 'trackshift.lineage.version': '2', 'trackshift.lineage.run_id': 'b1' });
  });

  it('copies everything, runs and models, when nothing is selected; only runs with --runs-only', async () => {
    const all = await copy(registrySource(), newStore(), {});
    expect(all.copied.runs).toBe(4);
    expect(all.copied.versions).toBe(4);
    const runsOnly = await copy(registrySource(), newStore(), { scope: 'runs' });
    expect(runsOnly.copied.versions).toBe(0);
    expect(runsOnly.planned.models).toBe(0);
  });
});

describe('MLmodel rewriting', () => {
  it('replaces only the ids it knows, keeping every other byte', () => {
    const ids = new Map([
      ['abc', 'xyz'],
      ['m-1', 'm-2'],
    ]);
    const text = "artifact_path: model\nrun_id: abc\nmodel_id: 'm-1'\nutc_time_created: '2024'\nother: abc\nrun_id: unknown\n";
    expect(rewriteMlmodel(text, ids)).toBe("artifact_path: model\nrun_id: xyz\nmodel_id: 'm-2'\nutc_time_created: '2024'\nother: abc\nrun_id: unknown\n");
    const v3 = new Map([['m-2d10d1a9005c4e2f', 'm-26730a386f9f424e']]);
    const mlflow3 = 'artifact_path: mlflow-artifacts:/1/models/m-2d10d1a9005c4e2f/artifacts\nmodel_id: m-2d10d1a9005c4e2f\nmodel_uuid: m-2d10d1a9005c4e2f\nrun_id:\n';
    expect(rewriteMlmodel(mlflow3, v3)).toBe('artifact_path: mlflow-artifacts:/1/models/m-26730a386f9f424e/artifacts\nmodel_id: m-26730a386f9f424e\nmodel_uuid: m-26730a386f9f424e\nrun_id:\n');
  });
});
