import { Command } from 'commander';
import { UsageError } from '../util/errors.js';
import { addSelectionOptions, addTransferOptions } from './options.js';
import { runTransferVerb, type TransferFlags } from './run-job.js';

export function importCommand(done: (code: number) => void): Command {
  const command = new Command('import')
    .description('copy experiments and runs from a bundle folder (made by export) into DST')
    .argument('<dir>', 'the bundle folder')
    .argument('<dst>', 'where to write: an MLflow server URL');
  addSelectionOptions(command);
  addTransferOptions(command);
  return command
    .addHelpText(
      'after',
      `
Examples:
  $ trackshift import ./out http://127.0.0.1:5002
  $ trackshift import ./out http://127.0.0.1:5002 --experiment churn --dst-experiment churn-restored
  $ trackshift import ./out http://127.0.0.1:5002 --dry-run`,
    )
    .action(async (dir: string, dst: string, flags: TransferFlags) => {
      const code = await runTransferVerb('import', dir, dst, flags, {
        checkEnds: (source) => {
          if (source.kind !== 'bundle') throw new UsageError(`import reads a bundle made by export, but ${dir} is ${source.kind}; use copy to read it`);
        },
      });
      done(code);
    });
}
