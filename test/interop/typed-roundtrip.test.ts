/**
 * Issue 15's proof: a run holding every series type, fractional steps, a fork, typed nested
 * config, a group, a summary and system series goes from memory into each destination and on
 * into a bundle, and `verify` finds both equal to the original each time. MLflow-family
 * destinations hold it through the `.trackshift/` encoding, which their readers undo; the
 * bundle holds it natively; the servers are real MLflow servers. A copy of a copy names the
 * middle system's runs as its source, so verify compares each step of such a chain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/connectors/memory/index.js';
import type { JobOptions } from '../../src/engine/job.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { expectEqual as expectEqualRuns, job as runJobIn, verify } from '../helpers/jobs.js';
import { richStore } from '../helpers/rich-run.js';

let tmp: string;
const job = (command: JobOptions['command'], source: string, destination: string) => runJobIn(tmp, command, source, destination);
/** Equal, or the differences, named: a failure shows what was lost. */
const expectEqual = (report: VerifyReport) => expectEqualRuns(report, 2);

let sourceName = 0;
/** A fresh memory source with the rich runs (a memory store is shared by name in this process). */
function source(): string {
  const store = richStore(memoryStore(`rich-${process.pid}-${sourceName++}`));
  return store.uri;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-typed-roundtrip-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('every series type, fractional steps, a fork, typed config, group, summary, system series', () => {
  it('memory → bundle → memory', async () => {
    const src = source();
    const bundle = join(tmp, 'bundle-direct');
    await job('export', src, bundle);
    expectEqual(await verify(src, `bundle:${bundle}`));
    const back = `memory:back-${process.pid}`;
    await job('import', `bundle:${bundle}`, back);
    expectEqual(await verify(src, back));
  });

  it('memory → mlruns → bundle', async () => {
    const src = source();
    const mlruns = join(tmp, 'mlruns');
    const report = await job('copy', src, `mlruns:${mlruns}`);
    // the report says, per run, what the destination could not hold natively and how it is kept
    expect(report.encoded?.length).toBeGreaterThan(0);
    expectEqual(await verify(src, `mlruns:${mlruns}`));
    const bundle = join(tmp, 'bundle-from-mlruns');
    await job('export', `mlruns:${mlruns}`, bundle);
    expectEqual(await verify(src, `bundle:${bundle}`));
  });

  it('memory → mlflow-export-import directory → bundle', async () => {
    const src = source();
    const exim = join(tmp, 'exim');
    await job('copy', src, `exim:${exim}`);
    expectEqual(await verify(src, `exim:${exim}`));
    const bundle = join(tmp, 'bundle-from-exim');
    await job('export', `exim:${exim}`, bundle);
    expectEqual(await verify(src, `bundle:${bundle}`));
  });

  describe('on a real MLflow server', () => {
    let server: MlflowServer;
    let src: string;
    beforeAll(async () => {
      server = await startMlflowServer();
      src = source();
      await job('copy', src, server.url);
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('memory → MLflow server → bundle', async () => {
      expectEqual(await verify(src, server.url));
      const bundle = join(tmp, 'bundle-from-server');
      await job('export', server.url, bundle);
      // the bundle's runs name the server's runs as their source: equal to those, so to the original
      expectEqual(await verify(server.url, `bundle:${bundle}`));
    });

    it('memory → MLflow SQL store (written through the server, read directly) → bundle', async () => {
      const sql = `sqlite:///${join(server.dir, 'mlflow.db')}?artifacts=${join(server.dir, 'artifacts')}`;
      expectEqual(await verify(src, sql));
      const bundle = join(tmp, 'bundle-from-sql');
      await job('export', sql, bundle);
      expectEqual(await verify(sql, `bundle:${bundle}`));
    });

    it('a re-run copies nothing again and leaves the encoding as it was', async () => {
      const again = await job('copy', src, server.url);
      expect(again.copied.runs).toBe(0);
      expect(again.skipped.runs).toBe(2);
      expectEqual(await verify(src, server.url));
    });
  });
});
