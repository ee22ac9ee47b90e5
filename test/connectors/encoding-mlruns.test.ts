/**
 * The `.trackshift/` encoding end to end on a real MLflow store, without a server: a memory run
 * holding every series type, fractional steps, typed nested config, a fork, a group, a summary
 * and system series is copied into an `mlruns` folder, read back with the mlruns source (which
 * undoes the encoding) equal to the original, and opened by the real mlflow client, which sees
 * the native metrics with integer steps and the encoding's artifacts. The same run through an
 * mlflow-export-import directory comes back equal too.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eximConnector } from '../../src/connectors/exim/index.js';
import { mlrunsConnector } from '../../src/connectors/mlruns/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import { runPython } from '../harness/mlflow-server.js';
import { T0, typedFields, typedSource } from '../helpers/typed-source.js';
import { wholeRuns } from '../helpers/whole-run.js';

const temp = (name: string) => mkdtempSync(join(tmpdir(), `trackshift-${name}-`));

describe('the .trackshift/ encoding in an mlruns store', () => {
  it('memory → mlruns → mlruns source gives back the typed run; mlflow reads the store', async () => {
    const source = typedSource();
    const store = join(temp('mlruns'), 'mlruns');
    const destination = await mlrunsConnector.openDestination!({ location: store, side: 'dst', env: {} });
    const plan = await planTransfer(source, emptySelection());
    const result = await transfer(source, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(temp('state')) });
    await destination.close?.();
    expect(result.failed).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.encoded.map((e) => e.sourceId)).toEqual(['forkedrun']);
    expect(result.encoded[0]!.how).toEqual(
      expect.arrayContaining([
        '30 fractional steps in "loss": integer steps written, exact steps in the sidecar .trackshift/series/0.jsonl',
        'series "cpu" written as "system/cpu" (a system series)',
        'string series "stdout" (3 points) kept as .trackshift/series/2.jsonl',
        'file series "samples" (2 points) kept as .trackshift/series/3.jsonl, its files under .trackshift/files/',
        'fork (from run parentrun at step 5.5) kept in .trackshift/run.json',
      ]),
    );

    const readBack = await mlrunsConnector.openSource!({ location: store, side: 'src', env: {} });
    expect(typedFields(await wholeRuns(readBack))).toEqual(typedFields(await wholeRuns(source)));
    await readBack.close?.();

    // MLflow itself: native metrics with integer steps, the config's views, and the encoding's files
    const dump = JSON.parse((await runPython('test/fixtures/dump_store.py', [`file://${store}`], { MLFLOW_ALLOW_FILE_STORE: 'true' })).trim().split('\n').pop()!) as Record<
      string,
      { runs: Record<string, { metrics: Record<string, Array<[number, number, string]>>; params: Record<string, string>; tags: Record<string, string>; artifacts: Array<[string, number]> }> }
    >;
    const run = dump.typed!.runs.forkedrun!;
    expect(Object.keys(run.metrics).sort()).toEqual(['loss', 'system/cpu']);
    expect(run.metrics.loss!).toHaveLength(43);
    expect(run.metrics.loss!.every(([step]) => Number.isInteger(step))).toBe(true);
    expect(run.metrics.loss!.filter(([step]) => step === 0).length).toBe(4); // steps 0, 0.25, 0.5, 0.75
    expect(run.params).toEqual({ seed: '7', 'optimizer/name': 'adam', 'optimizer/betas/b1': '0.9', epochs: '10', amp: 'false', when: new Date(T0).toISOString(), labels: '["cat","dog"]' });
    expect(run.artifacts.map(([path]) => path)).toEqual([
      '.trackshift/files/images/sample/0.png',
      '.trackshift/files/images/sample/1.png',
      '.trackshift/run.json',
      '.trackshift/series/0.jsonl',
      '.trackshift/series/2.jsonl',
      '.trackshift/series/3.jsonl',
      '.trackshift/series/4.jsonl',
      'model/weights.bin',
    ]);
  }, 180_000);
});

describe('the .trackshift/ encoding in an mlflow-export-import directory', () => {
  it('memory → exim → exim source gives back the typed run', async () => {
    const source = typedSource();
    const dir = temp('exim');
    const destination = await eximConnector.openDestination!({ location: dir, side: 'dst', env: {} });
    const plan = await planTransfer(source, emptySelection());
    const result = await transfer(source, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(temp('state')) });
    await destination.close?.();
    expect(result.failed).toEqual([]);
    expect(result.encoded.map((e) => e.sourceId)).toEqual(['forkedrun']);
    const readBack = await eximConnector.openSource!({ location: dir, side: 'src', env: {} });
    expect(typedFields(await wholeRuns(readBack))).toEqual(typedFields(await wholeRuns(source)));
  });
});
