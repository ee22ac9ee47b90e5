#!/usr/bin/env node
/**
 * The command line: one sub-command per verb, each in its own file. Errors a user can act on
 * are printed as one message (no stack trace) with exit code 2 for usage and configuration,
 * 1 when some objects failed.
 */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { TrackshiftError, errorMessage } from '../util/errors.js';
import { copyCommand } from './copy.js';
import { copyModelVersionCommand } from './copy-model-version.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { lsCommand } from './ls.js';
import { verifyCommand } from './verify.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

// A copy makes garbage fast (every point read is dropped once written) and little of it stays
// live. V8 then lets its old space grow to 4× what is live before collecting; at 1.3× a
// 10-million-point copy peaked at 210 instead of 470 MB of RSS for a few more collections.
setFlagsFromString('--heap-growing-percent=30');

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const done = (code: number) => {
    exitCode = code;
  };
  const program = new Command('trackshift')
    .description('Move machine-learning experiment-tracking data between systems without losing any of it.')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
A system is named by a URI: http(s)://host:port (an MLflow server), databricks://PROFILE,
sqlite:///mlflow.db / postgresql://… / mysql://… (an MLflow database), a folder
(a trackshift bundle, an mlruns store, an mlflow-export-import directory), or FORMAT:PATH.

Examples:
  $ trackshift ls http://127.0.0.1:5001
  $ trackshift copy http://old:5000 http://new:5000 --dry-run
  $ trackshift copy http://old:5000 http://new:5000 --experiment churn --verify
  $ trackshift copy ./mlruns http://new:5000 --model fraud-classifier
  $ trackshift copy ./mlruns sqlite:///mlflow.db --include-deleted
  $ trackshift export http://old:5000 ./bundle        (carry ./bundle across, then:)
  $ trackshift import ./bundle http://new:5000
  $ trackshift verify http://old:5000 http://new:5000 --report diff.html

Run trackshift <command> --help for each command's options and more examples.`,
    );
  for (const command of [copyCommand(done), exportCommand(done), importCommand(done), copyModelVersionCommand(done), verifyCommand(done), lsCommand(done)]) {
    program.addCommand(command.exitOverride().showHelpAfterError('(run with --help for usage)'));
  }
  try {
    await program.parseAsync(argv, { from: 'node' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end this way too, with exit code 0
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof TrackshiftError) {
      process.stderr.write(`trackshift: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`trackshift: unexpected error: ${errorMessage(err)}\n`);
    if (process.env.TRACKSHIFT_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

// a reader that closes the pipe early (`trackshift ls … | head`) has all it wants: end quietly
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`trackshift: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
