/** The part of copy, export and import that is the same: run the job, show it, choose the exit code. */
import { runJob, type JobOptions, type Report } from '../engine/job.js';
import { ProgressPrinter, summary } from './render.js';
import { Command } from 'commander';
import { addModelWriteOptions, addSelectionOptions, addTransferOptions, retryPolicyFrom, selectionFrom, type RetryFlags, type SelectionFlags } from './options.js';
import type { Selection } from '../engine/plan.js';
import { writeFileSync } from 'node:fs';
import { runVerify } from '../verify/index.js';
import type { VerifyReport } from '../verify/report.js';
import { verifySummary } from '../verify/text.js';
import { watchInterruptions } from './interrupt.js';
import { incompleteMessage, INCOMPLETE_EXIT, verifyExitCode, verifyOrIncomplete } from './verify.js';

export interface TransferFlags extends SelectionFlags, RetryFlags {
  workers: number;
  artifactWorkers: number;
  dryRun: boolean;
  stateDir?: string;
  idMap?: string;
  report?: string;
  json: boolean;
  deleteModel?: boolean;
  lineageTags?: boolean;
  archiveExistingVersions?: boolean;
  /** copy --verify: compare what was copied afterwards */
  verify?: boolean;
  maxDifferences?: number;
}

export async function runTransferVerb(
  command: JobOptions['command'],
  source: string,
  destination: string,
  flags: TransferFlags,
  extra: Pick<JobOptions, 'newFolderFormat' | 'checkEnds'> = {},
  selection: Selection = selectionFrom(flags),
): Promise<number> {
  const progress = new ProgressPrinter(process.stderr, flags.json);
  const interruption = watchInterruptions();
  const report: Report & { verify?: VerifyReport } = await runJob({
    command,
    source,
    destination,
    selection,
    workers: flags.workers,
    artifactWorkers: flags.artifactWorkers,
    dryRun: flags.dryRun,
    stateDir: flags.stateDir,
    idMapFile: flags.idMap,
    reportFile: flags.report,
    deleteModel: Boolean(flags.deleteModel),
    lineageTags: Boolean(flags.lineageTags),
    archiveExisting: Boolean(flags.archiveExistingVersions),
    onEvent: progress.onEvent,
    signal: interruption.signal,
    retry: retryPolicyFrom(flags),
    ...extra,
  })
    .catch((err: unknown) => {
      progress.finish();
      throw err;
    })
    .finally(() => interruption.dispose());
  let code = report.failed.length > 0 ? 1 : 0;
  let text = summary(report);
  if (report.interrupted) {
    progress.finish();
    process.stdout.write((flags.json ? JSON.stringify(report, null, 2) : text) + '\n');
    // requests given up on may still hold the event loop open: end here, as a signal would
    process.exit(interruption.exitCode ?? 130);
  }
  if (flags.verify && !flags.dryRun) {
    // the same selection read back from both ends: renames and filters apply as they did to the copy
    const verification = await verifyOrIncomplete(() => runVerify({
      source,
      destination,
      selection,
      workers: flags.workers,
      artifactWorkers: flags.artifactWorkers,
      maxDifferences: flags.maxDifferences ?? 20,
      onEvent: progress.onEvent,
      retry: retryPolicyFrom(flags),
    })).catch((err: unknown) => {
      progress.finish();
      throw err;
    });
    // failed copies say 1; otherwise an unfinished comparison is 3, never 1
    if ('failed' in verification) {
      if (code === 0) code = INCOMPLETE_EXIT;
      text += `\n\n${incompleteMessage(verification.failed)}`;
    } else {
      report.verify = verification;
      if (code === 0) code = verifyExitCode(verification);
      text += `\n\n${verifySummary(verification)}`;
    }
    if (flags.report) writeFileSync(flags.report, JSON.stringify(report, null, 2) + '\n');
  }
  progress.finish();
  process.stdout.write((flags.json ? JSON.stringify(report, null, 2) : text) + '\n');
  return code;
}

export interface TransferVerb {
  name: JobOptions['command'];
  description: string;
  from: [string, string];
  to: [string, string];
  examples: string[];
  /** options of this verb only */
  options?: (command: Command) => void;
  extra?: (src: string, dst: string, flags: TransferFlags & Record<string, unknown>) => Pick<JobOptions, 'newFolderFormat' | 'checkEnds'>;
}

/** copy, export and import: the same options and the same job, with different ends. */
export function transferCommand(verb: TransferVerb, done: (code: number) => void): Command {
  const command = new Command(verb.name).description(verb.description).argument(...verb.from).argument(...verb.to);
  addSelectionOptions(command);
  addModelWriteOptions(command);
  addTransferOptions(command);
  verb.options?.(command);
  return command
    .addHelpText('after', `\nExamples:\n${verb.examples.map((e) => `  $ ${e}`).join('\n')}`)
    .action(async (src: string, dst: string, flags: TransferFlags) => done(await runTransferVerb(verb.name, src, dst, flags, verb.extra?.(src, dst, flags as TransferFlags & Record<string, unknown>))));
}
