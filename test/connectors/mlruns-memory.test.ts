/**
 * What a metric point read from an mlruns folder costs while it is held: the engine keeps up to
 * workers × readers pages of them in flight, and V8 lets its heap grow to a multiple of what is
 * held, so each byte of a point counts several times in the peak RSS of a copy. A point as one
 * four-field literal keeps its fields in the object (~96 bytes with its two numbers and its place
 * in the page); built with a spread it also had an array of its own (~120).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MlrunsSource } from '../../src/connectors/mlruns/index.js';
import type { MetricPoint } from '../../src/model/index.js';
import { collectGarbage } from '../helpers/heap.js';

const POINTS = 200_000;
const RUN = 'a'.repeat(32);

function store(): string {
  const root = join(mkdtempSync(join(tmpdir(), 'trackshift-mlruns-memory-')), 'mlruns');
  const exp = join(root, '1');
  const run = join(exp, RUN);
  for (const sub of ['metrics', 'params', 'tags']) mkdirSync(join(run, sub), { recursive: true });
  writeFileSync(join(exp, 'meta.yaml'), "artifact_location: ''\ncreation_time: 0\nexperiment_id: '1'\nlast_update_time: 0\nlifecycle_stage: active\nname: e\n");
  writeFileSync(join(run, 'meta.yaml'), `artifact_uri: ''\nend_time: 1\nexperiment_id: '1'\nlifecycle_stage: active\nrun_id: '${RUN}'\nrun_name: r\nrun_uuid: '${RUN}'\nstart_time: 0\nstatus: 3\nuser_id: u\n`);
  const lines: string[] = [];
  for (let s = 0; s < POINTS; s++) lines.push(`${1_700_000_000_000 + s} ${Math.sin(s)} ${s}\n`);
  writeFileSync(join(run, 'metrics', 'loss'), lines.join(''));
  return root;
}

describe('mlruns metric pages in memory', () => {
  it('hold each point in under 108 bytes', async () => {
    const source = new MlrunsSource(store());
    const run = (await source.getRun(RUN))!;
    const held: MetricPoint[][] = [];
    collectGarbage();
    const base = process.memoryUsage().heapUsed;
    for await (const page of source.readMetric(run, 'loss')) held.push(page);
    collectGarbage();
    const perPoint = (process.memoryUsage().heapUsed - base) / POINTS;
    expect(held.reduce((n, p) => n + p.length, 0)).toBe(POINTS);
    expect(held[0]![0]).toEqual({ key: 'loss', timestamp: 1_700_000_000_000, value: 0, step: 0 });
    expect(perPoint).toBeLessThan(108);
  });
});
