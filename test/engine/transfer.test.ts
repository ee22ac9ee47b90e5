import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer, type Selection } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { Source, Destination } from '../../src/connectors/types.js';
import { UsageError } from '../../src/util/errors.js';
import { snapshot } from '../helpers/snapshot.js';
import { newStore, sourceStore } from './fixture.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'trackshift-engine-'));

async function copy(source: Source, destination: Destination, selection: Partial<Selection> = {}, stateDir = tempDir(), workers = 3) {
  const plan = await planTransfer(source, { ...emptySelection(), ...selection });
  return transfer(source, destination, plan, { workers, artifactWorkers: 2, dryRun: false, journal: new Journal(stateDir) });
}

describe('transfer between memory stores', () => {
  it('copies every field, metric point and artifact, with nested runs remapped', async () => {
    const source = sourceStore();
    const destination = newStore({ limits: { metrics: 100, params: 10, tags: 10, entries: 100 } });
    const result = await copy(source, destination, { includeDeleted: true });
    expect(result.failed).toEqual([]);
    expect(result.copied.runs).toBe(6);
    expect(result.copied.metricPoints).toBe(2505);
    expect(await snapshot(destination)).toEqual(await snapshot(source));
    // nesting points at the new ids, not the old ones
    const child = [...destination.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === 'child')!.run;
    const parent = [...destination.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === 'parent')!.run;
    expect(child.tags['mlflow.parentRunId']).toBe(parent.id);
    expect(destination.data.experiments.get(child.experimentId)!.name).toBe('alpha');
  });

  it('skips deleted runs and experiments unless asked', async () => {
    const destination = newStore();
    const result = await copy(sourceStore(), destination);
    expect(result.copied.runs).toBe(4);
    expect([...destination.data.experiments.values()].map((e) => e.name).sort()).toEqual(['alpha', 'beta']);
  });

  it('stopped by its signal: starts nothing more, abandons a run that outlasts the grace time, discards it, and a re-run completes', async () => {
    const source = sourceStore();
    const destination = newStore();
    const state = tempDir();
    const controller = new AbortController();
    // the run "parent" never gets its files written: stuck in flight
    const write = destination.writeArtifact.bind(destination);
    destination.writeArtifact = (runId, file, body) => {
      if (destination.data.runs.get(runId)?.run.tags['trackshift.source.id'] !== 'parent') return write(runId, file, body);
      body.resume();
      controller.abort();
      return new Promise(() => undefined);
    };
    const plan = await planTransfer(source, { ...emptySelection(), includeDeleted: true });
    const result = await transfer(source, destination, plan, { workers: 1, artifactWorkers: 2, dryRun: false, journal: new Journal(state), signal: controller.signal, stopGraceMs: 20 });
    expect(result.interrupted).toBe(true);
    expect(result.runsAbandoned).toBe(1);
    expect(result.copied.runs + result.runsNotStarted!).toBe(plan.runCount - 1);
    expect(result.runsNotStarted).toBeGreaterThan(0);
    expect(result.failed).toEqual([]);
    expect(result.warnings.map((w) => w.message)).toContain('cut off by the interruption: its partial copy was discarded, the next run copies it again');
    // nothing of "parent" is left looking like a copy, nor journaled as done
    expect([...destination.data.runs.values()].some((r) => r.run.tags['trackshift.source.id'] === 'parent')).toBe(false);
    expect(new Journal(state).doneRuns.has('parent')).toBe(false);

    destination.writeArtifact = write;
    const again = await copy(source, destination, { includeDeleted: true }, state);
    expect(again.failed).toEqual([]);
    expect(again.copied.runs).toBe(plan.runCount - result.copied.runs);
    expect(await snapshot(destination)).toEqual(await snapshot(source));
  });

  it('copies nothing twice when run again, with or without the journal', async () => {
    const source = sourceStore();
    const destination = newStore();
    const state = tempDir();
    await copy(source, destination, { includeDeleted: true }, state);
    const again = await copy(source, destination, { includeDeleted: true }, state);
    expect(again.copied.runs).toBe(0);
    expect(again.skipped.runs).toBe(6);
    const fresh = await copy(source, destination, { includeDeleted: true }, tempDir());
    expect(fresh.skipped.runs).toBe(6);
    expect(destination.data.runs.size).toBe(6);
  });

  it('copies again into a destination emptied since the journal was written, and says so', async () => {
    const source = sourceStore();
    const state = tempDir();
    await copy(source, newStore(), { includeDeleted: true }, state);
    // the same address, another (empty) store: the journal's runs are not there
    const emptied = newStore();
    const plan = await planTransfer(source, { ...emptySelection(), includeDeleted: true });
    const dry = await transfer(source, emptied, plan, { workers: 2, artifactWorkers: 1, dryRun: true, journal: new Journal(state) });
    expect(dry.dryRun!.map((a) => a.action)).toEqual(Array(6).fill('copy'));
    const again = await copy(source, emptied, { includeDeleted: true }, state);
    expect(again.failed).toEqual([]);
    expect(again.copied.runs).toBe(6);
    expect(again.warnings.some((w) => /no longer holds run/.test(w.message))).toBe(true);
    expect(await snapshot(emptied)).toEqual(await snapshot(source));
    // and the journal now says where they are: a third run copies nothing
    const third = await copy(source, emptied, { includeDeleted: true }, state);
    expect(third.copied.runs).toBe(0);
    expect(third.skipped.runs).toBe(6);
    expect(third.warnings).toEqual([]);
  });

  it('redoes a run cut off part way, and reports the failure first', async () => {
    const source = sourceStore();
    let failNext = true;
    const destination = newStore({
      beforeWrite: (operation) => {
        if (operation === 'writeInputs' && failNext) {
          failNext = false;
          throw new Error('connection reset');
        }
      },
    });
    const state = tempDir();
    const first = await copy(source, destination, {}, state, 1);
    expect(first.failed.map((f) => f.sourceId)).toEqual(['parent', 'child', 'grandchild']);
    expect(first.failed[0]!.reason).toBe('connection reset');
    expect(first.failed[1]!.reason).toMatch(/parent run parent failed/);
    const second = await copy(source, destination, {}, state, 1);
    expect(second.failed).toEqual([]);
    expect(second.copied.runs).toBe(3);
    expect(destination.data.runs.size).toBe(4);
    const expected = (await snapshot(source)).alpha!;
    delete expected.runs.removed; // deleted, and not asked for
    expect((await snapshot(destination)).alpha).toEqual(expected);
  });

  it('tries a failed artifact again from the start', async () => {
    let failures = 0;
    const destination = newStore({
      beforeWrite: (operation) => {
        if (operation === 'writeArtifact' && failures < 2) {
          failures++;
          throw new Error('socket hang up');
        }
      },
    });
    const source = sourceStore();
    const result = await copy(source, destination, { experiments: ['alpha'] });
    expect(result.failed).toEqual([]);
    expect(failures).toBe(2);
    expect((await snapshot(destination)).alpha!.runs.parent).toEqual((await snapshot(source)).alpha!.runs.parent);
  });

  it('writes nothing on a dry run and says what it would do', async () => {
    const source = sourceStore();
    const destination = newStore();
    await copy(source, destination, { experiments: ['beta'] });
    const plan = await planTransfer(source, emptySelection());
    const result = await transfer(source, destination, plan, { workers: 2, artifactWorkers: 1, dryRun: true, journal: new Journal(tempDir()) });
    expect(result.dryRun!.map((a) => `${a.run}:${a.action}`).sort()).toEqual(['b1:skip', 'child:copy', 'grandchild:copy', 'parent:copy']);
    expect(destination.data.runs.size).toBe(1);
  });
});

