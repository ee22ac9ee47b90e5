/**
 * How much the heap grows while some work runs: sampled every 5 ms from a base taken after a
 * real collection, so that garbage of earlier tests is not counted.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** `work`'s result and the heap's peak growth (bytes) while it ran. */
export async function peakHeapGrowth<T>(work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  collectGarbage();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  const sample = () => (peak = Math.max(peak, process.memoryUsage().heapUsed - base));
  const sampler = setInterval(sample, 5);
  try {
    const result = await work();
    sample();
    return { result, peak };
  } finally {
    clearInterval(sampler);
  }
}
