/**
 * `copy X X` against a real MLflow server: an experiment onto itself is refused before anything
 * is written; into another experiment of the same server it copies once, and a re-run (of runs
 * that are themselves copies, carrying trackshift.source.* tags) copies nothing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import { startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { cli } from './run-cli.js';

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-self-'));

/** experiment name → run count, deleted runs included */
async function runCounts(uri: string): Promise<Record<string, number>> {
  const source = await openSource(uri);
  const counts: Record<string, number> = {};
  try {
    for await (const experiment of source.listExperiments()) {
      let n = 0;
      for await (const _run of source.listRuns(experiment.id, { includeDeleted: true })) n++;
      counts[experiment.name] = n;
    }
  } finally {
    await source.close?.();
  }
  return counts;
}

describe('copy within one MLflow server', () => {
  let server: MlflowServer;
  beforeAll(async () => {
    server = await startMlflowServer();
    // the sample's runs arrive as copies: they carry trackshift.source.id and .uri
    const seeded = await cli(['copy', 'sample/mlruns', server.url, '--include-deleted', '--state-dir', temp()]);
    expect(seeded.code, seeded.stderr).toBe(0);
  });
  afterAll(async () => server?.stop());

  it('refuses an experiment onto itself, dry run included, however the server is spelled, and writes nothing', async () => {
    const before = await runCounts(server.url);
    const localhost = server.url.replace('127.0.0.1', 'localhost') + '/';
    const cases = [
      [server.url, server.url],
      [server.url, localhost],
      [server.url, server.url, '--experiment', 'mnist-classifier'],
      [server.url, server.url, '--experiment', 'mnist-classifier', '--dry-run'],
      [server.url, server.url, '--experiment', 'mnist-classifier', '--dst-experiment', 'mnist-classifier'],
      [server.url, server.url, '--model', 'ticket-encoder', '--models-only'],
    ];
    for (const args of cases) {
      const result = await cli(['copy', ...args, '--state-dir', temp()]);
      expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/is both the source and the destination, so .* would be copied onto itself/);
      expect(result.stderr).toMatch(/Nothing was written/);
    }
    const all = await cli(['copy', server.url, server.url, '--state-dir', temp()]);
    expect(all.stderr).toMatch(/every selected experiment would be copied onto itself/);
    expect(await runCounts(server.url)).toEqual(before);
  });

  it('copies into another experiment once: a re-run, and a copy of the copies, add nothing', async () => {
    const before = await runCounts(server.url);
    const state = temp();
    const args = ['copy', server.url, server.url, '--experiment', 'mnist-classifier', '--dst-experiment', 'mnist-copy', '--include-deleted', '--json'];
    const first = await cli([...args, '--state-dir', state]);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).copied.runs).toBe(before['mnist-classifier']);
    for (const stateDir of [state, temp()]) {
      // with the journal, and without it (found by the provenance tag)
      const again = await cli([...args, '--state-dir', stateDir]);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).copied.runs).toBe(0);
    }
    const copyOfCopy = ['copy', server.url, server.url, '--experiment', 'mnist-copy', '--dst-experiment', 'mnist-copy-2', '--json'];
    expect(JSON.parse((await cli([...copyOfCopy, '--state-dir', temp()])).stdout).copied.runs).toBe(before['mnist-classifier']);
    expect(JSON.parse((await cli([...copyOfCopy, '--state-dir', temp()])).stdout).copied.runs).toBe(0);

    const after = await runCounts(server.url);
    expect(after).toEqual({ ...before, 'mnist-copy': before['mnist-classifier'], 'mnist-copy-2': before['mnist-classifier'] });
    const verify = await cli(['verify', server.url, server.url, '--experiment', 'mnist-classifier', '--dst-experiment', 'mnist-copy', '--include-deleted']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
