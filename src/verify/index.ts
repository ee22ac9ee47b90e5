/**
 * The library entry point of `verify`: opens both ends (the destination read as a source, with
 * the destination's credentials), compares them, and writes the report where asked.
 */
import { openSource } from '../connectors/resolve.js';
import type { Source } from '../connectors/types.js';
import { verifySources, type VerifyOptions } from './compare.js';
import type { VerifyReport } from './report.js';
import { jobRetries, type RetryPolicy } from '../util/retry.js';

export interface VerifyJobOptions extends VerifyOptions {
  source: string;
  destination: string;
  env?: NodeJS.ProcessEnv;
  /** how reads of either end are retried (the same policy as copy) */
  retry?: RetryPolicy;
}

export async function runVerify(options: VerifyJobOptions): Promise<VerifyReport> {
  const env = options.env ?? process.env;
  const retry = jobRetries(options.retry, options.onEvent);
  const src = await openSource(options.source, env, 'src', retry);
  let dst: Source | undefined;
  try {
    dst = await openSource(options.destination, env, 'dst', retry);
    const report = await verifySources(src, dst, options);
    report.retries = retry.stats!.summary();
    return report;
  } finally {
    await dst?.close?.();
    await src.close?.();
  }
}

export { verifySources, type VerifyOptions } from './compare.js';
export type { VerifyReport } from './report.js';
