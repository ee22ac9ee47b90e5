/**
 * The library entry points as the end-to-end tests call them: a whole verb (`runJob`) with a
 * fresh journal each time under `stateRoot`, and `verify` with the settings every test uses.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { bundleConnector } from '../../src/connectors/resolve.js';
import { runJob, type JobOptions, type Report } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import type { VerifyReport } from '../../src/verify/report.js';

let jobs = 0;

/** Runs `command`; an export makes a new bundle. Nothing may fail unless `allowFailures`. */
export async function job(stateRoot: string, command: JobOptions['command'], source: string, destination: string, allowFailures = false): Promise<Report> {
  const report = await runJob({
    command,
    source,
    destination,
    selection: emptySelection(),
    workers: 2,
    artifactWorkers: 2,
    dryRun: false,
    stateDir: join(stateRoot, `state-${process.pid}-${jobs++}`),
    newFolderFormat: command === 'export' ? bundleConnector : undefined,
    env: {},
  });
  if (!allowFailures) expect(report.failed).toEqual([]);
  return report;
}

export function verify(source: string, destination: string): Promise<VerifyReport> {
  return runVerify({ source, destination, selection: emptySelection(), workers: 2, artifactWorkers: 2, maxDifferences: 50, env: {} });
}

/** Equal, or the differences named (a failure shows what was lost); `runs`: how many were compared. */
export function expectEqual(report: VerifyReport, runs?: number): void {
  expect(report.objects, JSON.stringify(report.objects.slice(0, 3), null, 1).slice(0, 3000)).toEqual([]);
  expect(report.equal).toBe(true);
  if (runs !== undefined) expect(report.summary.run).toMatchObject({ compared: runs, equal: runs });
}