describe('selection', () => {
  const ids = async (selection: Partial<Selection>) =>
    (await planTransfer(sourceStore(), { ...emptySelection(), ...selection })).experiments.flatMap((e) => e.runs.map((r) => r.id));

  it('orders parents before children', async () => {
    expect(await ids({ experiments: ['alpha'] })).toEqual(['parent', 'child', 'grandchild']);
  });

  it('selects by name or id, run ids, status and start time', async () => {
    expect(await ids({ experiments: ['2'] })).toEqual(['b1']);
    expect(await ids({ runIds: ['child'] })).toEqual(['child']);
    expect(await ids({ runIds: ['child'], includeNested: true })).toEqual(['child', 'grandchild']);
    expect(await ids({ statuses: ['FAILED', 'RUNNING'] })).toEqual(['child', 'grandchild']);
    expect(await ids({ startAfter: 15, startBefore: 100 })).toEqual(['child', 'grandchild', 'b1']);
  });

  it('refuses what it cannot do with a clear message', async () => {
    await expect(ids({ experiments: ['nope'] })).rejects.toThrow(/experiment "nope" is not in memory:test-\d+\. It has: "alpha" \(1\)/);
    await expect(ids({ experiments: ['gone'] })).rejects.toThrow(/--include-deleted/);
    await expect(ids({ dstExperiment: 'x' })).rejects.toBeInstanceOf(UsageError);
    await expect(ids({ runIds: ['missing'] })).rejects.toThrow(/run not found.*missing/);
    await expect(ids({ filter: 'x' })).rejects.toThrow(/--filter is not supported by memory/);
  });

  it('renames the one selected experiment and merges into an existing one', async () => {
    const destination = newStore();
    await destination.ensureExperiment({ id: '', name: 'target', tags: {}, lifecycle: 'active' }, 'target');
    await copy(sourceStore(), destination, { experiments: ['alpha'], dstExperiment: 'target' });
    expect([...destination.data.experiments.values()].map((e) => e.name)).toEqual(['target']);
    expect(destination.data.runs.size).toBe(3);
  });
});

