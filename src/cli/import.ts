import type { Command } from 'commander';
import { UsageError } from '../util/errors.js';
import { transferCommand } from './run-job.js';

export const importCommand = (done: (code: number) => void): Command =>
  transferCommand(
    {
      name: 'import',
      description: 'copy experiments and runs from a bundle folder (made by export) into DST',
      from: ['<dir>', 'the bundle folder'],
      to: ['<dst>', 'where to write: an MLflow server URL'],
      examples: [
        'trackshift import ./out http://127.0.0.1:5002',
        'trackshift import ./out http://127.0.0.1:5002 --experiment churn --dst-experiment churn-restored',
        'trackshift import ./out http://127.0.0.1:5002 --dry-run',
      ],
      extra: (dir) => ({
        checkEnds: (source) => {
          if (source.kind !== 'bundle') throw new UsageError(`import reads a bundle made by export, but ${dir} is ${source.kind}; use copy to read it`);
        },
      }),
    },
    done,
  );
