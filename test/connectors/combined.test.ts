/**
 * A folder holding two formats' runs (a `.neptune` folder of both Neptune clients) is read as
 * one source: every experiment of each part, ids kept unique, every call on a run answered by
 * the part that holds it — shown on two memory stores whose experiment ids clash.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CombinedSource } from '../../src/connectors/combined.js';
import { memoryRun } from '../../src/connectors/memory/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { Run } from '../../src/model/index.js';
import { newStore } from '../engine/fixture.js';

function part(experimentName: string, runId: string, value: number) {
  const store = newStore();
  store.data.experiments.set('1', { id: '1', name: experimentName, tags: {}, lifecycle: 'active' });
  const run: Run = { id: runId, experimentId: '1', name: runId, status: 'FINISHED', startTime: 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [{ key: 'loss', type: 'float' }] };
  store.data.runs.set(runId, memoryRun({ run, metrics: new Map([['loss', [{ key: 'loss', step: 0.5, timestamp: 2, value }]]]), artifacts: new Map([['a.txt', Buffer.from(runId)]]) }));
  return store;
}

describe('a source made of several formats in one folder', () => {
  it('lists every part\'s experiments with unique ids and reads each run from its own part', async () => {
    const combined = new CombinedSource('/data/.neptune', [
      { name: 'neptune2', source: part('proj', 'old-run', 1) },
      { name: 'neptune3', source: part('exp', 'new-run', 2) },
    ]);
    const experiments = [];
    for await (const e of combined.listExperiments()) experiments.push(e);
    expect(experiments.map((e) => [e.id, e.name])).toEqual([['neptune2:1', 'proj'], ['neptune3:1', 'exp']]);

    const destination = newStore();
    const plan = await planTransfer(combined, emptySelection());
    const result = await transfer(combined, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(mkdtempSync(join(tmpdir(), 'trackshift-combined-'))) });
    expect(result.failed).toEqual([]);
    expect(result.copied.runs).toBe(2);
    const copies = [...destination.data.runs.values()];
    expect(copies.map((c) => [c.run.name, c.metrics.get('loss')![0]!.value, c.artifacts.get('a.txt')!.toString()]).sort()).toEqual([
      ['new-run', 2, 'new-run'],
      ['old-run', 1, 'old-run'],
    ]);
  });
});
