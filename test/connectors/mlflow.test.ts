/**
 * The MLflow connector against real servers: what it reads matches what the mlflow client
 * wrote, and what it writes reads back the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlflowConnector } from '../../src/connectors/mlflow/index.js';
import type { MlflowStore } from '../../src/connectors/mlflow/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { Run } from '../../src/model/index.js';
import { UsageError } from '../../src/util/errors.js';
import { AUTH_ADMIN_PASSWORD, runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { snapshot } from '../helpers/snapshot.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

const open = async (url: string, side: 'src' | 'dst' = 'src', env: NodeJS.ProcessEnv = {}) =>
  (await mlflowConnector.openDestination!({ location: url, side, env })) as MlflowStore;

export const T0 = 1_700_000_000_000;

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('MLflow connector', () => {
  let a: MlflowServer;
  let b: MlflowServer;
  let ids: Record<string, string>;

  beforeAll(async () => {
    [a, b] = await Promise.all([startMlflowServer(), startMlflowServer()]);
    const out = await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: a.url });
    ids = JSON.parse(out.trim().split('\n').pop()!);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('reads what the mlflow client wrote, field by field', async () => {
    const source = await open(a.url);
    const experiments = await collect(source.listExperiments());
    const rich = experiments.find((e) => e.name === 'rich')!;
    expect(rich.tags).toMatchObject({ team: 'vision', 'mlflow.note.content': 'Experiment description: **rich** data' });
    expect(experiments.find((e) => e.name === 'deleted-experiment')!.lifecycle).toBe('deleted');

    const runs = await collect(source.listRuns(rich.id, { includeDeleted: true }));
    const byName = (name: string) => runs.find((r) => r.name === name)!;
    const parent = byName('parent');
    expect(parent).toMatchObject({ id: ids.parent, status: 'FINISHED', startTime: T0, endTime: T0 + 100_000, user: 'ana', lifecycle: 'active' });
    expect(parent.params.long_param).toHaveLength(6000);
    expect(parent.params.empty).toBe('');
    expect(parent.params.unicode).toBe('données ✓');
    expect(parent.tags.long_tag).toHaveLength(5000);
    expect(parent.tags['mlflow.note.content']).toBe('A run description\nwith two lines');
    expect(parent.inputs).toEqual([
      expect.objectContaining({ dataset: expect.objectContaining({ name: 'train-set', sourceType: 's3' }), tags: { 'mlflow.data.context': 'training' } }),
    ]);
    expect(byName('child')).toMatchObject({ status: 'FAILED', parentId: ids.parent, endTime: T0 + 50_000 });
    expect(byName('grandchild')).toMatchObject({ status: 'KILLED', parentId: ids.child });
    expect(byName('still-running')).toMatchObject({ status: 'RUNNING', endTime: undefined });
    expect(byName('deleted-run').lifecycle).toBe('deleted');
    expect((await collect(source.listRuns(rich.id, { includeDeleted: false }))).map((r) => r.name)).not.toContain('deleted-run');

    const loss = (await collect(source.readMetric(parent, 'loss'))).flat();
    expect(loss).toHaveLength(10_000);
    expect(loss[9999]).toEqual({ key: 'loss', value: 1 / 10_000, timestamp: T0 + 1000 + 9999 * 7, step: 9999 });
    const special = (await collect(source.readMetric(parent, 'special'))).flat().map((p) => p.value);
    // an SQL-backed server keeps ±Infinity as ±MAX_VALUE (and reads them back that way)
    expect(special).toEqual([NaN, Number.MAX_VALUE, -Number.MAX_VALUE, 0, -0.5]);
    const dup = (await collect(source.readMetric(parent, 'dup'))).flat();
    expect(dup.filter((p) => p.step === 5).map((p) => p.value)).toEqual([1, 2, 3]);

    const files = await collect(source.listArtifacts(parent));
    expect(files.map((f) => f.path).sort()).toEqual(['empty.txt', 'model/deep/er/config.json', 'model/weights.bin', 'résumé 数据.txt']);
    expect(files.find((f) => f.path === 'model/weights.bin')!.size).toBe(5 * 1024 * 1024);
    let bytes = 0;
    for await (const chunk of await source.readArtifact(parent, 'model/weights.bin')) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(5 * 1024 * 1024);
    await source.close();
  });

  it('writes runs that read back the same, through the engine', async () => {
    const source = await open(a.url);
    const destination = await open(b.url, 'dst');
    const plan = await planTransfer(source, { ...emptySelection(), includeDeleted: true });
    const journal = new Journal(mkdtempSync(join(tmpdir(), 'trackshift-mlflow-')));
    const result = await transfer(source, destination, plan, { workers: 4, artifactWorkers: 4, dryRun: false, journal });
    expect(result.failed).toEqual([]);
    expect(result.copied.runs).toBe(9);
    expect(await snapshot(destination)).toEqual(await snapshot(source));
    await Promise.all([source.close(), destination.close()]);
  });

  it('keeps ±Infinity through a server that cannot store it, and warns', async () => {
    const destination = await open(b.url, 'dst');
    const experimentId = await destination.ensureExperiment({ id: 'x', name: 'infinity', tags: {}, lifecycle: 'active' }, 'infinity');
    const run: Run = { id: 'src-inf', experimentId: 'x', status: 'FINISHED', startTime: T0, endTime: T0 + 1, lifecycle: 'active', params: { long: 'v'.repeat(7000) }, tags: { 'trackshift.source.id': 'src-inf' }, inputs: [], series: [] };
    const id = await destination.createRun(experimentId, run);
    await destination.writeBatch(id, {
      params: [{ key: 'long', value: 'v'.repeat(7000) }],
      tags: [],
      metrics: [
        { key: 'm', value: Infinity, timestamp: 1, step: 0 },
        { key: 'm', value: -Infinity, timestamp: 2, step: 1 },
        { key: 'm', value: NaN, timestamp: 3, step: 2 },
      ],
    });
    const { warnings } = (await destination.finishRun(id, run))!;
    expect(warnings.join('\n')).toMatch(/param "long" has 7000 characters.*\.trackshift\/long-values\/params\/long/);
    expect(warnings.join('\n')).toMatch(/±Infinity/);
    const back = (await destination.getRun(id))!;
    expect(back.params.long).toHaveLength(6000);
    const points = (await collect(destination.readMetric(back, 'm'))).flat().map((p) => p.value);
    expect(points).toEqual([Infinity, -Infinity, NaN]);
    const kept = await destination.readArtifact(back, '.trackshift/long-values/params/long');
    let text = '';
    for await (const chunk of kept) text += chunk.toString();
    expect(text).toBe('v'.repeat(7000));
    await destination.close();
  });

  it('finds complete and partial copies, and discards a partial one', async () => {
    const destination = await open(b.url, 'dst');
    const experimentId = await destination.ensureExperiment({ id: 'y', name: 'resume', tags: {}, lifecycle: 'active' }, 'resume');
    const run = (sourceId: string): Run => ({ id: sourceId, experimentId: 'y', status: 'FINISHED', lifecycle: 'active', params: {}, tags: { 'trackshift.source.id': sourceId }, inputs: [], series: [] });
    const done = await destination.createRun(experimentId, run('done'));
    await destination.writeArtifact(done, { path: 'a.txt', size: 1 }, Readable.from([Buffer.from('a')]));
    await destination.finishRun(done, run('done'));
    const partial = await destination.createRun(experimentId, run('partial'));
    expect(await destination.findRun(experimentId, 'done')).toEqual({ id: done, complete: true, lifecycle: 'active' });
    expect(await destination.findRun(experimentId, 'partial')).toEqual({ id: partial, complete: false, lifecycle: 'active' });
    await destination.discardRun(partial);
    expect(await destination.findRun(experimentId, 'partial')).toBeUndefined();
    expect(await destination.findRun(experimentId, 'never')).toBeUndefined();
    await destination.close();
  });

  it('says clearly when a server cannot be reached or refuses the credentials', async () => {
    await expect(open('http://127.0.0.1:9')).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED/);
    const secured = await startMlflowServer({ appName: 'basic-auth' });
    try {
      const error = await open(secured.url, 'dst', { TRACKSHIFT_DST_MLFLOW_TRACKING_USERNAME: 'admin', TRACKSHIFT_DST_MLFLOW_TRACKING_PASSWORD: 'wrong-secret' }).catch((e) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect(error.message).toMatch(/refused the credentials \(401/);
      expect(error.message).toMatch(/TRACKSHIFT_DST_MLFLOW_TRACKING_USERNAME/);
      expect(error.message).not.toContain('wrong-secret');
      // the right ones work, given for the destination side only
      const ok = await open(secured.url, 'dst', { TRACKSHIFT_DST_MLFLOW_TRACKING_USERNAME: 'admin', TRACKSHIFT_DST_MLFLOW_TRACKING_PASSWORD: AUTH_ADMIN_PASSWORD, MLFLOW_TRACKING_PASSWORD: 'wrong' });
      expect((await collect(ok.listExperiments())).length).toBeGreaterThan(0);
      await ok.close();
    } finally {
      await secured.stop();
    }
  });
});
