/**
 * The Neptune 2.x reader streams: a series in an operation log (as the client writes it, lines
 * of LogFloats, another series interleaved, a clear part way) is listed and read page by page,
 * with the heap no larger for 2,000,000 points than for 500,000.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Neptune2Source } from '../../src/connectors/neptune2/read.js';
import { peakHeapGrowth } from '../helpers/heap.js';

const PER_LINE = 500;
let tmp: string;

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function writeLog(file: string, points: number): Promise<void> {
  const out = createWriteStream(file);
  let version = 0;
  const line = async (obj: object) => {
    if (!out.write(JSON.stringify({ obj, version: ++version, at: 1_700_000_000 + version / 1000 }) + '\n')) await once(out, 'drain');
  };
  await line({ type: 'AssignString', path: ['sys', 'name'], value: 'long' });
  // points logged before a clear do not count
  await line({ type: 'LogFloats', path: ['train', 'loss'], values: [{ value: -1, step: 0, ts: 1_700_000_000 }] });
  await line({ type: 'ClearFloatLog', path: ['train', 'loss'] });
  for (let start = 0; start < points; start += PER_LINE) {
    const values = Array.from({ length: PER_LINE }, (_, n) => ({ value: Math.sin(start + n), step: (start + n) / 4, ts: 1_700_000_000 + (start + n) / 1000 }));
    await line({ type: 'LogFloats', path: ['train', 'loss'], values });
    await line({ type: 'LogFloats', path: ['train', 'acc'], values: [{ value: start, step: start, ts: 1_700_000_000 }] });
  }
  out.end();
  await once(out, 'finish');
}

/** the peak heap growth while listing and reading a `points`-long series, after checking every point */
async function peakHeapWhileReading(points: number): Promise<number> {
  const root = join(tmp, String(points), '.neptune');
  const dir = join(root, 'offline', 'run__5f1e9a3c-0d1b-4c2e-8f3a-1b2c3d4e5f60__1__abcdefgh');
  mkdirSync(dir, { recursive: true });
  await writeLog(join(dir, 'data-1.log'), points);

  let count = 0;
  let last = -1;
  let exact = true;
  const { peak } = await peakHeapGrowth(async (measure) => {
    const source = new Neptune2Source(root);
    for await (const run of source.listRuns('neptune', { includeDeleted: false })) {
      expect(run.series.map((s) => s.key).sort()).toEqual(['train/acc', 'train/loss']);
      for await (const page of source.readMetric(run, 'train/loss')) {
        for (const p of page) {
          if (p.step <= last || p.value !== Math.sin(p.step * 4)) exact = false;
          last = p.step;
        }
        count += page.length;
        measure();
      }
    }
  }, 40);
  expect(count).toBe(points);
  expect(exact).toBe(true);
  rmSync(join(tmp, String(points)), { recursive: true, force: true });
  console.log(`peak live heap growth ${(peak / 2 ** 20).toFixed(1)} MB for ${points.toLocaleString('en')} points`);
  return peak;
}

it('lists and reads a 2,000,000-point series with the heap of a 500,000-point one', async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune2-memory-'));
  const small = await peakHeapWhileReading(500_000);
  const large = await peakHeapWhileReading(2_000_000);
  // 2,000,000 points held would take well over 150 MB
  expect(large).toBeLessThan(small + 32 * 2 ** 20);
  expect(large).toBeLessThan(128 * 2 ** 20);
}, 180_000);
