import { Command } from 'commander';
import { bundleConnector } from '../connectors/registry.js';
import { UsageError } from '../util/errors.js';
import { addSelectionOptions, addTransferOptions } from './options.js';
import { runTransferVerb, type TransferFlags } from './run-job.js';

export function exportCommand(done: (code: number) => void): Command {
  const command = new Command('export')
    .description('copy experiments and runs from SRC into a trackshift bundle folder (to carry across an air gap, or keep)')
    .argument('<src>', 'where to read: an MLflow server URL, an mlruns folder, a bundle, or FORMAT:PATH')
    .argument('<dir>', 'the bundle folder: created when missing; an existing bundle is resumed');
  addSelectionOptions(command);
  addTransferOptions(command);
  return command
    .addHelpText(
      'after',
      `
Examples:
  $ trackshift export http://127.0.0.1:5001 ./out
  $ trackshift export ./mlruns ./out --experiment 0 --include-deleted
  $ trackshift export http://127.0.0.1:5001 ./out --run-id 4f1c…,9a2b… --include-nested`,
    )
    .action(async (src: string, dir: string, flags: TransferFlags) => {
      const code = await runTransferVerb('export', src, dir, flags, {
        newFolderFormat: bundleConnector,
        checkEnds: (_source, destination) => {
          if (destination.kind !== 'bundle') throw new UsageError(`export writes a trackshift bundle, but ${dir} is ${destination.kind}; use copy to write there`);
        },
      });
      done(code);
    });
}
