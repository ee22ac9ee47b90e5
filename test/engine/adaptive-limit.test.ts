import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveLimit } from '../../src/engine/adaptive-limit.js';

/**
 * Simulated servers on a fake clock: `workers` calls served at once, each taking `msPerItem`
 * per item once it is served, the others waiting in line (as uvicorn workers do).
 */
function server(workers: number, msPerItem: (served: number) => number) {
  const busyUntil = Array.from({ length: workers }, () => 0);
  let served = 0;
  let inFlight = 0;
  let peak = 0;
  const call = (items: number) => {
    const slot = busyUntil.indexOf(Math.min(...busyUntil));
    const start = Math.max(Date.now(), busyUntil[slot]!);
    busyUntil[slot] = start + items * msPerItem(served++);
    inFlight++;
    peak = Math.max(peak, inFlight);
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        inFlight--;
        resolve();
      }, busyUntil[slot]! - Date.now()),
    );
  };
  return { call, peak: () => peak, resetPeak: () => (peak = inFlight) };
}

/** `writers` producers, each writing `batches` batches of 1000 items through the limit */
async function load(limit: AdaptiveLimit, call: (items: number) => Promise<void>, writers: number, batches: number, onBatch?: () => void) {
  const producers = Array.from({ length: writers }, async () => {
    for (let i = 0; i < batches; i++) {
      await limit.run(1000, () => call(1000));
      onBatch?.();
    }
  });
  const all = Promise.all(producers);
  await vi.runAllTimersAsync();
  await all;
}

describe('AdaptiveLimit', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('settles at about two calls at once on a server that serves one at a time', async () => {
    const limit = new AdaptiveLimit(8, 500, () => Date.now());
    const single = server(1, () => 0.1);
    const seen: number[] = [];
    await load(limit, single.call, 16, 40, () => seen.push(limit.limit));
    const settled = seen.slice(seen.length / 2);
    expect(Math.max(...settled)).toBeLessThanOrEqual(2);
    expect(settled.filter((l) => l === 2).length).toBeGreaterThan(settled.length / 2);
  });

  it('rises to its maximum when the server answers as fast with more in flight', async () => {
    const limit = new AdaptiveLimit(8, 500, () => Date.now());
    const wide = server(64, () => 0.1);
    await load(limit, wide.call, 16, 20, () => {});
    expect(limit.limit).toBe(8);
    expect(wide.peak()).toBe(8);
  });

  it('finds the capacity of a server with a few workers', async () => {
    const limit = new AdaptiveLimit(16, 500, () => Date.now());
    const four = server(4, () => 0.1);
    const seen: number[] = [];
    await load(limit, four.call, 32, 30, () => seen.push(limit.limit));
    const settled = seen.slice(seen.length / 2);
    const mean = settled.reduce((a, b) => a + b, 0) / settled.length;
    expect(mean).toBeGreaterThanOrEqual(3);
    expect(mean).toBeLessThanOrEqual(6);
  });

  it('follows a server that becomes faster for good', async () => {
    const limit = new AdaptiveLimit(8, 500, () => Date.now());
    // one worker, slow, for the first 300 calls; then 64 workers, 4× faster
    let wide = false;
    const slow = server(1, () => 0.4);
    const fast = server(64, () => 0.1);
    const seen: number[] = [];
    await load(limit, (items) => (wide ? fast.call(items) : slow.call(items)), 16, 60, () => {
      if (seen.push(limit.limit) === 300) wide = true;
    });
    expect(Math.max(...seen.slice(200, 300))).toBeLessThanOrEqual(2);
    const after = seen.slice(500).sort((a, b) => a - b);
    expect(after[Math.floor(after.length / 2)]).toBe(8);
  });

  it('never has more calls in flight than its maximum', async () => {
    let active = 0;
    let over = 0;
    const limit = new AdaptiveLimit(3, 500, () => Date.now());
    const wide = server(64, () => 0.1);
    await load(limit, async (items) => {
      active++;
      if (active > 3) over++;
      await wide.call(items);
      active--;
    }, 10, 20);
    expect(over).toBe(0);
  });

  it('counts the items of a call from its answer (reads), and settles as for writes', async () => {
    const limit = new AdaptiveLimit(16, 500, () => Date.now());
    const single = server(1, () => 0.1);
    const seen: number[] = [];
    const readers = Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 40; i++) {
        const page = await limit.run((p: number[]) => p.length, async () => {
          await single.call(2000);
          return new Array<number>(2000).fill(0);
        });
        expect(page).toHaveLength(2000);
        seen.push(limit.limit);
      }
    });
    const all = Promise.all(readers);
    await vi.runAllTimersAsync();
    await all;
    expect(Math.max(...seen.slice(seen.length / 2))).toBeLessThanOrEqual(2);
  });

  it('does not time small calls, and still lets them through', async () => {
    const limit = new AdaptiveLimit(4, 500, () => Date.now());
    const single = server(1, () => 0.1);
    let done = 0;
    const calls = Array.from({ length: 50 }, () => limit.run(10, () => single.call(10)).then(() => done++));
    await vi.runAllTimersAsync();
    await Promise.all(calls);
    expect(done).toBe(50);
    expect(limit.limit).toBe(1);
  });
});
