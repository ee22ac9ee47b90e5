/**
 * How much live heap some work holds at its peak. The work calls `page()` as it hands out or
 * consumes a page; every few pages the heap is measured after a full collection. Garbage not yet
 * collected is not counted: how much of it there is depends on the machine's load, and raw heap
 * samples made memory tests flaky on a busy CI machine.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;

/** `work`'s result and the most live heap (bytes, above what was live before) it held. */
export async function peakHeapGrowth<T>(work: (page: () => void) => Promise<T>, pagesBetweenSamples = 4): Promise<{ result: T; peak: number }> {
  collectGarbage();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  let pages = 0;
  const sample = () => {
    collectGarbage();
    peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  };
  const result = await work(() => {
    if (++pages % pagesBetweenSamples === 0) sample();
  });
  sample();
  return { result, peak };
}
