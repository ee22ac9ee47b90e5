/**
 * The transfer's point budget: however many runs and keys are read at once, the metric points
 * read and not yet written stay within it (plus the page a reader had asked for too little for),
 * and readers that must wait write their partial batches first, so the copy never deadlocks.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { PointBudget } from '../../src/engine/point-budget.js';
import { transfer } from '../../src/engine/transfer.js';
import { memoryRun } from '../../src/connectors/memory/index.js';
import type { MetricPoint, Run } from '../../src/model/index.js';
import { snapshot } from '../helpers/snapshot.js';
import { newStore } from './fixture.js';

const RUNS = 6;
const KEYS = 5;
const POINTS = 4_000;
const PAGE = 500;

function manyRuns() {
  const store = newStore({ pageSize: PAGE });
  store.data.experiments.set('1', { id: '1', name: 'many', tags: {}, lifecycle: 'active' });
  for (let r = 0; r < RUNS; r++) {
    const metrics = new Map<string, MetricPoint[]>();
    for (let k = 0; k < KEYS; k++) metrics.set(`m${k}`, Array.from({ length: POINTS }, (_, i) => ({ key: `m${k}`, value: Math.sin(i + k), timestamp: 1_700_000_000_000 + i, step: i })));
    const run: Run = { id: `r${r}`, experimentId: '1', name: `r${r}`, status: 'FINISHED', lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [...metrics.keys()].map((key) => ({ key, type: 'float' as const })) };
    store.data.runs.set(run.id, memoryRun({ run, metrics }));
  }
  return store;
}

describe('the point budget', () => {
  it('keeps the points read and not yet written within the budget, and copies every point', async () => {
    const source = manyRuns();
    const destination = newStore({ limits: { metrics: 1_200 } });
    let held = 0;
    let most = 0;
    const read = source.readMetric.bind(source);
    source.readMetric = async function* (run, key) {
      for await (const page of read(run, key)) {
        held += page.length;
        most = Math.max(most, held);
        yield page;
      }
    };
    const write = destination.writeBatch.bind(destination);
    destination.writeBatch = async (runId, batch) => {
      await new Promise((resolve) => setTimeout(resolve, 1)); // a destination slower than the source
      await write(runId, batch);
      held -= batch.metrics.length;
    };
    const budget = 3_000;
    const plan = await planTransfer(source, emptySelection());
    const result = await transfer(source, destination, plan, { workers: 4, artifactWorkers: 2, dryRun: false, journal: new Journal(mkdtempSync(join(tmpdir(), 'trackshift-budget-'))), pointsInFlight: budget });
    expect(result.failed).toEqual([]);
    expect(result.copied.metricPoints).toBe(RUNS * KEYS * POINTS);
    expect(held).toBe(0);
    // 4 runs × 4 readers would have held up to 16 pages and 16 partial batches (over 20,000 points)
    expect(most).toBeLessThanOrEqual(budget);
    expect(most).toBeGreaterThan(budget / 2);
    expect(await snapshot(destination)).toEqual(await snapshot(source));
  });

  it('lets a request larger than the whole budget through alone, and wakes waiters as points are given back', async () => {
    const budget = new PointBudget(100);
    expect(budget.tryTake(150)).toBe(true);
    expect(budget.tryTake(1)).toBe(false);
    const waiting = budget.take(60);
    let taken = false;
    void waiting.then(() => (taken = true));
    await Promise.resolve();
    expect(taken).toBe(false);
    budget.give(100); // 50 held: 60 more do not fit yet
    await Promise.resolve();
    expect(taken).toBe(false);
    budget.give(50);
    await waiting;
    expect(budget.held).toBe(60);
  });
});
