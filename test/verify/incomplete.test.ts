/**
 * A read that fails while comparing leaves the comparison incomplete: the run is named with
 * the reason, the other runs are still compared, and the page fetched ahead on the other side
 * failing later does not end the process (an unhandled rejection would).
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Source } from '../../src/connectors/types.js';
import type { Experiment, Run } from '../../src/model/index.js';
import { emptySelection } from '../../src/engine/plan.js';
import { verifySources } from '../../src/verify/compare.js';
import { reportHtml } from '../../src/verify/html.js';
import { HttpError } from '../../src/util/http.js';

const T0 = 1_700_000_000_000;
const unavailable = () => new HttpError('GET /metrics/get-history failed with 503: Service Unavailable', 503, undefined, 'GET', '/metrics/get-history');

/** Two runs with one metric each; reading run `failing`'s history fails after `delayMs`. */
function store(uri: string, failing?: { run: string; delayMs: number }): Source {
  const experiment: Experiment = { id: '1', name: 'exp', tags: {}, lifecycle: 'active' };
  const run = (id: string): Run => ({ id, experimentId: '1', name: id, status: 'FINISHED', startTime: T0, endTime: T0 + 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [{ key: 'loss', type: 'float' }] });
  return {
    uri,
    kind: 'test',
    async *listExperiments() {
      yield experiment;
    },
    async *listRuns() {
      yield run('a');
      yield run('b');
    },
    async *readMetric(r, key) {
      if (failing && r.id === failing.run) {
        await new Promise((resolve) => setTimeout(resolve, failing.delayMs));
        throw unavailable();
      }
      yield [{ key, value: 1, timestamp: T0, step: 0 }];
    },
    async *listArtifacts() {},
    readArtifact: async () => Readable.from([]),
  };
}

describe('an incomplete comparison', () => {
  it('names the run it could not compare, compares the others, and survives the other side failing later', async () => {
    // the source fails at once, the destination's page fetched ahead fails a little later
    const report = await verifySources(store('src', { run: 'a', delayMs: 0 }), store('dst', { run: 'a', delayMs: 30 }), {
      selection: emptySelection(),
      workers: 1,
      artifactWorkers: 1,
      maxDifferences: 20,
    });
    await new Promise((resolve) => setTimeout(resolve, 100)); // the late failure has happened
    expect(report.incomplete).toEqual([{ path: 'exp/a', reason: expect.stringMatching(/failed with 503/) }]);
    expect(report.equal).toBe(false);
    expect(report.objects).toEqual([]);
    expect(report.summary.run.equal).toBe(1);
    // the HTML report says so too, with the run and the reason, never "equal"
    const html = reportHtml(report);
    expect(html).toMatch(/INCOMPLETE: 1 object\(s\) could not be compared/);
    expect(html).toMatch(/<td class="path">exp\/a<\/td><td class="value">[^<]*failed with 503/);
    expect(html).not.toMatch(/EQUAL: no differences/);
  });

  it('is incomplete, never equal, when a file source left an unreadable object out of its listing', async () => {
    const src = store('src');
    const dst = store('dst');
    const unreadable = [{ type: 'run' as const, sourceId: 'c', reason: '/export/exp/c/run.json: not valid JSON' }];
    const report = await verifySources({ ...src, unreadable }, dst, { selection: emptySelection(), workers: 1, artifactWorkers: 1, maxDifferences: 20 });
    expect(report.summary.run.equal).toBe(2);
    expect(report.incomplete).toEqual([{ path: 'source run c', reason: '/export/exp/c/run.json: not valid JSON' }]);
    expect(report.equal).toBe(false);
  });
});
