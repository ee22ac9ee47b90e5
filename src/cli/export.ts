import { Option, type Command } from 'commander';
import { bundleConnector, eximConnector } from '../connectors/resolve.js';
import { UsageError } from '../util/errors.js';
import { SOURCE_FORMS } from './locations.js';
import { transferCommand } from './run-job.js';

export const exportCommand = (done: (code: number) => void): Command =>
  transferCommand(
    {
      name: 'export',
      description: 'copy experiments, runs and models from SRC into a folder of files: a trackshift bundle (to carry across an air gap, or keep), or what the mlflow-export-import tools read',
      from: ['<src>', `where to read: ${SOURCE_FORMS}`],
      to: ['<dir>', 'the folder: created when missing; an existing one of the same format is resumed'],
      examples: [
        'trackshift export http://127.0.0.1:5001 ./out',
        'trackshift export ./mlruns ./out --experiment 0 --include-deleted',
        "trackshift export 'postgresql://mlflow:PW@db:5432/mlflow?artifacts=/srv/mlartifacts' ./out",
        'trackshift export http://127.0.0.1:5001 ./out --run-id 4f1c…,9a2b… --include-nested',
        'trackshift export http://127.0.0.1:5001 ./for-python-tools --format mlflow-export-import',
      ],
      options: (command) =>
        command.addOption(
          new Option('--format <format>', 'bundle (trackshift\'s own, lossless), or mlflow-export-import (the bulk layout its import-experiment, import-experiments and import-all read)')
            .choices(['bundle', 'mlflow-export-import'])
            .default('bundle'),
        ),
      extra: (_src, dir, flags) => {
        const exim = flags.format === 'mlflow-export-import';
        const format = exim ? eximConnector : bundleConnector;
        return {
          newFolderFormat: format,
          checkEnds: (_source, destination) => {
            if (destination.kind !== format.name) throw new UsageError(`export --format ${String(flags.format)} writes ${exim ? 'an mlflow-export-import directory' : 'a trackshift bundle'}, but ${dir} is ${destination.kind}; choose an empty folder`);
          },
        };
      },
    },
    done,
  );
