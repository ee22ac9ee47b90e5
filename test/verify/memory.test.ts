/**
 * verify compares series histories streaming: two sides with 1,000,000 points of a float
 * (metric) or a string series are compared with the heap no larger than for 100,000. The sides
 * generate their points page by page (a store would hold them), with different page sizes, so
 * only the verifier's memory is measured: the live heap, sampled as side A hands out pages.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Source } from '../../src/connectors/types.js';
import type { Experiment, MetricPoint, Run, StringPoint } from '../../src/model/index.js';
import { emptySelection } from '../../src/engine/plan.js';
import { verifySources } from '../../src/verify/compare.js';
import { peakHeapGrowth } from '../helpers/heap.js';

const T0 = 1_700_000_000_000;

type GeneratedType = 'float' | 'string';

/** `count` points from `from` on, one page */
function page<P>(from: number, count: number, point: (i: number) => P): P[] {
  return Array.from({ length: count }, (_, n) => point(from + n));
}

function generated(type: GeneratedType, points: number, pageSize: number, uri: string, handedOut = () => {}): Source {
  const run: Run = { id: 'r1', experimentId: '1', name: 'long', status: 'FINISHED', startTime: T0, endTime: T0 + 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [{ key: 'loss', type }] };
  const pages = async function* <P>(point: (i: number) => P) {
    for (let start = 0; start < points; start += pageSize) {
      handedOut();
      yield page(start, Math.min(pageSize, points - start), point);
    }
  };
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
    readMetric: (_run, key) => pages((i): MetricPoint => ({ key, value: i % 97 === 0 ? NaN : Math.sin(i), timestamp: T0 + i, step: i })),
    // a log line per point, a few at each fractional step, with contexts
    readSeries: () => pages((i): StringPoint => ({ value: `epoch ${i >> 10}: batch ${i} done, loss ${Math.sin(i).toFixed(6)}`, timestamp: T0 + i, step: (i >> 2) / 4, context: i % 2 ? 'train' : 'eval' })),
    async *listArtifacts() {},
    readArtifact: async () => Readable.from([]),
  };
}

async function peakHeapWhileVerifying(type: GeneratedType, points: number): Promise<{ peak: number; compared: number }> {
  const { result: report, peak } = await peakHeapGrowth(
    (measure) =>
      verifySources(generated(type, points, 1000, 'generated:a', measure), generated(type, points, 2500, 'generated:b'), {
        selection: emptySelection(),
        workers: 1,
        artifactWorkers: 1,
        maxDifferences: 20,
      }),
    40,
  );
  expect(report.equal).toBe(true);
  return { peak, compared: type === 'float' ? report.compared.metricPoints : report.compared.seriesPoints.string };
}

describe('verify memory', () => {
  it.each([
    ['metric', 'float'],
    ['string series', 'string'],
  ] as const)('does not grow with the number of points of a %s', async (_, type) => {
    const small = await peakHeapWhileVerifying(type, 100_000);
    const large = await peakHeapWhileVerifying(type, 1_000_000);
    expect(large.compared).toBe(1_000_000);
    console.log(`${type}: peak live heap growth ${(small.peak / 2 ** 20).toFixed(1)} MB for 100,000 points, ${(large.peak / 2 ** 20).toFixed(1)} MB for 1,000,000`);
    // holding a million points would take well over 100 MB; the window is a few pages
    expect(large.peak).toBeLessThan(Math.max(small.peak, 0) + 16 * 1024 * 1024);
    expect(large.peak).toBeLessThan(32 * 1024 * 1024);
  });
});