describe('objects the source cannot read', () => {
  it('fail alone: reported as failed with their reason, and everything else is copied', async () => {
    const source = sourceStore();
    source.broken.set('2', { type: 'experiment', reason: '/x/experiments/2/experiment.json: not valid JSON' });
    source.broken.set('child', { type: 'run', reason: '/x/1/child/run.json: unexpected content' });
    const destination = newStore();
    const result = await copy(source, destination);
    expect(result.failed).toEqual([
      { type: 'experiment', sourceId: '2', reason: '/x/experiments/2/experiment.json: not valid JSON' },
      { type: 'run', sourceId: 'child', reason: '/x/1/child/run.json: unexpected content' },
    ]);
    // the parent and the grandchild (whose parent is unreadable, so it is not nested) are copied
    expect([...destination.data.runs.values()].map((r) => r.run.tags['trackshift.source.id']).sort()).toEqual(['grandchild', 'parent']);
    // its copy names no parent, neither as a field nor in MLflow's parent tag
    const grandchild = [...destination.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === 'grandchild')!.run;
    expect(grandchild.parentId).toBeUndefined();
    expect(grandchild.tags).not.toHaveProperty('mlflow.parentRunId');
    expect([...destination.data.experiments.values()].map((e) => e.name)).toEqual(['alpha']);
  });

  it('are reported by a dry run too', async () => {
    const source = sourceStore();
    source.broken.set('b1', { type: 'run', reason: 'run.json: truncated' });
    const plan = await planTransfer(source, emptySelection());
    const dry = await transfer(source, newStore(), plan, { workers: 1, artifactWorkers: 1, dryRun: true, journal: new Journal(tempDir()) });
    expect(dry.failed).toEqual([{ type: 'run', sourceId: 'b1', reason: 'run.json: truncated' }]);
  });
});
