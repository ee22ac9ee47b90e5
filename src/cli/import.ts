import type { Command } from 'commander';
import { connectorFor } from '../connectors/resolve.js';
import { UsageError } from '../util/errors.js';
import { DESTINATION_FORMS } from './locations.js';
import { transferCommand } from './run-job.js';

export const importCommand = (done: (code: number) => void): Command =>
  transferCommand(
    {
      name: 'import',
      description: 'copy experiments, runs and models from a folder of files (a bundle made by export, or an mlflow-export-import / mlflow-migration export) into DST',
      from: ['<dir>', 'the bundle folder, or the directory an mlflow-export-import / mlflow-migration tool wrote (exim:DIR forces it)'],
      to: ['<dst>', `where to write: ${DESTINATION_FORMS}`],
      examples: [
        'trackshift import ./out http://127.0.0.1:5002',
        'trackshift import ./out http://127.0.0.1:5002 --experiment churn --dst-experiment churn-restored',
        'trackshift import ./out http://127.0.0.1:5002 --dry-run',
        'trackshift import ./exported-by-mlflow-export-import http://127.0.0.1:5002',
        'trackshift import ./out mlruns:./restored-mlruns',
      ],
      extra: (dir) => ({
        checkEnds: async (source) => {
          if (!(await connectorFor(dir)).importable) {
            throw new UsageError(`import reads a folder of files (a bundle, or an mlflow-export-import export), but ${dir} is ${source.kind}; use copy to read it`);
          }
        },
      }),
    },
    done,
  );
