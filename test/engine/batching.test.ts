import { mkdtempSync, appendFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyValueBatches, MetricBatcher } from '../../src/engine/batching.js';
import { Journal } from '../../src/engine/journal.js';
import type { MetricPoint } from '../../src/model/index.js';

const limits = { metrics: 1000, params: 100, tags: 100, entries: 1000, bytes: 1_000_000 };

describe('batching', () => {
  it('keeps params and tags within the count and size limits', () => {
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'v'.repeat(6000) }));
    const tags = Array.from({ length: 30 }, (_, i) => ({ key: `t${i}`, value: 't' }));
    const batches = [...keyValueBatches(params, tags, limits)];
    for (const b of batches) {
      expect(b.params.length).toBeLessThanOrEqual(100);
      expect(JSON.stringify(b).length).toBeLessThan(1_000_000);
    }
    expect(batches.flatMap((b) => b.params)).toEqual(params);
    expect(batches.flatMap((b) => b.tags)).toEqual(tags);
  });

  it('hands out full metric batches and keeps order', () => {
    const batcher = new MetricBatcher(limits);
    const points: MetricPoint[] = Array.from({ length: 2500 }, (_, i) => ({ key: 'k', value: i, timestamp: i, step: i }));
    const full = [...batcher.add(points.slice(0, 1200)), ...batcher.add(points.slice(1200))];
    const rest = batcher.flush()!;
    expect(full.map((b) => b.length)).toEqual([1000, 1000]);
    expect(rest.length).toBe(500);
    expect([...full.flat(), ...rest]).toEqual(points);
    expect(batcher.flush()).toBeUndefined();
  });

  it('splits by size when keys are long', () => {
    const batcher = new MetricBatcher({ ...limits, bytes: 10_000 });
    const points = Array.from({ length: 100 }, (_, i) => ({ key: 'k'.repeat(250), value: i, timestamp: i, step: i }));
    const full = batcher.add(points);
    expect(full.length).toBeGreaterThan(1);
    for (const b of full) expect(b.length * 340).toBeLessThanOrEqual(10_000);
  });
});

describe('journal', () => {
  it('survives a line cut short by a kill and maps ids', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trackshift-journal-'));
    const journal = new Journal(dir);
    journal.experimentMapped('1', '10', 'a');
    journal.runStarted('r1', 'd1');
    journal.runDone('r1', 'd1');
    journal.runStarted('r2', 'd2');
    appendFileSync(join(dir, 'journal.jsonl'), '{"type":"run-do');
    const again = new Journal(dir);
    expect(again.idMap()).toEqual({ experiments: { '1': '10' }, runs: { r1: 'd1' }, loggedModels: {}, modelVersions: {} });
    expect([...again.startedRuns]).toEqual([['r2', 'd2']]);
    again.runDone('r2', 'd2');
    expect(new Journal(dir).idMap().runs).toEqual({ r1: 'd1', r2: 'd2' });
    again.writeIdMap(join(dir, 'map.json'));
    expect(JSON.parse(readFileSync(join(dir, 'map.json'), 'utf8')).runs.r1).toBe('d1');
  });
});
