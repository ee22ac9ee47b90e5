/**
 * verify SRC DST: compares both ends field by field and says what differs. Exit 0 when nothing
 * does, 1 when something does, 2 on usage or configuration errors, 3 when the comparison could
 * not be finished (a read failed even after retries).
 */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { TrackshiftError, UsageError, errorMessage } from '../util/errors.js';
import { runVerify } from '../verify/index.js';
import { reportHtml } from '../verify/html.js';
import type { VerifyReport } from '../verify/report.js';
import { verifySummary } from '../verify/text.js';
import { addRetryOptions, addSelectionOptions, parseCount, retryPolicyFrom, selectionFrom, type RetryFlags, type SelectionFlags } from './options.js';
import { ProgressPrinter } from './render.js';
import { SOURCE_FORMS } from './locations.js';

export interface VerifyFlags {
  workers: number;
  artifactWorkers: number;
  maxDifferences: number;
  sample?: number;
  seed?: number;
  report?: string[];
  json: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const isHtml = (file: string) => /\.html?$/i.test(file);

/** Options of verify that copy --verify shares. */
export function addVerifyOptions(command: Command): Command {
  return command
    .option('--max-differences <n>', 'differences listed per run, model or version; the rest are counted', parseCount('--max-differences', 1_000_000), 20)
    .option('--sample <n>', 'compare the series histories (every point) and artifacts of only N runs chosen at random (every run\'s fields and series lists are still compared)', parseCount('--sample', 100_000_000))
    .option('--seed <n>', 'the seed that chooses the --sample runs (printed in the summary, to draw the same runs again)', (v: string) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`--seed takes a whole number, not "${v}"`);
      return Number(v);
    });
}

/** The exit code of a comparison that could not be finished: neither 0 (equal) nor 1 (different). */
export const INCOMPLETE_EXIT = 3;

/** 0 equal, 1 different, 3 incomplete (whatever was found in the part compared). */
export const verifyExitCode = (report: VerifyReport): number => ((report.incomplete ?? []).length > 0 ? INCOMPLETE_EXIT : report.equal ? 0 : 1);

/**
 * Runs a comparison; one that fails as a whole (an end stopped answering, even after retries)
 * is reported as incomplete with exit code 3, never as a difference. Usage errors stay exit 2.
 */
export async function verifyOrIncomplete(run: () => Promise<VerifyReport>): Promise<VerifyReport | { failed: string }> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof TrackshiftError && err.exitCode === 2) throw err;
    return { failed: errorMessage(err) };
  }
}

export const incompleteMessage = (reason: string) =>
  `verify could not finish: nothing more could be compared (a read failed even after retries): ${reason}\nINCOMPLETE: run verify again when both ends answer (exit code ${INCOMPLETE_EXIT})`;

/** Writes each --report file: HTML when it ends in .html, JSON otherwise. */
export function writeVerifyReports(report: VerifyReport, files: string[] = []): void {
  for (const file of files) writeFileSync(file, isHtml(file) ? reportHtml(report) : JSON.stringify(report, null, 2) + '\n');
}

export function verifyCommand(done: (code: number) => void): Command {
  const command = new Command('verify')
    .description('compare SRC and DST field by field (runs with their typed config, summary and fork, every point of every series, files and artifacts by content, models) and report every difference; exit 0 only when there is none')
    .argument('<src>', `the source: ${SOURCE_FORMS}`)
    .argument('<dst>', 'the destination to check, any of the same (read with the destination\'s credentials, TRACKSHIFT_DST_…)');
  addSelectionOptions(command);
  addVerifyOptions(command);
  addRetryOptions(command);
  return command
    .option('-w, --workers <n>', 'runs compared at once', parseCount('--workers'), 4)
    .option('--artifact-workers <n>', 'artifact files read at once, across all runs', parseCount('--artifact-workers'), 4)
    .option('--report <file>', 'also write the report to FILE: HTML with charts of differing metrics when it ends in .html, JSON otherwise (repeatable)', collect)
    .option('--json', 'print the report as JSON on stdout instead of the summary', false)
    .addHelpText(
      'after',
      `
Examples:
  $ trackshift verify http://old:5000 http://new:5000
  $ trackshift verify http://old:5000 http://new:5000 --experiment churn --report diff.html
  $ trackshift verify ./mlruns ./bundle --sample 50 --seed 7 --json
  $ trackshift verify http://old:5000 http://new:5000 --experiment churn --dst-experiment churn-2024

Exit codes:
  0  equal: no differences
  1  different: some object differs, or is missing on one side
  2  usage or configuration error (bad flag, unknown source, refused credentials)
  3  incomplete: some object could not be compared because a read failed even after retries
     (--retries, --retry-window); the summary names what was not compared`,
    )
    .action(async (src: string, dst: string, flags: VerifyFlags & SelectionFlags & RetryFlags) => {
      const progress = new ProgressPrinter(process.stderr, flags.json);
      const report = await verifyOrIncomplete(() => runVerify({
        source: src,
        destination: dst,
        selection: selectionFrom(flags),
        workers: flags.workers,
        artifactWorkers: flags.artifactWorkers,
        maxDifferences: flags.maxDifferences,
        sample: flags.sample,
        seed: flags.seed,
        charts: (flags.report ?? []).some(isHtml),
        onEvent: progress.onEvent,
        retry: retryPolicyFrom(flags),
      }).finally(() => progress.finish()));
      if ('failed' in report) {
        process.stderr.write(`trackshift: ${incompleteMessage(report.failed)}\n`);
        done(INCOMPLETE_EXIT);
        return;
      }
      writeVerifyReports(report, flags.report);
      process.stdout.write((flags.json ? JSON.stringify(report, null, 2) : verifySummary(report)) + '\n');
      done(verifyExitCode(report));
    });
}
