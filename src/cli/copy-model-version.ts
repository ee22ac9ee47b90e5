/**
 * copy-model-version: one version of a registered model into a model of another (or the same)
 * registry. With --dst-experiment it is a deep copy (the version's run is copied into that
 * experiment and the new version points at the copy); without, a shallow one (the new version
 * points at the source's files).
 */
import { Command } from 'commander';
import { emptySelection } from '../engine/plan.js';
import { UsageError } from '../util/errors.js';
import { addTransferOptions } from './options.js';
import { DESTINATION_FORMS } from './locations.js';
import { runTransferVerb, type TransferFlags } from './run-job.js';

interface Flags extends TransferFlags {
  srcModel: string;
  srcVersion: string;
  dstModel: string;
  dstExperiment?: string;
}

export function copyModelVersionCommand(done: (code: number) => void): Command {
  const command = new Command('copy-model-version')
    .description('copy one model version: deep (with its run, --dst-experiment) or shallow (pointing at the source\'s files)')
    .argument('<src>', 'the source registry: an MLflow server URL, a Databricks workspace, an MLflow database, an mlruns folder, a bundle, an mlflow-export-import directory, or FORMAT:PATH')
    .argument('<dst>', `the destination registry: ${DESTINATION_FORMS}`)
    .requiredOption('--src-model <name>', 'the source registered model')
    .requiredOption('--src-version <number>', 'the version to copy')
    .requiredOption('--dst-model <name>', 'the destination registered model (created when missing)')
    .option('--dst-experiment <name>', 'deep copy: copy the version\'s run (and logged model) into this experiment, and point the new version at the copy')
    .option('--lineage-tags', 'record the source model, version, run id and tracking URI on the new version (tags trackshift.lineage.*)', false)
    .option('--archive-existing-versions', 'if the version is in Staging or Production, move the destination model\'s other versions in that stage to Archived', false);
  addTransferOptions(command);
  return command
    .addHelpText(
      'after',
      `
Examples:
  $ trackshift copy-model-version --src-model fraud --src-version 3 --dst-model fraud --dst-experiment /prod/fraud http://old:5000 http://new:5000
  $ trackshift copy-model-version --src-model fraud --src-version 3 --dst-model fraud-review --lineage-tags http://mlflow:5000 http://mlflow:5000`,
    )
    .action(async (src: string, dst: string, flags: Flags) => {
      if (!/^\d+$/.test(flags.srcVersion)) throw new UsageError(`--src-version takes a version number, not "${flags.srcVersion}"`);
      const selection = emptySelection();
      selection.models = [flags.srcModel];
      selection.versions = [flags.srcVersion];
      selection.dstModel = flags.dstModel;
      selection.dstExperiment = flags.dstExperiment;
      selection.scope = flags.dstExperiment ? 'all' : 'models';
      done(await runTransferVerb('copy-model-version', src, dst, flags, {}, selection));
    });
}
