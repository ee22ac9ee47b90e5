/**
 * Ctrl-C and SIGTERM during a copy into a real MLflow server: the command stops taking runs,
 * prints its summary, writes its report (interrupted: true) and exits 130 / 143; the runs cut
 * off are not left looking copied, and a re-run completes with no duplicates, `verify` equal.
 * Also: a report is written when the command ends with exit 2 after it started.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import { startMlflowServer, freePort, type MlflowServer } from '../harness/mlflow-server.js';
import { cli, startCli } from './run-cli.js';
import { makeSlowBundle } from './slow-bundle.js';

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-interrupt-'));
const RUNS = 20;

/** source run id → how many runs of the destination carry it (complete or not), and how many are complete */
async function copies(uri: string): Promise<{ all: Map<string, number>; complete: number }> {
  const source = await openSource(uri);
  const all = new Map<string, number>();
  let complete = 0;
  try {
    for await (const experiment of source.listExperiments()) {
      for await (const run of source.listRuns(experiment.id, { includeDeleted: false })) {
        const origin = run.tags['trackshift.source.id'];
        if (!origin) continue;
        all.set(origin, (all.get(origin) ?? 0) + 1);
        if (run.tags['trackshift.complete'] === 'true') complete++;
      }
    }
  } finally {
    await source.close?.();
  }
  return { all, complete };
}

describe('stopping a copy with a signal', () => {
  const servers: MlflowServer[] = [];
  let bundle: string;
  beforeAll(async () => {
    bundle = join(temp(), 'bundle');
    await makeSlowBundle(bundle, temp(), RUNS);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  for (const [signal, exitCode] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal}: summary, report, exit ${exitCode}; a re-run completes the copy`, async () => {
      const server = await startMlflowServer();
      servers.push(server);
      const state = temp();
      const report = join(temp(), 'report.json');
      const args = ['copy', bundle, server.url, '--workers', '1', '--state-dir', state];
      const { child, done } = startCli([...args, '--report', report]);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/copied run /.test(stderr) && !child.killed) child.kill(signal);
      });
      const result = await done;
      expect(result.code, result.stderr).toBe(exitCode);
      expect(result.stderr).toMatch(new RegExp(`${signal}: stopping`));
      expect(result.stdout).toMatch(/INTERRUPTED: [1-9]\d* run\(s\) not started, [01] cut off part way/);
      expect(result.stdout).toMatch(/copied [1-9]/);
      const written = JSON.parse(readFileSync(report, 'utf8'));
      expect(written.interrupted).toBe(true);
      expect(written.runsNotStarted).toBeGreaterThan(0);
      expect(written.copied.runs + written.runsNotStarted + written.runsAbandoned).toBe(RUNS);

      // nothing partial looks like a copy: every run carrying a source id is complete
      const after = await copies(server.url);
      expect(after.complete).toBe(written.copied.runs);
      expect([...after.all.values()].every((n) => n === 1)).toBe(true);
      expect(after.all.size).toBe(written.copied.runs);

      const rerun = await cli([...args, '--json']);
      expect(rerun.code, rerun.stderr).toBe(0);
      const second = JSON.parse(rerun.stdout);
      expect(second.copied.runs).toBe(RUNS - written.copied.runs);
      expect(second.skipped.runs).toBe(written.copied.runs);
      const final = await copies(server.url);
      expect(final.all.size).toBe(RUNS);
      expect([...final.all.values()].every((n) => n === 1)).toBe(true);
      const verify = await cli(['verify', bundle, server.url]);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    });
  }

  it('a second SIGINT stops at once (exit 130); the partial runs it leaves are redone by the next run', async () => {
    const server = await startMlflowServer();
    servers.push(server);
    const args = ['copy', bundle, server.url, '--workers', '2', '--state-dir', temp()];
    const { child, done } = startCli(args);
    let stderr = '';
    let sent = 0;
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (sent === 0 && /copied run /.test(stderr)) {
        sent++;
        child.kill('SIGINT');
      } else if (sent === 1 && /SIGINT: stopping/.test(stderr)) {
        sent++;
        child.kill('SIGINT');
      }
    });
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/SIGINT again: stopping at once/);
    expect(result.stdout).toBe(''); // no summary: it did not wait

    const rerun = await cli([...args, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const final = await copies(server.url);
    expect(final.all.size).toBe(RUNS);
    expect(final.complete).toBe(RUNS);
    expect([...final.all.values()].every((n) => n === 1)).toBe(true);
  });

  it('writes the report with the error when the command ends with exit 2 after it started', async () => {
    const report = join(temp(), 'report.json');
    const unreachable = `http://user:secret-pw@127.0.0.1:${await freePort()}`;
    const result = await cli(['copy', bundle, unreachable, '--report', report, '--state-dir', temp()]);
    expect(result.code).toBe(2);
    const written = JSON.parse(readFileSync(report, 'utf8'));
    expect(written.exitCode).toBe(2);
    expect(written.error).toMatch(/127\.0\.0\.1/);
    expect(written.destination).not.toContain('secret-pw');
    expect(readFileSync(report, 'utf8')).not.toContain('secret-pw');

    const database = `postgresql://user:db-secret-pw@127.0.0.1:${await freePort()}/mlflow`;
    const fromDatabase = await cli(['copy', database, join(temp(), 'out'), '--report', report, '--state-dir', temp()]);
    expect(fromDatabase.code, fromDatabase.stderr).toBe(2);
    const text = readFileSync(report, 'utf8');
    expect(JSON.parse(text).source).toMatch(/^postgresql:\/\/127\.0\.0\.1:\d+\/mlflow$/);
    expect(text).not.toContain('db-secret-pw');
  });
});
