import type { Source } from '../../src/connectors/types.js';
import type { Run } from '../../src/model/index.js';

/** Every run of every experiment of a source, deleted ones included. */
export async function allRuns(source: Source): Promise<Run[]> {
  const runs: Run[] = [];
  for await (const exp of source.listExperiments()) for await (const run of source.listRuns(exp.id, { includeDeleted: true })) runs.push(run);
  return runs;
}
