/**
 * The library entry point of `verify`: opens both ends (the destination read as a source, with
 * the destination's credentials), compares them, and writes the report where asked.
 */
import { openSource } from '../connectors/registry.js';
import type { Source } from '../connectors/types.js';
import { verifySources, type VerifyOptions } from './compare.js';
import type { VerifyReport } from './report.js';

export interface VerifyJobOptions extends VerifyOptions {
  source: string;
  destination: string;
  env?: NodeJS.ProcessEnv;
}

export async function runVerify(options: VerifyJobOptions): Promise<VerifyReport> {
  const env = options.env ?? process.env;
  const src = await openSource(options.source, env, 'src');
  let dst: Source | undefined;
  try {
    dst = await openSource(options.destination, env, 'dst');
    return await verifySources(src, dst, options);
  } finally {
    await dst?.close?.();
    await src.close?.();
  }
}

export { verifySources, type VerifyOptions } from './compare.js';
export type { VerifyReport } from './report.js';
