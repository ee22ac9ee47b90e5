/**
 * A fork names the copy of the run it was forked from, also when that run is in another
 * experiment listed after the fork's own (W&B forks cross projects): the plan puts that
 * experiment first, so the parent's copy exists when the fork is written.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryRun } from '../../src/connectors/memory/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import { verifySources } from '../../src/verify/compare.js';
import type { Run } from '../../src/model/index.js';
import { newStore } from './fixture.js';

const run = (id: string, experimentId: string, extra: Partial<Run> = {}): Run => ({ id, experimentId, name: id, status: 'FINISHED', startTime: 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [], ...extra });

describe('forks across experiments', () => {
  it('copies the parent\'s experiment first and names the parent\'s copy, with one worker', async () => {
    const source = newStore();
    source.data.experiments.set('a', { id: 'a', name: 'forks', tags: {}, lifecycle: 'active' });
    source.data.experiments.set('b', { id: 'b', name: 'originals', tags: {}, lifecycle: 'active' });
    source.data.runs.set('child', memoryRun({ run: run('child', 'a', { fork: { runId: 'parent', step: 7.5 } }) }));
    source.data.runs.set('parent', memoryRun({ run: run('parent', 'b') }));
    const plan = await planTransfer(source, emptySelection());
    expect(plan.experiments.map((e) => e.experiment.name)).toEqual(['originals', 'forks']);

    const destination = newStore();
    const result = await transfer(source, destination, plan, { workers: 1, artifactWorkers: 1, dryRun: false, journal: new Journal(mkdtempSync(join(tmpdir(), 'trackshift-forks-'))) });
    expect(result.failed).toEqual([]);
    expect(result.warnings).toEqual([]);
    const copies = [...destination.data.runs.values()].map((c) => c.run);
    const parentCopy = copies.find((r) => r.name === 'parent')!;
    expect(copies.find((r) => r.name === 'child')!.fork).toEqual({ runId: parentCopy.id, step: 7.5 });
    // verify finds the fork's parent through its copy in the other experiment
    const report = await verifySources(source, destination, { selection: emptySelection(), workers: 1, artifactWorkers: 1, maxDifferences: 10 });
    expect(report.objects).toEqual([]);
  });
});
