/** A bundle with enough runs (metric histories and artifacts of some size) for a copy to be stopped part way. */
import { randomBytes } from 'node:crypto';
import { memoryStore, memoryRun } from '../../src/connectors/memory/index.js';
import { bundleConnector } from '../../src/connectors/resolve.js';
import { runJob } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import type { MetricPoint } from '../../src/model/index.js';

let made = 0;

export async function makeSlowBundle(dir: string, stateDir: string, runs = 30, artifactBytes = 500_000): Promise<void> {
  const store = memoryStore(`slow-bundle-${process.pid}-${++made}`);
  store.data.experiments.set('1', { id: '1', name: 'many-runs', tags: {}, lifecycle: 'active' });
  for (let i = 0; i < runs; i++) {
    const id = `run${String(i).padStart(3, '0')}`;
    const loss: MetricPoint[] = Array.from({ length: 2000 }, (_, step) => ({ key: 'loss', value: 1 / (step + 1 + i), timestamp: 1_700_000_000_000 + step, step }));
    store.data.runs.set(id, memoryRun({
      run: { id, experimentId: '1', name: id, status: 'FINISHED', lifecycle: 'active', startTime: 1_700_000_000_000 + i, endTime: 1_700_000_100_000, params: { i: String(i) }, tags: { 'mlflow.runName': id }, inputs: [], series: [{ key: 'loss', type: 'float' }] },
      metrics: new Map([['loss', loss]]),
      artifacts: new Map([['weights.bin', randomBytes(artifactBytes)]]),
    }));
  }
  await runJob({ command: 'export', source: store.uri, destination: dir, selection: emptySelection(), workers: 4, artifactWorkers: 4, dryRun: false, stateDir, newFolderFormat: bundleConnector });
}
