/**
 * verify compares metric histories streaming: two sides with 1,000,000 points are compared
 * with the heap no larger than for 100,000. The sides generate their points page by page (a
 * store would hold them), with different page sizes, so only the verifier's memory is measured.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Source } from '../../src/connectors/types.js';
import type { Experiment, MetricPoint, Run } from '../../src/model/index.js';
import { emptySelection } from '../../src/engine/plan.js';
import { verifySources } from '../../src/verify/compare.js';

const T0 = 1_700_000_000_000;

function generated(points: number, pageSize: number, uri: string): Source {
  const run: Run = { id: 'r1', experimentId: '1', name: 'long', status: 'FINISHED', startTime: T0, endTime: T0 + 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [{ key: 'loss', type: 'float' }] };
  const experiment: Experiment = { id: '1', name: 'big', tags: {}, lifecycle: 'active' };
  return {
    uri,
    kind: 'generated',
    async *listExperiments() {
      yield experiment;
    },
    async *listRuns() {
      yield structuredClone(run);
    },
    async *readMetric(_run, key) {
      for (let start = 0; start < points; start += pageSize) {
        const page: MetricPoint[] = [];
        for (let i = start; i < Math.min(points, start + pageSize); i++) page.push({ key, value: i % 97 === 0 ? NaN : Math.sin(i), timestamp: T0 + i, step: i });
        yield page;
      }
    },
    async *listArtifacts() {},
    readArtifact: async () => Readable.from([]),
  };
}

async function peakHeapWhileVerifying(points: number): Promise<{ peak: number; compared: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  }, 5);
  const report = await verifySources(generated(points, 1000, 'generated:a'), generated(points, 2500, 'generated:b'), {
    selection: emptySelection(),
    workers: 1,
    artifactWorkers: 1,
    maxDifferences: 20,
  });
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  expect(report.equal).toBe(true);
  return { peak, compared: report.compared.metricPoints };
}

describe('verify memory', () => {
  it('does not grow with the number of metric points', async () => {
    const small = await peakHeapWhileVerifying(100_000);
    const large = await peakHeapWhileVerifying(1_000_000);
    expect(large.compared).toBe(1_000_000);
    console.log(`peak heap growth: ${(small.peak / 2 ** 20).toFixed(1)} MB for 100,000 points, ${(large.peak / 2 ** 20).toFixed(1)} MB for 1,000,000`);
    // holding a million points would take well over 100 MB; the window is a few pages
    expect(large.peak).toBeLessThan(Math.max(small.peak, 0) + 32 * 1024 * 1024);
    expect(large.peak).toBeLessThan(64 * 1024 * 1024);
  });
});
