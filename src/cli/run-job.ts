/** The part of copy, export and import that is the same: run the job, show it, choose the exit code. */
import { runJob, type JobOptions } from '../engine/job.js';
import { ProgressPrinter, summary } from './render.js';
import { selectionFrom, type SelectionFlags } from './options.js';

export interface TransferFlags extends SelectionFlags {
  workers: number;
  artifactWorkers: number;
  dryRun: boolean;
  stateDir?: string;
  idMap?: string;
  report?: string;
  json: boolean;
}

export async function runTransferVerb(
  command: JobOptions['command'],
  source: string,
  destination: string,
  flags: TransferFlags,
  extra: Pick<JobOptions, 'newFolderFormat' | 'checkEnds'> = {},
): Promise<number> {
  const progress = new ProgressPrinter(process.stderr, flags.json);
  const report = await runJob({
    command,
    source,
    destination,
    selection: selectionFrom(flags),
    workers: flags.workers,
    artifactWorkers: flags.artifactWorkers,
    dryRun: flags.dryRun,
    stateDir: flags.stateDir,
    idMapFile: flags.idMap,
    reportFile: flags.report,
    onEvent: progress.onEvent,
    ...extra,
  });
  progress.finish();
  process.stdout.write((flags.json ? JSON.stringify(report, null, 2) : summary(report)) + '\n');
  return report.failed.length > 0 ? 1 : 0;
}
